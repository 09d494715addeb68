"""Phones as clients: ``/ingest/osmand`` (Traccar Client) and ``/ingest/owntracks``; and a
Traccar server as a gateway for its hardware trackers: ``/ingest/traccar``.

Both convert what the app sends to the topic's contract, validate it with the one
validation function, produce it to ``gps.positions`` keyed by marker id, and answer 200
only once the broker has acknowledged it: a 200 means the fix is durable in Kafka.

Credentials (unless ``TRACKER_INGEST_AUTH=off``): a Traccar Client puts its device secret
in the server URL, as a path segment (``/ingest/osmand/SECRET``) or a query parameter
(``?token=SECRET``); OwnTracks sends HTTP Basic with the device id as user and the secret as
password. No credential: 401 ``missing_credential``. A secret no device has, and a secret
of another device, get the same 401 ``bad_credential``, so that guessing cannot tell which
device ids exist. While Postgres is down, secrets it confirmed in the last ten minutes are
still accepted (``tracker.accounts.devices.SecretLookup``).

A gateway (``tracker gateways add``) sends ``Authorization: Bearer TOKEN``; it may report
for any device, or only for marker ids with its prefix (403 ``outside_prefix`` otherwise).

OwnTracks is answered with the phone's friends (``tracker.ingest.friends``): for each, a
``location`` and a ``card`` (its name), which the app shows on its map and list.

A body has ``BODY_READ_SECONDS`` to arrive, whole: a client that trickles it (one of many
that could hold every connection of the worker open) gets 408.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import web as aioweb
from faust.web import View

from tracker.app import app
from tracker.storage.pool import DATABASE_ERRORS
from tracker.accounts.devices import SecretLookup
from tracker.ingest.friends import FriendLookup, friends
from tracker.accounts.gateways import GatewayLookup
from tracker.metrics import INGEST_REQUESTS, NO_FIX
from tracker.positions.model import InvalidPosition, parse_position
from tracker.ingest.protocols import osmand, owntracks, traccar
from tracker.resources import database
from tracker.settings import settings
from tracker.stream.topics import positions_topic
from web.auth import basic_credentials, bearer_token
from web.errors import ApiError, BadRequest, Forbidden, RequestTimeout, TooLarge, Unauthorized, Unavailable
from tracker.resources import live_hub as hub

BROKER_ACK_TIMEOUT = 10.0
#: How long a request's body may take to arrive, in all.
BODY_READ_SECONDS = 10.0
#: How long a secret's lookup waits for a pooled connection before Postgres counts as down.
LOOKUP_SECONDS = 2.0
BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="tracker"'}
secrets = SecretLookup(partial(database.connection, timeout=LOOKUP_SECONDS))
friend_lookup = FriendLookup(partial(database.connection, timeout=LOOKUP_SECONDS))
gateway_tokens = GatewayLookup(partial(database.connection, timeout=LOOKUP_SECONDS))


def _invalid(error: InvalidPosition) -> BadRequest:
    return BadRequest(error.code, error.message)


async def _body(request: aioweb.Request) -> bytes:
    limit = settings.ingest_max_bytes
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


async def _publish(records: list[dict[str, Any]]) -> int:
    """Validate every record, then produce them all and wait for the broker's acks."""
    try:
        positions = [parse_position(record) for record in records]
    except InvalidPosition as exc:
        raise _invalid(exc) from None
    pending = [await positions_topic.send(key=p.marker_id.encode(), value=p.to_json()) for p in positions]
    try:
        await asyncio.wait_for(asyncio.gather(*pending), BROKER_ACK_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - the client must retry whatever went wrong
        raise Unavailable("broker_unavailable", f"Kafka did not acknowledge: {exc.__class__.__name__}") from None
    return len(positions)


async def _osmand(request: aioweb.Request, path_token: str | None) -> int:
    now = datetime.now(timezone.utc)
    body = await _body(request)
    if request.content_type == "application/json":
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise BadRequest("not_json", "the body is not valid JSON") from None
        claimed = payload.get("device_id") if isinstance(payload, dict) else None
        convert = lambda: osmand.from_json(payload, now)  # noqa: E731
    else:
        params = dict(request.query)
        if not ("id" in params or "deviceid" in params) and body:
            form = _form(body)
            params = {**form, **params}
        claimed = params.get("id") or params.get("deviceid")
        convert = lambda: [osmand.from_query(params, now)]  # noqa: E731
    if not isinstance(claimed, str) or not claimed:
        raise BadRequest("missing_field", "the device id (id, deviceid or device_id) is required")
    await _authenticate(claimed, path_token or request.query.get("token"))
    try:
        records = convert()
    except InvalidPosition as exc:
        raise _invalid(exc) from None
    return await _publish(records)


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


async def _owntracks(request: aioweb.Request) -> str | None:
    """Store what an OwnTracks phone posted; the marker id it proved it is, if it did."""
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
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("not_json", "the body is not valid JSON") from None
    if not owntracks.is_location(payload):
        return proven  # waypoints, transitions, cards...: accepted, not stored
    marker_id = marker_id or (payload.get("tid") if isinstance(payload.get("tid"), str) else None)
    if not marker_id:
        raise BadRequest("missing_field", "no device id: send HTTP Basic or X-Limit-U")
    try:
        record = owntracks.from_location(payload, marker_id)
    except InvalidPosition as exc:
        raise _invalid(exc) from None
    device_name = request.headers.get("X-Limit-D")
    if device_name:
        record["attributes"] = {**(record["attributes"] or {}), "device": device_name[:256]}
    await _publish([record])
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


async def _traccar(request: aioweb.Request) -> None:
    gateway = await _gateway(request)
    try:
        payload = orjson.loads(await _body(request))
    except orjson.JSONDecodeError:
        raise BadRequest("not_json", "the body is not valid JSON") from None
    try:
        record = traccar.convert(payload)
    except traccar.NoFix:
        NO_FIX.labels(traccar.SOURCE).inc()
        return  # accepted (Traccar would send it again otherwise), not stored
    except InvalidPosition as exc:
        raise _invalid(exc) from None
    if gateway is not None and not gateway.may_report(record["marker_id"]):
        raise Forbidden("outside_prefix", f"gateway {gateway.name!r} may only report marker ids starting with "
                                          f"{gateway.prefix!r}, not {record['marker_id']!r}")
    await _publish([record])


async def _gateway(request: aioweb.Request):
    """The gateway whose token the request carries (None when ingestion needs no credential)."""
    if not settings.ingest_auth:
        return None
    token = bearer_token(request.headers.get("Authorization", ""))
    if token is None:
        raise Unauthorized("missing_credential", "send the gateway's token: Authorization: Bearer TOKEN",
                           headers={"WWW-Authenticate": 'Bearer realm="tracker"'})
    try:
        gateway = await gateway_tokens.gateway_for(token)
    except DATABASE_ERRORS:
        raise Unavailable("registry_unavailable", "the gateway registry (Postgres) cannot be reached; retry") from None
    if gateway is None:
        raise Unauthorized("bad_credential", "no gateway has this token", headers={"WWW-Authenticate": 'Bearer realm="tracker"'})
    return gateway


@app.page("/ingest/traccar")
class TraccarIngest(View):
    """A Traccar server's forwarded positions (``forward.type=json``), one per POST."""

    async def post(self, request):
        await _counted("traccar", _traccar(request))
        return self.text("OK")


async def _counted(endpoint: str, handling):
    """Await ``handling``, counting the request by its outcome; what it returned."""
    try:
        result = await handling
    except ApiError as error:
        INGEST_REQUESTS.labels(endpoint, error.code).inc()
        raise
    INGEST_REQUESTS.labels(endpoint, 200).inc()
    return result
