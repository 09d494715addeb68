"""Every worker's copy of the geofences, current within ``POLL_SECONDS``.

A service that loads the geofences from Postgres when it starts and then asks for
``geofences_version`` every ``POLL_SECONDS``: one small query, and a reload only when
the version moved. While Postgres cannot be reached it keeps the last set it loaded, so
the stream never waits for the database. Each set loaded is also saved to a snapshot file
(in the worker's data directory): a worker that starts while Postgres is away starts
from it rather than from no geofences at all (which would make every marker leave the
geofences it is in).
"""
from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import AsyncContextManager, Callable

import orjson

import psycopg
from faust import Service

from tracker.geofences import store as geofence_store
from tracker.storage.pool import DATABASE_ERRORS
from tracker.geofences.model import BadGeofence, GeofenceIndex, parse_feature

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0

Connect = Callable[[], AsyncContextManager[psycopg.AsyncConnection]]


class GeofenceCache(Service):
    def __init__(self, connection: Connect, poll_seconds: float = POLL_SECONDS,
                 snapshot: Callable[[], Path | None] = lambda: None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.connection = connection
        self.snapshot = snapshot
        self.poll_seconds = poll_seconds
        self.index = GeofenceIndex([])
        self.version: int | None = None
        self.loaded = asyncio.Event()

    async def refresh(self) -> bool:
        """Reload if the version moved; whether the set changed. Postgres errors are logged
        and leave the current set in place."""
        try:
            async with self.connection() as conn:
                if self.version is not None and await geofence_store.current_version(conn) == self.version:
                    return False
                version, geofences = await geofence_store.load(conn)
        except DATABASE_ERRORS as exc:
            log.warning("geofences: cannot reload (%s); keeping %d", exc.__class__.__name__, len(self.index))
            if not self.loaded.is_set():
                self._read_snapshot()
            return False
        self.index, self.version = GeofenceIndex(geofences), version
        self.loaded.set()
        self._write_snapshot()
        return True

    def _write_snapshot(self) -> None:
        path = self.snapshot()
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".tmp")
            temporary.write_bytes(orjson.dumps({"version": self.version, "features": [
                g.feature() for g in self.index.geofences]}))
            os.replace(temporary, path)
        except OSError as exc:
            log.warning("geofences: cannot save the snapshot %s (%s)", path, exc)

    def _read_snapshot(self) -> None:
        path = self.snapshot()
        if path is None or not path.exists():
            return
        try:
            saved = orjson.loads(path.read_bytes())
            geofences = [parse_feature(feature, feature["id"]) for feature in saved["features"]]
        except (OSError, ValueError, KeyError, TypeError, BadGeofence) as exc:
            log.warning("geofences: cannot read the snapshot %s (%s)", path, exc)
            return
        self.index, self.version = GeofenceIndex(geofences), saved["version"]
        self.loaded.set()
        log.warning("geofences: Postgres is away; using the %d saved in %s", len(geofences), path)

    @Service.task
    async def _poll(self) -> None:
        while not self.should_stop:
            await self.refresh()
            await self.sleep(self.poll_seconds)
