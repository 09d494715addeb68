"""XML track files (GPX, KML, TCX) read as a stream of elements, safely.

``xml_track`` looks at the root element and hands the file to its format's reader. The
readers walk ``elements``: ElementTree's ``iterparse``, each element taken out of its parent
once read, so that memory holds one point's elements at a time whatever the file's size.

Refused in one line, before anything is read: a DOCTYPE (the only place an XML file can
declare entities, so no entity is ever expanded and no external entity or DTD is fetched)
and XInclude elements. A BOM and blank lines before ``<?xml`` (OsmAnd writes one) are
skipped; any namespace prefix is accepted, elements being matched by their local names.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import BinaryIO, Iterator

from tracker.tracks.files import HEAD, BadTrackFile, Point, Prefixed, Reading, first_line

XINCLUDE = "{http://www.w3.org/2001/XInclude}"
_PROLOG_ITEM = re.compile(rb"\s*(?:<\?.*?\?>|<!--.*?-->)", re.S)
_ROOT = re.compile(rb"<(?:[^\s/>:]+:)?([^\s/>:]+)")


def xml_track(stream: BinaryIO, reading: Reading) -> Iterator[Point]:
    """The points of a GPX, KML or TCX file, by its root element."""
    stream, name = after_prolog(stream)
    if name == "gpx":
        from tracker.tracks.formats.gpx import read_gpx as reader
    elif name == "kml":
        from tracker.tracks.formats.kml import read_kml as reader
    elif name == "TrainingCenterDatabase":
        from tracker.tracks.formats.tcx import read_tcx as reader
    else:
        for _ in elements(stream):  # not XML: the parser says where
            break
        raise BadTrackFile(f"not GPX, KML or TCX (its root element is <{name}>)")
    reading.format = "TCX" if reader.__name__ == "read_tcx" else name.upper()
    return reader(stream, reading)


def local(tag: str) -> str:
    return tag.rpartition("}")[2]


def elements(stream: BinaryIO, records: frozenset[str] = frozenset()) -> Iterator[tuple[str, str, ET.Element]]:
    """(event, local name, element): "start" and "end" of every element outside the
    ``records``, and the "end" of each record (whole: its children are there) but nothing of
    what is inside one. An element is taken out of its parent once its "end" is yielded, so
    memory holds one record at a time. The root's "start" comes first."""
    stack: list[ET.Element] = []
    inside = 0  # depth inside a record
    names: dict[str, str] = {}  # tag: local name
    try:
        for event, element in ET.iterparse(stream, events=("start", "end")):
            if event == "start":
                tag = element.tag
                if tag.startswith(XINCLUDE):
                    raise BadTrackFile("XInclude is not accepted in a track file")
                if inside:
                    inside += 1
                    continue
                name = names.get(tag) or names.setdefault(tag, tag.rpartition("}")[2])
                if name in records:
                    inside = 1
                else:
                    yield event, name, element
                stack.append(element)
                continue
            if inside > 1:
                inside -= 1
                continue
            inside = 0
            stack.pop()
            yield event, names[element.tag], element
            if stack:
                stack[-1].remove(element)
    except ET.ParseError as exc:
        raise BadTrackFile(f"not valid XML ({first_line(exc)})") from None


def after_prolog(stream: BinaryIO) -> tuple[BinaryIO, str]:
    """The stream from its first ``<`` and the local name of its root element, after checking
    that no DOCTYPE precedes the root."""
    head = stream.read(HEAD)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16: the BOM stays, for the parser
        text = head.decode("utf-16", errors="ignore").encode("utf-8", errors="ignore")
    else:
        text = head = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    position = 0
    while match := _PROLOG_ITEM.match(text, position):
        position = match.end()
    rest = text[position:].lstrip()
    if rest[:9].upper() == b"<!DOCTYPE":
        raise BadTrackFile("a DOCTYPE is not accepted in a track file (its entities could expand "
                           "without end or read other files)")
    if rest.startswith((b"<!", b"<?")) and len(head) >= HEAD:
        raise BadTrackFile(f"more than {HEAD // 1024} KiB before the root element")
    root = _ROOT.match(rest)
    return Prefixed(head, stream), root[1].decode("utf-8", errors="replace") if root else ""


def text_of(element: ET.Element | None) -> str | None:
    if element is None or element.text is None:
        return None
    return element.text.strip() or None


def children(element: ET.Element) -> dict[str, ET.Element]:
    """An element's children by local name (the first of each name)."""
    found: dict[str, ET.Element] = {}
    for child in element:
        found.setdefault(local(child.tag), child)
    return found
