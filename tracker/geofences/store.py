"""Geofences in Postgres (table ``geofences``; its DDL is ``SCHEMA`` here).

Every change raises ``geofences_version`` in the same transaction, so a worker knows with
one small query whether the set it holds is still current. Changes are made one at a time
(the version row is locked first) and keep the set within its caps, or none is made
(``GeofenceLimit``): at most ``TRACKER_GEOFENCES_MAX`` geofences and
``TRACKER_GEOFENCES_MAX_VERTICES`` vertices in all, since every worker holds them all in
memory and tests each fix against those around it.
"""
from __future__ import annotations

import psycopg
from psycopg.types.json import Jsonb

from tracker.geofences.model import Geofence, parse_feature, vertex_count
from tracker.settings import settings

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


class GeofenceLimit(ValueError):
    """The change would take the set past a cap; the message says which."""


#: Vertices of each stored feature, as ``tracker.geofences.model.vertex_count`` counts them.
_VERTICES = """
SELECT count(*), coalesce(sum(CASE feature->'geometry'->>'type'
    WHEN 'Polygon' THEN (SELECT sum(jsonb_array_length(r)) FROM jsonb_array_elements(feature->'geometry'->'coordinates') r)
    WHEN 'MultiPolygon' THEN (SELECT sum(jsonb_array_length(r))
                              FROM jsonb_array_elements(feature->'geometry'->'coordinates') p,
                                   jsonb_array_elements(p) r)
    ELSE 1 END), 0)
FROM geofences WHERE geofence_id <> %s
"""


async def _within_caps(conn: psycopg.AsyncConnection, adding: list[Geofence], replacing: int = 0) -> None:
    """Lock the set, then refuse a change that would take it past a cap."""
    await conn.execute("SELECT version FROM geofences_version FOR UPDATE")
    cur = await conn.execute(_VERTICES, (replacing,))
    count, vertices = await cur.fetchone()
    count += len(adding)
    vertices += sum(vertex_count(g.geometry) for g in adding)
    if count > settings.geofences_max:
        raise GeofenceLimit(f"at most {settings.geofences_max:,} geofences (TRACKER_GEOFENCES_MAX): "
                            f"this would make {count:,}")
    if vertices > settings.geofences_max_vertices:
        raise GeofenceLimit(f"at most {settings.geofences_max_vertices:,} vertices in all the geofences "
                            f"(TRACKER_GEOFENCES_MAX_VERTICES): this would make {vertices:,}")


def _stored(geofence: Geofence) -> Jsonb:
    feature = geofence.feature()
    del feature["id"]
    return Jsonb(feature)


async def _bump(conn: psycopg.AsyncConnection) -> None:
    await conn.execute("UPDATE geofences_version SET version = version + 1")


async def add_many(conn: psycopg.AsyncConnection, geofences: list[Geofence]) -> list[int]:
    """Store new geofences, all or none; their ids. ``GeofenceLimit`` past a cap."""
    async with conn.transaction():
        await _within_caps(conn, geofences)
        ids = []
        for geofence in geofences:
            cur = await conn.execute("INSERT INTO geofences (feature) VALUES (%s) RETURNING geofence_id",
                                     (_stored(geofence),))
            ids.append((await cur.fetchone())[0])
        await _bump(conn)
    return ids


async def replace(conn: psycopg.AsyncConnection, geofence_id: int, geofence: Geofence) -> None:
    async with conn.transaction():
        await _within_caps(conn, [geofence], replacing=geofence_id)
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
    version, features = await load_features(conn)
    return version, parse_features(features)


async def load_features(conn: psycopg.AsyncConnection) -> tuple[int, list[dict]]:
    """(version, every geofence as its stored Feature with its ``id``), from one snapshot,
    without building any geometry."""
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        version = await current_version(conn)
        cur = await conn.execute("SELECT geofence_id, feature FROM geofences ORDER BY geofence_id")
        return version, [{**feature, "id": geofence_id} for geofence_id, feature in await cur.fetchall()]


def parse_features(features: list[dict]) -> list[Geofence]:
    """Stored Features (with their ``id``) as geofences: the slow part, for a thread."""
    return [parse_feature(feature, feature["id"]) for feature in features]


async def current_version(conn: psycopg.AsyncConnection) -> int:
    cur = await conn.execute("SELECT version FROM geofences_version")
    return (await cur.fetchone())[0]
