"""``GET /``: links to the map and the API; ``GET /openapi.yaml``: the API description."""
from __future__ import annotations

from pathlib import Path

from tracker.app import app

OPENAPI = (Path(__file__).parent / "openapi.yaml").read_bytes()

INDEX = """<!doctype html>
<html><head><meta charset="utf-8"><title>GPS tracker</title>
<style>body{font:16px sans-serif;max-width:40em;margin:2em auto}code{background:#eee}</style></head>
<body><h1>GPS tracker</h1>
<ul>
<li><a href="/map">Live map</a> of every marker</li>
<li><a href="/admin/devices">Manage</a> devices, users, groups, tokens, webhooks, gateways and share links</li>
<li><a href="/api/markers">/api/markers</a>: latest positions (JSON),
    <a href="/api/markers.geojson">/api/markers.geojson</a> (GeoJSON)</li>
<li><code>/api/markers/{id}</code>: one marker; <code>/api/markers/{id}/history</code>: its track
    (<code>format=json|geojson|gpx|csv</code>); <code>/map/{id}</code>: its track on a map</li>
<li><a href="/openapi.yaml">/openapi.yaml</a>: the API description (OpenAPI 3)</li>
<li><a href="/health">/health</a>: readiness of this worker</li>
</ul></body></html>
"""


@app.page("/")
async def index(web, request):
    return web.html(INDEX)


@app.page("/openapi.yaml")
async def openapi(web, request):
    return web.bytes(OPENAPI, content_type="application/yaml")
