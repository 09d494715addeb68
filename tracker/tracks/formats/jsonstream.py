"""JSON track files, told apart by their first keys and read incrementally (``ijson``, its C
parser): memory holds one item of the file's big array at a time, whatever the file's size.
"""
from __future__ import annotations

import io
from typing import Any, BinaryIO, Iterator

import ijson

from tracker.tracks.files import BadTrackFile, first_line
from tracker.tracks.formats import Reader

CHUNK = 64 * 1024


def json_reader(head: bytes) -> Reader:
    """The reader for a JSON file that begins with ``head``, by the keys of its first objects."""
    keys: set[tuple[str, str]] = set()
    top = None
    try:
        for prefix, event, value in ijson.parse(io.BytesIO(head)):
            top = top or event
            if event == "map_key":
                keys.add((prefix, value))
                if len(keys) > 1_000:
                    break
    except ijson.JSONError:
        pass  # the head ends inside the document, or it is not JSON: the reader will say
    top_keys = {key for prefix, key in keys if prefix == ""}
    if top_keys & {"semanticSegments", "rawSignals"}:
        from tracker.tracks.formats.takeout import read_timeline
        return read_timeline
    if "timelineObjects" in top_keys:
        from tracker.tracks.formats.takeout import read_semantic
        return read_semantic
    if "locations" in top_keys:
        item_keys = {key for prefix, key in keys if prefix == "locations.item"}
        if item_keys & {"geometry", "type", "properties"}:
            from tracker.tracks.formats.overland import read_overland
            return read_overland
        from tracker.tracks.formats.takeout import read_records
        return read_records
    if top == "start_array":
        raise BadTrackFile("a JSON array: not GeoJSON, an Overland batch or Google Takeout location history")
    from tracker.tracks.formats.geojson import read_geojson
    return read_geojson


def items(stream: BinaryIO, *prefixes: str, multiple_values: bool = False) -> Iterator[tuple[str, Any]]:
    """(prefix, item) for every item at each of ``prefixes`` (``"locations.item"``), in the
    order of the file within each prefix, numbers as floats or ints."""
    if len(prefixes) == 1:  # the parser's own loop, in C
        prefix = prefixes[0]
        try:
            for value in ijson.items(stream, prefix, use_float=True, multiple_values=multiple_values,
                                     buf_size=CHUNK):
                yield prefix, value
        except ijson.JSONError as exc:
            raise BadTrackFile(f"not valid JSON ({first_line(exc)})") from None
        return
    found = {prefix: ijson.sendable_list() for prefix in prefixes}
    parsers = [ijson.items_coro(found[prefix], prefix, use_float=True, multiple_values=multiple_values)
               for prefix in prefixes]
    try:
        while chunk := stream.read(CHUNK):
            for parser in parsers:
                parser.send(chunk)
            for prefix, values in found.items():
                for value in values:
                    yield prefix, value
                del values[:]
        for parser in parsers:
            parser.close()
        for prefix, values in found.items():
            for value in values:
                yield prefix, value
    except ijson.JSONError as exc:
        raise BadTrackFile(f"not valid JSON ({first_line(exc)})") from None
