"""latest: keep each marker's newest fix in the ``latest`` table; late fixes never move it back."""
from __future__ import annotations

from tables.latest import is_newer, latest
from tracker.app import app
from tracker.intake import read
from tracker.position import InvalidPosition, format_time
from tracker.topics import positions_topic


@app.agent(positions_topic, name="latest")
async def track_latest(stream):
    async for event in stream.events():
        try:
            accepted = read(event.message)
        except InvalidPosition:
            continue  # the validate agent reports it
        if not accepted.well_keyed:
            continue  # the validate agent re-sends it to the marker's partition
        marker_id = event.message.key
        candidate = accepted.position.to_dict()
        if is_newer(candidate, latest.get(marker_id)):
            candidate["received_at"] = format_time(accepted.received_at)
            latest[marker_id] = candidate
