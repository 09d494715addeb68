"""A report's rows as a file: JSON (times in ISO 8601, UTC; ``web.reports`` writes the same
text as CSV) or an Excel workbook (times as the spreadsheet's own dates, in the report's
time zone, which the header of each time column names; text is always text, never a
formula, whatever a device or a name holds)."""
from __future__ import annotations

import io
from datetime import date, datetime
from zoneinfo import ZoneInfo

import orjson

from tracker.positions.model import format_time

CONTENT_TYPES = {"json": "application/json", "csv": "text/csv",
                 "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def plain(value):
    """A cell as JSON or CSV text holds it."""
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return ";".join(map(str, value))
    return value


def as_json(kind: str, header: dict, rows: list[dict]) -> bytes:
    return orjson.dumps({**header, "report": kind, "rows": [{k: plain(v) if not isinstance(v, list) else v
                                                              for k, v in row.items()} for row in rows]})


def as_xlsx(kind: str, columns: tuple[str, ...], rows: list[dict], tz: str) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    zone = ZoneInfo(tz)
    book = Workbook(write_only=True)
    sheet = book.create_sheet(kind)
    times = {column for column in columns if column.endswith("time") or column == "time"}
    header = []
    for column in columns:
        cell = WriteOnlyCell(sheet, value=f"{column} ({tz})" if column in times else column)
        cell.font = Font(bold=True)
        header.append(cell)
    sheet.append(header)
    for row in rows:
        values = []
        for column in columns:
            value = row.get(column)
            if isinstance(value, datetime):
                value = value.astimezone(zone).replace(tzinfo=None)
            elif isinstance(value, list):
                value = ", ".join(map(str, value))
            if isinstance(value, str):
                cell = WriteOnlyCell(sheet, value=value)
                cell.data_type = "s"  # "=..." stays text
                value = cell
            values.append(value)
        sheet.append(values)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
