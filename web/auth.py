"""Who is asking: every read view calls ``require`` (JSON) or ``require_page`` (HTML) first.

A caller proves who it is with one of:

- a session cookie (``POST /login`` sets it; browsers),
- ``Authorization: Bearer TOKEN`` (an API token from ``tracker tokens add``),
- ``Authorization: Basic`` with a user's name and password.

A request one worker forwards to another carries ``TRACKER_CLUSTER_SECRET`` in
``X-Tracker-Cluster`` instead, and never the client's own credentials.

A request one worker forwards to another may also carry ``TRACKER_CLUSTER_SECRET_PREVIOUS``
(a rotation: every worker accepts both while they change over).

Answers are cached for ``FRESH_SECONDS`` (so a revoked token or session stops working
within that time). While Postgres cannot be reached, a caller seen in the last
``OUTAGE_GRACE_SECONDS`` keeps its access, so the live map keeps working through a database
outage. A password (HTTP Basic, the login form) is checked through
``tracker.accounts.guessing``: failed attempts per account and per address delay the next
ones (429 with ``Retry-After``), and a flood finds a small queue for the KDF, then 429.

Any request that changes something (not GET, HEAD or OPTIONS), whatever its credential,
must carry an ``Origin`` of this site if it carries one at all (``require_same_origin``).
"""
from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import math
from typing import Awaitable, Callable
from urllib.parse import quote, urlsplit

import psycopg

from tracker.accounts import guessing
from tracker.accounts import store as accounts
from tracker.accounts.credentials import same_secret
from tracker.storage.pool import DATABASE_ERRORS
from tracker.accounts.outage_cache import OutageCache
from tracker.accounts.permissions import Access
from tracker.resources import database
from tracker.settings import settings
from web import params
from web.errors import ApiError, Forbidden, TooManyRequests, Unauthorized, Unavailable, unknown_marker
from web.guard import client_address

SESSION_COOKIE = "tracker_session"
CLUSTER_HEADER = "X-Tracker-Cluster"
FRESH_SECONDS = 2.0
OUTAGE_GRACE_SECONDS = 600.0
#: After a failed lookup, Postgres is not tried again for this long: requests meanwhile
#: are answered from the cache (or 503) at once instead of each waiting for a timeout.
RETRY_DATABASE_SECONDS = 2.0
LOOKUP_TIMEOUT = 2.0
MAX_CACHED = 10_000
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="tracker", Basic realm="tracker", charset="UTF-8"'}
CLUSTER = Access(user="cluster", role="admin", via="cluster")

Lookup = Callable[[psycopg.AsyncConnection], Awaitable[Access | None]]


class LoginRequired(ApiError):
    """An HTML page asked for without a session: ``HtmlPage`` turns it into a redirect."""

    status = 303


_cache = OutageCache(lambda: database.connection(timeout=LOOKUP_TIMEOUT), FRESH_SECONDS,
                     OUTAGE_GRACE_SECONDS, RETRY_DATABASE_SECONDS, MAX_CACHED)


async def _cached(key: bytes, lookup: Lookup) -> Access | None:
    try:
        return await _cache.get(key, lookup)
    except DATABASE_ERRORS:
        raise Unavailable("accounts_unavailable", "the account database cannot be reached; retry") from None


def _key(kind: str, *parts: str) -> bytes:
    """A cache key that holds no credential in clear."""
    return hashlib.sha256("\0".join((kind, *parts)).encode()).digest()


def basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep and user.isprintable() and "\0" not in password else None


def bearer_token(header: str) -> str | None:
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def is_cluster_request(request) -> bool:
    given = request.headers.get(CLUSTER_HEADER)
    return same_secret(given, settings.cluster_secret) or same_secret(given, settings.cluster_secret_previous)


class TooManyAttempts(TooManyRequests):
    pass


async def password_access(request, user: str, password: str, via: str) -> Access | None:
    """The access ``user`` and ``password`` give, or None; throttled per account and per
    client address (429 beyond), and 429 when too many checks are queued already."""
    key = _key("password", via, user, password)
    known = _cache.fresh(key)
    if known is not None:  # checked a moment ago: no guess
        return known
    address = client_address(request)
    wait = guessing.throttle.wait(user, address)
    if wait > 0:
        seconds = str(max(1, math.ceil(wait)))
        raise TooManyAttempts("too_many_attempts", f"too many failed sign-ins; retry in {seconds} s",
                              headers={"Retry-After": seconds})
    # A place in the KDF's queue first, for the lookup too: a flood beyond it costs neither a
    # query nor scrypt. A password this worker found right before needs no place (nor scrypt,
    # if the stored hash is the same), so a flood does not hold up those who signed in. The
    # user's row is cached as any answer (a flood on one account costs one query per
    # FRESH_SECONDS), and no connection is held while scrypt runs.
    try:
        with contextlib.nullcontext() if accounts.remembered(user, password) else guessing.kdf.place():
            row = await _cached(_key("password-row", user), lambda conn: accounts.password_row(conn, user))
            matches = await accounts.password_matches(user, password, row)
    except guessing.KdfBusy:
        raise TooManyAttempts("busy", "too many sign-ins at once; retry in a moment",
                              headers={"Retry-After": "1"}) from None
    if not matches:
        guessing.throttle.failed(user, address)
        return None
    guessing.throttle.succeeded(user, address)
    access = await _cached(_key("user", str(row[0]), via), lambda conn: accounts.access_for(conn, row[0], via))
    _cache.put(key, access)
    return access


async def access_of(request) -> Access | None:
    """The caller's access, or None when it sent no valid credential."""
    if is_cluster_request(request):
        return CLUSTER
    header = request.headers.get("Authorization", "")
    token = bearer_token(header)
    if token is not None:
        return await _cached(_key("token", token), lambda conn: accounts.token_access(conn, token))
    credentials = basic_credentials(header)
    if credentials is not None:
        return await password_access(request, *credentials, "basic")
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        return await _cached(_key("session", session), lambda conn: accounts.session_access(conn, session))
    return None


async def require(request) -> Access:
    """The caller's access; 401 with the JSON error body without a valid credential."""
    access = await access_of(request)
    if access is None:
        raise Unauthorized("unauthorized", "sign in: a session cookie, a Bearer token or HTTP Basic",
                           headers=CHALLENGE)
    require_same_origin(request)
    return access


SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))


def require_same_origin(request) -> None:
    """A browser sends its cookie, and HTTP Basic credentials it has kept, with any request to
    this site, even one another page made; it also says which page's origin made it. A change
    asked from another origin is refused, whatever the credential. (SameSite=Lax already keeps
    the cookie off cross-site posts; this covers other sites on the same registrable domain,
    and Basic credentials, which have no SameSite.)"""
    if request.method in SAFE_METHODS:
        return
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc.lower() != request.host.lower():
        raise Forbidden("cross_origin", "this change was asked from another site's page")


def visible_marker(access: Access, marker_id: str) -> str:
    """``marker_id``, checked (400 if malformed) and visible to ``access`` (else the same 404
    as a marker that never reported, ``unknown_marker``): every route that takes a marker id
    starts with it."""
    params.marker_id_param(marker_id)
    if not access.permits(marker_id):
        raise unknown_marker(marker_id)
    return marker_id


async def require_admin(request) -> Access:
    access = await require(request)
    if not access.is_admin:
        raise Forbidden("forbidden", "only an admin may do this")
    return access


async def require_page(request) -> Access:
    """For HTML pages: without a valid credential, a redirect to the login form."""
    access = await access_of(request)
    if access is None:
        target = request.path_qs if request.method == "GET" else "/map"
        raise LoginRequired("login_required", "sign in first",
                            headers={"Location": f"/login?next={quote(target, safe='')}"})
    return access


def forget_session(session: str) -> None:
    _cache.forget(_key("session", session))


def is_https(request) -> bool:
    """Served over TLS, directly or behind a proxy that says so."""
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"
