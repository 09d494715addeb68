"""A peer worker's rows are used only when each has exactly the shape of a position."""
import pytest

from web.cluster import valid_position

ROW = {"marker_id": "car-1", "lat": 45.5, "lon": 14.25, "time": "2026-11-28T07:00:00Z", "speed": 3.5,
       "heading": None, "altitude": None, "accuracy": 5.0, "battery": 80.0, "source": "osmand",
       "attributes": None, "received_at": "2026-11-28T07:00:01.5Z"}


def test_a_position_is_accepted():
    assert valid_position(ROW)


@pytest.mark.parametrize("change", [
    {"marker_id": "<script>"}, {"marker_id": 7}, {"lat": 91}, {"lon": "14"}, {"lat": float("nan")},
    {"time": "yesterday"}, {"received_at": None}, {"speed": "fast"}, {"battery": True}, {"source": 5},
    {"attributes": [1]}, {"extra": 1},
])
def test_anything_else_is_refused(change):
    assert not valid_position({**ROW, **change})


@pytest.mark.parametrize("row", [None, [], "html", {"marker_id": "car-1"}])
def test_non_rows_are_refused(row):
    assert not valid_position(row)
