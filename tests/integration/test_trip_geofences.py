"""The geofences a trip starts and ends in are named with the events stage turned off
(``TRACKER_EVENTS=off``): the journeys sink has the geofences whatever stages run."""
import subprocess
import sys

import orjson
import pytest

from tests.integration.test_journeys import Day, at, journeys, settled
from tracker.testing import wait_for


def square(name: str, x_m: float, half_m: float = 200.0) -> dict:
    (south, west), (north, east) = at(x_m - half_m, -half_m), at(x_m + half_m, half_m)
    return {"type": "Feature", "properties": {"name": name}, "geometry": {
        "type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]]}}


@pytest.fixture(scope="module")
def worker(stack, tmp_path_factory):
    """The geofences are in Postgres before the worker starts: it loads them at its start."""
    path = tmp_path_factory.mktemp("geofences") / "places.geojson"
    path.write_bytes(orjson.dumps({"type": "FeatureCollection",
                                   "features": [square("depot", 0.0), square("yard", 6_000.0)]}))
    loaded = subprocess.run([sys.executable, "-m", "tracker.cli", "geofences", "import", str(path)], env=stack.env,
                            capture_output=True, text=True, timeout=60)
    assert loaded.returncode == 0, loaded.stderr
    worker = stack.worker(TRACKER_EVENTS="off", TRACKER_JOURNEYS="on").start()
    worker.wait_ready()
    return worker


def test_a_trip_from_the_depot_to_the_yard_names_both_with_events_off(stack, worker):
    day = Day("van-geo")
    day.fix(speed=0.0)
    day.wait(600).drive(6_000).wait(900)
    day.t += 1_800  # silent after the stop: the trip is finished
    day.wait(60)
    stack.send(day.records())
    wait_for(lambda: journeys(stack, "van-geo")["trips"] and settled(stack), 90, "the trip in Postgres")
    (start, end), = stack.query("SELECT start_geofences, end_geofences FROM trips WHERE marker_id = %s", "van-geo")
    assert (start, end) == (["depot"], ["yard"])
