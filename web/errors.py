"""The one error path of the HTTP API: views raise an ``ApiError`` and Faust's view machinery
renders it, once, as ``{"error": code, "message": text}`` (plus any extra fields) with
its status. Pages for people (``HtmlPage``) render the same errors as a short HTML page."""
from __future__ import annotations

import html
from typing import Any

from aiohttp import web as aioweb
from faust.web import View
from faust.web.exceptions import WebError


class ApiError(WebError):
    status = 500

    def __init__(self, code: str, message: str, *, status: int | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        context: dict[str, Any] = {"message": message, **extra}
        if headers:
            context["headers"] = headers  # View.error takes them as its headers
        super().__init__(code, code=status or self.status, **context)
        self.message = message


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class RequestTimeout(ApiError):
    status = 408


class TooLarge(ApiError):
    status = 413


class UnsupportedMediaType(ApiError):
    status = 415


class TooManyRequests(ApiError):
    status = 429


class Unavailable(ApiError):
    status = 503


@aioweb.middleware
async def out_of_range(request, handler):
    """A value that arithmetic takes past what a type holds (a date past 9999-12-31) is the
    caller's: a 400, not a 500, wherever a view forgot to check it."""
    try:
        return await handler(request)
    except OverflowError:
        return aioweb.json_response({"error": "out_of_range", "message": "a value of the request is out of range"},
                                    status=400)


def unknown_marker(marker_id: str) -> NotFound:
    """The one answer for a marker the caller may not see, on every route, and for one with
    nothing to show: the same status and body, so that neither tells the other apart."""
    return NotFound("unknown_marker", f"no marker {marker_id!r}")


class HtmlPage(View):
    """A view for people: errors become a small HTML page with the same status and message."""

    async def on_request_error(self, request: Any, exc: WebError) -> Any:
        message = exc.extra_context.get("message", exc.detail)
        headers = exc.extra_context.get("headers")
        if 300 <= exc.code < 400:  # a redirect (to the login form)
            return self.html("", status=exc.code, headers=headers)
        return self.html(f"<!doctype html><title>{exc.code}</title><h1>{exc.code}</h1><p>{html.escape(message)}</p>",
                         status=exc.code, headers=headers)
