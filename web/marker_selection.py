"""Which markers a history, heatmap, statistics or report request is about:
``markers=truck-7,van-*`` (marker ids, or prefixes ending in ``*``) and/or ``group=NAME`` (the
markers of a group: an admin's any group, a viewer's only those it is a member of).

A prefix stands for the markers this worker knows (every marker with a latest position, from
the live hub) that start with it and that the caller may see. A marker id the caller may
not see is a 404, as everywhere (it does not exist for them).
"""
from __future__ import annotations

from tracker.accounts import by_id
from tracker.accounts.permissions import Access, parse_grant
from tracker.accounts.store import AccountError
from tracker.positions.model import MARKER_ID_PATTERN
from tracker.resources import live_hub
from web.db import request_connection
from web.errors import BadRequest, NotFound
from web.params import BadParameter

MAX_MARKERS = 500


async def _group_grants(access: Access, name: str) -> list[str]:
    try:
        async with request_connection() as conn:
            group = await by_id.group_by_name(conn, name)
    except AccountError:
        group = None
    if group is None or (not access.is_admin and access.user not in group.members):
        raise NotFound("unknown_group", f"no group {name[:64]!r} of yours")
    return group.markers


async def selected_markers(request, access: Access) -> list[str]:
    """The marker ids the request names, each one the caller may see, sorted."""
    grants = [part.strip() for part in request.query.get("markers", "").split(",") if part.strip()]
    group = request.query.get("group")
    if group:
        grants += await _group_grants(access, group)
    if not grants:
        raise BadParameter("markers", "name markers: markers=truck-7,van-* or group=NAME")
    chosen: set[str] = set()
    for grant in grants:
        marker, is_prefix = parse_grant(grant)
        if not MARKER_ID_PATTERN.fullmatch(marker):
            raise BadParameter("markers", f"{grant[:70]!r} is not a marker id or a prefix ending in *")
        if is_prefix:
            chosen.update(m for m in list(live_hub.values) if m.startswith(marker) and access.permits(m))
        elif access.permits(marker):
            chosen.add(marker)
        else:
            raise NotFound("unknown_marker", f"no marker {marker!r}")
    if len(chosen) > MAX_MARKERS:
        raise BadRequest("too_many_markers", f"{len(chosen):,} markers: at most {MAX_MARKERS} at once")
    return sorted(chosen)
