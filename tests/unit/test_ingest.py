"""The phone endpoints without a worker: who may report, how long a body may take, and what
a request of many reports becomes (each judged alone, the bad ones dead-lettered)."""
import asyncio
from types import SimpleNamespace

import orjson
import pytest

from tracker.settings import settings
from web import ingest
from web.errors import ApiError


class Secrets:
    """The device registry as ``SecretLookup`` answers: secret -> device id."""

    def __init__(self, devices: dict[str, str]) -> None:
        self.devices = devices

    async def device_for(self, secret: str) -> str | None:
        return self.devices.get(secret)


async def refusal(claimed: str, secret: str) -> ApiError:
    with pytest.raises(ApiError) as caught:
        await ingest._authenticate(claimed, secret)
    return caught.value


async def test_an_unknown_secret_and_another_devices_secret_get_the_same_401(monkeypatch):
    monkeypatch.setattr(ingest, "secrets", Secrets({"mine": "phone-1", "theirs": "phone-2"}))
    await ingest._authenticate("phone-1", "mine")
    unknown, foreign = await refusal("phone-1", "nobody-has-this"), await refusal("phone-1", "theirs")
    assert unknown.code == foreign.code == 401
    assert unknown.detail == foreign.detail == "bad_credential"
    assert unknown.message == foreign.message
    assert "phone-2" not in foreign.message and "phone-1" not in foreign.message


class TricklingBody:
    """A request body of which a byte arrives every ``interval`` seconds, forever."""

    def __init__(self, interval: float) -> None:
        self.interval = interval

    async def read(self, n: int) -> bytes:
        await asyncio.sleep(self.interval)
        return b"x"


class WholeBody:
    def __init__(self, data: bytes) -> None:
        self.chunks = [data[i:i + 10] for i in range(0, len(data), 10)]

    async def read(self, n: int) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""


async def test_a_body_that_trickles_in_is_cut_off_with_408(monkeypatch):
    monkeypatch.setattr(ingest, "BODY_READ_SECONDS", 0.3)
    request = SimpleNamespace(content_length=None, content=TricklingBody(0.01))
    started = asyncio.get_running_loop().time()
    with pytest.raises(ApiError) as caught:
        await ingest._body(request)
    assert 0.3 <= asyncio.get_running_loop().time() - started < 1.0
    assert (caught.value.code, caught.value.detail) == (408, "body_timeout")


async def test_a_body_that_arrives_in_time_is_read_whole():
    data = b'{"device_id": "phone-1"}' * 10
    request = SimpleNamespace(content_length=len(data), content=WholeBody(data))
    assert await ingest._body(request) == data


# --- many reports per request: each judged alone, the bad ones to the DLQ ------------------

class Sender:
    """Stands in for ``tracker.ingest.producer.Coalescer``: keeps (topic, key, value), acknowledged at once."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, dict]] = []

    def submit(self, topic, records):
        self.sent.extend((topic, key, orjson.loads(value)) for key, value in records)
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return [done]


def post(body: bytes, content_type: str = "application/json", query: dict | None = None,
         headers: dict | None = None) -> SimpleNamespace:
    return SimpleNamespace(content_length=len(body), content=WholeBody(body), content_type=content_type,
                           query=query or {}, headers=headers or {})


@pytest.fixture()
def sender(monkeypatch):
    sender = Sender()
    monkeypatch.setattr(ingest, "_coalescer", sender)
    monkeypatch.setattr(ingest, "secrets", Secrets({"s3cret": "ana-phone"}))
    return sender


async def test_a_traccar_client_array_with_a_bad_element_keeps_the_others_and_dead_letters_it(sender):
    queued = [{"id": "ana-phone", "lat": 45.0, "lon": 14.0, "timestamp": 1_795_775_200},
              {"id": "ana-phone", "lat": 95.0, "lon": 14.0, "timestamp": 1_795_775_260},
              {"id": "ana-phone", "timestamp": 1_795_775_320, "batt": 50},
              {"id": "ben-phone", "lat": 45.1, "lon": 14.1, "timestamp": 1_795_775_380}]
    await ingest._osmand(post(orjson.dumps(queued)), "s3cret")
    kept = [value for topic, _, value in sender.sent if topic == settings.topic]
    dead = [(key, value) for topic, key, value in sender.sent if topic == settings.dlq_topic]
    assert [(value["time"], value.get("kind")) for value in kept] == [(1_795_775_200, None),
                                                                      (1_795_775_320, "heartbeat")]
    assert [(value["code"], value["source"]["offset"]) for _, value in dead] == [("out_of_range", 1),
                                                                                  ("wrong_device", 3)]
    key, letter = dead[0]
    assert letter["source"] == {"topic": "/ingest/osmand", "partition": -1, "offset": 1}
    assert orjson.loads(letter["payload"]) == queued[1] and key == b"ana-phone"


async def test_an_array_of_another_devices_secret_is_refused_whole(sender):
    with pytest.raises(ApiError) as caught:
        await ingest._osmand(post(orjson.dumps([{"id": "ben-phone", "timestamp": 1}])), "s3cret")
    assert (caught.value.code, caught.value.detail) == (401, "bad_credential") and sender.sent == []


async def test_a_heartbeat_is_answered_and_sent_a_report_without_a_device_id_is_400(sender):
    await ingest._osmand(post(b"id=ana-phone&timestamp=1795775200&batt=64&charge=false",
                              "application/x-www-form-urlencoded"), "s3cret")
    assert [value["kind"] for _, _, value in sender.sent] == ["heartbeat"]
    with pytest.raises(ApiError) as caught:
        await ingest._osmand(post(b"timestamp=1795775200&batt=64", "application/x-www-form-urlencoded"), "s3cret")
    assert (caught.value.code, caught.value.detail) == (400, "missing_field")


async def test_batch_lists_what_it_refused_and_fills_in_the_devices_own_marker_id(sender):
    lines = b"\n".join([orjson.dumps({"lat": 45.0, "lon": 14.0, "time": 1_795_775_200, "speed": 3.0}),
                        orjson.dumps({"marker_id": "ben-phone", "lat": 45.0, "lon": 14.0, "time": 1_795_775_200}),
                        b"{oops", orjson.dumps({"kind": "heartbeat", "time": 1_795_775_260, "battery": 40})])
    answer = await ingest._batch(post(lines, "application/x-ndjson", headers={"Authorization": "Bearer s3cret"}))
    assert answer["accepted"] == 2
    assert [(r["index"], r["error"]) for r in answer["rejected"]] == [(1, "wrong_device"), (2, "not_json")]
    kept = [value for topic, _, value in sender.sent if topic == settings.topic]
    assert [(v["marker_id"], v.get("kind")) for v in kept] == [("ana-phone", None), ("ana-phone", "heartbeat")]


async def test_a_gateway_reports_for_its_prefix_only(monkeypatch, sender):
    from tracker.accounts.gateways import Gateway

    class Gateways:
        async def gateway_for(self, token):
            return Gateway("fleet", "fleet-") if token == "gw" else None

    monkeypatch.setattr(ingest, "gateway_tokens", Gateways())
    body = orjson.dumps([{"marker_id": m, "lat": 1.0, "lon": 2.0, "time": 1_795_775_200} for m in ("fleet-1", "car")])
    answer = await ingest._batch(post(body, query={"token": "gw"}))
    assert answer["accepted"] == 1 and answer["rejected"][0]["error"] == "outside_prefix"
    with pytest.raises(ApiError) as caught:
        await ingest._batch(post(body, headers={"Authorization": "Bearer nobody"}))
    assert (caught.value.code, caught.value.detail) == (401, "bad_credential")


async def test_overland_points_of_a_devices_secret_are_its_own(sender):
    points = {"locations": [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [14.0, 45.0]},
                             "properties": {"timestamp": "2026-11-27T10:26:40Z", "device_id": "whatever"}},
                            {"type": "Feature", "properties": {}}]}
    await ingest._overland(post(orjson.dumps(points), headers={"Authorization": "Bearer s3cret"}))
    assert [(topic, value.get("marker_id"), value.get("code")) for topic, _, value in sender.sent] == [
        (settings.topic, "ana-phone", None), (settings.dlq_topic, None, "missing_field")]
