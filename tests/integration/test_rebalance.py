"""Partitions moving between workers mid-stream: a third worker joins while positions flow,
then one worker is killed with SIGKILL. Every worker must still find every marker's newest
fix (forwarded to the owner, whose table partition came from the changelog), the
history must hold each position exactly once, and each consumer group must have committed
all it read (no offset left behind, none skipped)."""
import time

import pytest

from tests.integration import dataset
from tests.integration.test_crash import send_steadily
from tracker.testing import partition_owners as owners, settle_latest, wait_for

DATA = dataset.build(markers=300, in_order=60, duplicates=3, late=3, malformed=0,
                     extra_duplicates=0, seed=23, prefix="rb-")


def assert_history_exact(stack):
    rows = stack.query("SELECT marker_id, (extract(epoch FROM fix_time) * 1000)::bigint FROM positions")
    assert len(rows) == len(set(rows)), "duplicate rows in the history"
    assert set(rows) == DATA.expected_rows


@pytest.fixture(scope="module")
def streamed(stack, figures):
    first, second = stack.worker().start(), stack.worker().start()
    first.wait_ready()
    second.wait_ready()
    wait_for(lambda: owners([first, second]), 90, "two workers to share the partitions")
    producer = send_steadily(stack, DATA.records, per_second=3_000)
    wait_for(lambda: stack.history_count() >= len(DATA.expected_rows) // 3, 120, "a third of the stream")
    third = stack.worker().start()
    joined = time.monotonic()
    third.wait_ready()
    producer.join(120)
    wait_for(lambda: owners([first, second, third]), 120, "three workers to share the partitions")
    figures.append(("rebalance: a third worker ready", f"{time.monotonic() - joined:.1f} s"))
    wait_for(lambda: stack.history_count() >= len(DATA.expected_rows), 120, "every position in Postgres")
    settle_latest(first, DATA.newest_positions)
    return first, second, third


def test_a_worker_joining_mid_stream_changes_no_answer(stack, streamed):
    for worker in streamed:
        DATA.assert_every_marker_right(worker)
    assert_history_exact(stack)
    stack.wait_pipeline_committed(60)


def test_after_a_kill_the_survivors_answer_for_every_marker(stack, streamed, figures):
    first, second, third = streamed
    second.kill()
    killed = time.monotonic()
    wait_for(lambda: owners([first, third]), 120, "the survivors to take the killed worker's partitions")
    figures.append(("rebalance: partitions taken over after kill -9", f"{time.monotonic() - killed:.1f} s"))
    for worker in (first, third):
        DATA.assert_every_marker_right(worker)
    assert_history_exact(stack)
