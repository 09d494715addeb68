"""The broker's rules for phones, on a Mosquitto of this tree's configuration
(``tests/integration/broker.py``): a phone publishes only under its own name, never to the
friend topics the workers write for it; subscribes only inside its own tree (a wildcard over
other phones, ``#`` or a shared subscription is refused at subscribe time); receives only its
friends; and a packet over the broker's size limit ends its connection."""
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from tests.integration.broker import BRIDGE_USER, PrivateBroker
from tracker.testing import wait_for

ANA, BOB = "ana-phone", "bob-phone"


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    broker = PrivateBroker(tmp_path_factory.mktemp("mosquitto")).start()
    for user in (ANA, BOB, BRIDGE_USER):
        broker.add_user(user, f"{user}-secret")
    yield broker
    broker.stop()


class Client:
    """A connected MQTT 5 client that records what it receives and the broker's answers."""

    def __init__(self, broker: PrivateBroker, user: str) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.granted: dict[str, str] = {}
        self.disconnected = threading.Event()
        self._pending: dict[int, str] = {}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{user}-{time.monotonic_ns()}",
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set(user, f"{user}-secret")
        self.client.on_message = lambda c, u, message: self.received.append((message.topic, message.payload))
        self.client.on_subscribe = self._subscribed
        self.client.on_disconnect = lambda *args: self.disconnected.set()
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def _subscribed(self, client, userdata, mid, reasons, properties) -> None:
        self.granted[self._pending.pop(mid)] = str(reasons[0])

    def subscribe(self, topic: str) -> str:
        """The broker's answer to one subscription: "Granted QoS 1" or "Not authorized"."""
        result, mid = self.client.subscribe(topic, qos=1)
        self._pending[mid] = topic
        return wait_for(lambda: self.granted.get(topic), 10, f"the broker's answer to {topic}")

    def publish(self, topic: str, payload: bytes = b"{}", retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def topics(self) -> set[str]:
        return {topic for topic, _ in self.received}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def clients(broker):
    made = []

    def connect(user: str) -> Client:
        made.append(Client(broker, user))
        return made[-1]

    yield connect
    for client in made:
        client.close()


def test_a_phone_subscribes_only_inside_its_own_tree(clients):
    phone = clients(ANA)
    for topic in ("owntracks/+/+", "owntracks/+/+/info", "#", "owntracks/#", f"owntracks/{BOB}/#",
                  f"$share/tracker/owntracks/+/+", f"owntracks/{ANA}x/#", "+/+/+"):
        assert phone.subscribe(topic) == "Not authorized", topic
    for topic in (f"owntracks/{ANA}/+", f"owntracks/{ANA}/+/info", f"owntracks/{ANA}/#"):
        assert phone.subscribe(topic) == "Granted QoS 1", topic


def test_the_bridge_keeps_its_wildcard_and_shared_subscriptions(clients):
    bridge = clients(BRIDGE_USER)
    assert bridge.subscribe("$share/tracker/owntracks/+/+") == "Granted QoS 1"
    assert bridge.subscribe("owntracks/#") == "Granted QoS 1"


def test_a_phone_publishes_only_its_own_positions(clients):
    bridge = clients(BRIDGE_USER)
    bridge.subscribe("owntracks/#")
    phone = clients(ANA)
    phone.publish(f"owntracks/{BOB}/pixel")           # another phone's name
    phone.publish(f"owntracks/{ANA}/friend.{BOB}")    # a friend topic the workers write
    phone.publish(f"owntracks/{ANA}/friend.{BOB}/info")
    phone.publish("elsewhere/topic")
    phone.publish(f"owntracks/{ANA}/pixel", b'{"_type":"location"}')
    wait_for(lambda: f"owntracks/{ANA}/pixel" in bridge.topics(), 10, "the phone's own position at the bridge")
    time.sleep(0.5)
    assert bridge.topics() == {f"owntracks/{ANA}/pixel"}


def test_a_phone_receives_only_its_friends(clients):
    phone = clients(ANA)
    assert phone.subscribe(f"owntracks/{ANA}/#") == "Granted QoS 1"
    bridge = clients(BRIDGE_USER)
    for topic in (f"owntracks/{ANA}/friend.{BOB}", f"owntracks/{ANA}/friend.{BOB}/info",
                  f"owntracks/{ANA}/friend.{BOB}/event", f"owntracks/{ANA}/pixel", f"owntracks/{ANA}/pixel/cmd",
                  f"owntracks/{ANA}/friend.", f"owntracks/{BOB}/friend.{ANA}"):
        bridge.publish(topic, b'{"_type":"location"}')
    wait_for(lambda: len(phone.received) >= 2, 10, "the friend's location and card")
    time.sleep(0.5)
    assert phone.topics() == {f"owntracks/{ANA}/friend.{BOB}", f"owntracks/{ANA}/friend.{BOB}/info"}


def test_a_packet_over_the_size_limit_ends_the_connection(clients):
    bridge = clients(BRIDGE_USER)
    bridge.subscribe("owntracks/#")
    phone = clients(BOB)
    phone.client.publish(f"owntracks/{BOB}/pixel", b"x" * 300_000, qos=1)
    assert phone.disconnected.wait(10), "the broker kept a client that sent 300 kB"
    time.sleep(0.5)
    assert not bridge.received
