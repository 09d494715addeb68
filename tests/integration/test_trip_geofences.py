"""The geofences a trip starts and ends in are named with the events stage turned off
(``TRACKER_EVENTS=off``): the journeys sink has the geofences whatever stages run."""
import orjson
import pytest

from tests.integration.test_journeys import Day, at, journeys, settled
from tracker.testing import wait_for


def square(name: str, x_m: float, half_m: float = 200.0) -> dict:
    (south, west), (north, east) = at(x_m - half_m, -half_m), at(x_m + half_m, half_m)
    return {"type": "Feature", "properties": {"name": name}, "geometry": {
        "type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]]}}


@pytest.fixture(scope="module")
def worker(stack):
    worker = stack.worker(TRACKER_EVENTS="off", TRACKER_JOURNEYS="on").start()
    worker.wait_ready()
    return worker


def test_a_trip_from_the_depot_to_the_yard_names_both_with_events_off(stack, worker):
    for name, x_m in (("depot", 0.0), ("yard", 6_000.0)):
        status, _, _ = worker.request("POST", "/api/geofences", orjson.dumps(square(name, x_m)),
                                      headers={"Content-Type": "application/geo+json"})
        assert status == 201
    day = Day("van-geo")
    day.fix(speed=0.0)
    day.wait(600).drive(6_000).wait(900)
    day.t += 1_800  # silent after the stop: the trip is finished
    day.wait(60)
    stack.send(day.records())
    wait_for(lambda: journeys(stack, "van-geo")["trips"] and settled(stack), 90, "the trip in Postgres")
    (start, end), = stack.query("SELECT start_geofences, end_geofences FROM trips WHERE marker_id = %s", "van-geo")
    assert (start, end) == (["depot"], ["yard"])
