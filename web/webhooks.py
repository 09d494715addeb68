"""Webhooks over HTTP, for admins only (a webhook's URL may itself be a credential).

- ``POST /api/webhooks`` ``{"url", "types": [...], "markers": [...]}``: answers the webhook
  with its ``secret``, shown only now. A bad one is a 400 that says what is wrong
  (``tracker.webhooks.model.parse_webhook``).
- ``GET /api/webhooks``: every webhook, without secrets.
- ``GET`` and ``DELETE /api/webhooks/{id}``: one (with its deliveries counted per status).
- ``GET /api/webhooks/{id}/deliveries?status=&limit=``: its latest deliveries, newest first.

Every worker's notifier picks a new webhook up within ``agents.notifier.RELOAD_SECONDS``.
"""
from __future__ import annotations

import orjson
from faust.web import View

from tracker.webhooks import store as webhook_store
from tracker.app import app
from tracker.webhooks.model import STATUSES, BadWebhook, parse_and_resolve
from web import params
from web.auth import require_admin
from web.db import request_connection
from web.errors import BadRequest, NotFound

MAX_BODY = 256 * 1024
UNAVAILABLE = "webhooks_unavailable"
SHAPE = '{"url": "https://...", "types": ["geofence_enter", ...], "markers": ["truck-7", "van-*", ...]}'
DELIVERIES_LIMIT = 100
DELIVERIES_MAX = 1000


def _json(web, value, status: int = 200):
    return web.bytes(orjson.dumps(value, option=orjson.OPT_UTC_Z), content_type="application/json", status=status)


def _id(text: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise NotFound("unknown_webhook", f"no webhook {text[:20]!r}")
    return int(text)


def _unknown(webhook_id: str) -> NotFound:
    return NotFound("unknown_webhook", f"no webhook {webhook_id}")


@app.page("/api/webhooks")
class Webhooks(View):
    async def get(self, request):
        await require_admin(request)
        async with request_connection(UNAVAILABLE) as conn:
            webhooks = await webhook_store.load(conn)
        return _json(self, [webhook.public() for webhook in webhooks])

    async def post(self, request):
        access = await require_admin(request)
        body = await params.json_object(request, MAX_BODY, SHAPE)
        try:
            new = await parse_and_resolve(body)
        except BadWebhook as exc:
            raise BadRequest("bad_webhook", str(exc)) from None
        async with request_connection(UNAVAILABLE) as conn:
            webhook = await webhook_store.add(conn, new, access.user_id)
        return _json(self, {**webhook.public(), "secret": webhook.secret}, status=201)


@app.page("/api/webhooks/{webhook_id}")
class WebhookItem(View):
    async def get(self, request, webhook_id: str):
        await require_admin(request)
        try:
            async with request_connection(UNAVAILABLE) as conn:
                webhook = await webhook_store.get(conn, _id(webhook_id))
                counts = await webhook_store.delivery_counts(conn, webhook.webhook_id)
        except webhook_store.UnknownWebhook:
            raise _unknown(webhook_id) from None
        return _json(self, {**webhook.public(), "deliveries": counts})

    async def delete(self, request, webhook_id: str):
        await require_admin(request)
        try:
            async with request_connection(UNAVAILABLE) as conn:
                await webhook_store.delete(conn, _id(webhook_id))
        except webhook_store.UnknownWebhook:
            raise _unknown(webhook_id) from None
        return self.bytes(b"", status=204)


@app.page("/api/webhooks/{webhook_id}/deliveries")
class WebhookDeliveries(View):
    async def get(self, request, webhook_id: str):
        await require_admin(request)
        status = request.query.get("status") or None
        if status is not None:
            status = params.choice_param(request.query, "status", "", STATUSES)
        limit = params.int_param(request.query, "limit", DELIVERIES_LIMIT, 1, DELIVERIES_MAX)
        try:
            async with request_connection(UNAVAILABLE) as conn:
                webhook = await webhook_store.get(conn, _id(webhook_id))
                deliveries = await webhook_store.deliveries(conn, webhook.webhook_id, status, limit)
        except webhook_store.UnknownWebhook:
            raise _unknown(webhook_id) from None
        return _json(self, {"webhook_id": webhook.webhook_id, "deliveries": deliveries})
