"""Webhooks: what is accepted, which events each one wants, how a request is signed, when
a failed one is tried again, and one sender never waiting for another."""
import asyncio
import hashlib
import hmac
import time
from datetime import datetime, timezone

import orjson
import pytest

from tracker.accounts.permissions import grants_permit
from tracker.settings import parse_networks
from tracker.webhooks.destinations import (REFUSED_ERROR, GuardedResolver, RefusedDestination, host_refusal, is_refused,
                                           redact, resolution_refusal)
from tracker.webhooks.sender import NO_ANSWER, Attempt, Delivery, Endpoint
from tracker.testing import free_port, serve_http
from tracker.webhooks.model import (BadWebhook, Webhook, body_of, dead_letter, parse_webhook, request_headers, retry_delay,
                              signature, verify)

#: The receivers of these tests listen on loopback, which webhooks reach only when allowed.
LOOPBACK = parse_networks("127.0.0.0/8")
EVENT = {"id": "0f3a", "marker_id": "van-7", "type": "geofence_enter", "time": "2026-11-27T10:15:00Z",
         "position": {"lat": 48.85, "lon": 2.35}, "geofence_id": 3, "geofence_name": "depot"}


# --- signing ---------------------------------------------------------------------------

def test_the_signature_is_the_hex_hmac_sha256_of_the_body_keyed_with_the_secret():
    # RFC 4231-style check against a published vector (HMAC-SHA256, key "key").
    assert signature("key", b"The quick brown fox jumps over the lazy dog") == \
        "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"


def test_a_receiver_accepts_the_exact_body_only():
    body = body_of(EVENT)
    header = signature("s3cret", body)
    assert verify("s3cret", body, header)
    assert not verify("s3cret", body.replace(b"van-7", b"van-8"), header)
    assert not verify("other", body, header)
    assert not verify("s3cret", body, None)
    assert not verify("s3cret", body, header.upper())


def test_every_attempt_sends_the_same_bytes_whatever_the_key_order():
    reordered = dict(reversed(list(EVENT.items())))
    assert body_of(reordered) == body_of(EVENT)
    assert orjson.loads(body_of(EVENT)) == EVENT


def test_the_headers_name_the_event_its_id_the_attempt_and_sign_the_body():
    body = body_of(EVENT)
    headers = request_headers("s3cret", EVENT, body, 3)
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers == {"Content-Type": "application/json", "X-Tracker-Signature": expected,
                       "X-Tracker-Event": "geofence_enter", "X-Tracker-Delivery": "0f3a", "X-Tracker-Attempt": "3"}


# --- matching --------------------------------------------------------------------------

@pytest.mark.parametrize("types, markers, event, wanted", [
    ((), (), EVENT, True),
    (("geofence_enter",), (), EVENT, True),
    (("geofence_exit", "overspeed"), (), EVENT, False),
    ((), ("van-7",), EVENT, True),
    ((), ("van-70",), EVENT, False),
    ((), ("van-",), EVENT, False),  # an id, not a prefix
    ((), ("van-*",), EVENT, True),
    ((), ("car-*", "van-7"), EVENT, True),
    ((), ("car-*",), EVENT, False),
    (("geofence_enter",), ("car-*",), EVENT, False),
    (("offline",), ("van-*",), {**EVENT, "type": "offline"}, True),
])
def test_a_webhook_wants_the_events_of_its_types_and_markers(types, markers, event, wanted):
    assert Webhook(1, "http://h/", "s", types, markers).wants(event) is wanted


def test_grants_are_ids_or_prefixes_ending_in_a_star():
    assert grants_permit(["truck-*"], "truck-9") and grants_permit(["truck-9"], "truck-9")
    assert not grants_permit(["truck-9"], "truck-90") and not grants_permit([], "truck-9")


# --- retries ---------------------------------------------------------------------------

def test_the_wait_doubles_after_each_failed_attempt_up_to_a_cap():
    assert [retry_delay(n, 1.0) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 64, 128]
    assert [retry_delay(n, 0.1) for n in (1, 2, 3)] == pytest.approx([0.1, 0.2, 0.4])
    assert retry_delay(20, 1.0) == 600.0
    assert retry_delay(10_000, 1.0, cap=30.0) == 30.0


def test_a_dead_letter_says_which_webhook_failed_how_often_and_why():
    webhook = Webhook(4, "https://hooks.example.org/x?token=s3cret", "s")
    letter = dead_letter(webhook, EVENT, 8, 503, "HTTP 503", datetime(2026, 11, 27, tzinfo=timezone.utc))
    assert letter["reason"] == "webhook 4 (https://hooks.example.org/x?…) failed 8 attempts; last: HTTP 503"
    assert (letter["webhook_id"], letter["url"], letter["attempts"], letter["last_status"], letter["last_error"],
            letter["event"]) == (4, "https://hooks.example.org/x?…", 8, 503, "HTTP 503", EVENT)
    assert "no answer within 5 s" in dead_letter(webhook, EVENT, 8, None, "no answer within 5 s", datetime.now())["reason"]


# --- validation ------------------------------------------------------------------------

def test_a_valid_webhook_is_kept_as_given_without_repeats():
    new = parse_webhook({"url": "https://hooks.example.org/tracker?x=1", "types": ["overspeed", "overspeed"],
                         "markers": ["van-*", "car-1"]})
    assert (new.url, new.types, new.markers) == ("https://hooks.example.org/tracker?x=1", ("overspeed",),
                                                 ("van-*", "car-1"))
    assert parse_webhook({"url": "http://93.184.215.14:8080/h"}).types == ()
    assert parse_webhook({"url": "http://127.0.0.1:8080/h"}, allowed=LOOPBACK).url == "http://127.0.0.1:8080/h"


@pytest.mark.parametrize("body, says", [
    ([], "a webhook is"),
    ({}, "url"),
    ({"url": 5}, "url"),
    ({"url": "ftp://example.org/x"}, "http:// or https://"),
    ({"url": "javascript:alert(1)"}, "http:// or https://"),
    ({"url": "https:///path"}, "host"),
    ({"url": "http://example.org:99999/"}, "malformed"),
    ({"url": "http://example.org/a b"}, "spaces"),
    ({"url": "http://example.org/#top"}, "fragment"),
    ({"url": "http://example.org/" + "x" * 2000}, "at most 2000"),
    ({"url": "http://h/", "types": "geofence_enter"}, "types must be a list"),
    ({"url": "http://h/", "types": ["geofence_enter", "teleport"]}, "'teleport' is not one of"),
    ({"url": "http://h/", "markers": "van-1"}, "markers must be a list"),
    ({"url": "http://h/", "markers": ["bad id!"]}, "not a marker id"),
    ({"url": "http://h/", "markers": ["*"]}, "not a marker id"),
    ({"url": "http://h/", "type": ["overspeed"]}, "unknown field 'type'"),
    ({"url": "https://user:pass@hooks.example.org/"}, "credentials"),
    ({"url": "https://token@hooks.example.org/"}, "credentials"),
    ({"url": "http://127.0.0.1:8080/"}, "127.0.0.1 is not a public address"),
    ({"url": "http://0.0.0.0/"}, "not a public address"),
    ({"url": "http://169.254.169.254/latest/meta-data"}, "not a public address"),
    ({"url": "http://[::1]:6066/"}, "::1 is not a public address"),
    ({"url": "http://[::ffff:127.0.0.1]/"}, "not a public address"),
    ({"url": "http://[fe80::1]/"}, "not a public address"),
    ({"url": "http://[fd12::1]/"}, "not a public address"),
    ({"url": "http://10.1.2.3/"}, "not a public address"),
    ({"url": "http://172.16.0.9/"}, "not a public address"),
    ({"url": "http://192.168.1.1/"}, "not a public address"),
    ({"url": "http://100.64.0.1/"}, "not a public address"),
    ({"url": "http://224.0.0.1/"}, "not a public address"),
    ({"url": "http://localhost:5432/"}, "this machine"),
    ({"url": "http://LOCALHOST./"}, "this machine"),
    ({"url": "http://db.localhost/"}, "this machine"),
])
def test_a_bad_webhook_is_refused_with_what_is_wrong(body, says):
    with pytest.raises(BadWebhook) as caught:
        parse_webhook(body)
    assert says in str(caught.value)


# --- the sender ------------------------------------------------------------------------

class Receiver:
    """A local HTTP endpoint: per path, an answer status and a delay; records every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict, bytes, float]] = []
        self.answers: dict[str, tuple[int, float]] = {}

    async def __aenter__(self):
        from aiohttp import web

        async def handle(request):
            body = await request.read()
            self.requests.append((request.path, dict(request.headers), body, time.monotonic()))
            status, delay = self.answers.get(request.path, (200, 0.0))
            await asyncio.sleep(delay)
            return web.Response(status=status, text="busy" if status >= 300 else "ok")

        app = web.Application()
        app.router.add_post("/{tail:.*}", handle)
        self.runner, self.url = await serve_http(app, 0.1)
        return self

    async def __aexit__(self, *exc_info):
        await self.runner.cleanup()


class Reports:
    def __init__(self) -> None:
        self.seen: list[tuple[int, str, Attempt, float]] = []
        self.arrived = asyncio.Event()

    async def prepare(self, delivery) -> bool:
        return True

    async def report(self, webhook, delivery, attempt) -> None:
        self.seen.append((webhook.webhook_id, delivery.event_id, attempt, time.monotonic()))
        self.arrived.set()

    async def wait(self, count: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.seen) < count:
            assert time.monotonic() < deadline, f"{len(self.seen)} of {count} attempts reported"
            self.arrived.clear()
            await asyncio.wait([asyncio.ensure_future(self.arrived.wait())], timeout=0.1)


def delivery(webhook_id: int, event_id: str, attempts: int = 0) -> Delivery:
    return Delivery(webhook_id, event_id, {**EVENT, "id": event_id}, attempts, time.monotonic() + 60)


async def test_a_delivery_is_one_signed_post_and_a_refusal_or_silence_is_a_failed_attempt():
    reports = Reports()
    async with Receiver() as receiver:
        receiver.answers = {"/busy": (503, 0.0), "/silent": (200, 5.0)}
        endpoints = [Endpoint(Webhook(n, receiver.url + path, f"secret-{n}"), 0.5, reports.prepare,
                              reports.report, allowed=LOOPBACK).start() for n, path in ((1, "/ok"), (2, "/busy"), (3, "/silent"))]
        try:
            for endpoint in endpoints:
                assert endpoint.offer(delivery(endpoint.webhook.webhook_id, f"e{endpoint.webhook.webhook_id}", 2))
            await reports.wait(3)
        finally:
            for endpoint in endpoints:
                await endpoint.close(0)
    attempts = {webhook_id: attempt for webhook_id, _, attempt, _ in reports.seen}
    assert attempts[1].ok and attempts[1].status == 200
    assert not attempts[2].ok and attempts[2].status == 503 and attempts[2].error == "HTTP 503"  # never the body
    assert not attempts[3].ok and attempts[3].status is None and attempts[3].error == "no answer within 0.5 s"
    path, headers, body, _ = next(r for r in receiver.requests if r[0] == "/ok")
    assert orjson.loads(body) == {**EVENT, "id": "e1"}
    assert headers["X-Tracker-Signature"] == "sha256=" + hmac.new(b"secret-1", body, hashlib.sha256).hexdigest()
    assert (headers["X-Tracker-Delivery"], headers["X-Tracker-Event"], headers["X-Tracker-Attempt"]) == \
        ("e1", "geofence_enter", "3")


async def test_an_endpoint_that_never_answers_does_not_hold_up_another():
    reports = Reports()
    async with Receiver() as receiver:
        receiver.answers = {"/stuck": (200, 30.0)}
        stuck = Endpoint(Webhook(1, receiver.url + "/stuck", "s"), 20.0, reports.prepare, reports.report,
                         allowed=LOOPBACK).start()
        healthy = Endpoint(Webhook(2, receiver.url + "/ok", "s"), 20.0, reports.prepare, reports.report,
                           allowed=LOOPBACK).start()
        try:
            for n in range(20):
                stuck.offer(delivery(1, f"s{n}"))
            started = time.monotonic()
            for n in range(20):
                assert healthy.offer(delivery(2, f"h{n}"))
            await reports.wait(20)
            assert {webhook_id for webhook_id, *_ in reports.seen} == {2}
            assert max(at for *_, at in reports.seen) - started < 1.0
        finally:
            unfinished = await stuck.close(0)
            await healthy.close(0)
    # Four requests were cut short, the other sixteen never started: all are handed back.
    assert sorted(d.event_id for d in unfinished) == sorted(f"s{n}" for n in range(20))


async def test_a_full_queue_refuses_and_a_lost_lease_skips_the_attempt():
    refused = []

    async def prepare(delivery):
        return delivery.event_id != "lost"

    async def report(webhook, delivery, attempt):
        refused.append(delivery.event_id)

    async with Receiver() as receiver:
        endpoint = Endpoint(Webhook(1, receiver.url + "/ok", "s"), 5.0, prepare, report, senders=1, queue_size=2,
                            allowed=LOOPBACK)
        assert endpoint.room == 2
        assert endpoint.offer(delivery(1, "lost")) and endpoint.offer(delivery(1, "kept"))
        assert not endpoint.offer(delivery(1, "third")) and endpoint.room == 0
        endpoint.start()
        deadline = time.monotonic() + 5
        while refused != ["kept"]:
            assert time.monotonic() < deadline, refused
            await asyncio.sleep(0.02)
        assert await endpoint.close(1.0) == []
    assert [r[2] for r in receiver.requests] == [body_of({**EVENT, "id": "kept"})]


async def test_closing_lets_a_request_in_flight_finish_and_stops_idle_senders_at_once():
    reports = Reports()
    async with Receiver() as receiver:
        receiver.answers = {"/slow": (200, 0.3)}
        endpoint = Endpoint(Webhook(1, receiver.url + "/slow", "s"), 5.0, reports.prepare, reports.report,
                            allowed=LOOPBACK).start()
        endpoint.offer(delivery(1, "e1"))
        while not receiver.requests:
            await asyncio.sleep(0.01)
        started = time.monotonic()
        assert await endpoint.close(2.0) == []
        assert time.monotonic() - started < 1.0
    assert [(event_id, attempt.ok) for _, event_id, attempt, _ in reports.seen] == [("e1", True)]


# --- destinations ------------------------------------------------------------------------

@pytest.mark.parametrize("address, refused", [
    ("93.184.215.14", False), ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", False),
    ("127.0.0.1", True), ("127.9.9.9", True), ("0.0.0.0", True), ("10.0.0.1", True), ("172.31.255.1", True),
    ("192.168.0.1", True), ("169.254.169.254", True), ("100.64.1.1", True), ("224.0.0.251", True),
    ("255.255.255.255", True), ("::1", True), ("::", True), ("fe80::1", True), ("fc00::1", True), ("ff02::1", True),
    ("::ffff:10.0.0.1", True), ("::ffff:93.184.215.14", False), ("2002:7f00:1::", True), ("64:ff9b::a00:1", True),
])
def test_only_public_addresses_are_reached(address, refused):
    import ipaddress

    assert is_refused(ipaddress.ip_address(address)) is refused


def test_allowed_networks_open_what_they_name_only():
    import ipaddress

    allowed = parse_networks("127.0.0.0/8, fd00::/8")
    assert not is_refused(ipaddress.ip_address("127.0.0.1"), allowed)
    assert not is_refused(ipaddress.ip_address("::ffff:127.0.0.1"), allowed)
    assert not is_refused(ipaddress.ip_address("fd00::5"), allowed)
    assert is_refused(ipaddress.ip_address("10.0.0.1"), allowed)
    assert host_refusal("http://localhost:8080/", allowed) is None
    assert host_refusal("http://localhost:8080/") == "localhost is this machine"
    with pytest.raises(ValueError, match="'10.0.0.0/33' is not a network"):
        parse_networks("10.0.0.0/33")


def test_urls_are_shown_without_credentials_or_query():
    assert redact("https://hooks.example.org/a/b?token=s3cret&x=1") == "https://hooks.example.org/a/b?…"
    assert redact("https://user:pw@hooks.example.org:8443/a") == "https://hooks.example.org:8443/a"
    assert redact("http://[::1]:80/x") == "http://[::1]:80/x"
    assert "s3cret" not in str(Webhook(1, "https://h.example/x?token=s3cret", "s").public())


async def test_a_name_is_judged_by_the_addresses_it_resolves_to():
    assert await resolution_refusal("http://localhost:9/") == "localhost resolves to 127.0.0.1, which is not a public address"
    assert await resolution_refusal("http://localhost:9/", LOOPBACK) is None
    assert await resolution_refusal("http://no-such-host.invalid/") is None  # checked again at each delivery
    with pytest.raises(RefusedDestination):
        await GuardedResolver().resolve("localhost", 80)
    assert [r["host"] for r in await GuardedResolver(LOOPBACK).resolve("localhost", 80)] == ["127.0.0.1"]


async def test_a_delivery_to_a_refused_address_is_not_made_and_failures_do_not_tell_ports_apart():
    reports = Reports()
    async with Receiver() as receiver:
        port = receiver.url.rsplit(":", 1)[1]
        closed = free_port()
        endpoints = [
            Endpoint(Webhook(1, receiver.url + "/x", "s"), 2.0, reports.prepare, reports.report).start(),
            Endpoint(Webhook(2, f"http://localhost:{port}/x", "s"), 2.0, reports.prepare, reports.report).start(),
            Endpoint(Webhook(3, f"http://127.0.0.1:{closed}/x", "s"), 2.0, reports.prepare, reports.report,
                     allowed=LOOPBACK).start(),
        ]
        async with NotHttp() as not_http:
            endpoints.append(Endpoint(Webhook(4, f"http://127.0.0.1:{not_http.port}/x", "s"), 2.0, reports.prepare,
                                      reports.report, allowed=LOOPBACK).start())
            try:
                for endpoint in endpoints:
                    assert endpoint.offer(delivery(endpoint.webhook.webhook_id, f"e{endpoint.webhook.webhook_id}"))
                await reports.wait(4)
            finally:
                for endpoint in endpoints:
                    await endpoint.close(0)
    errors = {webhook_id: attempt.error for webhook_id, _, attempt, _ in reports.seen}
    assert errors == {1: REFUSED_ERROR, 2: REFUSED_ERROR, 3: NO_ANSWER, 4: NO_ANSWER}
    assert not receiver.requests


class NotHttp:
    """A port that accepts connections and answers something that is not HTTP."""

    async def __aenter__(self):
        async def answer(reader, writer):
            writer.write(b"SSH-2.0-OpenSSH_9.6\r\n")
            await writer.drain()
            writer.close()

        self.server = await asyncio.start_server(answer, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info):
        self.server.close()
