"""What the management views share (``web/devices.py``, ``users``, ``groups``, ``tokens``,
``gateways``, ``audit``): JSON answers, ids in paths, body fields, and ``change``, which runs
a change and writes its audit row in one transaction.

Every change needs a signed-in caller (``web.auth.require`` or ``require_admin``, which
also refuse a cookie session's change asked from another site's page) and a JSON object
as its body (``web.params.json_object``).
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable

import orjson

from tracker.accounts import audit
from tracker.accounts.permissions import Access
from tracker.accounts.store import AccountError
from web.db import request_connection
from web.errors import ApiError, BadRequest, NotFound


class Conflict(ApiError):
    status = 409


def json_response(web, value: Any, status: int = 200):
    return web.bytes(orjson.dumps(value, option=orjson.OPT_UTC_Z), content_type="application/json", status=status)


def numeric_id(text: str, code: str, what: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise NotFound(code, f"no {what} {text[:20]!r}")
    return int(text)


def string_field(body: dict, name: str, *, required: bool = True, default: str = "") -> str:
    value = body.get(name, None if required else default)
    if not isinstance(value, str):
        raise BadRequest("missing_field" if value is None else "bad_field",
                         f"{name} (a string) is required" if value is None else f"{name} must be a string",
                         field=name)
    return value


def string_list(body: dict, name: str) -> list[str] | None:
    """``body[name]``, a list of strings, or None when absent."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadRequest("bad_field", f"{name} must be a list of strings", field=name)
    return value


def account_error(exc: AccountError, code: str) -> ApiError:
    """An account change refused: 404 for what does not exist, 409 for what exists already,
    400 for the rest; the message says why."""
    message = str(exc)
    if message.startswith("no "):
        return NotFound(f"unknown_{code}", message)
    if "exists already" in message:
        return Conflict(f"{code}_exists", message)
    return BadRequest(f"bad_{code}", message)


async def change(by: Access, action: str, target: str, work: Callable[[Any], Awaitable[Any]],
                 detail: dict[str, Any] | None = None, code: str = "account") -> Any:
    """``work(conn)`` and its audit row, in one transaction: both or neither."""
    try:
        async with request_connection() as conn:
            async with conn.transaction():
                result = await work(conn)
                await audit.record(conn, by, action, target, detail)
    except AccountError as exc:
        raise account_error(exc, code) from None
    return result


async def read(work: Callable[[Any], Awaitable[Any]], code: str = "account") -> Any:
    """``work(conn)`` on a request's connection; an account error as ``change`` answers it."""
    try:
        async with request_connection() as conn:
            return await work(conn)
    except AccountError as exc:
        raise account_error(exc, code) from None

