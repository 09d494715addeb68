"""kill -9 a worker again and again in the middle of a stream, start it again each time:
nothing lost, nothing doubled, every marker's latest right."""
import asyncio
import threading
import time

from tests.integration import dataset
from tracker.testing import Stack, settle_latest, wait_for
from tracker.stream.producer import positions_producer

DATA = dataset.build(markers=200, in_order=100, duplicates=0, late=0, malformed=0,
                     extra_duplicates=0, seed=11, prefix="crash-")


def send_steadily(stack: Stack, records, per_second: int) -> threading.Thread:
    """Produce ``records`` at a steady pace from a background thread."""

    async def produce():
        producer = positions_producer(stack.settings)
        await producer.start()
        try:
            chunk = per_second // 10
            for start in range(0, len(records), chunk):
                futures = [await producer.send(stack.settings.topic, key=k, value=v)
                           for k, v in records[start:start + chunk]]
                await asyncio.gather(*futures)
                await asyncio.sleep(0.1)
        finally:
            await producer.stop()

    thread = threading.Thread(target=asyncio.run, args=(produce(),), daemon=True)
    thread.start()
    return thread


KILLS = 3


def test_kill_9_again_and_again_loses_and_duplicates_nothing(stack, figures):
    worker = stack.worker().start()
    worker.wait_ready()
    producer = send_steadily(stack, DATA.records, per_second=1_250)  # 16 s: three restarts fit in it

    for kill in range(1, KILLS + 1):
        reached = len(DATA.expected_rows) * kill // (KILLS + 2)
        wait_for(lambda: stack.history_count() >= reached, 120, f"the worker to be mid-stream ({reached} rows)")
        worker.kill()
        assert stack.history_count() < len(DATA.expected_rows), "the kill must land in the middle of the stream"
        killed_at = time.monotonic()
        worker.start()
        worker.wait_ready()
        figures.append((f"crash: restart until ready after kill -9 #{kill}", f"{time.monotonic() - killed_at:.1f} s"))
    producer.join(120)
    wait_for(lambda: stack.history_count() >= len(DATA.expected_rows), 180,
             f"all {len(DATA.expected_rows)} positions in Postgres after the restarts")
    time.sleep(1.0)  # a surplus row, if any, would arrive now
    settle_latest(worker, DATA.newest_positions)

    rows = stack.query(
        "SELECT marker_id, (extract(epoch FROM fix_time) * 1000)::bigint FROM positions"
    )
    assert len(rows) == len(set(rows)), "duplicate rows in the history"
    assert set(rows) == DATA.expected_rows

    for marker_id in DATA.marker_ids:
        status, body = worker.get(f"/api/markers/{marker_id}")
        assert status == 200, (marker_id, body)
        assert (body["lat"], body["lon"]) == (
            DATA.expected_latest[marker_id]["lat"], DATA.expected_latest[marker_id]["lon"]
        ), marker_id
