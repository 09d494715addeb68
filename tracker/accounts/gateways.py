"""Gateways: servers that report for many devices at once (a Traccar server forwarding what
its trackers send, ``POST /ingest/traccar``), each with a token and, optionally, a marker-id
prefix it is confined to.

A token is 32 random bytes, shown once (``tracker gateways add``) and stored as its
SHA-256, like a device secret (``tracker.accounts.devices``); ``GatewayLookup`` finds a token's
gateway through a Postgres outage the way ``SecretLookup`` does for devices.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row

from tracker.accounts.credentials import new_token, token_hash
from tracker.accounts.outage_cache import TokenLookup

SCHEMA = """
CREATE TABLE IF NOT EXISTS gateways (
    name         text        PRIMARY KEY,
    token_sha256 bytea       NOT NULL UNIQUE,
    prefix       text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE gateways IS 'Servers that forward positions for many devices (a Traccar server): POST /ingest/traccar';
COMMENT ON COLUMN gateways.token_sha256 IS 'SHA-256 of the gateway token; the token itself is shown once and never stored';
COMMENT ON COLUMN gateways.prefix IS 'the marker ids it may report for start with this (empty: any)';
"""


@dataclass(frozen=True)
class Gateway:
    name: str
    prefix: str
    created_at: datetime | None = None

    def may_report(self, marker_id: str) -> bool:
        return marker_id.startswith(self.prefix)


class GatewayError(Exception):
    """A command's mistake, said in one line."""


async def add(conn: psycopg.AsyncConnection, name: str, prefix: str = "") -> str:
    """A new gateway; its token (shown once)."""
    token = new_token()
    try:
        await conn.execute("INSERT INTO gateways (name, token_sha256, prefix) VALUES (%s, %s, %s)",
                           (name, token_hash(token), prefix))
    except psycopg.errors.UniqueViolation:
        raise GatewayError(f"a gateway named {name!r} exists already") from None
    return token


async def remove(conn: psycopg.AsyncConnection, name: str) -> None:
    if (await conn.execute("DELETE FROM gateways WHERE name = %s", (name,))).rowcount == 0:
        raise GatewayError(f"no gateway named {name!r}")


async def listing(conn: psycopg.AsyncConnection) -> list[Gateway]:
    async with conn.cursor(row_factory=class_row(Gateway)) as cur:
        await cur.execute("SELECT name, prefix, created_at FROM gateways ORDER BY name")
        return await cur.fetchall()


class GatewayLookup(TokenLookup):
    """Which gateway a token belongs to (None: none), cached like device secrets."""

    def __init__(self, connection, ttl: float = 5.0, max_entries: int = 1_000,
                 outage_grace: float = 600.0, retry_after: float = 2.0, clock=time.monotonic) -> None:
        super().__init__(connection, _gateway_of, ttl, outage_grace, retry_after, max_entries, clock)

    gateway_for = TokenLookup.owner


async def _gateway_of(conn: psycopg.AsyncConnection, digest: bytes) -> Gateway | None:
    async with conn.cursor(row_factory=class_row(Gateway)) as cur:
        await cur.execute("SELECT name, prefix FROM gateways WHERE token_sha256 = %s", (digest,))
        return await cur.fetchone()
