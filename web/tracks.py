"""The history view's data: several markers' tracks, and a heatmap of their fixes.

- ``GET /api/tracks?markers=&group=&from=&to=&limit=``: each marker's fixes in the range
  (spikes left out), oldest first, as columns (``tracker.positions.columns.track_columns``):
  ``t`` (ms), ``lat_e6``/``lon_e6`` (millionths of a degree), ``speed`` (m/s), ``altitude``
  (m), null where unknown; at most ``limit`` points a marker (``truncated`` says so).
- ``GET /api/heatmap?markers=&group=&from=&to=&zoom=&bbox=``: the fixes counted per cell of
  a grid made for the map's ``zoom`` (a cell is ``CELL_PIXELS`` pixels there), never the
  points themselves: ``{"cell_deg", "points", "max", "cells": [[lat, lon, count], ...]}``.
  With ``fit=WIDTHxHEIGHT`` (the map's size) instead of a zoom, the answer also says the
  zoom at which all the points fit that map, and their ``bounds``; its cells are for that
  zoom (one pass over the points).

Markers are chosen as ``web.marker_selection`` says; the range is 24 hours before ``to``
(now) by default.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

from tracker.app import app
from tracker.positions import columns
from tracker.positions.model import format_time
from web import params
from web.auth import require
from web.db import request_connection
from web.manage import json_response
from web.marker_selection import selected_markers

DEFAULT_SPAN = timedelta(hours=24)
DEFAULT_POINTS = 100_000
MAX_POINTS = 500_000
CELL_PIXELS = 8
#: ``fit``: the grid the points are first counted in, and the highest zoom chosen.
FIT_BASE_ZOOM = 12
MAX_FIT_ZOOM = 17
UNAVAILABLE = "history_unavailable"


def time_range(query, span: timedelta = DEFAULT_SPAN) -> tuple[datetime, datetime]:
    end = params.time_param(query, "to", datetime.now(timezone.utc))
    start = params.time_param(query, "from", end - span)
    if start > end:
        raise params.BadParameter("from", "must not be after 'to'")
    return start, end


def cell_degrees(zoom: int) -> float:
    """The side of a heatmap cell, in degrees: ``CELL_PIXELS`` pixels of a 256-pixel tile at ``zoom``."""
    return 360.0 / (256 * 2 ** zoom) * CELL_PIXELS


@app.page("/api/tracks")
async def tracks(web, request):
    access = await require(request)
    markers = await selected_markers(request, access)
    start, end = time_range(request.query)
    limit = params.int_param(request.query, "limit", DEFAULT_POINTS, 1, MAX_POINTS)
    async with request_connection(UNAVAILABLE) as conn:
        found = [{"marker_id": marker, **await columns.track_columns(conn, marker, start, end, limit)}
                 for marker in markers]
    return json_response(web, {"from": format_time(start), "to": format_time(end), "markers": found})


def fitting_zoom(south: float, west: float, north: float, east: float, width: int, height: int) -> int:
    """The highest zoom (at most ``MAX_FIT_ZOOM``) at which the area fits ``width`` x ``height`` pixels."""
    def mercator_y(lat: float) -> float:
        phi = math.radians(max(-85.0511, min(85.0511, lat)))
        return math.log(math.tan(math.pi / 4 + phi / 2)) / (2 * math.pi)

    spans = ((east - west) / 360, mercator_y(north) - mercator_y(south))
    for zoom in range(MAX_FIT_ZOOM, -1, -1):
        if spans[0] * 256 * 2 ** zoom <= width and spans[1] * 256 * 2 ** zoom <= height:
            return zoom
    return 0


def coarser(cells: list[tuple[int, int, int]], factor: int) -> list[tuple[int, int, int]]:
    """Cells merged ``factor`` by ``factor`` (a zoom ``log2(factor)`` levels out)."""
    merged: dict[tuple[int, int], int] = {}
    for y, x, count in cells:
        key = (y // factor, x // factor)
        merged[key] = merged.get(key, 0) + count
    return [(y, x, count) for (y, x), count in merged.items()]


def _fit_param(query) -> tuple[int, int] | None:
    raw = query.get("fit")
    if not raw:
        return None
    try:
        width, height = (int(part) for part in raw.lower().split("x"))
    except ValueError:
        raise params.BadParameter("fit", "expected the map's size in pixels, WIDTHxHEIGHT") from None
    if not (1 <= width <= 10_000 and 1 <= height <= 10_000):
        raise params.BadParameter("fit", "a width and height between 1 and 10000 pixels")
    return width, height


@app.page("/api/heatmap")
async def heatmap(web, request):
    access = await require(request)
    markers = await selected_markers(request, access)
    start, end = time_range(request.query)
    zoom = params.int_param(request.query, "zoom", 10, 0, 20)
    fit = _fit_param(request.query)
    bbox = params.bbox_param(request.query)
    bounds = None
    async with request_connection(UNAVAILABLE) as conn:
        if fit is None:
            cells = await columns.heat_cells(conn, markers, start, end, cell_degrees(zoom), bbox)
        else:  # one pass at a fine grid finds where the points are, and is merged for the zoom that shows them
            base = cell_degrees(FIT_BASE_ZOOM)
            cells = await columns.heat_cells(conn, markers, start, end, base, bbox)
            if cells:
                bounds = [[min(y for y, _, _ in cells) * base, min(x for _, x, _ in cells) * base],
                          [(max(y for y, _, _ in cells) + 1) * base, (max(x for _, x, _ in cells) + 1) * base]]
                zoom = fitting_zoom(bounds[0][0], bounds[0][1], bounds[1][0], bounds[1][1], *fit)
                if zoom > FIT_BASE_ZOOM:
                    cells = await columns.heat_cells(conn, markers, start, end, cell_degrees(zoom),
                                                     (bounds[0][1], bounds[0][0], bounds[1][1], bounds[1][0]))
                else:
                    cells = coarser(cells, 2 ** (FIT_BASE_ZOOM - zoom))
    cell = cell_degrees(zoom)
    return json_response(web, {
        "from": format_time(start), "to": format_time(end), "markers": markers, "zoom": zoom, "cell_deg": cell,
        "bounds": bounds, "points": sum(count for _, _, count in cells),
        "max": max((count for _, _, count in cells), default=0),
        "cells": [[round((y + 0.5) * cell, 6), round((x + 0.5) * cell, 6), count] for y, x, count in cells]})
