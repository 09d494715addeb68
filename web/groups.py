"""Groups over HTTP, for admins (what ``tracker groups`` does): the markers a group holds
(marker ids, or prefixes ending in ``*``), the users who see them, and whether its phones
see each other in OwnTracks.

- ``GET /api/groups``; ``POST /api/groups`` ``{"name", "markers", "members", "friends"}``.
- ``GET``, ``PATCH`` and ``DELETE /api/groups/{group_id}``: ``PATCH`` with any of
  ``markers``, ``members`` and ``friends`` sets those to what it says.

Each change is audited.
"""
from __future__ import annotations

from faust.web import View

from tracker.accounts import by_id, store as accounts
from tracker.accounts.permissions import parse_grant
from tracker.app import app
from web import params
from web.auth import require_admin
from web.errors import BadRequest
from web.manage import change, json_response, numeric_id, read, string_field, string_list

MAX_BODY = 64 * 1024
SHAPE = '{"name": "trucks", "markers": ["truck-*", "van-3"], "members": ["ann"], "friends": false}'


def group_json(group: accounts.Group) -> dict:
    return {"id": group.group_id, "name": group.name, "markers": group.markers, "members": group.members,
            "friends": group.friends}


def _changes(body: dict) -> tuple[list[str] | None, list[str] | None, bool | None]:
    friends = body.get("friends")
    if friends is not None and not isinstance(friends, bool):
        raise BadRequest("bad_field", "friends must be true or false", field="friends")
    return string_list(body, "markers"), string_list(body, "members"), friends


async def _apply(conn, group: accounts.Group, markers: list[str] | None, members: list[str] | None,
                 friends: bool | None) -> None:
    """Set the group's markers, members and friends to those given (None: unchanged)."""
    if markers is not None:
        wanted = {parse_grant(text) for text in markers}
        held = {parse_grant(text) for text in group.markers}
        if wanted - held:
            await accounts.grant(conn, group.name, sorted(wanted - held))
        if held - wanted:
            await accounts.revoke_grant(conn, group.name, sorted(held - wanted))
    if members is not None:
        if set(members) - set(group.members):
            await accounts.add_members(conn, group.name, sorted(set(members) - set(group.members)))
        if set(group.members) - set(members):
            await accounts.remove_members(conn, group.name, sorted(set(group.members) - set(members)))
    if friends is not None and friends != group.friends:
        await accounts.set_friends(conn, group.name, friends)


def _detail(markers, members, friends) -> dict:
    return {key: value for key, value in (("markers", markers), ("members", members), ("friends", friends))
            if value is not None}


def _group_id(text: str) -> int:
    return numeric_id(text, "unknown_group", "group")


@app.page("/api/groups")
class Groups(View):
    async def get(self, request):
        await require_admin(request)
        return json_response(self, [group_json(group) for group in await read(accounts.list_groups, "group")])

    async def post(self, request):
        access = await require_admin(request)
        body = await params.json_object(request, MAX_BODY, SHAPE)
        name = string_field(body, "name")
        markers, members, friends = _changes(body)

        async def add(conn) -> accounts.Group:
            await accounts.add_group(conn, name)
            await _apply(conn, await by_id.group_by_name(conn, name), markers, members, friends)
            return await by_id.group_by_name(conn, name)

        group = await change(access, "group.add", f"group:{name}", add, _detail(markers, members, friends), "group")
        return json_response(self, group_json(group), status=201)


@app.page("/api/groups/{group_id}")
class GroupItem(View):
    async def get(self, request, group_id: str):
        await require_admin(request)
        return json_response(self, group_json(await read(lambda conn: by_id.group(conn, _group_id(group_id)), "group")))

    async def patch(self, request, group_id: str):
        access = await require_admin(request)
        number = _group_id(group_id)
        markers, members, friends = _changes(await params.json_object(request, MAX_BODY, SHAPE))

        async def update(conn) -> accounts.Group:
            await _apply(conn, await by_id.group(conn, number), markers, members, friends)
            return await by_id.group(conn, number)

        group = await change(access, "group.change", f"group:{number}", update,
                             _detail(markers, members, friends), "group")
        return json_response(self, group_json(group))

    async def delete(self, request, group_id: str):
        access = await require_admin(request)
        number = _group_id(group_id)

        async def remove(conn) -> None:
            await accounts.remove_group(conn, (await by_id.group(conn, number)).name)

        await change(access, "group.remove", f"group:{number}", remove, code="group")
        return self.bytes(b"", status=204)

