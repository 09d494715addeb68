"""Webhooks: where events are POSTed, which ones, and how each request is signed.

A webhook is a URL (http or https, to a public address unless
``TRACKER_WEBHOOK_ALLOW_PRIVATE`` allows more: ``tracker.webhooks.destinations``; no
credentials in it) with a secret, the event types it wants (none: every
type) and the markers (ids, or prefixes ending in ``*``; none: every marker). Its
Postgres rows are in ``tracker.webhooks.store``; the notifier (``agents/notifier.py``)
delivers.

Each delivery is one POST of the event as JSON (keys sorted, so a retry sends the same
bytes) with

- ``X-Tracker-Signature: sha256=<hex HMAC-SHA256 of the exact body, keyed with the secret>``,
- ``X-Tracker-Event``: the event's type, ``X-Tracker-Delivery``: the event's id (the same
  on every attempt: a receiver may use it to drop a repeat), ``X-Tracker-Attempt``: 1, 2, ...

A 2xx answer delivers it; anything else, or no answer within ``TRACKER_WEBHOOK_TIMEOUT``,
is retried after ``retry_delay`` until ``TRACKER_WEBHOOK_MAX_ATTEMPTS``. What an attempt
records is its status and its time, never the body of the answer. A webhook's URL is shown
(``public``, dead letters, logs) without its query: it may carry a token.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import orjson

from tracker.events.model import TYPES
from tracker.settings import settings
from tracker.webhooks.destinations import host_refusal, redact, resolution_refusal
from tracker.accounts.permissions import grants_permit, parse_grant
from tracker.positions.model import MARKER_ID_PATTERN

SIGNATURE_HEADER = "X-Tracker-Signature"
EVENT_HEADER = "X-Tracker-Event"
DELIVERY_HEADER = "X-Tracker-Delivery"
ATTEMPT_HEADER = "X-Tracker-Attempt"
SIGNATURE_SCHEME = "sha256="
URL_MAX = 2000
MARKERS_MAX = 1000
#: The longest wait between two attempts, however many there are.
MAX_RETRY_SECONDS = 600.0
STATUSES = ("pending", "delivered", "failed")


class BadWebhook(ValueError):
    """What is wrong with a webhook, in one sentence."""


@dataclass(frozen=True)
class Webhook:
    webhook_id: int
    url: str
    secret: str
    types: tuple[str, ...] = ()
    markers: tuple[str, ...] = ()
    created_by: str | None = None  # a user's name; None: the command line
    created_at: datetime | None = None

    def wants(self, event: dict) -> bool:
        """Whether ``event`` (a ``gps.events`` record) is for this webhook."""
        if self.types and event.get("type") not in self.types:
            return False
        return not self.markers or grants_permit(self.markers, event.get("marker_id", ""))

    def public(self) -> dict:
        """What the API and the command line show: everything but the secret."""
        return {"id": self.webhook_id, "url": redact(self.url), "types": list(self.types), "markers": list(self.markers),
                "created_by": self.created_by, "created_at": self.created_at}


@dataclass(frozen=True)
class NewWebhook:
    url: str
    types: tuple[str, ...]
    markers: tuple[str, ...]


def parse_webhook(body: Any, allowed: tuple | None = None) -> NewWebhook:
    """``{"url", "types": [...], "markers": [...]}`` checked; ``BadWebhook`` says what is wrong.
    ``allowed``: the networks allowed beyond public addresses (``TRACKER_WEBHOOK_ALLOW_PRIVATE``
    by default)."""
    if not isinstance(body, dict):
        raise BadWebhook('a webhook is {"url": ..., "types": [...], "markers": [...]}')
    unknown = sorted(set(body) - {"url", "types", "markers"})
    if unknown:
        raise BadWebhook(f"unknown field {unknown[0][:40]!r}: a webhook has url, types and markers")
    return NewWebhook(check_url(body.get("url"), allowed), check_types(body.get("types")),
                      check_markers(body.get("markers")))


async def parse_and_resolve(body: Any) -> NewWebhook:
    """``parse_webhook``, then the URL's host resolved: every address it has now must be
    allowed (a name that does not resolve now is checked at each delivery)."""
    new = parse_webhook(body)
    refusal = await resolution_refusal(new.url, settings.webhook_allow_private)
    if refusal is not None:
        raise BadWebhook(f"url: {refusal}; webhooks go to public addresses unless TRACKER_WEBHOOK_ALLOW_PRIVATE "
                         "lists the network")
    return new


def check_url(url: Any, allowed: tuple | None = None) -> str:
    if not isinstance(url, str) or not url:
        raise BadWebhook("url (an http or https URL) is required")
    if len(url) > URL_MAX:
        raise BadWebhook(f"url must be at most {URL_MAX} characters")
    if not url.isprintable() or any(c.isspace() for c in url):
        raise BadWebhook("url must not hold spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise BadWebhook(f"url is malformed: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise BadWebhook("url must start with http:// or https://")
    if not parts.hostname:
        raise BadWebhook("url must name a host")
    if parts.fragment:
        raise BadWebhook("url must not have a #fragment (it is never sent)")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise BadWebhook("url must not hold credentials (user:password@): the receiver checks the signature")
    refusal = host_refusal(url, settings.webhook_allow_private if allowed is None else allowed)
    if refusal is not None:
        raise BadWebhook(f"url: {refusal}; webhooks go to public addresses unless TRACKER_WEBHOOK_ALLOW_PRIVATE "
                         "lists the network")
    return url


def check_types(types: Any) -> tuple[str, ...]:
    if types is None:
        return ()
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise BadWebhook("types must be a list of event types (empty: every type)")
    for kind in types:
        if kind not in TYPES:
            raise BadWebhook(f"types: {kind[:40]!r} is not one of {', '.join(TYPES)}")
    return tuple(dict.fromkeys(types))


def check_markers(markers: Any) -> tuple[str, ...]:
    if markers is None:
        return ()
    if not isinstance(markers, list) or not all(isinstance(m, str) for m in markers):
        raise BadWebhook('markers must be a list of marker ids, or prefixes ending in "*" (empty: every marker)')
    if len(markers) > MARKERS_MAX:
        raise BadWebhook(f"markers: at most {MARKERS_MAX}")
    for grant in markers:
        if not MARKER_ID_PATTERN.fullmatch(parse_grant(grant)[0]):
            raise BadWebhook(f"markers: {grant[:70]!r} is not a marker id or a prefix ending in *")
    return tuple(dict.fromkeys(markers))


def new_secret() -> str:
    return secrets.token_urlsafe(32)


# --- one request -----------------------------------------------------------------------

def body_of(event: dict) -> bytes:
    """The bytes POSTed for an event: the same on every attempt, from whichever worker."""
    return orjson.dumps(event, option=orjson.OPT_SORT_KEYS)


def signature(secret: str, body: bytes) -> str:
    """The ``X-Tracker-Signature`` value of ``body``."""
    return SIGNATURE_SCHEME + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver checks: ``header`` is the signature of exactly ``body``."""
    return header is not None and hmac.compare_digest(signature(secret, body), header)


def request_headers(secret: str, event: dict, body: bytes, attempt: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature(secret, body),
        EVENT_HEADER: str(event.get("type", "")),
        DELIVERY_HEADER: str(event.get("id", "")),
        ATTEMPT_HEADER: str(attempt),
    }


def retry_delay(attempt: int, base: float, cap: float = MAX_RETRY_SECONDS) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1, 2, ...): ``base``, twice
    that, four times, ... at most ``cap``."""
    return min(cap, base * 2.0 ** min(max(attempt - 1, 0), 62))


def dead_letter(webhook: Webhook, event: dict, attempts: int, last_status: int | None, last_error: str | None,
                failed_at: datetime) -> dict:
    """The ``gps.events.dlq`` record of an event no attempt delivered."""
    last = f"HTTP {last_status}" if last_status is not None else (last_error or "no answer")
    return {
        "reason": f"webhook {webhook.webhook_id} ({redact(webhook.url)}) failed {attempts} attempts; last: {last}",
        "webhook_id": webhook.webhook_id,
        "url": redact(webhook.url),
        "attempts": attempts,
        "last_status": last_status,
        "last_error": last_error,
        "failed_at": failed_at,
        "event": event,
    }
