"""An import started from the browser: the file the worker received, read and sent exactly as
``tracker import`` does (``tracker.tracks.importer.check`` and ``records``, the same producer
and ``send_all``), its progress and result written to ``track_imports``
(``tracker.tracks.uploads``) about once a second."""
from __future__ import annotations

import asyncio
import logging
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

from tracker.positions.model import MAX_FUTURE, format_time
from tracker.settings import settings
from tracker.stream.producer import KafkaUnavailable, started
from tracker.tracks import importer, uploads
from tracker.tracks.files import BadTrackFile
from tracker.tracks.sender import send_all

log = logging.getLogger(__name__)
PROGRESS_SECONDS = 1.0


def file_summary(checked: importer.Checked, folder: Path) -> dict:
    """What one file held, as the import's result lists it."""
    return {"name": checked.source.name.replace(f"{folder}/", ""), "format": checked.format, "points": checked.count,
            "first": format_time(checked.first), "last": format_time(checked.last),
            "interpolated": checked.interpolated, "skipped": checked.skips.total,
            "reasons": [{"reason": reason, "count": count, "first_at": checked.skips.first[reason]}
                        for reason, count in sorted(checked.skips.counts.items(), key=lambda item: -item[1])]}


def _counted(values: Iterable[bytes], seen: list[int]) -> Iterator[bytes]:
    for value in values:
        seen[0] += 1
        yield value


async def run(connection, import_id: int, path: Path, marker_id: str, start: datetime | None,
              interval: float | None) -> None:
    """Read and send one uploaded file; ``connection()`` opens a Postgres connection. The file's
    folder is removed at the end."""
    folder = path.parent
    try:
        latest_allowed = datetime.now(timezone.utc) + MAX_FUTURE
        try:
            files, repeated = await asyncio.to_thread(importer.check, [path], start, interval, latest_allowed, False)
        except BadTrackFile as exc:
            async with connection() as conn:
                await uploads.update(conn, import_id, state="failed", message=str(exc).replace(f"{folder}/", ""))
            return
        total = sum(checked.count for checked in files)
        summaries = [file_summary(checked, folder) for checked in files]
        note = f"{repeated} points share their time with another: the history keeps one point per time" if repeated else ""
        async with connection() as conn:
            await uploads.update(conn, import_id, state="sending", total=total, files=summaries, message=note,
                                 skipped=sum(checked.skips.total for checked in files))
        seen = [0]
        reporter = asyncio.create_task(_report(connection, import_id, seen))
        try:
            async with started(settings, settings.topic) as producer:
                sent, _ = await send_all(producer, settings.topic, marker_id.encode(),
                                         _counted(importer.records(files, marker_id, interval, latest_allowed), seen),
                                         total, label=f"import {import_id}")
        finally:
            reporter.cancel()
        async with connection() as conn:
            await uploads.update(conn, import_id, state="done", sent=sent)
    except KafkaUnavailable as exc:
        async with connection() as conn:
            await uploads.update(conn, import_id, state="failed", message=str(exc))
    except Exception as exc:  # noqa: BLE001 - the person waiting is told, whatever went wrong
        log.exception("import %s failed", import_id)
        async with connection() as conn:
            await uploads.update(conn, import_id, state="failed", message=f"the import failed: {exc}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def _report(connection, import_id: int, seen: list[int]) -> None:
    while True:
        await asyncio.sleep(PROGRESS_SECONDS)
        async with connection() as conn:
            await uploads.update(conn, import_id, sent=seen[0])

