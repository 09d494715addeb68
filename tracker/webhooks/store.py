"""Webhooks in Postgres (table ``webhooks``; its DDL is ``SCHEMA`` here), and what their
deliveries show (``webhook_deliveries``, written by ``tracker.webhooks.outbox``)."""
from __future__ import annotations

import psycopg
from psycopg.rows import dict_row

from tracker.webhooks.model import STATUSES, NewWebhook, Webhook, new_secret

SCHEMA = """
CREATE TABLE IF NOT EXISTS webhooks (
    webhook_id bigserial   PRIMARY KEY,
    url        text        NOT NULL,
    secret     text        NOT NULL,
    types      text[]      NOT NULL DEFAULT '{}',
    markers    text[]      NOT NULL DEFAULT '{}',
    created_by bigint      REFERENCES users ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    webhook_id      bigint      NOT NULL REFERENCES webhooks ON DELETE CASCADE,
    event_id        text        NOT NULL,
    event           jsonb       NOT NULL,
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_owner     text,
    lease_until     timestamptz,
    delivered_at    timestamptz,
    PRIMARY KEY (webhook_id, event_id)
);
ALTER TABLE webhook_deliveries ADD COLUMN IF NOT EXISTS last_seconds double precision;
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (webhook_id, next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS webhook_deliveries_recent ON webhook_deliveries (webhook_id, created_at DESC);
COMMENT ON TABLE webhooks IS 'Where events are POSTed: types and markers (ids, or prefixes ending in *) empty means all';
COMMENT ON COLUMN webhooks.secret IS 'signs every body (X-Tracker-Signature); kept in clear to sign, shown only when created';
COMMENT ON TABLE webhook_deliveries IS 'The notifier''s outbox: one row per webhook and event id, so a replay delivers nothing twice';
COMMENT ON COLUMN webhook_deliveries.last_error IS 'why the last attempt failed: HTTP <status>, no answer in time, refused address or no HTTP answer; never the answer''s body';
COMMENT ON COLUMN webhook_deliveries.last_seconds IS 'how long the last attempt took';
COMMENT ON COLUMN webhook_deliveries.lease_owner IS 'the notifier that holds the row until lease_until; another takes it over after';
"""


class UnknownWebhook(LookupError):
    pass


_SELECT = ("SELECT w.webhook_id, w.url, w.secret, w.types, w.markers, u.name, w.created_at "
           "FROM webhooks w LEFT JOIN users u ON u.user_id = w.created_by")


def _webhook(row) -> Webhook:
    webhook_id, url, secret, types, markers, created_by, created_at = row
    return Webhook(webhook_id, url, secret, tuple(types), tuple(markers), created_by, created_at)


async def add(conn: psycopg.AsyncConnection, webhook: NewWebhook, created_by: int | None) -> Webhook:
    """Store a new webhook with a new secret; the stored webhook (with the secret)."""
    cur = await conn.execute(
        "INSERT INTO webhooks (url, secret, types, markers, created_by) VALUES (%s, %s, %s, %s, %s) "
        "RETURNING webhook_id", (webhook.url, new_secret(), list(webhook.types), list(webhook.markers), created_by))
    return await get(conn, (await cur.fetchone())[0])


async def get(conn: psycopg.AsyncConnection, webhook_id: int) -> Webhook:
    cur = await conn.execute(_SELECT + " WHERE w.webhook_id = %s", (webhook_id,))
    row = await cur.fetchone()
    if row is None:
        raise UnknownWebhook(webhook_id)
    return _webhook(row)


async def load(conn: psycopg.AsyncConnection) -> list[Webhook]:
    """Every webhook, oldest first."""
    cur = await conn.execute(_SELECT + " ORDER BY w.webhook_id")
    return [_webhook(row) for row in await cur.fetchall()]


async def delete(conn: psycopg.AsyncConnection, webhook_id: int) -> None:
    """Remove a webhook and its deliveries."""
    cur = await conn.execute("DELETE FROM webhooks WHERE webhook_id = %s", (webhook_id,))
    if cur.rowcount == 0:
        raise UnknownWebhook(webhook_id)


async def delivery_counts(conn: psycopg.AsyncConnection, webhook_id: int) -> dict[str, int]:
    """Deliveries of a webhook per status (every status, 0 included)."""
    cur = await conn.execute("SELECT status, count(*) FROM webhook_deliveries WHERE webhook_id = %s GROUP BY status",
                             (webhook_id,))
    counts = dict.fromkeys(STATUSES, 0)
    counts.update(dict(await cur.fetchall()))
    return counts


async def deliveries(conn: psycopg.AsyncConnection, webhook_id: int, status: str | None, limit: int) -> list[dict]:
    """A webhook's latest deliveries, newest first (``status``: only those)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT event_id, event ->> 'type' AS type, event ->> 'marker_id' AS marker_id, status, attempts, "
            "last_status, last_error, last_seconds, created_at, last_attempt_at, "
            "CASE WHEN status = 'pending' THEN next_attempt_at END AS next_attempt_at, delivered_at, event "
            "FROM webhook_deliveries WHERE webhook_id = %s AND (%s::text IS NULL OR status = %s) "
            "ORDER BY created_at DESC, event_id LIMIT %s",
            (webhook_id, status, status, limit))
        return await cur.fetchall()
