"""``GET /api/audit?limit=&before=&action=``: the audit trail (``tracker.accounts.audit``), for
admins: who changed what through the API, and when, newest first. ``before`` (a row's id)
pages back; ``action`` keeps one action (``device.add``) or one kind (``device``)."""
from __future__ import annotations

from tracker.accounts import audit
from tracker.app import app
from web import params
from web.auth import require_admin
from web.manage import json_response, read

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@app.page("/api/audit")
async def audit_trail(web, request):
    await require_admin(request)
    limit = params.int_param(request.query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    before = params.int_param(request.query, "before", 0, 1, 2**62) or None
    action = request.query.get("action") or None
    entries = await read(lambda conn: audit.read(conn, limit, before, action))
    return json_response(web, [{"id": e.audit_id, "at": e.at, "actor": e.actor, "via": e.via, "action": e.action,
                                "target": e.target, "detail": e.detail} for e in entries])
