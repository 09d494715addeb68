"""``GET /static/{path}``: the map's vendored JavaScript, CSS and images (see ``web/assets.py``)."""
from __future__ import annotations

import mimetypes
from functools import lru_cache
from pathlib import Path

from tracker.app import app
from web.errors import NotFound

STATIC = (Path(__file__).parent / "static").resolve()


@lru_cache(maxsize=64)
def _load(path: str) -> tuple[bytes, str] | None:
    if "\x00" in path:
        return None
    target = (STATIC / path).resolve()
    if not target.is_relative_to(STATIC) or not target.is_file():
        return None
    content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    return target.read_bytes(), content_type


@app.page("/static/{path:.+}")
async def static_file(web, request, path: str):
    found = _load(path)
    if found is None:
        raise NotFound("not_found", f"no static file {path!r}")
    body, content_type = found
    return web.bytes(body, content_type=content_type, headers={"Cache-Control": "public, max-age=86400"})
