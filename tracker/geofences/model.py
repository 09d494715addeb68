"""Geofences: areas that a marker enters and leaves.

A geofence is a GeoJSON Feature: a Polygon or MultiPolygon, or a Point with
``properties.radius`` in metres (a circle). Its properties may also hold ``name``
(required), ``markers`` (the marker ids, or prefixes ending in ``*``, it applies to;
default every marker) and ``speed_limit`` (m/s, for the overspeed event inside it).

``parse_feature`` checks one and says what is wrong (at most ``max_vertices`` vertices,
every ring of every part counted: ``TRACKER_GEOFENCE_MAX_VERTICES`` for a new one);
``GeofenceIndex`` answers "which geofences hold this point, for this marker" with prepared
geometries behind an STRtree. The stream's cost grows with the number of geofences that
hold a fix (each is tested exactly), hardly with their vertices: see
``tracker.geofences.store`` for the caps on the whole set.
A point on a polygon's edge counts as inside; a circle holds the points whose great-circle
distance to its centre is at most its radius.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import shapely
from shapely import STRtree, prepare
from shapely.geometry import Point, box, shape
from shapely.validation import explain_validity

from tracker.positions.geo import EARTH_RADIUS_M, distance_m
from tracker.accounts.permissions import parse_grant
from tracker.positions.model import MARKER_ID_PATTERN

NAME_MAX = 100
MAX_RADIUS_M = 1_000_000
METRES_PER_DEGREE = 111_320.0


class BadGeofence(ValueError):
    """What is wrong with a geofence, in one sentence."""


@dataclass(frozen=True)
class Geofence:
    geofence_id: int | None
    name: str
    geometry: dict  # GeoJSON geometry, as given
    radius: float | None = None  # metres, for a circle
    speed_limit: float | None = None  # m/s
    markers: tuple[str, ...] = ()  # ids and prefixes ("truck-*"); empty: every marker
    _shape: Any = field(default=None, compare=False, repr=False)

    def applies_to(self, marker_id: str) -> bool:
        if not self.markers:
            return True
        for grant in self.markers:
            marker, is_prefix = parse_grant(grant)
            if marker_id == marker or (is_prefix and marker_id.startswith(marker)):
                return True
        return False

    def contains(self, lat: float, lon: float) -> bool:
        if self.radius is not None:
            centre_lon, centre_lat = self.geometry["coordinates"][:2]
            return distance_m(centre_lat, centre_lon, lat, lon) <= self.radius
        return self._shape.covers(Point(lon, lat))

    def feature(self) -> dict:
        properties: dict[str, Any] = {"name": self.name, "markers": list(self.markers)}
        if self.radius is not None:
            properties["radius"] = self.radius
        if self.speed_limit is not None:
            properties["speed_limit"] = self.speed_limit
        return {"type": "Feature", "id": self.geofence_id, "geometry": self.geometry, "properties": properties}

    def bounds(self) -> tuple[float, float, float, float]:
        """(min lon, min lat, max lon, max lat), generous for a circle."""
        if self.radius is not None:
            lon, lat = self.geometry["coordinates"][:2]
            dlat = self.radius / METRES_PER_DEGREE
            dlon = min(180.0, self.radius / (METRES_PER_DEGREE * max(math.cos(math.radians(lat)), 1e-6)))
            return lon - dlon, lat - dlat, lon + dlon, lat + dlat
        return self._shape.bounds


def _number(value: Any, what: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadGeofence(f"{what} must be a number")
    if not low <= value <= high:
        raise BadGeofence(f"{what} must be between {low:g} and {high:g}")
    return float(value)


def vertex_count(geometry: Any) -> int:
    """The vertices of a GeoJSON Polygon or MultiPolygon, every ring of every part counted
    (a circle counts one), read from the coordinates before any geometry is built; -1 when
    they are not nested lists as the type says."""
    coordinates = geometry.get("coordinates") if isinstance(geometry, dict) else None
    kind = geometry.get("type") if isinstance(geometry, dict) else None
    if kind == "Point":
        return 1
    polygons = [coordinates] if kind == "Polygon" else coordinates if kind == "MultiPolygon" else None
    if not isinstance(polygons, list):
        return -1
    count = 0
    for polygon in polygons:
        if not isinstance(polygon, list):
            return -1
        for ring in polygon:
            if not isinstance(ring, list):
                return -1
            count += len(ring)
    return count


def parse_feature(feature: Any, geofence_id: int | None = None, max_vertices: int | None = None) -> Geofence:
    """A geofence from a GeoJSON Feature; ``BadGeofence`` says what is wrong. ``max_vertices``:
    the most vertices it may have (a new geofence; stored ones are read whatever the cap is now)."""
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise BadGeofence('a geofence is a GeoJSON Feature: {"type": "Feature", "geometry": ..., "properties": ...}')
    properties = feature.get("properties") or {}
    if not isinstance(properties, dict):
        raise BadGeofence("properties must be an object")
    properties = {**properties, **{k: feature[k] for k in ("name", "markers") if k in feature}}
    name = properties.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > NAME_MAX or not name.isprintable():
        raise BadGeofence(f"name must be 1 to {NAME_MAX} printable characters")
    markers = properties.get("markers") or []
    if not isinstance(markers, list) or not all(isinstance(m, str) for m in markers):
        raise BadGeofence('markers must be a list of marker ids or prefixes ending in "*"')
    for grant in markers:
        if not MARKER_ID_PATTERN.fullmatch(parse_grant(grant)[0]):
            raise BadGeofence(f"markers: {grant[:70]!r} is not a marker id or prefix")
    speed_limit = properties.get("speed_limit")
    if speed_limit is not None:
        speed_limit = _number(speed_limit, "speed_limit", 0, 1000)
    geometry = feature.get("geometry")
    if not isinstance(geometry, dict):
        raise BadGeofence("geometry is missing")
    kind = geometry.get("type")
    radius = None
    if kind == "Point":
        coordinates = geometry.get("coordinates")
        if not isinstance(coordinates, list) or len(coordinates) < 2:
            raise BadGeofence("a Point's coordinates are [lon, lat]")
        _number(coordinates[0], "the circle's longitude", -180, 180)
        _number(coordinates[1], "the circle's latitude", -90, 90)
        if properties.get("radius") is None:
            raise BadGeofence("a Point geofence is a circle: give properties.radius in metres")
        radius = _number(properties["radius"], "radius", 1, MAX_RADIUS_M)
        geometry = {"type": "Point", "coordinates": [float(coordinates[0]), float(coordinates[1])]}
        return Geofence(geofence_id, name.strip(), geometry, radius, speed_limit, tuple(markers))
    if kind not in ("Polygon", "MultiPolygon"):
        raise BadGeofence(f"geometry must be a Polygon, a MultiPolygon or a Point with a radius, not {str(kind)[:40]!r}")
    vertices = vertex_count(geometry)
    if max_vertices is not None and vertices > max_vertices:
        raise BadGeofence(f"at most {max_vertices:,} vertices (every ring of every part; "
                          f"TRACKER_GEOFENCE_MAX_VERTICES): this {kind} has {vertices:,}")
    try:
        polygon = shape(geometry)
    except Exception as exc:  # noqa: BLE001 - shapely's errors vary with the malformed input
        raise BadGeofence(f"the {kind}'s coordinates are malformed: {str(exc)[:120]}") from None
    if polygon.is_empty:
        raise BadGeofence(f"the {kind} is empty")
    min_lon, min_lat, max_lon, max_lat = polygon.bounds
    if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
        raise BadGeofence("coordinates are [lon, lat] within [-180, 180] and [-90, 90]")
    if not polygon.is_valid:
        raise BadGeofence(f"the {kind} is not valid: {explain_validity(polygon)}")
    prepare(polygon)  # in place: repeated containment tests get faster
    return Geofence(geofence_id, name.strip(), geometry, None, speed_limit, tuple(markers), polygon)


class GeofenceIndex:
    """Every geofence, for point queries in bulk: an STRtree of their bounds, then one
    vectorised exact test (``shapely.covers`` on the prepared polygons, the great-circle
    distance for circles) for all candidate pairs of a slice of fixes."""

    def __init__(self, geofences: Iterable[Geofence]) -> None:
        self.geofences = sorted(geofences, key=lambda g: (g.geofence_id or 0, g.name))
        self._tree = STRtree([box(*g.bounds()) for g in self.geofences]) if self.geofences else None
        self._shapes = np.array([g._shape for g in self.geofences], dtype=object)
        self._is_circle = np.array([g.radius is not None for g in self.geofences], dtype=bool)
        centres = [g.geometry["coordinates"][:2] if g.radius is not None else (0.0, 0.0) for g in self.geofences]
        self._centres = np.radians(np.array(centres, dtype=float).reshape(-1, 2))  # lon, lat
        self._radii = np.array([g.radius or 0.0 for g in self.geofences], dtype=float)
        self._objects = np.empty(len(self.geofences), dtype=object)
        self._objects[:] = self.geofences
        self._any_markers = any(g.markers for g in self.geofences)

    def __len__(self) -> int:
        return len(self.geofences)

    def containing(self, marker_id: str, lat: float, lon: float) -> list[Geofence]:
        """The geofences that apply to ``marker_id`` and hold the point, by id."""
        return self.containing_many([marker_id], [lat], [lon])[0]

    def containing_many(self, marker_ids: Sequence[str], lats: Sequence[float],
                        lons: Sequence[float]) -> list[list[Geofence]]:
        """For each point, the geofences that apply to its marker and hold it, by id."""
        found: list[list[Geofence]] = [[] for _ in marker_ids]
        if self._tree is None or not found:
            return found
        lat, lon = np.asarray(lats, dtype=float), np.asarray(lons, dtype=float)
        points = shapely.points(lon, lat)
        point_at, fence_at = self._tree.query(points)
        if not len(point_at):
            return found
        holds = np.empty(len(point_at), dtype=bool)
        circles = self._is_circle[fence_at]
        polygons = ~circles
        if polygons.any():
            holds[polygons] = shapely.covers(self._shapes[fence_at[polygons]], points[point_at[polygons]])
        if circles.any():
            centre = self._centres[fence_at[circles]]
            holds[circles] = _distances_m(centre[:, 1], centre[:, 0], np.radians(lat[point_at[circles]]),
                                          np.radians(lon[point_at[circles]])) <= self._radii[fence_at[circles]]
        order = np.lexsort((fence_at, point_at))  # by point, then by geofence (sorted by id)
        keep = order[holds[order]]
        if not len(keep):
            return found
        held_by, fences = point_at[keep], fence_at[keep]
        # one slice of geofences per point that lies in any: no Python work per (point, geofence)
        starts = np.flatnonzero(np.diff(held_by, prepend=-1))
        for i, held in zip(held_by[starts].tolist(), np.split(self._objects[fences], starts[1:])):
            found[i] = held.tolist()
        if self._any_markers:
            for i, held in enumerate(found):
                if held and any(g.markers for g in held):
                    found[i] = [g for g in held if not g.markers or g.applies_to(marker_ids[i])]
        return found


def _distances_m(lat1, lon1, lat2, lon2):
    """Great-circle distances (as ``tracker.positions.geo.distance_m``), for arrays in radians."""
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(a)))
