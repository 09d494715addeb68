"""The spine on the real broker and database: 10,000 records through one worker, then two.

The dataset holds exact duplicates, late fixes and 50 malformed records; the checks are what
a user would see: the history in Postgres, the latest position over HTTP, the DLQ.
"""
import time
from datetime import datetime

import pytest

from tests.integration import dataset
from tracker.testing import settle_latest, wait_for

DATA = dataset.build()


@pytest.fixture(scope="module")
def first_worker(stack, figures):
    worker = stack.worker().start()
    worker.wait_ready()
    started = time.monotonic()
    stack.send(DATA.records)
    wait_for(lambda: stack.history_count() >= len(DATA.expected_rows), 120,
             f"{len(DATA.expected_rows)} rows in Postgres")
    settle_latest(worker, DATA.newest_positions)
    elapsed = time.monotonic() - started
    figures.append(("pipeline, one worker, 10,000 records", f"{len(DATA.records) / elapsed:,.0f} records/s"))
    return worker


def assert_latest(worker, marker_id):
    status, body = worker.get(f"/api/markers/{marker_id}")
    expected = DATA.expected_latest[marker_id]
    assert status == 200, (marker_id, body)
    assert (body["lat"], body["lon"]) == (expected["lat"], expected["lon"]), marker_id
    assert int(datetime.fromisoformat(body["time"]).timestamp() * 1000) == expected["millis"]
    assert body["time"].endswith("Z")


def test_history_holds_exactly_the_distinct_valid_positions(stack, first_worker):
    time.sleep(1.0)  # a surplus row, if any, would arrive now
    rows = stack.query(
        "SELECT marker_id, (extract(epoch FROM fix_time) * 1000)::bigint FROM positions"
    )
    assert len(rows) == len(DATA.expected_rows)
    assert set(rows) == DATA.expected_rows


def test_history_keeps_units_and_optional_fields(stack, first_worker):
    marker_id = DATA.marker_ids[0]
    newest = DATA.expected_latest[marker_id]
    (row,) = stack.query(
        "SELECT lat, lon, speed, heading, battery, received_at IS NOT NULL FROM positions "
        "WHERE marker_id = %s ORDER BY fix_time DESC LIMIT 1", marker_id,
    )
    assert row[:2] == (newest["lat"], newest["lon"])
    assert row[2] == pytest.approx(newest["speed"], rel=1e-6)
    assert row[3] == pytest.approx(newest["heading"], rel=1e-6)
    assert row[4:] == (80.0, True)


def test_latest_is_each_markers_newest_fix_despite_late_ones(first_worker):
    for marker_id in DATA.marker_ids:
        assert_latest(first_worker, marker_id)


def test_dead_letter_topic_holds_every_malformed_record_with_its_reason(stack, first_worker):
    letters = stack.read_topic(stack.settings.dlq_topic, expect=len(DATA.malformed))
    distinct = {(letter["source"]["partition"], letter["source"]["offset"]): letter for letter in letters}
    assert len(distinct) == len(DATA.malformed)
    for letter in distinct.values():
        code, _, message = letter["reason"].partition(": ")
        assert code == letter["code"] and message, letter
        assert letter["rejected_at"].endswith("Z")
    payloads = sorted(
        letter["payload"].encode() if letter["payload_encoding"] == "utf-8"
        else __import__("base64").b64decode(letter["payload"])
        for letter in distinct.values()
    )
    assert payloads == sorted(DATA.malformed)


def test_unknown_and_invalid_markers_get_json_errors(first_worker):
    status, body = first_worker.get("/api/markers/nobody-here")
    assert status == 404 and body["error"] == "unknown_marker"
    status, body = first_worker.get("/api/markers/no%20spaces")
    assert status == 400 and body["error"] == "bad_marker_id"


def test_two_workers_share_partitions_and_both_answer_for_every_marker(stack, first_worker):
    second = stack.worker().start()
    second.wait_ready()

    def split_settled():
        one, two = first_worker.health(), second.health()
        if not one or not two or not one["partitions"] or not two["partitions"]:
            return None
        return one["partitions"], two["partitions"]

    mine, theirs = wait_for(split_settled, 90, "both workers to own partitions")
    assert not set(mine) & set(theirs)
    assert sorted(mine + theirs) == list(range(stack.settings.topic_partitions))
    for worker in (first_worker, second):
        DATA.assert_every_marker_right(worker)
