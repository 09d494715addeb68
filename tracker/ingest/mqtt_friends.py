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
"""
from __future__ import annotations

import logging
from typing import Callable, Mapping

import orjson

from tracker.ingest.friends import friends
from tracker.accounts.permissions import Access
from tracker.ingest.protocols import owntracks

log = logging.getLogger(__name__)

#: The MQTT 5 user property every friend message carries.
MARK = ("tracker", "friend")

#: publish(topic, payload): retained, QoS 1; an empty payload removes the topic's message
Publish = Callable[[str, bytes], None]


def friend_topic(user: str, friend: str) -> str:
    return f"owntracks/{user}/friend.{friend}"


class FriendsPublisher:
    def __init__(self, publish: Publish) -> None:
        self.publish = publish
        #: user -> friend -> (the fix time published, the name published)
        self.published: dict[str, dict[str, tuple[int, str | None]]] = {}

    def update(self, phones: Mapping[str, Access], rows: Mapping[str, list]) -> int:
        """Publish what changed for ``phones`` (the phones this worker publishes for, each
        with what it may see); the number of messages published. Phones left out are
        forgotten without removing anything: another worker publishes for them now."""
        count = 0
        for user in set(self.published) - set(phones):
            del self.published[user]
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
        self.client.connect_async(parts.hostname or "127.0.0.1",
                                  parts.port or (8883 if parts.scheme == "mqtts" else 1883), keepalive=30)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1, retain=True, properties=self.properties)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
