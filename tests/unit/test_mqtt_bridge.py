"""What ``tracker mqtt-bridge`` makes of each OwnTracks MQTT message: a position under the
topic's user, a dead letter with the reason, or a counted message that is not a position."""
from datetime import datetime, timezone
from types import SimpleNamespace

import orjson
import pytest

from tracker.ingest.mqtt_bridge import Bridge
from tracker.settings import settings


class Sender:
    """Stands in for ``tracker.ingest.producer.Coalescer``: keeps what it was given."""

    def __init__(self):
        self.sent = []

    def submit(self, topic, records):
        self.sent.extend((topic, key, orjson.loads(value)) for key, value in records)
        return [object()]


def message(topic: str, body) -> SimpleNamespace:
    payload = body if isinstance(body, bytes) else orjson.dumps(body)
    return SimpleNamespace(topic=topic, payload=payload, mid=7, qos=1)


LOCATION = {"_type": "location", "lat": 45.81, "lon": 15.98, "tst": 1795768800, "acc": 12, "vel": 36, "batt": 64,
            "tid": "ph", "SSID": "home", "BSSID": "aa:bb", "topic": "owntracks/ana/pixel"}


def forward(topic: str, body):
    bridge, sender = Bridge(settings, "test"), Sender()
    sent = bridge._forward(sender, message(topic, body), datetime.now(timezone.utc))
    return bridge, sender.sent, sent


def test_a_location_becomes_a_position_of_the_topics_user():
    bridge, sent, future = forward("owntracks/ana-phone/pixel", LOCATION)
    assert future is not None and bridge.counts == {"location": 1}
    (topic, key, fix), = sent
    assert topic == settings.topic and key == b"ana-phone"
    assert fix["marker_id"] == "ana-phone" and fix["speed"] == pytest.approx(10.0) and fix["battery"] == 64
    assert fix["attributes"] == {"tid": "ph", "device": "pixel"}  # SSID, BSSID, topic dropped


@pytest.mark.parametrize("kind", ["transition", "waypoint", "lwt", "card"])
def test_other_types_are_counted_not_sent(kind):
    bridge, sent, future = forward("owntracks/ana-phone/pixel", {"_type": kind, "tst": 1795768800})
    assert future is None and sent == [] and bridge.counts == {kind: 1}


@pytest.mark.parametrize("topic, body, code", [
    ("owntracks/ana-phone", LOCATION, "bad_topic"),
    ("owntracks/ana phone/pixel", LOCATION, "bad_topic"),
    ("owntracks/ana-phone/pixel/extra", LOCATION, "bad_topic"),
    ("owntracks/ana-phone/pixel", b"{not json", "not_json"),
    ("owntracks/ana-phone/pixel", {**LOCATION, "lat": 123}, "out_of_range"),
    ("owntracks/ana-phone/pixel", {**LOCATION, "tst": None}, "missing_field"),
])
def test_what_is_not_a_position_goes_to_the_dlq_with_its_reason(topic, body, code):
    bridge, sent, future = forward(topic, body)
    (dlq, _, letter), = sent
    assert dlq == settings.dlq_topic and letter["code"] == code and letter["source"]["topic"] == topic
    assert bridge.counts == {"rejected": 1}
