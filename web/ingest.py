"""Phones as clients: ``/ingest/osmand`` (Traccar Client), ``/ingest/owntracks``,
``/ingest/overland``; many reports at once in the topic's format: ``/ingest/batch``; and a
Traccar server as a gateway for its hardware trackers: ``/ingest/traccar``.

Each converts what the app sends to the topic's contract (``tracker.ingest.protocols``),
validates it with the one validation function (``tracker.positions.model.parse_report``),
produces it to ``gps.positions`` keyed by marker id (``tracker.ingest.producer``: the
records of concurrent requests share producer batches), and answers 200 only once the
broker has acknowledged it: a 200 means the report is durable in Kafka.

A report without usable coordinates (a phone standing still, one that knows only its cell
towers) is a heartbeat: answered 200, stored as no position, it keeps the marker alive
(``tracker_ingest_reports_total{kind="heartbeat"}``). A request that names no device is 400.

One report per request (Traccar Client's query or form mode, OwnTracks, a Traccar server):
an invalid one is 400 with the reason. Many per request (Traccar Client 10's JSON array,
Overland, ``/ingest/batch``): each is judged on its own; the invalid ones go to
``gps.positions.dlq`` with their reasons, the valid ones are produced, and the answer (200
once all of them, and the dead letters, are durable) never makes the app send the batch
again for one bad element.

Credentials (unless ``TRACKER_INGEST_AUTH=off``): a Traccar Client puts its device secret
in the server URL, as a path segment (``/ingest/osmand/SECRET``) or a query parameter
(``?token=SECRET``); OwnTracks sends HTTP Basic with the device id as user and the secret as
password. Overland and ``/ingest/batch`` send ``Authorization: Bearer`` with a device secret
(every report is that device's) or a gateway token (any device, or those of its prefix);
``/ingest/batch`` also takes HTTP Basic or ``?token=``. No credential: 401
``missing_credential``. A secret no device has, and a secret of another device, get the
same 401 ``bad_credential``, so that guessing cannot tell which device ids exist. While
Postgres is down, secrets it confirmed in the last ten minutes are still accepted
(``tracker.accounts.devices.SecretLookup``).

A gateway (``tracker gateways add``) sends ``Authorization: Bearer TOKEN``; it may report
for any device, or only for marker ids with its prefix (403 ``outside_prefix`` otherwise).

OwnTracks is answered with the phone's friends (``tracker.ingest.friends``): for each, a
``location`` and a ``card`` (its name), which the app shows on its map and list.

A body has ``BODY_READ_SECONDS`` to arrive, whole: a client that trickles it (one of many
that could hold every connection of the worker open) gets 408.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from typing import Any, Iterable
from urllib.parse import parse_qsl

import orjson
from aiohttp import web as aioweb
from faust.web import View

from tracker.accounts.devices import SecretLookup
from tracker.accounts.gateways import Gateway, GatewayLookup
from tracker.app import app, fatal
from tracker.ingest.friends import FriendLookup, friends
from tracker.ingest.producer import Coalescer
from tracker.ingest.protocols import batch, each, osmand, overland, owntracks, traccar
from tracker.metrics import INGEST_REPORTS, INGEST_REQUESTS, NO_FIX, OWNTRACKS_MESSAGES
from tracker.positions.model import InvalidPosition, micros_of, parse_report
from tracker.resources import database, worker_producer
from tracker.resources import live_hub as hub
from tracker.settings import settings
from tracker.storage.pool import DATABASE_ERRORS
from tracker.stream.admin import ensure_topics
from tracker.stream.dead_letters import dead_letter
from web.auth import basic_credentials, bearer_token
from web.errors import ApiError, BadRequest, Forbidden, RequestTimeout, TooLarge, Unauthorized, Unavailable

BROKER_ACK_TIMEOUT = 10.0
#: How long a request's body may take to arrive, in all.
BODY_READ_SECONDS = 10.0
#: How long a secret's lookup waits for a pooled connection before Postgres counts as down.
LOOKUP_SECONDS = 2.0
BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="tracker"'}
BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="tracker"'}
secrets = SecretLookup(partial(database.connection, timeout=LOOKUP_SECONDS))
friend_lookup = FriendLookup(partial(database.connection, timeout=LOOKUP_SECONDS))
gateway_tokens = GatewayLookup(partial(database.connection, timeout=LOOKUP_SECONDS))
#: The most rejected reports an answer lists (the dead letters hold them all).
MAX_LISTED = 1000


def _invalid(error: InvalidPosition) -> BadRequest:
    return BadRequest(error.code, error.message)


async def _body(request: aioweb.Request, limit: int | None = None) -> bytes:
    limit = limit or settings.ingest_max_bytes
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge("too_large", f"the body is larger than {limit} bytes")
    try:
        return await asyncio.wait_for(_read_body(request, limit), BODY_READ_SECONDS)
    except asyncio.TimeoutError:
        raise RequestTimeout("body_timeout", f"the body did not arrive within {BODY_READ_SECONDS:g} s",
                             headers={"Connection": "close"}) from None


async def _read_body(request: aioweb.Request, limit: int) -> bytes:
    chunks, size = [], 0
    while True:
        chunk = await request.content.read(limit + 1 - size)  # what has arrived, up to the limit
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise TooLarge("too_large", f"the body is larger than {limit} bytes")


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("not_json", "the body is not valid JSON") from None


async def _authenticate(claimed: str, secret: str | None, challenge: dict[str, str] | None = None) -> None:
    """Pass only if ``secret`` is ``claimed``'s; ``challenge``: headers of the 401.

    A secret no device has and a secret of another device are refused alike."""
    if not settings.ingest_auth:
        return
    if not secret:
        raise Unauthorized("missing_credential", "this endpoint needs the device's secret", headers=challenge)
    try:
        owner = await secrets.device_for(secret)
    except DATABASE_ERRORS:
        raise Unavailable("registry_unavailable", "the device registry (Postgres) cannot be reached; retry") from None
    if owner != claimed:
        raise Unauthorized("bad_credential", "the device id and secret do not match a registered device",
                           headers=challenge)


# --- producing ----------------------------------------------------------------------------

_coalescer: Coalescer | None = None
_coalescer_lock = asyncio.Lock()


async def coalescer() -> Coalescer:
    """The worker's ingestion producer path, its topics made sure of the first time."""
    global _coalescer
    if _coalescer is None:
        async with _coalescer_lock:
            if _coalescer is None:
                producer = (await worker_producer.ready()).producer
                counts = await ensure_topics(settings, {settings.topic: {}, settings.dlq_topic: {}})
                if counts.get(settings.topic, settings.topic_partitions) != settings.topic_partitions:
                    fatal(f"{settings.topic} has {counts[settings.topic]} partitions but TRACKER_TOPIC_PARTITIONS is "
                          f"{settings.topic_partitions}: markers would land in the wrong partitions")
                _coalescer = Coalescer(producer, settings.topic_partitions)
    return _coalescer


async def _produce(records: list[tuple[str, bytes | None, bytes]]) -> None:
    """Send (topic, key, value) records and wait until the broker has acknowledged all."""
    sender = _coalescer or await coalescer()
    if len(records) == 1:
        topic, key, value = records[0]
        futures = sender.submit(topic, ((key, value),))
    else:
        by_topic: dict[str, list[tuple[bytes | None, bytes]]] = {}
        for topic, key, value in records:
            by_topic.setdefault(topic, []).append((key, value))
        futures = [future for topic, items in by_topic.items() for future in sender.submit(topic, items)]
    if not futures:
        return
    done, pending = await asyncio.wait(futures, timeout=BROKER_ACK_TIMEOUT)
    failed = next((future.exception() for future in done if future.exception() is not None), None)
    if pending or failed is not None:
        reason = "no acknowledgement in time" if pending else failed.__class__.__name__
        raise Unavailable("broker_unavailable", f"Kafka did not acknowledge: {reason}")


def _checked(record: dict[str, Any], now_us: int) -> tuple[str, bool]:
    """The marker id of a converted record, and whether it is a heartbeat; ``InvalidPosition``."""
    is_heartbeat, item = parse_report(record, now_us)
    return item[0], is_heartbeat


async def _publish(endpoint: str, record: dict[str, Any], now: datetime) -> str:
    """One report: 400 if it is invalid, else produced; its marker id."""
    try:
        marker_id, is_heartbeat = _checked(record, micros_of(now))
    except InvalidPosition as exc:
        raise _invalid(exc) from None
    await _produce([(settings.topic, marker_id.encode(), orjson.dumps(record))])
    _counter(INGEST_REPORTS, endpoint, "heartbeat" if is_heartbeat else "position").inc()
    return marker_id


_counters: dict[tuple, Any] = {}


def _counter(metric, *labels):
    """``metric.labels(*labels)``, looked up once (a lookup costs more than the request's parse)."""
    child = _counters.get((metric, labels))
    if child is None:
        child = _counters[(metric, labels)] = metric.labels(*labels)
    return child


@dataclass(frozen=True)
class Reporter:
    """Who sent a request of many reports: a device (every report is its own), a gateway
    (any device, or those of its prefix), or anyone (``TRACKER_INGEST_AUTH=off``)."""
    device_id: str | None = None
    gateway: Gateway | None = None

    def refusal(self, marker_id: str) -> InvalidPosition | None:
        if self.device_id is not None and marker_id != self.device_id:
            return InvalidPosition("wrong_device", f"this request reports for {self.device_id!r}, not {marker_id!r}")
        if self.gateway is not None and not self.gateway.may_report(marker_id):
            return InvalidPosition("outside_prefix", f"gateway {self.gateway.name!r} may only report marker ids "
                                                     f"starting with {self.gateway.prefix!r}, not {marker_id!r}")
        return None


async def _publish_many(endpoint: str, items: Iterable[tuple[Any, Any]], reporter: Reporter,
                        now: datetime) -> tuple[int, list[tuple[int, InvalidPosition]]]:
    """Many reports ((the element as sent, its record or why it is none), in order): the
    valid ones produced, the others to the DLQ with their reasons, in one go; the number
    accepted and the (index, reason) of each refused."""
    now_us = micros_of(now)
    records: list[tuple[str, bytes | None, bytes]] = []
    rejected: list[tuple[int, InvalidPosition]] = []
    heartbeats = 0
    for index, (raw, record) in enumerate(items):
        if isinstance(record, InvalidPosition):
            error = record
        else:
            try:
                marker_id, is_heartbeat = _checked(record, now_us)
                error = reporter.refusal(marker_id)
            except InvalidPosition as exc:
                error = exc
        if error is None:
            records.append((settings.topic, marker_id.encode(), orjson.dumps(record)))
            heartbeats += is_heartbeat
            continue
        rejected.append((index, error))
        payload = raw if isinstance(raw, bytes) else orjson.dumps(raw)
        letter = dead_letter(payload, error, now, endpoint, -1, index)
        records.append((settings.dlq_topic, _key_of(record, raw), orjson.dumps(letter)))
    await _produce(records)
    accepted = len(records) - len(rejected)
    _counter(INGEST_REPORTS, endpoint, "position").inc(accepted - heartbeats)
    if heartbeats:
        _counter(INGEST_REPORTS, endpoint, "heartbeat").inc(heartbeats)
    if rejected:
        _counter(INGEST_REPORTS, endpoint, "rejected").inc(len(rejected))
    return accepted, rejected


def _key_of(record: Any, raw: Any) -> bytes | None:
    """A dead letter's key: the marker id it named, if it named one (the DLQ keeps the key)."""
    for source in (record, raw):
        marker_id = source.get("marker_id") if isinstance(source, dict) else None
        if isinstance(marker_id, str) and marker_id:
            return marker_id.encode()[:256]
    return None


def _rejections(rejected: list[tuple[int, InvalidPosition]]) -> list[dict[str, Any]]:
    return [{"index": index, "error": error.code, "message": error.message} for index, error in rejected[:MAX_LISTED]]


# --- Traccar Client (OsmAnd) ----------------------------------------------------------------

async def _osmand(request: aioweb.Request, path_token: str | None) -> None:
    now = datetime.now(timezone.utc)
    body = await _body(request)
    token = path_token or request.query.get("token")
    if request.content_type == "application/json":
        payload = _json(body)
        claimed = osmand.claimed_device(payload)
        if claimed is None:
            raise BadRequest("missing_field", "the device id (id, deviceid or device_id) is required")
        await _authenticate(claimed, token)
        try:
            items = osmand.from_json(payload, now)
        except InvalidPosition as exc:
            raise _invalid(exc) from None
        await _publish_many("/ingest/osmand", items, Reporter(claimed if settings.ingest_auth else None), now)
        return
    params = dict(request.query)
    if not ("id" in params or "deviceid" in params) and body:
        params = {**_form(body), **params}
    claimed = osmand.device_of(params)
    if claimed is None:
        raise BadRequest("missing_field", "the device id (id, deviceid or device_id) is required")
    await _authenticate(claimed, token)
    try:
        record = osmand.from_query(params, now)
    except InvalidPosition as exc:
        raise _invalid(exc) from None
    await _publish("/ingest/osmand", record, now)


def _form(body: bytes) -> dict[str, str]:
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise BadRequest("bad_form", "the form body is not UTF-8") from None


class OsmandIngest(View):
    """Traccar Client (OsmAnd protocol), any method; secret in ``?token=``."""

    async def get(self, request, token: str | None = None):
        await _counted("osmand", _osmand(request, token))
        return self.text("OK")

    post = put = get


app.page("/ingest/osmand")(OsmandIngest)
app.page("/ingest/osmand/{token}", name="osmand_ingest_token")(
    type("OsmandIngestWithToken", (OsmandIngest,), {"__doc__": "Traccar Client with the secret in the path."})
)


# --- OwnTracks -------------------------------------------------------------------------------

async def _owntracks(request: aioweb.Request) -> str | None:
    """Store what an OwnTracks phone posted; the marker id it proved it is, if it did."""
    now = datetime.now(timezone.utc)
    body = await _body(request)
    credentials = basic_credentials(request.headers.get("Authorization", ""))
    limit_user = request.headers.get("X-Limit-U")
    if settings.ingest_auth:
        if credentials is None:
            raise Unauthorized("missing_credential", "use HTTP Basic: device id and secret", headers=BASIC_CHALLENGE)
        marker_id, secret = credentials
        await _authenticate(marker_id, secret, BASIC_CHALLENGE)
        if limit_user and limit_user != marker_id:
            raise Forbidden("wrong_device", f"X-Limit-U names {limit_user!r}, not {marker_id!r}")
        proven = marker_id
    else:
        marker_id = (credentials[0] if credentials else None) or limit_user
        proven = None
    payload = _json(body)
    kind = owntracks.message_type(payload)
    _counter(OWNTRACKS_MESSAGES, kind).inc()
    if kind not in ("location", "transition"):
        return proven  # waypoints, cards, lwt, ...: accepted, not stored
    marker_id = marker_id or (payload.get("tid") if isinstance(payload.get("tid"), str) else None)
    if not marker_id:
        raise BadRequest("missing_field", "no device id: send HTTP Basic or X-Limit-U")
    try:
        record = owntracks.convert(payload, marker_id)
    except InvalidPosition as exc:
        raise _invalid(exc) from None
    if record is None:
        return proven  # a transition without its place and time
    device_name = request.headers.get("X-Limit-D")
    if device_name:
        record["attributes"] = {**(record["attributes"] or {}), "device": device_name[:256]}
    await _publish("/ingest/owntracks", record, now)
    return proven


async def _friends_of(marker_id: str | None) -> list[dict[str, Any]]:
    """What the phone shows as friends (``tracker.ingest.friends``): none for a phone that did not
    prove who it is, and none rather than an error while Postgres cannot say."""
    if marker_id is None:
        return []
    try:
        access = await friend_lookup.access(marker_id)
    except DATABASE_ERRORS:
        return []
    return [message for row in friends(access, hub.positions) for message in owntracks.friend_messages(row)]


@app.page("/ingest/owntracks")
class OwnTracksIngest(View):
    """OwnTracks in HTTP mode: POST JSON, answered with a JSON array of the phone's friends'
    newest positions and names."""

    async def post(self, request):
        marker_id = await _counted("owntracks", _owntracks(request))
        return self.bytes(orjson.dumps(await _friends_of(marker_id)), content_type="application/json")


# --- a Traccar server -----------------------------------------------------------------------

async def _traccar(request: aioweb.Request) -> None:
    now = datetime.now(timezone.utc)
    gateway = await _gateway(request)
    payload = _json(await _body(request))
    try:
        record = traccar.convert(payload)
    except InvalidPosition as exc:
        raise _invalid(exc) from None
    if gateway is not None and not gateway.may_report(record["marker_id"]):
        raise Forbidden("outside_prefix", f"gateway {gateway.name!r} may only report marker ids starting with "
                                          f"{gateway.prefix!r}, not {record['marker_id']!r}")
    await _publish("/ingest/traccar", record, now)
    if not traccar.has_fix(record):
        NO_FIX.labels(traccar.SOURCE).inc()


async def _gateway(request: aioweb.Request):
    """The gateway whose token the request carries (None when ingestion needs no credential)."""
    if not settings.ingest_auth:
        return None
    token = bearer_token(request.headers.get("Authorization", ""))
    if token is None:
        raise Unauthorized("missing_credential", "send the gateway's token: Authorization: Bearer TOKEN",
                           headers=BEARER_CHALLENGE)
    gateway = await _gateway_for(token)
    if gateway is None:
        raise Unauthorized("bad_credential", "no gateway has this token", headers=BEARER_CHALLENGE)
    return gateway


async def _gateway_for(token: str) -> Gateway | None:
    try:
        return await gateway_tokens.gateway_for(token)
    except DATABASE_ERRORS:
        raise Unavailable("registry_unavailable", "the gateway registry (Postgres) cannot be reached; retry") from None


@app.page("/ingest/traccar")
class TraccarIngest(View):
    """A Traccar server's forwarded positions (``forward.type=json``), one per POST."""

    async def post(self, request):
        await _counted("traccar", _traccar(request))
        return self.text("OK")


# --- many reports per request: Overland, and the topic's own format -------------------------

async def _reporter(request: aioweb.Request) -> Reporter:
    """Who sends a request of many reports: a device secret or a gateway token, as Bearer,
    HTTP Basic (device id and secret) or ``?token=``."""
    if not settings.ingest_auth:
        return Reporter()
    header = request.headers.get("Authorization", "")
    credentials = basic_credentials(header)
    if credentials is not None:
        await _authenticate(credentials[0], credentials[1], BASIC_CHALLENGE)
        return Reporter(device_id=credentials[0])
    token = bearer_token(header) or request.query.get("token")
    if not token:
        raise Unauthorized("missing_credential", "send a device's secret or a gateway's token: "
                                                 "Authorization: Bearer TOKEN", headers=BEARER_CHALLENGE)
    try:
        device_id = await secrets.device_for(token)
    except DATABASE_ERRORS:
        raise Unavailable("registry_unavailable", "the device registry (Postgres) cannot be reached; retry") from None
    if device_id is not None:
        return Reporter(device_id=device_id)
    gateway = await _gateway_for(token)
    if gateway is None:
        raise Unauthorized("bad_credential", "no device or gateway has this token", headers=BEARER_CHALLENGE)
    return Reporter(gateway=gateway)


async def _overland(request: aioweb.Request) -> None:
    now = datetime.now(timezone.utc)
    reporter = await _reporter(request)
    try:
        points = overland.points(_json(await _body(request, settings.ingest_batch_max_bytes)))
    except InvalidPosition as exc:
        raise _invalid(exc) from None
    items = [(point, each(lambda point=point: overland.convert(point, reporter.device_id))) for point in points]
    await _publish_many("/ingest/overland", items, reporter, now)


@app.page("/ingest/overland")
class OverlandIngest(View):
    """Overland: ``{"locations": [GeoJSON Feature, ...]}``, answered ``{"result": "ok"}``."""

    async def post(self, request):
        await _counted("overland", _overland(request))
        return self.bytes(orjson.dumps(overland.OK), content_type="application/json")


async def _batch(request: aioweb.Request) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    reporter = await _reporter(request)
    body = await _body(request, settings.ingest_batch_max_bytes)
    try:
        items = batch.items(body, request.content_type)
    except InvalidPosition as exc:
        raise _invalid(exc) from None
    if reporter.device_id is not None:  # a device's own reports may leave their marker id out
        items = [(raw, {**record, "marker_id": reporter.device_id}
                  if isinstance(record, dict) and "marker_id" not in record else record) for raw, record in items]
    accepted, rejected = await _publish_many("/ingest/batch", items, reporter, now)
    return {"accepted": accepted, "rejected": _rejections(rejected)}


@app.page("/ingest/batch")
class BatchIngest(View):
    """Many reports in the topic's format: a JSON array, or NDJSON."""

    async def post(self, request):
        answer = await _counted("batch", _batch(request))
        return self.bytes(orjson.dumps(answer), content_type="application/json")


async def _counted(endpoint: str, handling):
    """Await ``handling``, counting the request by its outcome; what it returned."""
    try:
        result = await handling
    except ApiError as error:
        _counter(INGEST_REQUESTS, endpoint, error.code).inc()
        raise
    _counter(INGEST_REQUESTS, endpoint, 200).inc()
    return result
