"""``GET /map`` (every marker, live) and ``GET /map/{marker_id}`` (one marker's track and replay,
with the day's trips and stops: ``?day=YYYY-MM-DD`` picks the day, ``web/track_panel.py``).

Both pages are Folium maps whose JavaScript and CSS come from ``web/assets.py`` (served by
the worker, or from a CDN). The live map draws the markers itself on a canvas from
the push feed ``/api/live`` (polling ``/api/markers.geojson`` only when the feed fails),
as dots or, where many are in view, clusters computed in a Web Worker, so it stays smooth
with 100,000 markers; a side panel lists them (search, sort, status counts, follow), the
URL's hash keeps the view; it also draws the geofences (a layer that can be switched off)
and lists the newest events in a panel. Every device string, marker id and geofence name goes into the
page as text, never as HTML.

Folium (with branca, numpy and its Jinja templates) is imported on the first map request,
not when the worker starts: it is a third of a worker's start-up.
"""
from __future__ import annotations

import html
import math
from datetime import date, datetime, timezone
from functools import cache
from pathlib import Path

from tracker.journeys import store as journey_store
from tracker.app import app
from tracker.storage.pool import DATABASE_ERRORS
from tracker.positions.model import format_time
from tracker.resources import database
from tracker.settings import settings
from web import assets, params, track_panel
from web.auth import require_page, visible_marker
from web.errors import HtmlPage
from web.history import TrackQuery, load_track

LIVE_MARKERS_JS = (Path(__file__).parent / "templates" / "live_markers.js").read_text()
MAX_REPLAY_POINTS = 2_000
GEOFENCE_REFRESH_SECONDS = 30.0  # geofences change rarely
EVENTS_SHOWN = 50
MAX_LISTED = 500  # trips and stops listed on the track page
INDIVIDUAL_MARKERS = 3_000  # drawn one by one up to this many in view; clustered past it


@cache
def _live_markers_template():
    from jinja2 import Template

    return Template("{% macro script(this, kwargs) %}" + LIVE_MARKERS_JS + "{% endmacro %}")


def live_markers(source: str, refresh_seconds: float, stale_after: float, *, geofences: str | None = None,
                 events: str | None = None, geofence_refresh_seconds: float = GEOFENCE_REFRESH_SECONDS,
                 events_shown: int = EVENTS_SHOWN, live: str | None = None, marker_list: bool = False,
                 keep_view: bool = False, track_links: bool = False):
    """A map element that draws every marker (``web/static/tracker/marker_layer.js``: dots,
    or clusters where many are in view) and keeps them up to date from the GeoJSON endpoint.

    Opt-in, for pages whose viewer has an account (never a share link): ``geofences``, the
    URL of a geofence FeatureCollection drawn as a layer that can be switched off and is
    fetched again every ``geofence_refresh_seconds``; ``events``, the URL of
    ``{"events": [...]}`` polled with the markers and listed newest first in a panel;
    ``live``, the URL of the push feed (``web/live.py``), used instead of polling ``source``
    (which remains the fallback when the feed cannot be opened, with a notice);
    ``marker_list``, the side panel listing the markers (``marker_list.js``); ``keep_view``,
    the view and the followed marker in the URL's hash; ``track_links``, links to each
    marker's track page.
    """
    from branca.element import MacroElement

    class LiveMarkers(MacroElement):
        def __init__(self) -> None:
            super().__init__()
            self._name = "LiveMarkers"
            self._template = _live_markers_template()

    element = LiveMarkers()
    element.source = source
    element.refresh_ms = int(refresh_seconds * 1000)
    element.stale_after = stale_after
    element.geofences = geofences
    element.geofence_refresh_ms = int(geofence_refresh_seconds * 1000)
    element.events = events
    element.events_shown = int(events_shown)
    element.live = live
    element.offline_after = settings.offline_after
    element.moving_speed = settings.motion_speed
    element.marker_list = marker_list
    element.keep_view = keep_view
    element.track_links = track_links
    element.layer_options = {"worker": assets.CLUSTER_WORKER.url, "supercluster": assets.SUPERCLUSTER.url,
                             "individualMax": INDIVIDUAL_MARKERS}
    return element


def base_map(title: str):
    import folium
    from branca.element import Element

    fmap = folium.Map(location=[20, 0], zoom_start=2, tiles=None, prefer_canvas=True)
    fmap.default_js = assets.pairs(assets.MAP_JS)
    fmap.default_css = assets.pairs(assets.MAP_CSS)
    folium.TileLayer(tiles=settings.tile_url, attr=settings.tile_attribution, name="tiles").add_to(fmap)
    fmap.get_root().header.add_child(Element(f"<title>{html.escape(title)}</title>"))
    return fmap


def render(fmap) -> str:
    return fmap.get_root().render()


@app.page("/map", base=HtmlPage)
async def live_map(web, request):
    await require_page(request)
    fmap = base_map("Live map")
    live_markers("/api/markers.geojson", settings.map_refresh_seconds, settings.stale_after,
                 geofences="/api/geofences", events=f"/api/events?limit={EVENTS_SHOWN}",
                 live="/api/live?layout=columns", marker_list=True, keep_view=True, track_links=True).add_to(fmap)
    return web.html(render(fmap))


@app.page("/map/{marker_id}", base=HtmlPage)
async def track_map(web, request, marker_id: str):
    visible_marker(await require_page(request), marker_id)
    query = TrackQuery(request.query)
    day = _day_param(request.query, query)
    query.descending = True  # the newest `limit` points of the range, drawn oldest first
    track = await load_track(marker_id, query)
    track.reverse()
    trips, stops = await _journeys(marker_id, *track_panel.day_range(day))
    from branca.element import Element
    from folium.plugins import TimestampedGeoJson

    fmap = base_map(f"Track of {marker_id}")
    fmap.get_root().html.add_child(Element(track_panel.panel(fmap.get_name(), marker_id, day, trips, stops, track)))
    if track:
        draw_track(fmap, marker_id, track)
        replay = TimestampedGeoJson(
            _replay_features(marker_id, track), period="PT1S", duration="PT1M", add_last_point=True,
            auto_play=False, loop=False, date_options="YYYY-MM-DD HH:mm:ss", time_slider_drag_update=True,
        )
        replay.default_js = assets.pairs(assets.REPLAY_JS)
        replay.default_css = assets.pairs(assets.REPLAY_CSS)
        replay.add_to(fmap)
    return web.html(render(fmap))


def _day_param(query, track: TrackQuery) -> date:
    """``day`` (a UTC date) sets the track's range to that day; else the day the range ends in."""
    raw = query.get("day")
    if not raw:
        return track.end.astimezone(timezone.utc).date()
    try:
        day = date.fromisoformat(raw)
        track.start, track.end = track_panel.day_range(day)
    except (ValueError, OverflowError):  # OverflowError: the day after the last one there is
        raise params.BadParameter("day", "expected a day as YYYY-MM-DD, before 9999-12-31") from None
    return day


async def _journeys(marker_id: str, start: datetime, end: datetime) -> tuple[list[dict], list[dict]]:
    """The trips and stops that start in [start, end); none when Postgres cannot say."""
    try:
        async with database.connection() as conn:
            return (await journey_store.read_trips(conn, marker_id, start, end, MAX_LISTED),
                    await journey_store.read_stops(conn, marker_id, start, end, MAX_LISTED))
    except DATABASE_ERRORS:
        return [], []


def draw_track(fmap, marker_id: str, track: list[dict]) -> None:
    """The track as a line with its start and end, and the view fitted to it."""
    import folium

    points = [(point["lat"], point["lon"]) for point in track]
    folium.PolyLine(points, color="#3d85c6", weight=3).add_to(fmap)
    first, last = track[0], track[-1]
    folium.Marker(points[0], tooltip=html.escape(f"{marker_id} start {format_time(first['time'])}")).add_to(fmap)
    folium.Marker(points[-1], tooltip=html.escape(f"{marker_id} end {format_time(last['time'])}")).add_to(fmap)
    fmap.fit_bounds([[min(p[0] for p in points), min(p[1] for p in points)],
                     [max(p[0] for p in points), max(p[1] for p in points)]])


def shared_map(marker_id: str, track: list[dict], source: str) -> str:
    """A share link's page: today's track and the live position, refreshed from ``source``."""
    fmap = base_map(f"{marker_id}, shared")
    if track:
        draw_track(fmap, marker_id, track)
    live_markers(source, settings.map_refresh_seconds, settings.stale_after).add_to(fmap)
    return render(fmap)


def _replay_features(marker_id: str, track: list[dict]) -> dict:
    step = max(1, math.ceil(len(track) / MAX_REPLAY_POINTS))
    sampled = track[::step]
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [point["lon"], point["lat"]]},
                "properties": {"time": format_time(point["time"]), "popup": html.escape(marker_id),
                               "icon": "circle", "iconstyle": {"radius": 5, "color": "#cc0000"}},
            }
            for point in sampled
        ],
    }
