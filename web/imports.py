"""Track files imported from the browser, for admins: every format ``tracker import`` reads
(GPX, KML/KMZ, TCX, GeoJSON, CSV, Overland, Google Takeout, OwnTracks .rec), read and sent the
same way (``tracker.tracks.browser_import``).

- ``POST /api/imports`` ``{"marker_id", "filename", "start", "interval"}``: a new import,
  waiting for its file (``start`` and ``interval`` time the points of a file without times,
  as ``--start`` and ``--interval`` do). Audited.
- ``PUT /api/imports/{import_id}/file``: the file itself, as ``application/octet-stream``
  (which no page of another site can send without this site's consent); 202, then the
  worker reads and sends it in the background.
- ``GET /api/imports`` (the latest) and ``GET /api/imports/{import_id}``: state, points sent
  of the total, points skipped and why, per file.
"""
from __future__ import annotations

import asyncio
import math
import re
import shutil
import tempfile
from pathlib import Path

from faust.web import View

from tracker.app import app
from tracker.positions.model import MARKER_ID_PATTERN, MARKER_ID_RULE, InvalidPosition, format_time, parse_time
from tracker.resources import database
from tracker.tracks import browser_import, uploads
from web import params
from web.auth import require_admin
from web.db import request_connection
from web.errors import ApiError, BadRequest, NotFound, TooLarge
from web.manage import Conflict, change, json_response, numeric_id, string_field

MAX_BODY = 4096
MAX_FILE_BYTES = 2 * 1024 ** 3
CHUNK = 1 << 20
LISTED = 50
SHAPE = '{"marker_id": "hiker", "filename": "walk.gpx", "start": "2026-05-01T08:00:00Z", "interval": 5}'
UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_running: set[asyncio.Task] = set()


class UnsupportedMediaType(ApiError):
    status = 415


def import_json(row: dict) -> dict:
    return {"id": row["import_id"], "marker_id": row["marker_id"], "filename": row["filename"],
            "created_by": row["created_by"], "created_at": row["created_at"], "state": row["state"],
            "bytes": row["bytes"], "total": row["total"], "sent": row["sent"], "skipped": row["skipped"],
            "files": row["files"], "message": row["message"], "finished_at": row["finished_at"],
            "upload": f"/api/imports/{row['import_id']}/file"}


def _options(body: dict) -> dict:
    start, interval = body.get("start"), body.get("interval")
    if (start is None) != (interval is None):
        raise BadRequest("bad_import", "start and interval go together (for a file without times)")
    if start is None:
        return {}
    try:
        parsed = parse_time(start, max_future=None)
    except InvalidPosition as exc:
        raise BadRequest("bad_import", f"start: {exc.message}", field="start") from None
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not (interval > 0 and math.isfinite(interval)):
        raise BadRequest("bad_import", "interval must be a number of seconds more than 0", field="interval")
    return {"start": format_time(parsed), "interval": float(interval)}


async def _import(import_id: int) -> dict:
    async with request_connection() as conn:
        row = await uploads.get(conn, import_id)
    if row is None:
        raise NotFound("unknown_import", f"no import {import_id}")
    return row


@app.page("/api/imports")
class Imports(View):
    async def get(self, request):
        await require_admin(request)
        async with request_connection() as conn:
            rows = await uploads.recent(conn, LISTED)
        return json_response(self, [import_json(row) for row in rows])

    async def post(self, request):
        access = await require_admin(request)
        body = await params.json_object(request, MAX_BODY, SHAPE)
        marker_id = string_field(body, "marker_id")
        if not MARKER_ID_PATTERN.fullmatch(marker_id):
            raise BadRequest("bad_marker_id", f"marker_id must be {MARKER_ID_RULE}", field="marker_id")
        filename = Path(string_field(body, "filename").replace("\\", "/")).name
        if not filename or len(filename) > 200 or not filename.isprintable():
            raise BadRequest("bad_import", "filename is the file's name, 1 to 200 printable characters", field="filename")
        options = _options(body)
        import_id = await change(access, "import.add", f"marker:{marker_id}",
                                 lambda conn: uploads.create(conn, marker_id, filename, access.user_id, options),
                                 {"filename": filename})
        return json_response(self, import_json(await _import(import_id)), status=201)


@app.page("/api/imports/{import_id}")
class ImportItem(View):
    async def get(self, request, import_id: str):
        await require_admin(request)
        return json_response(self, import_json(await _import(numeric_id(import_id, "unknown_import", "import"))))


@app.page("/api/imports/{import_id}/file")
class ImportFile(View):
    async def put(self, request, import_id: str):
        await require_admin(request)
        number = numeric_id(import_id, "unknown_import", "import")
        if request.content_type != "application/octet-stream":
            raise UnsupportedMediaType("unsupported_media_type", "send the file as application/octet-stream")
        row = await _import(number)
        if row["state"] != "waiting":
            raise Conflict("import_started", f"import {number} has its file already")
        folder = Path(tempfile.mkdtemp(prefix="tracker-import-"))
        stem, suffix = Path(row["filename"]).stem, Path(row["filename"]).suffix
        path = folder / ((UNSAFE.sub("_", stem)[:100] or "track") + UNSAFE.sub("", suffix)[:10].lower())
        try:
            size = await _receive(request, path)
            async with request_connection() as conn:
                if not await uploads.claim(conn, number, size):
                    raise Conflict("import_started", f"import {number} has its file already")
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        options = row["options"]
        start = parse_time(options["start"], max_future=None) if options.get("start") else None
        task = asyncio.create_task(browser_import.run(database.connection, number, path, row["marker_id"], start,
                                                      options.get("interval")))
        _running.add(task)
        task.add_done_callback(_running.discard)
        return json_response(self, import_json(await _import(number)), status=202)


async def _receive(request, path: Path) -> int:
    """The request's body written to ``path``: its size; 413 past ``MAX_FILE_BYTES``, 400 if empty."""
    size = 0
    with open(path, "wb") as out:
        while chunk := await request.content.read(CHUNK):
            size += len(chunk)
            if size > MAX_FILE_BYTES:
                raise TooLarge("too_large", f"a file of at most {MAX_FILE_BYTES // 1024 ** 2:,} MB")
            await asyncio.to_thread(out.write, chunk)
    if not size:
        raise BadRequest("empty_file", "the file is empty")
    return size
