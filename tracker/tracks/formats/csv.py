"""CSV and TSV with a header row, as GPS loggers and spreadsheets write them.

The delimiter is the commonest of ``,`` ``;`` TAB in the header. Columns are found by their
names, whatever the case, spaces or a unit in brackets ("Speed (km/h)"):

- time: ``time``, ``timestamp``, ``datetime``, ``date_time``, ``when``, ``recorded_at``,
  ``utc``, ``gps_time``, ``timestamp_ms``, or ``date`` (with a separate ``time`` column, the
  two joined): ISO 8601 text ("2024-05-01 10:00:00" too; no zone: UTC) or epoch seconds or
  milliseconds;
- ``lat``/``latitude``, ``lon``/``lng``/``long``/``longitude`` (degrees);
- ``speed`` (m/s; km/h, mph or knots when the name says so), ``altitude``/``alt``/
  ``elevation``/``ele`` (m; ft when the name says so), ``accuracy``/``acc``/
  ``horizontal_accuracy`` (m), ``bearing``/``heading``/``course``/``direction``,
  ``battery``/``batt``/``battery_level`` (%);
- kept as attributes: ``satellites``/``sat`` (``sat``), ``hdop``, ``provider``, heart rate
  (``heart_rate``), ``cadence``.

Every other column is left out (a note, an address, a name could be anything).
"""
from __future__ import annotations

import csv
import io
import re
from typing import BinaryIO, Iterator

from tracker.tracks.files import BadPoint, BadTrackFile, Point, Reading, known, number, parse_point_time, place

_TIME = ("time", "timestamp", "datetime", "date_time", "when", "recorded_at", "utc", "time_utc", "gps_time",
         "timestamp_ms", "date")
_LAT, _LON = ("lat", "latitude"), ("lon", "lng", "long", "longitude")
_FIELDS = {"speed": ("speed",), "altitude": ("altitude", "alt", "elevation", "ele"),
           "accuracy": ("accuracy", "acc", "horizontal_accuracy", "hacc"),
           "heading": ("bearing", "heading", "course", "direction", "cog"),
           "battery": ("battery", "batt", "battery_level")}
_ATTRIBUTES = {"sat": ("satellites", "sat", "sats"), "hdop": ("hdop",), "provider": ("provider",),
               "heart_rate": ("heart_rate", "heartrate", "hr"), "cadence": ("cadence",)}
_SPEED_UNITS = {"km/h": 1 / 3.6, "kmh": 1 / 3.6, "kph": 1 / 3.6, "mph": 0.44704, "knots": 0.514444, "kn": 0.514444,
                "kt": 0.514444, "m/s": 1.0}
_DATE = re.compile(r"\d{4}-\d\d-\d\d")
_UNIT = re.compile(r"[(\[]\s*([^)\]]*?)\s*[)\]]|_(kmh|kph|mph|knots|ft)$")


def looks_like_csv(head: bytes) -> bool:
    """Whether the first line names a lat and a lon column."""
    line = head.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    names = {_name(cell)[0] for cell in re.split(r"[,;\t]", line)}
    return bool(names & set(_LAT)) and bool(names & set(_LON))


def read_csv(stream: BinaryIO, reading: Reading) -> Iterator[Point]:
    reading.format = "CSV"
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
    header_line = text.readline()
    delimiter = max((",", ";", "\t"), key=header_line.count)
    header = next(csv.reader([header_line], delimiter=delimiter), [])
    columns: dict[str, int] = {}
    units: dict[int, str] = {}
    for i, cell in enumerate(header):
        name, unit = _name(cell)
        columns.setdefault(name, i)
        if unit:
            units[i] = unit
    lat, lon = _find(columns, _LAT), _find(columns, _LON)
    if lat is None or lon is None:
        raise BadTrackFile("a CSV file needs a header row naming its lat and lon columns")
    time = _find(columns, _TIME[:-1])
    date = columns.get("date")
    if time is None:
        time, date = date, None
    elif columns.get("time") != time:
        date = None  # a date column joins only a plain "time" column
    fields = [(field, _find(columns, names)) for field, names in _FIELDS.items()]
    fields = [(field, i, _scale(field, units.get(i))) for field, i in fields if i is not None]
    attributes = [(name, i) for name, i in ((n, _find(columns, names)) for n, names in _ATTRIBUTES.items())
                  if i is not None]
    for index, row in enumerate(csv.reader(text, delimiter=delimiter), 2):
        if not row or not any(cell.strip() for cell in row):
            continue
        try:
            point = _row(row, lat, lon, time, date, fields, attributes)
        except BadPoint as exc:
            reading.skip(exc, f"line {index}")
            continue
        yield point


def _row(row, lat, lon, time, date, fields, attributes) -> Point:
    cell = lambda i: row[i].strip() if i is not None and i < len(row) else ""
    point = place(cell(lat), cell(lon))
    moment = cell(time)
    if date is not None and moment and cell(date) and not _DATE.search(moment):
        moment = f"{cell(date)}T{moment}"
    if moment:
        point.time = parse_point_time(moment)
    for field, i, scale in fields:
        value = number(cell(i), field)
        if value is not None:
            value = value * scale
            setattr(point, field, value if field in ("altitude", "battery") else known(value))
    kept = {}
    for name, i in attributes:
        value = cell(i)
        if value:
            try:
                kept[name] = number(value, name) if name != "provider" else value[:32]
            except BadPoint:
                continue
    point.attributes = kept or None
    return point


def _name(cell: str) -> tuple[str, str]:
    """A header cell as (name, unit): "Speed (km/h)" is ("speed", "km/h")."""
    text = cell.strip().strip('"').lower()
    match = _UNIT.search(text)
    unit = (match[1] or match[2]) if match else ""
    if match:
        text = text[:match.start()] + text[match.end():]
    return re.sub(r"[\s\-]+", "_", text.strip()), unit.strip().lower()


def _find(columns: dict[str, int], names) -> int | None:
    return next((columns[name] for name in names if name in columns), None)


def _scale(field: str, unit: str | None) -> float:
    if not unit:
        return 1.0
    if field == "speed":
        return _SPEED_UNITS.get(unit, 1.0)
    if field == "altitude" and unit in ("ft", "feet"):
        return 0.3048
    return 1.0
