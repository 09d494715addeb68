"""The notifier's outbox: ``webhook_deliveries`` rows and their leases.

A row is (webhook, event id), unique, so an event read twice (a replay after a crash, a
duplicate on ``gps.events``) is delivered once. A pending row is *leased* by one notifier
(``lease_owner``, until ``lease_until``): the one that inserted it, or later the one whose
poller claimed it once it was due and its lease had run out (the owner died, or let it go
after a failed attempt). Only the lease owner records an attempt.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson
import psycopg


@dataclass(frozen=True)
class Outcome:
    """One finished attempt, as the row records it."""
    webhook_id: int
    event_id: str
    status: str  # pending (to retry after ``delay`` seconds), delivered or failed
    http_status: int | None
    error: str | None
    delay: float
    attempted_at: datetime
    seconds: float | None = None  # how long the attempt took


_INSERT = """
INSERT INTO webhook_deliveries (webhook_id, event_id, event, lease_owner, lease_until)
SELECT r.webhook_id, r.event_id, r.event::jsonb, %s, now() + %s * interval '1 second'
FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS r (webhook_id, event_id, event)
WHERE EXISTS (SELECT 1 FROM webhooks w WHERE w.webhook_id = r.webhook_id)
ON CONFLICT DO NOTHING
RETURNING webhook_id, event_id
"""

_CLAIM = """
WITH due AS (
    SELECT d.webhook_id, d.event_id
    FROM unnest(%s::bigint[], %s::int[]) AS room (webhook_id, n)
    CROSS JOIN LATERAL (
        SELECT webhook_id, event_id FROM webhook_deliveries
        WHERE webhook_id = room.webhook_id AND status = 'pending' AND next_attempt_at <= now()
          AND (lease_until IS NULL OR lease_until < now())
        ORDER BY next_attempt_at
        LIMIT room.n
        FOR UPDATE SKIP LOCKED
    ) AS d
)
UPDATE webhook_deliveries w SET lease_owner = %s, lease_until = now() + %s * interval '1 second'
FROM due WHERE w.webhook_id = due.webhook_id AND w.event_id = due.event_id
RETURNING w.webhook_id, w.event_id, w.event, w.attempts
"""

_RENEW = """
UPDATE webhook_deliveries SET lease_until = now() + %s * interval '1 second'
WHERE webhook_id = %s AND event_id = %s AND lease_owner = %s AND status = 'pending'
"""

_RECORD = """
UPDATE webhook_deliveries d SET
    status = o.status,
    attempts = d.attempts + 1,
    last_status = o.http_status,
    last_error = o.error,
    last_attempt_at = o.attempted_at,
    last_seconds = o.seconds,
    next_attempt_at = CASE WHEN o.status = 'pending' THEN now() + o.delay * interval '1 second'
                           ELSE d.next_attempt_at END,
    delivered_at = CASE WHEN o.status = 'delivered' THEN o.attempted_at END,
    lease_owner = NULL,
    lease_until = NULL
FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::int[], %s::text[], %s::float8[], %s::timestamptz[],
            %s::float8[])
     AS o (webhook_id, event_id, status, http_status, error, delay, attempted_at, seconds)
WHERE d.webhook_id = o.webhook_id AND d.event_id = o.event_id AND d.lease_owner = %s AND d.status = 'pending'
"""

_RELEASE = """
UPDATE webhook_deliveries d SET lease_owner = NULL, lease_until = NULL
FROM unnest(%s::bigint[], %s::text[]) AS r (webhook_id, event_id)
WHERE d.webhook_id = r.webhook_id AND d.event_id = r.event_id AND d.lease_owner = %s AND d.status = 'pending'
"""

_RELEASE_ALL = "UPDATE webhook_deliveries SET lease_owner = NULL, lease_until = NULL " \
               "WHERE lease_owner = %s AND status = 'pending'"


async def insert(conn: psycopg.AsyncConnection, rows: list[tuple[int, dict]], owner: str,
                 lease_seconds: float) -> set[tuple[int, str]]:
    """Add a pending row per (webhook id, event), leased to ``owner``, in one statement;
    the (webhook id, event id) pairs that are new (not there already, webhook not deleted)."""
    cur = await conn.execute(_INSERT, (
        owner, lease_seconds, [webhook_id for webhook_id, _ in rows], [event["id"] for _, event in rows],
        [orjson.dumps(event).decode() for _, event in rows]))
    return {(webhook_id, event_id) for webhook_id, event_id in await cur.fetchall()}


async def claim_due(conn: psycopg.AsyncConnection, room: dict[int, int], owner: str,
                    lease_seconds: float) -> list[tuple[int, str, dict, int]]:
    """Lease to ``owner`` the due pending rows nobody holds, at most ``room[webhook id]`` of
    each webhook (rows another notifier is claiming are skipped); (webhook id, event id,
    event, attempts made) of each."""
    cur = await conn.execute(_CLAIM, (list(room), list(room.values()), owner, lease_seconds))
    return list(await cur.fetchall())


async def renew(conn: psycopg.AsyncConnection, webhook_id: int, event_id: str, owner: str,
                lease_seconds: float) -> bool:
    """Extend ``owner``'s lease of a pending row; False if it holds the row no more."""
    cur = await conn.execute(_RENEW, (lease_seconds, webhook_id, event_id, owner))
    return cur.rowcount == 1


async def record(conn: psycopg.AsyncConnection, outcomes: list[Outcome], owner: str) -> int:
    """Record finished attempts (and end their leases) in one statement; rows updated."""
    cur = await conn.execute(_RECORD, (
        [o.webhook_id for o in outcomes], [o.event_id for o in outcomes], [o.status for o in outcomes],
        [o.http_status for o in outcomes], [o.error for o in outcomes], [o.delay for o in outcomes],
        [o.attempted_at for o in outcomes], [o.seconds for o in outcomes], owner))
    return cur.rowcount


async def release(conn: psycopg.AsyncConnection, keys: list[tuple[int, str]], owner: str) -> None:
    """Let other notifiers' pollers take these rows at once (``owner`` will not send them)."""
    await conn.execute(_RELEASE, ([webhook_id for webhook_id, _ in keys], [event_id for _, event_id in keys], owner))


async def release_all(conn: psycopg.AsyncConnection, owner: str) -> None:
    """End every lease ``owner`` holds (it is stopping)."""
    await conn.execute(_RELEASE_ALL, (owner,))
