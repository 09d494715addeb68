"""Share links: one marker's live position and today's track, for anyone with the link,
until it expires or is revoked.

- ``POST /api/shares`` ``{"marker_id": ..., "expires_in": "24h"}``: an admin, or a viewer
  for a marker it may see; answers the link's ``path`` (its token is shown only now), and its
  full ``url`` when ``TRACKER_PUBLIC_URL`` is set (null otherwise).
- ``GET /api/shares``: the links the caller made (an admin: all of them).
- ``DELETE /api/shares/{id}``: revoke (an admin, or the link's maker).
- ``GET /s/{token}``: the page; ``GET /s/{token}/markers.geojson``: its live position.

Making and revoking a link are audited (``tracker.accounts.audit``).

A token is 256 random bits, stored as its SHA-256. An unknown, expired or revoked link
answers 404, the same for all three.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import orjson
from faust.web import View

from tracker.accounts import audit, store as accounts
from tracker.app import app
from tracker.accounts.permissions import Access
from tracker.settings import settings
from web import params
from web.auth import require, visible_marker
from web.db import request_connection
from web.cluster import feature_collection
from web.errors import BadRequest, HtmlPage, NotFound, unknown_marker
from web.history import TrackQuery, load_track
from web.markers import latest_position

LONGEST_SHARE = timedelta(days=30)
MAX_BODY = 4096
TODAY_LIMIT = 20_000


def share_url(token: str) -> str | None:
    """The link's full URL, from ``TRACKER_PUBLIC_URL``; None without it. Never from the
    request's ``Host``: anyone can send any Host, and a link is handed on to others."""
    return f"{settings.public_url}/s/{token}" if settings.public_url else None


def _share_json(share: accounts.Share) -> dict:
    return {"id": share.share_id, "marker_id": share.marker_id, "created_by": share.created_by,
            "created_at": share.created_at, "expires_at": share.expires_at, "revoked_at": share.revoked_at}


def _json(web, value, status: int = 200):
    return web.bytes(orjson.dumps(value, option=orjson.OPT_UTC_Z), content_type="application/json", status=status)


@app.page("/api/shares")
class Shares(View):
    async def post(self, request):
        access = await require(request)
        body = await params.json_object(request, MAX_BODY, '{"marker_id": ..., "expires_in": ...}')
        marker_id = body.get("marker_id")
        if not isinstance(marker_id, str):
            raise BadRequest("missing_field", "marker_id (a string) is required")
        visible_marker(access, marker_id)
        if access.via == "share":
            raise unknown_marker(marker_id)
        try:
            expires_in = accounts.parse_duration(body.get("expires_in", "24h"), longest=LONGEST_SHARE)
            async with request_connection() as conn, conn.transaction():
                share_id, token, expires_at = await accounts.add_share(conn, marker_id, access.user_id, expires_in)
                await audit.record(conn, access, "share.add", f"share:{share_id}", {"marker_id": marker_id})
        except accounts.AccountError as exc:
            raise BadRequest("bad_share", str(exc)) from None
        return _json(self, {"id": share_id, "marker_id": marker_id, "url": share_url(token),
                            "path": f"/s/{token}", "expires_at": expires_at}, status=201)

    async def get(self, request):
        access = await require(request)
        async with request_connection() as conn:
            shares = await accounts.list_shares(conn, _maker(access))
        return _json(self, [_share_json(share) for share in shares])


def _maker(access: Access) -> Access:
    if access.user_id is None and not access.is_admin:
        raise NotFound("unknown_share", "no such share")
    return access


@app.page("/api/shares/{share_id}")
class ShareItem(View):
    async def delete(self, request, share_id: str):
        access = _maker(await require(request))
        if not share_id.isdigit():
            raise NotFound("unknown_share", "no such share")
        try:
            async with request_connection() as conn, conn.transaction():
                await accounts.revoke_share(conn, int(share_id), access)
                await audit.record(conn, access, "share.revoke", f"share:{share_id}")
        except accounts.AccountError:
            raise NotFound("unknown_share", f"no active share {share_id} of yours") from None
        return self.bytes(b"", status=204)


async def shared_marker(token: str) -> str:
    """The marker a valid link shows; 404 otherwise."""
    async with request_connection() as conn:
        access = await accounts.share_of(conn, token)
    if access is None:
        raise NotFound("unknown_share", "this link does not exist, has expired or was revoked")
    (marker_id,) = access.marker_ids
    return marker_id


@app.page("/s/{token}/markers.geojson")
async def shared_position(web, request, token: str):
    marker_id = await shared_marker(token)
    try:
        positions = [(await latest_position(request, marker_id))[0]]
    except NotFound:
        positions = []
    body = orjson.dumps(feature_collection(positions, settings.stale_after))
    return web.bytes(body, content_type="application/geo+json", headers={"Cache-Control": "no-store"})


@app.page("/s/{token}", base=HtmlPage)
async def shared_page(web, request, token: str):
    from web.map import shared_map

    marker_id = await shared_marker(token)
    midnight = datetime.combine(datetime.now(timezone.utc).date(), time(), tzinfo=timezone.utc)
    query = TrackQuery({"from": midnight.isoformat(), "limit": str(TODAY_LIMIT), "order": "desc"})
    try:
        track = await load_track(marker_id, query)
    except NotFound:
        track = []
    track.reverse()
    return web.html(shared_map(marker_id, track, f"/s/{token}/markers.geojson"))

