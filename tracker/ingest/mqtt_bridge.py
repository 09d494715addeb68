"""``tracker mqtt-bridge``: OwnTracks over MQTT into ``gps.positions``.

The bridge subscribes to ``owntracks/+/+`` as a *shared* subscription
(``$share/<TRACKER_MQTT_SHARE_GROUP>/owntracks/+/+``), so several bridges split the messages
between them, with QoS 1 and a persistent session (``--client-id``, one per bridge, kept by
the broker for ``TRACKER_MQTT_SESSION_EXPIRY`` seconds while the bridge is away: restart a
bridge under the same id, or its share of the messages waits there). Each message is
acknowledged to the broker only once Kafka has acknowledged what it became: a bridge killed
at any moment loses nothing, because the broker delivers again what was not acknowledged
(and the history ignores a position it already holds).

- ``owntracks/<user>/<device>``: the MQTT user is the device id (``tracker devices add``),
  the marker id; the broker's ACL lets a user publish only under its own name, so the
  topic's user can be trusted. ``<device>`` (the phone's name in the app) is kept as the
  ``device`` attribute, as the HTTP endpoint keeps ``X-Limit-D``.
- Each message is converted by ``tracker.ingest.protocols.owntracks``, the code the HTTP
  endpoint uses: a ``location`` (or a ``transition`` with its place and time) is a position,
  a ``location`` without coordinates a heartbeat; one that is not valid goes to
  ``gps.positions.dlq`` with its reason. Other types (``waypoint``, ``lwt``, ``card``, ...,
  and types it does not know) are acknowledged and counted (the counts are printed every
  10 s), not stored.
- The records of many messages share producer batches (``tracker.ingest.producer``): a
  message costs an append to a batch, not a producer send of its own.
- Friends' positions the workers publish under each phone's name (``tracker.ingest.mqtt_friends``,
  marked with the user property ``tracker: friend``) are acknowledged and counted, not stored.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from urllib.parse import urlsplit

import orjson

from tracker.stream.dead_letters import dead_letter
from tracker.stream.producer import positions_producer
from tracker.ingest.mqtt_friends import MARK
from tracker.ingest.producer import Coalescer
from tracker.positions.model import MARKER_ID_PATTERN, InvalidPosition, micros_of, parse_report
from tracker.ingest.protocols import owntracks
from tracker.settings import Settings

log = logging.getLogger(__name__)

TOPIC_FILTER = "owntracks/+/+"
#: Messages the broker may have in flight to one bridge (its Receive Maximum, MQTT 5).
IN_FLIGHT = 1000
#: Most packets read at once when the socket is readable, before other work gets a turn.
READ_BURST = 256
PROGRESS_SECONDS = 10.0


class Bridge:
    """The bridge's MQTT client runs on the event loop's own thread (paho's external loop: the
    socket's reads and writes are the loop's callbacks), so a message costs no hand-over
    between threads: it is converted as it is read, and acknowledged when its batch is."""

    def __init__(self, config: Settings, client_id: str) -> None:
        self.config, self.client_id = config, client_id
        self.counts: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client = None
        self._sender: Coalescer | None = None
        #: a batch's future -> the messages it carries, acknowledged to the broker once it is
        self._in_flight: dict[asyncio.Future, list] = {}
        self._received = 0
        self._now = datetime.now(timezone.utc)

    def _mqtt_client(self):
        import paho.mqtt.client as mqtt
        from paho.mqtt.properties import Properties
        from paho.mqtt.packettypes import PacketTypes

        url = urlsplit(self.config.mqtt_url)
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5,
                             manual_ack=True)
        if url.username:
            client.username_pw_set(url.username, self.config.mqtt_password)
        if url.scheme == "mqtts":
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_socket_open = lambda c, userdata, sock: self._loop.add_reader(sock, self._read)
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = lambda c, userdata, sock: self._loop.add_writer(sock, client.loop_write)
        client.on_socket_unregister_write = lambda c, userdata, sock: self._loop.remove_writer(sock)
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.config.mqtt_session_expiry  # unacknowledged messages wait for it
        properties.ReceiveMaximum = IN_FLIGHT
        client.connect_async(url.hostname or "127.0.0.1", url.port or (8883 if url.scheme == "mqtts" else 1883),
                             keepalive=30, clean_start=False, properties=properties)
        return client

    def _on_socket_close(self, client, userdata, sock) -> None:
        self._loop.remove_reader(sock)
        self._loop.remove_writer(sock)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("mqtt-bridge: the broker refused the connection: %s", reason_code)
            return
        client.subscribe(f"$share/{self.config.mqtt_share_group}/{TOPIC_FILTER}", qos=1)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        print(f"mqtt-bridge: subscribed ({', '.join(map(str, reason_codes))})", file=sys.stderr, flush=True)

    def _read(self) -> None:
        """The socket is readable: the packets that have arrived, up to ``READ_BURST``."""
        import paho.mqtt.client as mqtt

        self._now = datetime.now(timezone.utc)
        for _ in range(READ_BURST):
            received = self._received
            if self._client.loop_read() != mqtt.MQTT_ERR_SUCCESS or self._received == received:
                return  # an error (paho closes the socket; the keeper reconnects), or nothing more

    def _on_message(self, client, userdata, message) -> None:  # within loop_read, on the event loop
        self._received += 1
        sent = self._forward(self._sender, message, self._now)
        if sent is None:
            self._ack(message)
            return
        carried = self._in_flight.get(sent)
        if carried is None:
            carried = self._in_flight[sent] = []
            sent.add_done_callback(lambda done: self._settle(done, self._in_flight.pop(done, ())))
        carried.append(message)

    def _ack(self, message) -> None:
        self._client.ack(message.mid, message.qos)

    async def _keep_connected(self, stop: asyncio.Event) -> None:
        """Connect, and again after the connection is lost; paho's keepalive once a second."""
        while not stop.is_set():
            if self._client.socket() is None:
                try:
                    self._client.reconnect()
                except OSError as exc:
                    log.warning("mqtt-bridge: cannot reach the broker (%r); trying again", exc)
            else:
                self._client.loop_misc()
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except asyncio.TimeoutError:
                pass

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        producer = positions_producer(self.config)
        await producer.start()
        self._sender = Coalescer(producer, self.config.topic_partitions)
        self._client = self._mqtt_client()
        keeper = asyncio.ensure_future(self._keep_connected(stop))
        try:
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), PROGRESS_SECONDS)
                except asyncio.TimeoutError:
                    self.progress()
            if self._in_flight:
                await asyncio.wait(list(self._in_flight), timeout=10)
        finally:
            keeper.cancel()
            if self._client.socket() is not None:
                self._client.disconnect()
                self._client.loop_write()  # the acknowledgements queued, then the disconnect
            await producer.stop()
            self.progress()

    def _settle(self, sent: asyncio.Future, messages: list) -> None:
        if sent.cancelled() or sent.exception() is not None:
            # Not acknowledged: the broker sends them again (after a reconnect); stop reading
            # so that it does, rather than acknowledging later messages meanwhile.
            log.error("mqtt-bridge: Kafka did not take %d messages (%r); reconnecting", len(messages),
                      None if sent.cancelled() else sent.exception())
            self.counts["kafka_failed"] += len(messages)
            try:
                self._client.reconnect()
            except OSError:
                pass  # the keeper connects again
            return
        for message in messages:
            self._ack(message)

    def _forward(self, sender: Coalescer, message, now: datetime) -> asyncio.Future | None:
        """Produce what ``message`` becomes; the future of its batch, or None when nothing is sent."""
        parts = message.topic.split("/")
        if is_friend_message(message):
            self.counts["friend"] += 1  # published by a worker (tracker.ingest.mqtt_friends), already stored
            return None
        try:
            if len(parts) != 3 or MARKER_ID_PATTERN.fullmatch(parts[1]) is None:
                raise InvalidPosition("bad_topic", f"expected owntracks/<device id>/<phone>, got {message.topic[:80]!r}")
            try:
                body = orjson.loads(message.payload)
            except orjson.JSONDecodeError:
                raise InvalidPosition("not_json", "the message is not valid JSON") from None
            kind = owntracks.message_type(body)
            record = owntracks.convert(body, parts[1])
            if record is None:
                self.counts[kind] += 1
                return None
            record["attributes"] = {**(record["attributes"] or {}), "device": parts[2][:256]}
            is_heartbeat, _ = parse_report(record, micros_of(now))
        except InvalidPosition as error:
            self.counts["rejected"] += 1
            letter = dead_letter(message.payload, error, now, message.topic, -1, message.mid)
            (sent,) = sender.submit(self.config.dlq_topic, [(parts[1].encode() if len(parts) > 1 else None,
                                                             orjson.dumps(letter))])
            return sent
        self.counts["heartbeat" if is_heartbeat else kind] += 1
        (sent,) = sender.submit(self.config.topic, [(parts[1].encode(), orjson.dumps(record))])
        return sent

    def progress(self) -> None:
        print("mqtt-bridge: " + ", ".join(f"{kind} {count:,}" for kind, count in sorted(self.counts.items()))
              if self.counts else "mqtt-bridge: no messages yet", file=sys.stderr, flush=True)


def is_friend_message(message) -> bool:
    properties = getattr(message, "properties", None)
    return MARK in (getattr(properties, "UserProperty", None) or ())


async def serve(config: Settings, client_id: str | None) -> int:
    from tracker.ingest import mqtt_passwords

    if mqtt_passwords.ensure_bridge_user():  # a password file shared with the broker (docker compose)
        print("mqtt-bridge: its user written to the broker's password file", file=sys.stderr, flush=True)
    bridge = Bridge(config, client_id or f"tracker-bridge-{socket.gethostname()}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(f"mqtt-bridge: {config.mqtt_url} {TOPIC_FILTER} (shared, group {config.mqtt_share_group}) -> {config.topic}",
          file=sys.stderr, flush=True)
    await bridge.run(stop)
    return 0
