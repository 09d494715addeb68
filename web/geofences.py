"""Geofences over HTTP: any signed-in user reads them, an admin changes them.

- ``GET /api/geofences``: a FeatureCollection of every geofence.
- ``POST /api/geofences``: a GeoJSON Feature (Polygon, MultiPolygon, or a Point with
  ``properties.radius`` in metres), with ``name`` and optional ``markers`` and
  ``speed_limit``; answers the stored Feature with its ``id``. A bad one is a 400 that says
  what is wrong (``tracker.geofences.model.parse_feature``).
- ``GET``, ``PUT`` and ``DELETE /api/geofences/{id}``.

Each change is audited (``tracker.accounts.audit``).
"""
from __future__ import annotations

import orjson
from faust.web import View

from tracker.accounts import audit
from tracker.geofences import store as geofence_store
from tracker.app import app
from tracker.geofences.model import BadGeofence, parse_feature
from web import params
from web.auth import require, require_admin
from web.db import request_connection
from web.errors import BadRequest, NotFound

MAX_BODY = 1024 * 1024
UNAVAILABLE = "geofences_unavailable"
SHAPE = '{"type": "Feature", "geometry": {...}, "properties": {"name": ..., "radius": ...}}'


def _geojson(web, value, status: int = 200):
    return web.bytes(orjson.dumps(value), content_type="application/geo+json", status=status)


async def _feature(request, geofence_id: int | None = None):
    body = await params.json_object(request, MAX_BODY, SHAPE)
    try:
        return parse_feature(body, geofence_id)
    except BadGeofence as exc:
        raise BadRequest("bad_geofence", str(exc)) from None


def _id(text: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise NotFound("unknown_geofence", f"no geofence {text[:20]!r}")
    return int(text)


@app.page("/api/geofences")
class Geofences(View):
    async def get(self, request):
        await require(request)
        async with request_connection(UNAVAILABLE) as conn:
            _, geofences = await geofence_store.load(conn)
        return _geojson(self, {"type": "FeatureCollection", "features": [g.feature() for g in geofences]})

    async def post(self, request):
        access = await require_admin(request)
        geofence = await _feature(request)
        async with request_connection(UNAVAILABLE) as conn, conn.transaction():
            (geofence_id,) = await geofence_store.add_many(conn, [geofence])
            await audit.record(conn, access, "geofence.add", f"geofence:{geofence_id}", {"name": geofence.name})
        return _geojson(self, {**geofence.feature(), "id": geofence_id}, status=201)


@app.page("/api/geofences/{geofence_id}")
class GeofenceItem(View):
    async def get(self, request, geofence_id: str):
        await require(request)
        try:
            async with request_connection(UNAVAILABLE) as conn:
                geofence = await geofence_store.get(conn, _id(geofence_id))
        except geofence_store.UnknownGeofence:
            raise NotFound("unknown_geofence", f"no geofence {geofence_id}") from None
        return _geojson(self, geofence.feature())

    async def put(self, request, geofence_id: str):
        access = await require_admin(request)
        number = _id(geofence_id)
        geofence = await _feature(request, number)
        try:
            async with request_connection(UNAVAILABLE) as conn, conn.transaction():
                await geofence_store.replace(conn, number, geofence)
                await audit.record(conn, access, "geofence.change", f"geofence:{number}", {"name": geofence.name})
        except geofence_store.UnknownGeofence:
            raise NotFound("unknown_geofence", f"no geofence {geofence_id}") from None
        return _geojson(self, geofence.feature())

    async def delete(self, request, geofence_id: str):
        access = await require_admin(request)
        try:
            async with request_connection(UNAVAILABLE) as conn, conn.transaction():
                await geofence_store.delete(conn, _id(geofence_id))
                await audit.record(conn, access, "geofence.remove", f"geofence:{geofence_id}")
        except geofence_store.UnknownGeofence:
            raise NotFound("unknown_geofence", f"no geofence {geofence_id}") from None
        return self.bytes(b"", status=204)
