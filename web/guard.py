"""The worker's listener, guarded against clients that hold connections open.

Every connection to the worker's web server passes through ``GuardedConnection``, a protocol
in front of aiohttp's own (``GuardedWeb``, the app's web driver, ``tracker.app``):

- a client gets ``HEADER_SECONDS`` to send a request's headers, from the moment it connects
  or sends the first byte of its next request; then it gets 408 and the connection closes;
- while a request's body is still coming, ``BODY_SECONDS`` without a byte of it close the
  connection;
- an idle keep-alive connection is closed after ``KEEPALIVE_SECONDS``;
- an address holds at most ``TRACKER_MAX_CONNECTIONS_PER_ADDRESS`` connections; one more is
  answered 503 and closed at once. The addresses of ``TRACKER_TRUSTED_PROXIES`` (nginx in
  front of the workers, the other workers) are not counted, and for them the client's
  address is the last one of ``X-Forwarded-For`` that is not a proxy's (``client_address``).

nginx in the Docker stack has the same limits, but a worker can also be reached without it
(``make run``, a deployment without a proxy), and then these are the only ones.
Answers streamed to a client (the live feed, history exports) are written with
``write``: a client that stops reading for ``TRACKER_WRITE_TIMEOUT`` is disconnected.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections import Counter

from aiohttp import web as aioweb
from faust.web.drivers import aiohttp as aiohttp_driver

from tracker.settings import settings

log = logging.getLogger(__name__)

HEADER_SECONDS = 10.0
BODY_SECONDS = 10.0
#: How long an idle keep-alive connection stays open (as nginx's keepalive_timeout).
KEEPALIVE_SECONDS = 30.0
#: How often deadlines are checked.
CHECK_SECONDS = 1.0
REFUSED = (b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 5\r\n"
           b"Content-Type: text/plain\r\nContent-Length: 43\r\n\r\ntoo many connections from this address; retry")
TIMED_OUT = (b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain\r\n"
             b"Content-Length: 37\r\n\r\nthe request did not arrive in time\r\n\r\n")


def _address(text: str | None):
    try:
        return ipaddress.ip_address((text or "").split("%", 1)[0])
    except ValueError:
        return None


def is_trusted_proxy(address: str | None, proxies=None) -> bool:
    parsed = _address(address)
    proxies = settings.trusted_proxies if proxies is None else proxies
    return parsed is not None and any(parsed.version == net.version and parsed in net for net in proxies)


def client_address(request, proxies=None) -> str:
    """The address of the client behind ``request``: its peer, or, when the peer is a
    trusted proxy, the last address of ``X-Forwarded-For`` that is not one."""
    peer = request.remote or ""
    if not is_trusted_proxy(peer, proxies):
        return peer
    for hop in reversed([part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",")]):
        if _address(hop) is not None and not is_trusted_proxy(hop, proxies):
            return hop
    return peer


class Connections:
    """The listener's connections: per-address counts and each connection's deadlines."""

    def __init__(self, per_address: int, proxies=(), header_seconds: float = HEADER_SECONDS,
                 body_seconds: float = BODY_SECONDS) -> None:
        self.per_address = per_address
        self.proxies = tuple(proxies)
        self.header_seconds = header_seconds
        self.body_seconds = body_seconds
        self.by_address: Counter[str] = Counter()
        self.open: dict[asyncio.BaseTransport, GuardedConnection] = {}
        self.refused = 0
        self.timed_out = 0
        self._watch: asyncio.Task | None = None

    def admit(self, connection: "GuardedConnection", address: str) -> bool:
        if not is_trusted_proxy(address, self.proxies):
            if self.by_address[address] >= self.per_address:
                self.refused += 1
                return False
            self.by_address[address] += 1
            connection.counted = True
        self.open[connection.transport] = connection
        if self._watch is None or self._watch.done():
            self._watch = asyncio.ensure_future(self._watch_forever())
        return True

    def release(self, connection: "GuardedConnection") -> None:
        self.open.pop(connection.transport, None)
        if connection.counted:
            self.by_address[connection.address] -= 1
            if self.by_address[connection.address] <= 0:
                del self.by_address[connection.address]

    def of(self, request) -> "GuardedConnection | None":
        return self.open.get(request.transport)

    async def _watch_forever(self) -> None:
        while self.open:
            await asyncio.sleep(CHECK_SECONDS)
            now = time.monotonic()
            for connection in list(self.open.values()):
                connection.check(now)


class GuardedConnection(asyncio.Protocol):
    """aiohttp's protocol for one connection, behind the deadlines and the address limit."""

    def __init__(self, connections: Connections, inner: asyncio.Protocol) -> None:
        self.connections = connections
        self.inner = inner
        self.transport: asyncio.Transport | None = None
        self.address = ""
        self.counted = False
        self.admitted = False
        #: When the headers of the request now awaited started to be awaited; None when none is.
        self.awaiting_since: float | None = None
        self.request = None
        self.last_data = time.monotonic()
        #: Called once when the connection is lost (a stream's view ends at once).
        self.on_lost: list = []

    # --- asyncio's protocol ----------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.address = peer[0] if isinstance(peer, tuple) else ""
        if not self.connections.admit(self, self.address):
            transport.write(REFUSED)
            transport.close()
            return
        self.admitted = True
        self.awaiting_since = time.monotonic()
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if not self.admitted:
            return
        self.last_data = time.monotonic()
        if self.request is None and self.awaiting_since is None:
            self.awaiting_since = self.last_data
        self.inner.data_received(data)

    def eof_received(self):
        return self.inner.eof_received() if self.admitted else None

    def connection_lost(self, exc) -> None:
        if not self.admitted:
            return
        self.connections.release(self)
        self.inner.connection_lost(exc)
        for callback in self.on_lost:
            callback()
        self.on_lost.clear()

    def pause_writing(self) -> None:
        if self.admitted:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.admitted:
            self.inner.resume_writing()

    # --- the requests ------------------------------------------------------------------
    def started(self, request) -> None:
        self.request, self.awaiting_since = request, None

    def finished(self) -> None:
        self.request = None

    def check(self, now: float) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if self.request is None:
            if self.awaiting_since is not None and now - self.awaiting_since > self.connections.header_seconds:
                self.connections.timed_out += 1
                self.transport.write(TIMED_OUT)
                self.transport.close()
        elif not self.request.content.is_eof() and now - self.last_data > self.connections.body_seconds:
            self.connections.timed_out += 1
            self.transport.close()


#: The listener's ``Connections``, kept in the aiohttp application.
CONNECTIONS = aioweb.AppKey("tracker_connections", Connections)


def on_connection_lost(request, callback) -> None:
    """Call ``callback()`` once ``request``'s connection is lost (at once if it is already)."""
    connections = request.app.get(CONNECTIONS)
    connection = connections.of(request) if connections is not None else None
    if connection is None or request.transport is None or request.transport.is_closing():
        callback()
    else:
        connection.on_lost.append(callback)


def guard_middleware(connections: Connections):
    @aioweb.middleware
    async def middleware(request, handler):
        connection = connections.of(request)
        if connection is not None:
            connection.started(request)
        try:
            return await handler(request)
        finally:
            if connection is not None:
                connection.finished()

    return middleware


class GuardedSite(aioweb.TCPSite):
    """aiohttp's TCP site, each connection behind a ``GuardedConnection``."""

    def __init__(self, runner, host, port, *, connections: Connections, **kwargs) -> None:
        super().__init__(runner, host, port, **kwargs)
        self.connections = connections

    async def start(self) -> None:
        self._runner._reg_site(self)
        server = self._runner.server
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: GuardedConnection(self.connections, server()), self._host, self._port,
            ssl=self._ssl_context, backlog=self._backlog, reuse_address=self._reuse_address,
            reuse_port=self._reuse_port)


class GuardedWeb(aiohttp_driver.Web):
    """Faust's aiohttp web driver, serving through a ``GuardedSite`` (the app's ``web`` setting,
    ``tracker.app``)."""

    def __init__(self, app, **kwargs) -> None:
        super().__init__(app, **kwargs)
        self.connections = Connections(settings.max_connections_per_address, settings.trusted_proxies)
        self.web_app.middlewares.append(guard_middleware(self.connections))
        self.web_app[CONNECTIONS] = self.connections
        self.guarded_runner: aioweb.AppRunner | None = None

    async def start_server(self) -> None:
        self.guarded_runner = aioweb.AppRunner(self.web_app, access_log=None, keepalive_timeout=KEEPALIVE_SECONDS)
        await self.guarded_runner.setup()
        await GuardedSite(self.guarded_runner, self.app.conf.web_bind, self.app.conf.web_port,
                          ssl_context=self.app.conf.web_ssl_context, connections=self.connections).start()

    async def stop_server(self) -> None:
        if self.guarded_runner is not None:
            await self.guarded_runner.cleanup()


async def write(request, response: aioweb.StreamResponse, data: bytes, timeout: float | None = None) -> None:
    """Write to a streamed answer; a client that has not taken it within ``timeout``
    (``TRACKER_WRITE_TIMEOUT``) is disconnected (``ConnectionResetError``)."""
    try:
        await asyncio.wait_for(response.write(data), settings.write_timeout if timeout is None else timeout)
    except asyncio.TimeoutError:
        if request.transport is not None:
            request.transport.abort()
        raise ConnectionResetError("the client did not read its answer in time") from None
