"""Users over HTTP, for admins (what ``tracker users`` does):

- ``GET /api/users``: every user, with its role and groups.
- ``POST /api/users`` ``{"name", "role", "password"}``: without a password, one is made
  and answered (shown only now).
- ``GET`` and ``DELETE /api/users/{user_id}``: never the last admin.
- ``POST /api/users/{user_id}/password`` ``{"password"}`` (or ``{}`` for a new one, shown
  only now): its sessions end.

Each change is audited (never a password).
"""
from __future__ import annotations

from faust.web import View

from tracker.accounts import by_id, store as accounts
from tracker.accounts.credentials import new_password
from tracker.accounts.permissions import ROLES
from tracker.app import app
from web import params
from web.auth import require_admin
from web.errors import BadRequest
from web.manage import change, json_response, numeric_id, read, string_field

MAX_BODY = 4096
MIN_PASSWORD = 8
SHAPE = '{"name": "ann", "role": "viewer", "password": "at least 8 characters (optional)"}'


def user_json(user: accounts.User) -> dict:
    return {"id": user.user_id, "name": user.name, "role": user.role, "created_at": user.created_at,
            "groups": user.groups}


def _password(body: dict) -> tuple[str, bool]:
    """(password, made here?)"""
    if body.get("password") is None:
        return new_password(), True
    password = string_field(body, "password")
    if len(password) < MIN_PASSWORD:
        raise BadRequest("bad_password", f"a password is at least {MIN_PASSWORD} characters", field="password")
    return password, False


def _user_id(text: str) -> int:
    return numeric_id(text, "unknown_user", "user")


@app.page("/api/users")
class Users(View):
    async def get(self, request):
        await require_admin(request)
        return json_response(self, [user_json(user) for user in await read(accounts.list_users, "user")])

    async def post(self, request):
        access = await require_admin(request)
        body = await params.json_object(request, MAX_BODY, SHAPE)
        name = string_field(body, "name")
        role = string_field(body, "role")
        if role not in ROLES:
            raise BadRequest("bad_role", f"role must be one of {', '.join(ROLES)}", field="role")
        password, made = _password(body)
        user_id = await change(access, "user.add", f"user:{name}",
                               lambda conn: accounts.add_user(conn, name, role, password), {"role": role}, "user")
        user = await read(lambda conn: by_id.user(conn, user_id), "user")
        return json_response(self, {**user_json(user), **({"password": password} if made else {})}, status=201)


@app.page("/api/users/{user_id}")
class UserItem(View):
    async def get(self, request, user_id: str):
        await require_admin(request)
        return json_response(self, user_json(await read(lambda conn: by_id.user(conn, _user_id(user_id)), "user")))

    async def delete(self, request, user_id: str):
        access = await require_admin(request)
        number = _user_id(user_id)

        async def remove(conn) -> None:
            await accounts.remove_user(conn, await by_id.user_name(conn, number))

        await change(access, "user.remove", f"user:{number}", remove, code="user")
        return self.bytes(b"", status=204)


@app.page("/api/users/{user_id}/password")
class UserPassword(View):
    async def post(self, request, user_id: str):
        access = await require_admin(request)
        number = _user_id(user_id)
        password, made = _password(await params.json_object(request, MAX_BODY, '{"password": ...} or {}'))

        async def set_password(conn) -> None:
            await accounts.set_password(conn, await by_id.user_name(conn, number), password)

        await change(access, "user.password", f"user:{number}", set_password, code="user")
        return json_response(self, {"id": number, **({"password": password} if made else {})})
