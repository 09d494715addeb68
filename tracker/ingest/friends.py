"""A phone's friends in OwnTracks: the markers it may see on the phone's map.

Friends are opt-in per group (``tracker groups friends NAME``): the phones of a group with
``friends`` on see every marker of that group, themselves excepted. A group without it
only lets its viewers (users) see its markers, as before. A phone in no such group sees
nobody.

The answer is built from what every worker already holds in memory: the newest row of
every marker (``tracker.positions.live_hub``). Which markers a phone's groups hold is read from
Postgres through a cache (``FRIENDS_TTL`` seconds; during an outage, the last answer).
"""
from __future__ import annotations

import time
from typing import Mapping

import psycopg

from tracker.accounts.outage_cache import OutageCache
from tracker.accounts.permissions import Access, VIEWER

#: How long a phone's grants are used before Postgres is asked again.
FRIENDS_TTL = 10.0
#: The most friends one answer carries (the newest fixes first).
MAX_FRIENDS = 100


class FriendLookup:
    def __init__(self, connection, ttl: float = FRIENDS_TTL, clock=time.monotonic) -> None:
        self.cache = OutageCache(connection, ttl, clock=clock)

    async def access(self, marker_id: str) -> Access:
        """What the phone reporting as ``marker_id`` may see of the others."""
        answer = await self.cache.get(marker_id, lambda conn: devices_access(conn, marker_id))
        return answer.get(marker_id) or Access(user=marker_id, role=VIEWER, via="device")


DEVICE_GRANTS = """
SELECT d.device_id, other.marker_id, other.is_prefix
FROM devices d
LEFT JOIN group_markers me
       ON (me.marker_id = d.device_id AND NOT me.is_prefix) OR (me.is_prefix AND starts_with(d.device_id, me.marker_id))
LEFT JOIN marker_groups g ON g.group_id = me.group_id AND g.friends
LEFT JOIN group_markers other ON other.group_id = g.group_id
"""


async def devices_access(conn: psycopg.AsyncConnection, device_id: str | None = None) -> dict[str, Access]:
    """What each registered device (or only ``device_id``) may see of the others."""
    if device_id is None:
        cur = await conn.execute(DEVICE_GRANTS)
    else:
        cur = await conn.execute(DEVICE_GRANTS + "WHERE d.device_id = %s", (device_id,))
    grants: dict[str, tuple[set, set]] = {}
    for device_id, marker, is_prefix in await cur.fetchall():
        ids, prefixes = grants.setdefault(device_id, (set(), set()))
        if marker is not None:
            (prefixes if is_prefix else ids).add(marker)
    return {device_id: Access(user=device_id, role=VIEWER, marker_ids=frozenset(ids),
                              prefixes=tuple(sorted(prefixes)), via="device")
            for device_id, (ids, prefixes) in grants.items()}


def friends(access: Access, rows: Mapping[str, list], limit: int = MAX_FRIENDS) -> list[list]:
    """The rows (``tracker.positions.live_hub`` rows, keyed by marker id) of the markers ``access``
    permits, its own marker excepted, newest fix first, at most ``limit``."""
    if not access.marker_ids and not access.prefixes:
        return []
    found = [rows[marker_id] for marker_id in access.marker_ids if marker_id in rows]
    if access.prefixes:
        found += [row for marker_id, row in rows.items()
                  if marker_id not in access.marker_ids and marker_id.startswith(access.prefixes)]
    found = [row for row in found if row[0] != access.user]
    found.sort(key=lambda row: row[3], reverse=True)
    return found[:limit]
