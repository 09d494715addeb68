"""The device registry: which phones may report over HTTP, and with which secret.

A device's id is its marker id. Its secret is 32 random bytes, shown once (by
``tracker devices add`` or ``rotate``) and stored only as its SHA-256: the secrets are
random, so a fast hash is enough, and a hash that is the same every time lets a request's
secret be looked up directly.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row, scalar_row

from tracker.accounts.credentials import token_hash
from tracker.storage.schema import create_schema
from tracker.accounts.outage_cache import TokenLookup

SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    device_id     text        PRIMARY KEY,
    name          text        NOT NULL DEFAULT '',
    secret_sha256 bytea       NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    rotated_at    timestamptz
);
COMMENT ON TABLE devices IS 'Phones and trackers allowed to report over HTTP; device_id is their marker id';
COMMENT ON COLUMN devices.secret_sha256 IS 'SHA-256 of the device secret; the secret itself is shown once and never stored';
"""


def new_secret() -> str:
    return secrets.token_urlsafe(24)


def secret_hash(secret: str) -> bytes:
    return token_hash(secret)


@dataclass(frozen=True)
class Device:
    device_id: str
    name: str
    created_at: datetime
    rotated_at: datetime | None


class DeviceExists(Exception):
    pass


class UnknownDevice(Exception):
    pass


class Registry:
    """CRUD on ``devices`` for the command line."""

    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self.conn = conn

    @classmethod
    async def connect(cls, url: str) -> "Registry":
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
        await create_schema(conn)
        return cls(conn)

    async def close(self) -> None:
        await self.conn.close()

    async def add(self, device_id: str, name: str) -> str:
        secret = new_secret()
        try:
            await self.conn.execute(
                "INSERT INTO devices (device_id, name, secret_sha256) VALUES (%s, %s, %s)",
                (device_id, name, secret_hash(secret)),
            )
        except psycopg.errors.UniqueViolation:
            raise DeviceExists(device_id) from None
        return secret

    async def rotate(self, device_id: str) -> str:
        secret = new_secret()
        cur = await self.conn.execute(
            "UPDATE devices SET secret_sha256 = %s, rotated_at = now() WHERE device_id = %s",
            (secret_hash(secret), device_id),
        )
        if cur.rowcount == 0:
            raise UnknownDevice(device_id)
        return secret

    async def remove(self, device_id: str) -> None:
        cur = await self.conn.execute("DELETE FROM devices WHERE device_id = %s", (device_id,))
        if cur.rowcount == 0:
            raise UnknownDevice(device_id)

    async def list(self) -> list[Device]:
        async with self.conn.cursor(row_factory=class_row(Device)) as cur:
            await cur.execute("SELECT device_id, name, created_at, rotated_at FROM devices ORDER BY device_id")
            return await cur.fetchall()


class SecretLookup(TokenLookup):
    """Which device a secret belongs to, for the ingestion endpoints: answers fresh for
    ``ttl`` seconds, and through a Postgres outage for up to ``outage_grace`` seconds after
    Postgres last gave them, so phones go on reporting (to Kafka, which needs no database).
    A secret without such an answer raises the database's error (the endpoint's 503)."""

    def __init__(self, connection, ttl: float = 5.0, max_entries: int = 10_000,
                 outage_grace: float = 600.0, retry_after: float = 2.0, clock=time.monotonic) -> None:
        super().__init__(connection, _device_of, ttl, outage_grace, retry_after, max_entries, clock)

    device_for = TokenLookup.owner


async def _device_of(conn: psycopg.AsyncConnection, digest: bytes) -> str | None:
    async with conn.cursor(row_factory=scalar_row) as cur:
        await cur.execute("SELECT device_id FROM devices WHERE secret_sha256 = %s", (digest,))
        return await cur.fetchone()
