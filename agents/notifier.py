"""notifier: POST every event of ``gps.events`` to the webhooks that want it, once.

It reads ``gps.events`` with a consumer group of its own (``<app id>-notifier``), so
neither positions nor the events agent ever wait for a webhook. The webhooks are loaded
from Postgres at the start and again every ``RELOAD_SECONDS``; a webhook gets the events
published after it was created.

An outbox in Postgres, ``webhook_deliveries`` (``tracker.webhooks.outbox``), makes the
delivery survive crashes and replays. For each slice of a partition:

1. one row per (matching webhook, event), inserted with ``ON CONFLICT DO NOTHING`` and
   leased to this notifier, in one statement; only then are the slice's offsets let go
   (committed with the group's next commit). An event read again after ``kill -9`` finds
   its rows there and is not delivered again.
2. the rows this notifier inserted go to their webhook's sender (``tracker.webhooks.sender``:
   a bounded queue and its own tasks and HTTP session per webhook).
3. each attempt is recorded (batched, ``_write_outcomes``): delivered; or pending again,
   after ``TRACKER_WEBHOOK_RETRY_SECONDS`` doubled at each failure, with the lease let go;
   or, after ``TRACKER_WEBHOOK_MAX_ATTEMPTS``, failed, once the event and the reason are on
   ``gps.events.dlq``.

A poller (every ``POLL_SECONDS``) leases pending rows that are due and that nobody holds
(``FOR UPDATE SKIP LOCKED``): retries, rows a full queue could not take, and rows of a
notifier that died (its leases run out after ``LEASE_SECONDS``). Before an attempt whose
lease may run out during the request, the lease is renewed, or the attempt dropped if
another notifier holds the row by then.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from datetime import datetime, timezone
from typing import Awaitable, Callable

import orjson
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from tracker.events import model as events

from tracker.webhooks import outbox as webhook_outbox

from tracker.webhooks import store as webhook_store
from tracker.app import worker_service
from tracker.stream.consumer import GroupConsumer
from tracker.storage.pool import DATABASE_ERRORS
from tracker.stream.admin import ensure_topics
from tracker.metrics import WEBHOOK_ATTEMPTS, WEBHOOK_LAG_SECONDS
from tracker.resources import database, worker_producer
from tracker.settings import settings
from tracker.webhooks.outbox import Outcome
from tracker.webhooks.sender import Attempt, Delivery, Endpoint
from tracker.webhooks.model import Webhook, dead_letter, retry_delay

log = logging.getLogger(__name__)

#: An attempt renews its lease first when less than this (plus the request timeout) is left.
LEASE_MARGIN_SECONDS = 5.0
#: How long a notifier holds a row it inserted or claimed; after that another may take it.
#: Always longer than a request, so a renewed lease outlasts the attempt.
LEASE_SECONDS = max(30.0, 2 * settings.webhook_timeout + LEASE_MARGIN_SECONDS)
POLL_SECONDS = 0.5
RELOAD_SECONDS = 2.0
RETRY_SECONDS = 1.0
#: When the worker stops, requests in flight get this long to finish.
STOP_GRACE_SECONDS = 2.0

Key = tuple[int, str]


class Notifier(GroupConsumer):
    name = "notifier"

    def __init__(self, **kwargs) -> None:
        super().__init__(settings, settings.events_topic, f"{settings.app_id}-notifier", max_records=1000, **kwargs)
        #: Names this notifier's leases.
        self.owner = f"{settings.worker_id or socket.gethostname()}:{uuid.uuid4().hex[:12]}"
        self.webhooks: dict[int, Webhook] = {}
        self.endpoints: dict[int, Endpoint] = {}
        #: Rows in this notifier's hands: queued or being sent, or their outcome not yet written.
        self._held: set[Key] = set()
        self._outcomes: list[Outcome] = []
        self._releases: list[Key] = []
        self._wake_writer = asyncio.Event()
        self._write_lock = asyncio.Lock()

    # --- lifecycle ----------------------------------------------------------------------

    async def on_start(self) -> None:
        await database.ready()
        await worker_producer.ready()
        # Without Postgres there is nothing to match events with: they wait in Kafka, and the
        # worker starts regardless.
        self.add_future(self._start())

    async def _start(self) -> None:
        topics = {settings.events_topic: {}, settings.events_dlq_topic: {}}
        if not await self._until(lambda: ensure_topics(settings, topics), "create the events topics", KafkaError):
            return
        if not await self._until(self.reload, "load the webhooks", DATABASE_ERRORS):
            return
        await super().on_start()
        self.add_future(self._reload_forever())
        self.add_future(self._poll_forever())
        self.add_future(self._write_forever())

    async def _until(self, action: Callable[[], Awaitable], what: str, errors) -> bool:
        """Retry ``action`` until it succeeds (True) or the service stops (False)."""
        while not self.should_stop:
            try:
                await action()
                return True
            except errors as exc:
                log.warning("notifier: cannot %s yet (%r); retrying in %.0f s", what, exc, RETRY_SECONDS)
                await asyncio.sleep(RETRY_SECONDS)
        return False

    async def on_flush(self) -> None:
        """Let requests in flight finish, record every outcome, and give up the other leases
        so that another notifier takes them at once."""
        closing = [endpoint.close(STOP_GRACE_SECONDS) for endpoint in self.endpoints.values()]
        self.endpoints.clear()
        for unfinished in await asyncio.gather(*closing):
            self._releases += [(d.webhook_id, d.event_id) for d in unfinished]
        if await self._write_outcomes():
            try:
                async with database.connection() as conn:
                    await webhook_outbox.release_all(conn, self.owner)
            except DATABASE_ERRORS as exc:
                log.warning("notifier: leases not released (%r); they run out in %.0f s", exc, LEASE_SECONDS)

    # --- webhooks -----------------------------------------------------------------------

    async def reload(self) -> None:
        async with database.connection() as conn:
            webhooks = {webhook.webhook_id: webhook for webhook in await webhook_store.load(conn)}
        if self.should_stop:
            return  # the senders are closing
        for webhook_id, endpoint in list(self.endpoints.items()):
            if webhooks.get(webhook_id) != endpoint.webhook:  # removed (or changed by hand)
                del self.endpoints[webhook_id]
                self._let_go(await endpoint.close(0))
        for webhook_id, webhook in webhooks.items():
            if webhook_id not in self.endpoints:
                self.endpoints[webhook_id] = Endpoint(webhook, settings.webhook_timeout, self._prepare,
                                                      self._report, allowed=settings.webhook_allow_private).start()
        self.webhooks = webhooks

    async def _reload_forever(self) -> None:
        while not self.should_stop:
            await asyncio.sleep(RELOAD_SECONDS)
            try:
                await self.reload()
            except DATABASE_ERRORS as exc:
                log.warning("notifier: cannot reload the webhooks (%r); keeping %d", exc, len(self.webhooks))

    def _let_go(self, deliveries: list[Delivery]) -> None:
        """Deliveries this notifier will not attempt: their leases are released."""
        for delivery in deliveries:
            key = (delivery.webhook_id, delivery.event_id)
            self._held.discard(key)
            self._releases.append(key)
        if deliveries:
            self._wake_writer.set()

    # --- reading gps.events -------------------------------------------------------------

    async def handle(self, tp: TopicPartition, records: list) -> None:
        epoch = self.epoch(tp)
        rows: list[tuple[int, dict]] = []
        read_ms: dict[str, int] = {}
        webhooks = list(self.webhooks.values())
        for record in records:
            event = _event(record)
            if event is None:
                continue
            read_ms[event["id"]] = record.timestamp
            for webhook in webhooks:
                if webhook.wants(event) and _published_after(record.timestamp, webhook):
                    rows.append((webhook.webhook_id, event))
        if rows:
            inserted = await self._insert(tp, epoch, rows)
            if inserted is None:
                return  # stopping, or the partition moved on: read again from the last commit
            new, lease_expires = inserted
            for webhook_id, event in rows:
                key = (webhook_id, event["id"])
                if key in new:
                    new.discard(key)  # an event twice in one slice is offered once
                    self._offer(Delivery(webhook_id, event["id"], event, 0, lease_expires, read_ms[event["id"]]))
        self.done(tp, epoch, records[0].offset, records[-1].offset + 1)

    async def _insert(self, tp: TopicPartition, epoch: int, rows: list) -> tuple[set[Key], float] | None:
        """The outbox rows, inserted and committed (retried while Postgres is away): the new
        ones and when their lease surely holds until; None if this work is no longer wanted."""
        while True:
            lease_expires = time.monotonic() + LEASE_SECONDS
            try:
                async with database.connection() as conn:
                    return await webhook_outbox.insert(conn, rows, self.owner, LEASE_SECONDS), lease_expires
            except DATABASE_ERRORS as exc:
                if self.should_stop or self.epoch(tp) != epoch:
                    return None
                log.warning("notifier: cannot record %d deliveries (%r); retrying in %.0f s", len(rows), exc,
                            RETRY_SECONDS)
                await asyncio.sleep(RETRY_SECONDS)

    def _offer(self, delivery: Delivery) -> None:
        key = (delivery.webhook_id, delivery.event_id)
        if key in self._held:
            return  # in hand already (claimed again after its lease ran out in a long queue)
        endpoint = self.endpoints.get(delivery.webhook_id)
        if endpoint is not None and endpoint.offer(delivery):
            self._held.add(key)
        else:  # a full queue: the poller takes it when there is room, here or elsewhere
            self._releases.append(key)
            self._wake_writer.set()

    # --- attempts -----------------------------------------------------------------------

    async def _prepare(self, delivery: Delivery) -> bool:
        """Whether to make the attempt: the lease must outlast the request."""
        if delivery.lease_expires - time.monotonic() > settings.webhook_timeout + LEASE_MARGIN_SECONDS:
            return True
        asked = time.monotonic()
        try:
            async with database.connection() as conn:
                kept = await webhook_outbox.renew(conn, delivery.webhook_id, delivery.event_id, self.owner,
                                                  LEASE_SECONDS)
        except DATABASE_ERRORS:
            kept = False  # its lease runs out and the poller takes it again
        if kept:
            delivery.lease_expires = asked + LEASE_SECONDS
        else:
            self._held.discard((delivery.webhook_id, delivery.event_id))
        return kept

    async def _report(self, webhook: Webhook, delivery: Delivery, attempt: Attempt) -> None:
        number = delivery.attempts + 1
        delay = 0.0
        if attempt.ok:
            status = "delivered"
            if number == 1 and delivery.read_ms is not None:
                WEBHOOK_LAG_SECONDS.observe(max(0.0, time.time() - delivery.read_ms / 1000))
        elif number >= settings.webhook_max_attempts and await self._dead_letter(webhook, delivery, number,
                                                                                 attempt):
            status = "failed"
        else:
            status, delay = "pending", retry_delay(number, settings.webhook_retry_seconds)
        WEBHOOK_ATTEMPTS.labels("retry" if status == "pending" else status).inc()
        self._outcomes.append(Outcome(delivery.webhook_id, delivery.event_id, status, attempt.status, attempt.error,
                                      delay, datetime.now(timezone.utc), attempt.seconds))
        self._wake_writer.set()

    async def _dead_letter(self, webhook: Webhook, delivery: Delivery, attempts: int, attempt: Attempt) -> bool:
        """The event and the reason on ``gps.events.dlq``, acknowledged; False if Kafka refused."""
        letter = dead_letter(webhook, delivery.event, attempts, attempt.status, attempt.error,
                             datetime.now(timezone.utc))
        try:
            await worker_producer.producer.send_and_wait(
                settings.events_dlq_topic, key=str(delivery.event.get("marker_id", "")).encode(),
                value=orjson.dumps(letter, option=orjson.OPT_UTC_Z))
        except KafkaError as exc:
            log.warning("notifier: cannot dead-letter %s (%r); it stays pending", delivery.event_id, exc)
            return False
        log.warning("notifier: %s", letter["reason"])
        return True

    # --- Postgres: outcomes and the poller ----------------------------------------------

    async def _write_forever(self) -> None:
        while True:
            await self._wake_writer.wait()
            self._wake_writer.clear()
            while not await self._write_outcomes():
                await asyncio.sleep(RETRY_SECONDS)

    async def _write_outcomes(self) -> bool:
        """Record the outcomes and releases so far, in one transaction; False if Postgres failed
        (they are kept for the next try)."""
        async with self._write_lock:
            outcomes, releases = self._outcomes, self._releases
            if not outcomes and not releases:
                return True
            self._outcomes, self._releases = [], []
            try:
                async with database.connection() as conn, conn.transaction():
                    if outcomes:
                        await webhook_outbox.record(conn, outcomes, self.owner)
                    if releases:
                        await webhook_outbox.release(conn, releases, self.owner)
            except DATABASE_ERRORS as exc:
                log.warning("notifier: cannot record %d attempts (%r); retrying", len(outcomes), exc)
                self._outcomes[:0], self._releases[:0] = outcomes, releases
                return False
            for outcome in outcomes:
                self._held.discard((outcome.webhook_id, outcome.event_id))
            return True

    async def _poll_forever(self) -> None:
        while not self.should_stop:
            await asyncio.sleep(POLL_SECONDS)
            if self.should_stop:
                return
            room = {webhook_id: endpoint.room for webhook_id, endpoint in self.endpoints.items() if endpoint.room}
            if not room:
                continue
            lease_expires = time.monotonic() + LEASE_SECONDS
            try:
                async with database.connection() as conn:
                    due = await webhook_outbox.claim_due(conn, room, self.owner, LEASE_SECONDS)
            except DATABASE_ERRORS as exc:
                log.debug("notifier: poll failed (%r)", exc)
                continue
            for webhook_id, event_id, event, attempts in due:
                self._offer(Delivery(webhook_id, event_id, event, attempts, lease_expires))


def _event(record) -> dict | None:
    try:
        event = events.decode(record.value)
    except ValueError:
        event = None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        log.warning("notifier: %s[%d]@%d is not an event; skipped", record.topic, record.partition, record.offset)
        return None
    return event


def _published_after(timestamp_ms: int, webhook: Webhook) -> bool:
    return webhook.created_at is None or timestamp_ms >= webhook.created_at.timestamp() * 1000


notifier = Notifier()
if settings.events_enabled:
    worker_service(notifier)
