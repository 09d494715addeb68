"""Security headers on every HTML page the worker serves (nginx adds the same in front).

The pages are Folium maps: inline scripts, their JavaScript and CSS from this worker (or
the CDN with ``TRACKER_MAP_ASSETS=cdn``), tiles from ``TRACKER_TILE_URL``'s host, data
from this origin only.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from tracker.settings import settings
from web.assets import CDN


def _origin(url: str) -> str:
    parts = urlsplit(url.replace("{s}", "*"))
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def content_security_policy() -> str:
    assets = " " + _origin(CDN) if settings.map_assets == "cdn" else ""
    tiles = _origin(settings.tile_url)
    return "; ".join((
        "default-src 'self'",
        f"script-src 'self' 'unsafe-inline'{assets}",
        f"style-src 'self' 'unsafe-inline'{assets}",
        f"font-src 'self' data:{assets}",
        f"img-src 'self' data: blob: {tiles}".rstrip(),
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ))


PAGE_HEADERS = {
    "Content-Security-Policy": content_security_policy(),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Same-origin, not no-referrer: with no-referrer browsers send "Origin: null" on form
    # posts, and the workers check Origin against cross-site changes (``web.auth``).
    "Referrer-Policy": "same-origin",
}


async def add_security_headers(request, response) -> None:
    """aiohttp ``on_response_prepare``: every response is nosniff; HTML pages get all of them."""
    if response.content_type == "text/html":
        for name, value in PAGE_HEADERS.items():
            response.headers.setdefault(name, value)
    else:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
