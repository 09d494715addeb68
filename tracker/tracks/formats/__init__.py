"""One reader per track format, each a function ``(stream, reading) -> Iterator[Point]``.

``detect`` picks the reader of a source from its first bytes, and from its suffix where
the bytes alone do not tell:

- XML (``xml_track``): GPX, KML or TCX by its root element, whatever the suffix;
- JSON: GeoJSON, Overland batches, Google Takeout's ``Records.json``, its Semantic Location
  History and the phone's Timeline export, by the keys of the first objects;
- lines of ``<time> <tag> {JSON}``: an OwnTracks Recorder file;
- text with a header row naming lat and lon columns: CSV.
"""
from __future__ import annotations

import re
from typing import BinaryIO, Callable, Iterator

from tracker.tracks.files import BadTrackFile, Point, Reading, Source

Reader = Callable[[BinaryIO, Reading], Iterator[Point]]

_BOM = b"\xef\xbb\xbf"
_REC_LINE = re.compile(rb"\d{4}-\d\d-\d\dT\S*[ \t]+\S+[ \t]+\{")
KNOWN = ("GPX (.gpx), KML (.kml, .kmz), TCX (.tcx), GeoJSON (.geojson, .json), CSV (.csv), an Overland batch, "
         "Google Takeout (Records.json, Semantic Location History, Timeline.json, or their .zip) "
         "or an OwnTracks Recorder file (.rec)")


def detect(source: Source, head: bytes) -> Reader:
    """The reader for a source whose first bytes are ``head``; ``BadTrackFile`` if none fits."""
    text = head.removeprefix(_BOM).lstrip()
    if text.startswith(b"<") or head.startswith((b"\xff\xfe", b"\xfe\xff")):
        from tracker.tracks.formats.xmlstream import xml_track
        return xml_track
    if text.startswith((b"{", b"[")):
        from tracker.tracks.formats.jsonstream import json_reader
        return json_reader(text)
    if _REC_LINE.match(text) or (source.suffix == ".rec" and text):
        from tracker.tracks.formats.owntracks import read_rec
        return read_rec
    from tracker.tracks.formats.csv import looks_like_csv, read_csv
    if looks_like_csv(text) or source.suffix in (".csv", ".tsv"):
        return read_csv
    if not text:
        raise BadTrackFile("empty")
    raise BadTrackFile(f"unknown format: expected {KNOWN}")
