"""The track page's journeys panel: a day picker, and the day's trips and stops; clicking one
zooms the map to it.

Every text goes into the page through ``html.escape`` or JSON, never as raw HTML.
"""
from __future__ import annotations

import html
from datetime import date, datetime, timedelta, timezone

import orjson

from tracker.positions.model import format_time

PANEL_CSS = """
#journeys{position:absolute;top:10px;right:10px;z-index:1000;background:#fff;padding:8px 10px;
 font:13px sans-serif;max-height:70vh;overflow:auto;width:290px;box-shadow:0 1px 5px rgba(0,0,0,.4);border-radius:4px}
#journeys h3{margin:6px 0 4px;font-size:13px}
#journeys li{cursor:pointer;padding:2px 0;list-style:none}
#journeys li:hover{background:#eef}
#journeys ul{margin:0;padding:0}
"""


def day_range(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, datetime.min.time(), timezone.utc)
    return start, start + timedelta(days=1)


def _bounds(track: list[dict], start: datetime, end: datetime, fallback: list[tuple[float, float]]) -> list:
    points = [(p["lat"], p["lon"]) for p in track if start <= p["time"] <= end] or fallback
    return [[min(p[0] for p in points), min(p[1] for p in points)],
            [max(p[0] for p in points), max(p[1] for p in points)]]


def _clock(moment: datetime) -> str:
    return format_time(moment)[11:19]


def panel(map_name: str, marker_id: str, day: date, trips: list[dict], stops: list[dict],
          track: list[dict]) -> str:
    """The panel's HTML and script, for a Folium map whose JavaScript variable is ``map_name``."""
    items = []
    for trip in trips:
        label = (f"{_clock(trip['start_time'])}–{_clock(trip['end_time'])} · {trip['distance_m'] / 1000:.1f} km · "
                 f"{trip['duration_s'] / 60:.0f} min")
        bounds = _bounds(track, trip["start_time"], trip["end_time"],
                         [(trip["start_lat"], trip["start_lon"]), (trip["end_lat"], trip["end_lon"])])
        items.append(("trip", label, bounds))
    trip_items = [i for i in items if i[0] == "trip"]
    stop_items = []
    for stop in stops:
        label = f"{_clock(stop['start_time'])}–{_clock(stop['end_time'])} · {stop['duration_s'] / 60:.0f} min"
        bounds = [[stop["lat"] - 0.002, stop["lon"] - 0.003], [stop["lat"] + 0.002, stop["lon"] + 0.003]]
        stop_items.append(("stop", label, bounds))

    def listing(title: str, entries: list) -> str:
        rows = "".join(f'<li class="{kind}" data-bounds="{html.escape(orjson.dumps(b).decode())}">{html.escape(label)}</li>'
                       for kind, label, b in entries) or "<li>none</li>"
        return f"<h3>{html.escape(title)} ({len(entries)})</h3><ul>{rows}</ul>"

    return (f"<style>{PANEL_CSS}</style>"
            f'<div id="journeys"><form method="get"><label>Day (UTC) '
            f'<input type="date" name="day" value="{day.isoformat()}" onchange="this.form.submit()"></label></form>'
            f"{listing('Trips', trip_items)}{listing('Stops', stop_items)}</div>"
            "<script>document.addEventListener('DOMContentLoaded', function () {"
            "document.querySelectorAll('#journeys li[data-bounds]').forEach(function (li) {"
            "li.addEventListener('click', function () {"
            f"{map_name}.fitBounds(JSON.parse(li.dataset.bounds), {{maxZoom: 17}});"
            "});});});</script>")
