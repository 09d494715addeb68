"""Geofences in Postgres (table ``geofences``; its DDL is ``SCHEMA`` here).

Every change raises ``geofences_version`` in the same transaction, so a worker knows with
one small query whether the set it holds is still current.
"""
from __future__ import annotations

import psycopg
from psycopg.types.json import Jsonb

from tracker.geofences.model import Geofence, parse_feature

SCHEMA = """
CREATE TABLE IF NOT EXISTS geofences (
    geofence_id bigserial   PRIMARY KEY,
    feature     jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS geofences_version (
    one     boolean PRIMARY KEY DEFAULT true CHECK (one),
    version bigint  NOT NULL
);
INSERT INTO geofences_version (one, version) VALUES (true, 0) ON CONFLICT DO NOTHING;
COMMENT ON TABLE geofences IS 'Areas markers enter and leave: a GeoJSON Feature each, checked by tracker/geofences/model.py';
COMMENT ON TABLE geofences_version IS 'Raised by every change to geofences, so that workers reload them when it moves';
"""


class UnknownGeofence(LookupError):
    pass


def _stored(geofence: Geofence) -> Jsonb:
    feature = geofence.feature()
    del feature["id"]
    return Jsonb(feature)


async def _bump(conn: psycopg.AsyncConnection) -> None:
    await conn.execute("UPDATE geofences_version SET version = version + 1")


async def add_many(conn: psycopg.AsyncConnection, geofences: list[Geofence]) -> list[int]:
    """Store new geofences, all or none; their ids."""
    async with conn.transaction():
        ids = []
        for geofence in geofences:
            cur = await conn.execute("INSERT INTO geofences (feature) VALUES (%s) RETURNING geofence_id",
                                     (_stored(geofence),))
            ids.append((await cur.fetchone())[0])
        await _bump(conn)
    return ids


async def replace(conn: psycopg.AsyncConnection, geofence_id: int, geofence: Geofence) -> None:
    async with conn.transaction():
        cur = await conn.execute("UPDATE geofences SET feature = %s, updated_at = now() WHERE geofence_id = %s",
                                 (_stored(geofence), geofence_id))
        if cur.rowcount == 0:
            raise UnknownGeofence(geofence_id)
        await _bump(conn)


async def delete(conn: psycopg.AsyncConnection, geofence_id: int) -> None:
    async with conn.transaction():
        cur = await conn.execute("DELETE FROM geofences WHERE geofence_id = %s", (geofence_id,))
        if cur.rowcount == 0:
            raise UnknownGeofence(geofence_id)
        await _bump(conn)


async def get(conn: psycopg.AsyncConnection, geofence_id: int) -> Geofence:
    cur = await conn.execute("SELECT feature FROM geofences WHERE geofence_id = %s", (geofence_id,))
    row = await cur.fetchone()
    if row is None:
        raise UnknownGeofence(geofence_id)
    return parse_feature(row[0], geofence_id)


async def load(conn: psycopg.AsyncConnection) -> tuple[int, list[Geofence]]:
    """(version, every geofence), from one snapshot."""
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        version = await current_version(conn)
        cur = await conn.execute("SELECT geofence_id, feature FROM geofences ORDER BY geofence_id")
        return version, [parse_feature(feature, geofence_id) for geofence_id, feature in await cur.fetchall()]


async def current_version(conn: psycopg.AsyncConnection) -> int:
    cur = await conn.execute("SELECT version FROM geofences_version")
    return (await cur.fetchone())[0]
