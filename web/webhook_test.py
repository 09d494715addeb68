"""``POST /api/webhooks/{webhook_id}/test`` (admin, body ``{}``): a test event for one webhook.

The event (type ``test``) goes into the notifier's outbox as a pending delivery that no
notifier holds yet, so the next notifier poll (``agents.notifier.POLL_SECONDS``) delivers it
the way it delivers every event, signed, retried and listed in the webhook's deliveries.
Answers 202 with the event. Audited.
"""
from __future__ import annotations

import secrets
from datetime import datetime, timezone

import orjson
from faust.web import View

from tracker.app import app
from tracker.positions.model import format_time
from tracker.webhooks import store as webhook_store
from web import params
from web.auth import require_admin
from web.errors import NotFound
from web.manage import change, json_response, numeric_id

TEST_TYPE = "test"


def test_event() -> dict:
    return {"id": f"test-{secrets.token_hex(8)}", "type": TEST_TYPE, "marker_id": "test",
            "time": format_time(datetime.now(timezone.utc)), "message": "a test event sent from the tracker's web app"}


@app.page("/api/webhooks/{webhook_id}/test")
class WebhookTest(View):
    async def post(self, request, webhook_id: str):
        access = await require_admin(request)
        number = numeric_id(webhook_id, "unknown_webhook", "webhook")
        await params.json_object(request, 1024, "{}")
        event = test_event()

        async def enqueue(conn) -> None:
            await webhook_store.get(conn, number)
            await conn.execute(
                "INSERT INTO webhook_deliveries (webhook_id, event_id, event) VALUES (%s, %s, %s::jsonb)",
                (number, event["id"], orjson.dumps(event).decode()))

        try:
            await change(access, "webhook.test", f"webhook:{number}", enqueue, {"event_id": event["id"]}, "webhook")
        except webhook_store.UnknownWebhook:
            raise NotFound("unknown_webhook", f"no webhook {number}") from None
        return json_response(self, event, status=202)
