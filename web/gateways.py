"""Gateways over HTTP, for admins (what ``tracker gateways`` does): servers that forward many
devices' positions (``POST /ingest/traccar``).

- ``GET /api/gateways``: every gateway, never its token.
- ``POST /api/gateways`` ``{"name", "prefix"}``: answers its token, shown only now.
- ``DELETE /api/gateways/{name}``: its token stops working.

Each change is audited.
"""
from __future__ import annotations

from faust.web import View

from tracker.accounts import gateways
from tracker.app import app
from tracker.cli.gateways import NAME, NAME_RULE
from tracker.positions.model import MARKER_ID_PATTERN
from web import params
from web.auth import require_admin
from web.errors import BadRequest, NotFound
from web.manage import Conflict, change, json_response, read, string_field

MAX_BODY = 4096
SHAPE = '{"name": "traccar-1", "prefix": "fleet-"}'


def gateway_json(gateway: gateways.Gateway) -> dict:
    return {"name": gateway.name, "prefix": gateway.prefix, "created_at": gateway.created_at}


@app.page("/api/gateways")
class Gateways(View):
    async def get(self, request):
        await require_admin(request)
        return json_response(self, [gateway_json(g) for g in await read(gateways.listing)])

    async def post(self, request):
        access = await require_admin(request)
        body = await params.json_object(request, MAX_BODY, SHAPE)
        name = string_field(body, "name")
        prefix = string_field(body, "prefix", required=False)
        if NAME.fullmatch(name) is None:
            raise BadRequest("bad_gateway", f"a gateway name is {NAME_RULE}", field="name")
        if prefix and MARKER_ID_PATTERN.fullmatch(prefix) is None:
            raise BadRequest("bad_gateway", f"prefix {prefix!r} cannot begin a marker id", field="prefix")
        try:
            token = await change(access, "gateway.add", f"gateway:{name}",
                                 lambda conn: gateways.add(conn, name, prefix), {"prefix": prefix})
        except gateways.GatewayError as exc:
            raise Conflict("gateway_exists", str(exc)) from None
        (made,) = [g for g in await read(gateways.listing) if g.name == name]
        return json_response(self, {**gateway_json(made), "token": token}, status=201)


@app.page("/api/gateways/{name}")
class GatewayItem(View):
    async def delete(self, request, name: str):
        access = await require_admin(request)
        try:
            await change(access, "gateway.remove", f"gateway:{name}", lambda conn: gateways.remove(conn, name))
        except gateways.GatewayError as exc:
            raise NotFound("unknown_gateway", str(exc)) from None
        return self.bytes(b"", status=204)
