"""latest: keep each marker's newest fix in the ``latest`` table; late fixes never move it back."""
from __future__ import annotations

from tables.latest import is_newer, latest
from tracker.app import app
from tracker.topics import valid_positions_topic


@app.agent(valid_positions_topic, name="latest")
async def track_latest(stream):
    async for marker_id, position in stream.items():
        if is_newer(position, latest.get(marker_id)):
            latest[marker_id] = position
