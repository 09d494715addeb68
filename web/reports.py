"""``GET /api/reports/{kind}?markers=&group=&from=&to=&tz=&format=json|csv|xlsx``: a report over
several markers (``web.marker_selection``) and a period (the 7 days before ``to`` by
default): ``trips``, ``stops``, ``events`` or ``summary`` (one row per marker and day, in
time zone ``tz``). CSV and XLSX come as a download (``tracker.reports.render``)."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

from tracker.app import app
from tracker.positions.model import format_time
from tracker.reports import render
from tracker.reports.rows import COLUMNS, KINDS, report_rows
from web import params
from web.auth import require
from web.db import request_connection
from web.errors import NotFound
from web.exports import csv_cell
from web.marker_selection import selected_markers
from web.tracks import time_range

DEFAULT_SPAN = timedelta(days=7)


def as_csv(columns: tuple[str, ...], rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(render.plain(row.get(column))) for column in columns])
    return out.getvalue().encode()


@app.page("/api/reports/{kind}")
async def report(web, request, kind: str):
    access = await require(request)
    if kind not in KINDS:
        raise NotFound("unknown_report", f"no report {kind[:20]!r}: one of {', '.join(KINDS)}")
    markers = await selected_markers(request, access)
    start, end = time_range(request.query, DEFAULT_SPAN)
    tz = params.zone_param(request.query)
    fmt = params.choice_param(request.query, "format", "json", tuple(render.CONTENT_TYPES))
    async with request_connection("journeys_unavailable") as conn:
        rows = await report_rows(conn, kind, markers, start, end, tz, access)
    columns = COLUMNS[kind]
    if fmt == "json":
        header = {"markers": markers, "from": format_time(start), "to": format_time(end), "tz": tz,
                  "columns": list(columns)}
        return web.bytes(render.as_json(kind, header, rows), content_type=render.CONTENT_TYPES[fmt])
    body = as_csv(columns, rows) if fmt == "csv" else render.as_xlsx(kind, columns, rows, tz)
    name = f"{kind}-{start:%Y%m%d}-{end:%Y%m%d}.{fmt}"
    return web.bytes(body, content_type=render.CONTENT_TYPES[fmt],
                     headers={"Content-Disposition": f'attachment; filename="{name}"'})
