"""Friends over MQTT: each phone's friends published where its OwnTracks app looks for them.

A phone in MQTT mode subscribes to ``owntracks/U/+`` (and ``owntracks/U/+/info`` for names)
and lists every topic it reads as a contact. The broker lets a phone subscribe only inside
its own tree and read only its friend topics (``docker/mosquitto/tracker_acl.c``), so each friend F of the phone U (``tracker.ingest.friends``)
is published under U's name, retained, QoS 1:

- ``owntracks/U/friend.F``: F's newest fix, an OwnTracks ``location``;
- ``owntracks/U/friend.F/info``: a ``card`` with F's name.

A friend U may no longer see is removed with an empty retained message on both topics,
which the app takes as a deletion. Every message carries the MQTT 5 user property
``tracker: friend``, by which ``tracker mqtt-bridge`` knows not to store it.

Each worker publishes for the phones whose marker ids fall in the partitions it owns, once
a second for the friends whose fix changed, from the newest rows it holds
(``tracker.positions.live_hub``). After a rebalance the new owner publishes them all once more:
retained, the same message twice changes nothing.

What the broker retains outlives the worker that published it. So when a worker takes a
phone it has not published for (at its start, after a rebalance, for a device id removed
and added again), it first reads the phone's retained ``friend.*`` topics
(``MqttPublisher.retained_friends``) and clears those the phone may no longer see (friends
turned off meanwhile, a group changed). ``tracker devices remove`` clears a removed phone's
(``clear_friends``).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Iterable, Mapping

import orjson

from tracker.ingest.friends import friends
from tracker.accounts.permissions import Access
from tracker.ingest.protocols import owntracks

log = logging.getLogger(__name__)

#: The MQTT 5 user property every friend message carries.
MARK = ("tracker", "friend")

#: publish(topic, payload): retained, QoS 1; an empty payload removes the topic's message
Publish = Callable[[str, bytes], None]
FRIEND_PREFIX = "friend."
#: Reading a phone's retained friends: the broker sends them right after its answer to the
#: subscription; once none came for this long, there are no more.
QUIET_SECONDS = 0.5
READ_SECONDS = 10.0
SUBSCRIBE_CHUNK = 100
#: The name of a friend found retained: not known, so its card is published again.
_UNKNOWN = object()


def friend_topic(user: str, friend: str) -> str:
    return f"owntracks/{user}/{FRIEND_PREFIX}{friend}"


class FriendsPublisher:
    def __init__(self, publish: Publish) -> None:
        self.publish = publish
        #: user -> friend -> (the fix time published, the name published)
        self.published: dict[str, dict[str, tuple[int, str | None]]] = {}

    def new_phones(self, phones: Mapping[str, Access]) -> list[str]:
        """The phones of ``phones`` this publisher has not published for yet."""
        return [user for user in phones if user not in self.published]

    def update(self, phones: Mapping[str, Access], rows: Mapping[str, list],
               retained: Mapping[str, Iterable[str]] | None = None, removed: Iterable[str] = ()) -> int:
        """Publish what changed for ``phones`` (the phones this worker publishes for, each
        with what it may see); the number of messages published. ``retained``: for phones
        new to this publisher, the friends the broker holds under their names, which are
        removed unless still permitted. ``removed``: phones that are no longer devices, whose
        friends are removed. Other phones left out are forgotten without removing anything:
        another worker publishes for them now."""
        count = 0
        for user in removed:
            for friend in self.published.pop(user, {}):
                topic = friend_topic(user, friend)
                self.publish(topic, b"")
                self.publish(topic + "/info", b"")
                count += 2
        for user in set(self.published) - set(phones):
            del self.published[user]
        for user, friends_held in (retained or {}).items():
            if user in phones and user not in self.published:
                self.published[user] = {friend: (None, _UNKNOWN) for friend in friends_held}
        for user, access in phones.items():
            sent = self.published.setdefault(user, {})
            current = {row[0]: row for row in friends(access, rows)}
            for friend in [f for f in sent if f not in current]:
                topic = friend_topic(user, friend)
                self.publish(topic, b"")
                self.publish(topic + "/info", b"")
                del sent[friend]
                count += 2
            for friend, row in current.items():
                name = row[9] if len(row) > 9 else None
                before = sent.get(friend)
                if before is not None and before[0] == row[3] and before[1] == name:
                    continue
                topic = friend_topic(user, friend)
                location, card = owntracks.friend_messages(row, topic)
                self.publish(topic, orjson.dumps(location))
                count += 1
                if before is None or before[1] != name:
                    self.publish(topic + "/info", orjson.dumps(card))
                    count += 1
                sent[friend] = (row[3], name)
        return count


class MqttPublisher:
    """A connection to the broker that publishes retained QoS 1 friend messages (paho-mqtt,
    its own thread; messages published while it reconnects wait in its queue)."""

    def __init__(self, url: str, password: str | None, client_id: str) -> None:
        from urllib.parse import urlsplit

        import paho.mqtt.client as mqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        parts = urlsplit(url)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if parts.username:
            self.client.username_pw_set(parts.username, password)
        if parts.scheme == "mqtts":
            self.client.tls_set()
        self.properties = Properties(PacketTypes.PUBLISH)
        self.properties.UserProperty = [MARK]
        self.connected = threading.Event()
        self.client.on_connect = lambda client, userdata, flags, reason, properties: (
            None if reason.is_failure else self.connected.set())
        self.client.connect_async(parts.hostname or "127.0.0.1",
                                  parts.port or (8883 if parts.scheme == "mqtts" else 1883), keepalive=30)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1, retain=True, properties=self.properties)

    def retained_friends(self, users: Iterable[str], quiet: float = QUIET_SECONDS,
                         limit: float = READ_SECONDS) -> dict[str, set[str]]:
        """The friends the broker retains under each of ``users``' names (blocking: subscribes,
        gathers the retained messages until none came for ``quiet`` seconds after the
        broker's answer, at most ``limit`` seconds, and unsubscribes)."""
        filters = [f"owntracks/{user}/+" for user in users]
        found: dict[str, set[str]] = {user: set() for user in users}
        if not filters:
            return found
        if not self.connected.wait(limit):
            raise ConnectionError("the MQTT broker cannot be reached")
        lock, answered = threading.Lock(), threading.Event()
        last = [time.monotonic()]

        def on_message(client, userdata, message) -> None:
            parts = message.topic.split("/")
            if message.retain and message.payload and len(parts) == 3 and parts[2].startswith(FRIEND_PREFIX):
                with lock:
                    found.setdefault(parts[1], set()).add(parts[2][len(FRIEND_PREFIX):])
                    last[0] = time.monotonic()

        self.client.on_message = on_message
        self.client.on_subscribe = lambda client, userdata, mid, reasons, properties: answered.set()
        started = time.monotonic()
        for start in range(0, len(filters), SUBSCRIBE_CHUNK):
            answered.clear()
            self.client.subscribe([(topic, 1) for topic in filters[start:start + SUBSCRIBE_CHUNK]])
            answered.wait(limit)
        last[0] = time.monotonic()
        while time.monotonic() - started < limit:
            with lock:
                if time.monotonic() - last[0] >= quiet:
                    break
            time.sleep(quiet / 5)
        for start in range(0, len(filters), SUBSCRIBE_CHUNK):
            self.client.unsubscribe(filters[start:start + SUBSCRIBE_CHUNK])
        with lock:
            return {user: set(friends) for user, friends in found.items()}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def clear_friends(url: str, password: str | None, user: str, client_id: str) -> int:
    """Remove every friend the broker retains under ``user``'s name (a device removed); the
    number removed."""
    connection = MqttPublisher(url, password, client_id)
    try:
        held = connection.retained_friends([user]).get(user, set())
        for friend in held:
            topic = friend_topic(user, friend)
            connection.publish(topic, b"")
            connection.publish(topic + "/info", b"")
        return len(held)
    finally:
        connection.close()
