"""The device registry: which phones may report over HTTP, and with which secret.

A device's id is its marker id. Its secret is 32 random bytes, shown once (by
``tracker devices add`` or ``rotate``) and stored only as its SHA-256: the secrets are
random, so a fast hash is enough, and a hash that is the same every time lets a request's
secret be looked up directly.
"""
from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row, scalar_row

from tracker.db import create_schema


def new_secret() -> str:
    return secrets.token_urlsafe(24)


def secret_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


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


class SecretLookup:
    """Which device a secret belongs to, for the ingestion endpoints.

    Answers are cached for ``ttl`` seconds, so a removed or rotated secret stops working
    within that time, and a flood of requests costs one query per secret per ``ttl``.
    """

    def __init__(self, connection, ttl: float = 5.0, max_entries: int = 10_000) -> None:
        """``connection()``: an async context manager giving a pooled connection."""
        self.connection = connection
        self.ttl = ttl
        self.max_entries = max_entries
        self._cache: dict[bytes, tuple[float, str | None]] = {}

    async def device_for(self, secret: str) -> str | None:
        digest = secret_hash(secret)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        async with self.connection() as conn:
            async with conn.cursor(row_factory=scalar_row) as cur:
                await cur.execute("SELECT device_id FROM devices WHERE secret_sha256 = %s", (digest,))
                device_id = await cur.fetchone()
        if len(self._cache) >= self.max_entries:
            self._cache.clear()
        self._cache[digest] = (now, device_id)
        return device_id
