"""The rows of each report, from the journeys and events tables, for several markers: a row is a
dict keyed by the report's ``COLUMNS``, marker by marker, oldest first."""
from __future__ import annotations

from datetime import datetime

import psycopg

from tracker.accounts.permissions import Access
from tracker.events import store as events
from tracker.journeys import store as journeys

KINDS = ("trips", "stops", "events", "summary")
COLUMNS = {
    "trips": ("marker_id", "start_time", "end_time", "duration_s", "distance_m", "max_speed", "average_speed",
              "start_lat", "start_lon", "end_lat", "end_lon", "start_geofences", "end_geofences"),
    "stops": ("marker_id", "start_time", "end_time", "duration_s", "lat", "lon"),
    "events": ("marker_id", "time", "type", "lat", "lon", "geofence_name", "speed", "limit", "battery", "late"),
    "summary": ("marker_id", "day", "trips", "distance_m", "driving_s", "stopped_s", "stops", "max_speed",
                "average_speed"),
}
#: The most rows of one marker in a report.
MARKER_LIMIT = 50_000


def _event_row(event: dict) -> dict:
    position = event.get("position") or {}
    return {**{key: event.get(key) for key in COLUMNS["events"]}, "time": datetime.fromisoformat(event["time"]),
            "lat": position.get("lat"), "lon": position.get("lon")}


async def report_rows(conn: psycopg.AsyncConnection, kind: str, markers: list[str], start: datetime,
                      end: datetime, tz: str, access: Access) -> list[dict]:
    columns = COLUMNS[kind]
    rows: list[dict] = []
    for marker in markers:
        if kind == "trips":
            found = await journeys.read_trips(conn, marker, start, end, MARKER_LIMIT)
        elif kind == "stops":
            found = await journeys.read_stops(conn, marker, start, end, MARKER_LIMIT)
        elif kind == "events":
            query = events.EventQuery(start=start, end=end, marker_id=marker, limit=MARKER_LIMIT)
            found = [_event_row(event) for event in reversed(await events.read_events(conn, access, query))]
        else:
            found = [{**row, "day": row["period"]} for row in await journeys.read_summary(conn, marker, start, end, tz, "day")]
        rows += [{**{column: row.get(column) for column in columns}, "marker_id": marker} for row in found]
    return rows
