"""The settings a phone needs to report as a device, as text and as QR codes that configure
its app:

- Traccar Client reads a server URL from a QR code: the URL's origin and path become its
  server URL (``/ingest/osmand/SECRET``: the secret travels in the path) and its query
  parameters its settings (``id``, ``interval``, ``accuracy``…).
- OwnTracks reads a configuration URL, ``owntracks:///config?inline=`` followed by its JSON
  configuration in base64: HTTP mode, this tracker's ``/ingest/owntracks``, the device id
  as user and the secret as password.

The codes are SVG images as ``data:`` URLs (``segno``), made here: the page needs no
script of its own to draw them, and nothing is asked of another site.
"""
from __future__ import annotations

import base64
from urllib.parse import quote, urlencode

import orjson

from tracker.settings import settings
from web.auth import is_https

#: Traccar Client's reporting interval (s) and accuracy in the code it scans.
TRACCAR_INTERVAL = 30
TRACCAR_ACCURACY = "high"
OWNTRACKS_HTTP_MODE = 3


def public_base(request) -> str:
    """This tracker's address as phones reach it: ``TRACKER_PUBLIC_URL``, else the request's."""
    return settings.public_url or f"{'https' if is_https(request) else 'http'}://{request.host}"


def owntracks_configuration(base: str, device_id: str, secret: str) -> dict:
    return {"_type": "configuration", "mode": OWNTRACKS_HTTP_MODE, "url": f"{base}/ingest/owntracks",
            "auth": True, "username": device_id, "password": secret, "deviceId": device_id[:64],
            "tid": device_id[-2:]}


def owntracks_url(configuration: dict) -> str:
    return "owntracks:///config?inline=" + base64.b64encode(orjson.dumps(configuration)).decode()


def traccar_url(base: str, device_id: str, secret: str) -> str:
    query = urlencode({"id": device_id, "interval": TRACCAR_INTERVAL, "accuracy": TRACCAR_ACCURACY})
    return f"{base}/ingest/osmand/{quote(secret, safe='')}?{query}"


def qr_data_uri(text: str) -> str:
    import segno

    return segno.make(text, error="m").svg_data_uri(scale=4, border=4)


def for_device(request, device_id: str, secret: str) -> dict:
    """Everything a phone needs, with the secret: shown once, with the secret."""
    base = public_base(request)
    configuration = owntracks_configuration(base, device_id, secret)
    traccar = traccar_url(base, device_id, secret)
    owntracks = owntracks_url(configuration)
    return {
        "traccar_client": {"server_url": f"{base}/ingest/osmand/{secret}", "device_id": device_id,
                           "qr_text": traccar, "qr_svg": qr_data_uri(traccar)},
        "owntracks": {"mode": "HTTP", "url": configuration["url"], "username": device_id, "password": secret,
                      "device_id": configuration["deviceId"], "tracker_id": configuration["tid"],
                      "config_url": owntracks, "qr_text": owntracks, "qr_svg": qr_data_uri(owntracks)},
    }
