"""The audit trail: who changed what, and when, through the HTTP API (devices, users, groups,
tokens, gateways, share links, geofences). Admins read it at ``GET /api/audit``.

A change and its row are written in one transaction (``record`` inside the change's
``conn.transaction()``), so the trail holds every change that happened and nothing else.
Secrets, tokens and passwords never go into it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from tracker.accounts.permissions import Access

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_log (
    audit_id  bigserial   PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    actor     text        NOT NULL,
    actor_id  bigint,
    via       text        NOT NULL,
    action    text        NOT NULL,
    target    text        NOT NULL,
    detail    jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at);
COMMENT ON TABLE audit_log IS 'Every change made through the HTTP API: who (actor, via session, token or basic), what (action, target, detail), when';
"""


@dataclass(frozen=True)
class Entry:
    audit_id: int
    at: datetime
    actor: str
    actor_id: int | None
    via: str
    action: str
    target: str
    detail: dict[str, Any]


async def record(conn: psycopg.AsyncConnection, by: Access, action: str, target: str,
                 detail: dict[str, Any] | None = None) -> None:
    """One row: ``by`` did ``action`` (``device.add``, ``token.revoke``…) to ``target``."""
    await conn.execute(
        "INSERT INTO audit_log (actor, actor_id, via, action, target, detail) VALUES (%s, %s, %s, %s, %s, %s)",
        (by.user, by.user_id, by.via, action, target, Jsonb(detail or {})))


async def read(conn: psycopg.AsyncConnection, limit: int, before: int | None = None,
               action: str | None = None) -> list[Entry]:
    """The newest ``limit`` rows (older than row ``before``; of ``action`` or its prefix), newest first."""
    async with conn.cursor(row_factory=class_row(Entry)) as cur:
        await cur.execute(
            "SELECT audit_id, at, actor, actor_id, via, action, target, detail FROM audit_log "
            "WHERE (%(before)s::bigint IS NULL OR audit_id < %(before)s) "
            "AND (%(action)s::text IS NULL OR action = %(action)s OR action LIKE %(action)s || '.%%') "
            "ORDER BY audit_id DESC LIMIT %(limit)s",
            {"before": before, "action": action, "limit": limit})
        return await cur.fetchall()
