"""Countries and cities of coordinates: offline from the shipped GeoNames data, or from a
Nominatim server the user runs (here a local one answering as Nominatim does)."""
import dataclasses
from datetime import datetime, timezone

from aiohttp import web as aioweb

from tracker.places import nominatim, offline, visited
from tracker.testing import serve_http

LJUBLJANA = (46.0511, 14.5051)
PARIS = (48.8566, 2.3522)


def test_the_offline_geocoder_names_the_nearest_city_and_its_country():
    ljubljana, paris = offline.places([LJUBLJANA, PARIS])
    assert (ljubljana.country_code, ljubljana.country, ljubljana.city) == ("SI", "Slovenia", "Ljubljana")
    assert (paris.country_code, paris.city) == ("FR", "Paris")


async def test_visits_are_counted_per_city_and_country_with_their_first_and_last_time():
    times = [datetime(2026, 5, day, tzinfo=timezone.utc) for day in (1, 2, 3)]
    found = await visited.visited([(*LJUBLJANA, times[1]), (LJUBLJANA[0] + 0.001, LJUBLJANA[1], times[0]),
                                   (*PARIS, times[2])])
    assert [(c["code"], c["visits"]) for c in found["countries"]] == [("SI", 2), ("FR", 1)]
    assert found["cities"][0] == {"name": "Ljubljana", "state": "Ljubljana", "country_code": "SI", "country": "Slovenia",
                                  "visits": 2, "first": times[0], "last": times[1]}


async def test_a_nominatim_server_the_user_runs_is_asked_when_set(monkeypatch):
    asked = []

    async def reverse(request):
        asked.append(dict(request.query))
        if float(request.query["lat"]) > 48:
            return aioweb.json_response({"error": "Unable to geocode"})
        return aioweb.json_response({"name": "Ljubljana", "address": {
            "city": "Ljubljana", "state": "Osrednjeslovenska", "country": "Slovenija", "country_code": "si"}})

    app = aioweb.Application()
    app.router.add_get("/reverse", reverse)
    runner, url = await serve_http(app)
    try:
        monkeypatch.setattr(visited, "settings", dataclasses.replace(visited.settings, nominatim_url=url))
        found = await visited.visited([(*LJUBLJANA, datetime(2026, 5, 1, tzinfo=timezone.utc)),
                                       (*PARIS, datetime(2026, 5, 2, tzinfo=timezone.utc))])
    finally:
        await runner.cleanup()
    assert [(c["code"], c["name"]) for c in found["countries"]] == [("SI", "Slovenija")]
    assert [c["name"] for c in found["cities"]] == ["Ljubljana"]
    assert {q["format"] for q in asked} == {"jsonv2"} and len(asked) == 2
    assert nominatim.place_of({"address": {"village": "Višnjan", "country_code": "hr"}}).city == "Višnjan"
