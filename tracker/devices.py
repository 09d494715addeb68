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

from tracker.credentials import token_hash
from tracker.db import DATABASE_ERRORS, DatabaseUnavailable, create_schema


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


class RegistryRecentlyDown(DatabaseUnavailable):
    """A lookup failed less than ``SecretLookup.retry_after`` ago."""


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


class SecretLookup:
    """Which device a secret belongs to, for the ingestion endpoints.

    Answers are cached for ``ttl`` seconds, so a removed or rotated secret stops working
    within that time, and a flood of requests costs one query per secret per ``ttl``.

    While Postgres cannot be reached, the last answer Postgres gave for a secret is served
    for up to ``outage_grace`` seconds after it gave it: phones go on reporting (to Kafka,
    which needs no database) through an outage. A secret without such an answer raises the
    database's error (the endpoint's 503). After a failed lookup Postgres is left alone for
    ``retry_after`` seconds, so requests meanwhile are answered at once instead of each
    waiting for a connection timeout.
    """

    def __init__(self, connection, ttl: float = 5.0, max_entries: int = 10_000,
                 outage_grace: float = 600.0, retry_after: float = 2.0, clock=time.monotonic) -> None:
        """``connection()``: an async context manager giving a pooled connection;
        ``clock()``: seconds that only go forward."""
        self.connection = connection
        self.clock = clock
        self.ttl = ttl
        self.max_entries = max_entries
        self.outage_grace = outage_grace
        self.retry_after = retry_after
        #: secret digest -> (when Postgres answered, monotonic; the device id or None)
        self._cache: dict[bytes, tuple[float, str | None]] = {}
        self._database_down_until = 0.0

    async def device_for(self, secret: str) -> str | None:
        digest = secret_hash(secret)
        now = self.clock()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        try:
            device_id = await self._query(digest, now)
        except DATABASE_ERRORS:
            if cached is not None and now - cached[0] < self.outage_grace:
                return cached[1]
            raise
        self._make_room()
        self._cache[digest] = (now, device_id)
        return device_id

    def _make_room(self) -> None:
        """Unknown secrets go first: a flood of guesses must not push out the answers that
        keep real phones reporting through an outage."""
        if len(self._cache) < self.max_entries:
            return
        self._cache = {digest: entry for digest, entry in self._cache.items() if entry[1] is not None}
        if len(self._cache) >= self.max_entries:
            self._cache.clear()

    async def _query(self, digest: bytes, now: float) -> str | None:
        if now < self._database_down_until:
            raise RegistryRecentlyDown("the last lookup failed; Postgres is not tried again yet")
        try:
            async with self.connection() as conn:
                async with conn.cursor(row_factory=scalar_row) as cur:
                    await cur.execute("SELECT device_id FROM devices WHERE secret_sha256 = %s", (digest,))
                    return await cur.fetchone()
        except DATABASE_ERRORS:
            self._database_down_until = self.clock() + self.retry_after
            raise
