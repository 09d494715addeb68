"""One webhook's sender: a bounded queue of deliveries and ``SENDERS`` tasks that POST them,
on an HTTP session (and connection pool) of its own. A slow or dead endpoint fills its own
queue and holds its own tasks, never another webhook's; what does not fit waits in
Postgres (the notifier leaves it for its poller).

The sender only makes attempts: ``prepare`` (is the lease still ours?) runs before each,
``report`` gets each result; both are the notifier's. It reaches only the addresses
``tracker.webhooks.destinations`` allows, checked after resolution at every attempt, and
keeps of an answer its status and the time it took, never its body; a failure without an
answer is one of three errors (no answer in time, refused address, no HTTP answer), so
that deliveries do not tell an open port from a closed one."""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

import aiohttp

from tracker.webhooks.destinations import REFUSED_ERROR, GuardedResolver, RefusedDestination, host_refusal
from tracker.webhooks.model import Webhook, body_of, request_headers

log = logging.getLogger(__name__)

#: Requests in flight to one webhook at most.
SENDERS = 4
#: Deliveries waiting for one webhook's senders at most.
QUEUE_SIZE = 100
#: The error of an attempt that got no HTTP answer (could not connect, or not HTTP).
NO_ANSWER = "no HTTP answer"


@dataclass(eq=False)
class Delivery:
    """One attempt to make: an event for a webhook, leased to this notifier."""
    webhook_id: int
    event_id: str
    event: dict
    attempts: int  # made before this one
    lease_expires: float  # time.monotonic() before which the lease surely holds
    read_ms: int | None = None  # the Kafka timestamp of the event's record, when read from gps.events


@dataclass(frozen=True)
class Attempt:
    ok: bool
    status: int | None  # the HTTP status, if there was an answer
    error: str | None  # what went wrong, if anything
    seconds: float


class Endpoint:
    def __init__(self, webhook: Webhook, timeout: float, prepare: Callable[[Delivery], Awaitable[bool]],
                 report: Callable[[Webhook, Delivery, Attempt], Awaitable[None]], *, senders: int = SENDERS,
                 queue_size: int = QUEUE_SIZE, allowed: tuple = ()) -> None:
        """``allowed``: the networks a delivery may reach beyond public addresses."""
        self.webhook = webhook
        self.timeout = timeout
        self.allowed = allowed
        self.prepare = prepare
        self.report = report
        self.senders = senders
        self.queue: asyncio.Queue[Delivery] = asyncio.Queue(queue_size)
        self.session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task] = []
        self._closing = False
        self._busy: set[asyncio.Task] = set()  # senders with a delivery in hand
        self._unfinished: list[Delivery] = []

    def start(self) -> "Endpoint":
        self.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            connector=aiohttp.TCPConnector(limit=self.senders, resolver=GuardedResolver(self.allowed)),
            headers={"User-Agent": "gps-tracker-webhooks"},
        )
        self._tasks = [asyncio.ensure_future(self._send_forever()) for _ in range(self.senders)]
        return self

    @property
    def room(self) -> int:
        """Deliveries the queue takes now."""
        return 0 if self._closing else self.queue.maxsize - self.queue.qsize()

    def offer(self, delivery: Delivery) -> bool:
        """Queue a delivery; False if the queue is full (or closing)."""
        if self._closing:
            return False
        try:
            self.queue.put_nowait(delivery)
        except asyncio.QueueFull:
            return False
        return True

    async def close(self, grace: float) -> list[Delivery]:
        """Stop: requests in flight get ``grace`` seconds to finish (and be reported); the
        deliveries not attempted or cut short are returned."""
        self._closing = True
        busy = set(self._busy)
        for task in self._tasks:
            if task not in busy:
                task.cancel()  # idle, waiting on the queue
        if busy and grace > 0:
            await asyncio.wait(busy, timeout=grace)  # each ends after its delivery
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        while not self.queue.empty():
            self._unfinished.append(self.queue.get_nowait())
        if self.session is not None:
            await self.session.close()
        unfinished, self._unfinished = self._unfinished, []
        return unfinished

    async def _send_forever(self) -> None:
        me = asyncio.current_task()
        while not self._closing:
            delivery = await self.queue.get()
            self._busy.add(me)
            try:
                if await self.prepare(delivery):
                    await self.report(self.webhook, delivery, await self.post(delivery))
            except asyncio.CancelledError:
                self._unfinished.append(delivery)
                raise
            except Exception:  # noqa: BLE001 - one bad delivery must not stop the webhook's sender
                log.exception("webhook %d: delivery of %s failed", self.webhook.webhook_id, delivery.event_id)
            finally:
                self._busy.discard(me)

    async def post(self, delivery: Delivery) -> Attempt:
        """One POST of the delivery's event, signed."""
        body = body_of(delivery.event)
        headers = request_headers(self.webhook.secret, delivery.event, body, delivery.attempts + 1)
        started = time.monotonic()
        if host_refusal(self.webhook.url, self.allowed) is not None:  # an address in the URL is not resolved
            return Attempt(False, None, REFUSED_ERROR, 0.0)
        try:
            async with self.session.post(self.webhook.url, data=body, headers=headers,
                                         allow_redirects=False) as response:
                ok = 200 <= response.status < 300
                return Attempt(ok, response.status, None if ok else f"HTTP {response.status}",
                               time.monotonic() - started)
        except asyncio.TimeoutError:
            error = f"no answer within {self.timeout:g} s"
        except aiohttp.ClientConnectorError as exc:
            error = REFUSED_ERROR if isinstance(exc.os_error, RefusedDestination) else NO_ANSWER
        except (aiohttp.ClientError, OSError, ValueError):
            error = NO_ANSWER
        return Attempt(False, None, error, time.monotonic() - started)
