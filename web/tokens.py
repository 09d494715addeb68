"""API tokens over HTTP (what ``tracker tokens`` does). An admin manages everyone's; a viewer
only its own.

- ``GET /api/tokens``: the caller's tokens (an admin: all), never the tokens themselves.
- ``POST /api/tokens`` ``{"user": "ann", "expires_in": "30d"}``: ``user`` defaults to the
  caller; a viewer may name only itself (403 otherwise). Answers the token, shown only now.
- ``DELETE /api/tokens/{token_id}``: revoke (an admin, or the token's user; 404 otherwise).

Each change is audited (never a token).
"""
from __future__ import annotations

from datetime import timedelta

from faust.web import View

from tracker.accounts import by_id, store as accounts
from tracker.accounts.permissions import Access
from tracker.app import app
from web import params
from web.auth import require
from web.errors import BadRequest, Forbidden
from web.manage import change, json_response, numeric_id, read, string_field

MAX_BODY = 4096
LONGEST = timedelta(days=3650)
SHAPE = '{"user": "ann", "expires_in": "30d"}'


def token_json(token: accounts.Token) -> dict:
    return {"id": token.token_id, "user": token.user_name, "created_at": token.created_at,
            "expires_at": token.expires_at, "revoked_at": token.revoked_at}


def _own(access: Access) -> int | None:
    """Whose tokens the caller manages: None for everyone's (an admin)."""
    if access.is_admin:
        return None
    if access.user_id is None:
        raise Forbidden("forbidden", "only a user manages tokens")
    return access.user_id


@app.page("/api/tokens")
class Tokens(View):
    async def get(self, request):
        access = await require(request)
        owner = _own(access)
        return json_response(self, [token_json(t) for t in await read(lambda conn: by_id.tokens_of(conn, owner))])

    async def post(self, request):
        access = await require(request)
        body = await params.json_object(request, MAX_BODY, SHAPE)
        user = string_field(body, "user", required=False, default=access.user)
        if not access.is_admin and (_own(access) is None or user != access.user):
            raise Forbidden("forbidden", "a viewer makes tokens only for itself")
        expires_in = body.get("expires_in")
        try:
            lifetime = None if expires_in is None else accounts.parse_duration(expires_in, longest=LONGEST)
        except accounts.AccountError as exc:
            raise BadRequest("bad_duration", f"expires_in: {exc}", field="expires_in") from None
        token_id, token = await change(access, "token.add", f"user:{user}",
                                       lambda conn: accounts.add_token(conn, user, lifetime),
                                       {"expires_in": expires_in}, "user")
        (made,) = [t for t in await read(lambda conn: by_id.tokens_of(conn, None)) if t.token_id == token_id]
        return json_response(self, {**token_json(made), "token": token}, status=201)


@app.page("/api/tokens/{token_id}")
class TokenItem(View):
    async def delete(self, request, token_id: str):
        access = await require(request)
        owner = _own(access)
        number = numeric_id(token_id, "unknown_token", "token")

        async def revoke(conn) -> None:
            if owner is not None and await by_id.token_owner(conn, number) != owner:
                raise accounts.AccountError(f"no active token {number} of yours")
            await accounts.revoke_token(conn, number)

        await change(access, "token.revoke", f"token:{number}", revoke, code="token")
        return self.bytes(b"", status=204)
