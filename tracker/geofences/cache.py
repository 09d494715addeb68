"""Every worker's copy of the geofences, current within ``POLL_SECONDS``.

A service that loads the geofences from Postgres when it starts and then asks for
``geofences_version`` every ``POLL_SECONDS``: one small query, and a reload only when
the version moved. A reload checks the shapes and builds the index in a thread, off the
event loop. While Postgres cannot be reached it keeps the last set it loaded, so
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
from tracker.geofences.model import BadGeofence, GeofenceIndex

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0

Connect = Callable[[], AsyncContextManager[psycopg.AsyncConnection]]


def build_index(features: list[dict]) -> GeofenceIndex:
    """The index of stored Features (each with its ``id``)."""
    return GeofenceIndex(geofence_store.parse_features(features))


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
                version, features = await geofence_store.load_features(conn)
        except DATABASE_ERRORS as exc:
            log.warning("geofences: cannot reload (%s); keeping %d", exc.__class__.__name__, len(self.index))
            if not self.loaded.is_set():
                await self._read_snapshot()
            return False
        # Checking and preparing the shapes and building the index take a while for a large
        # set: in a thread, so that the event loop (the stream, /health) goes on meanwhile.
        self.index = await asyncio.to_thread(build_index, features)
        self.version = version
        self.loaded.set()
        await asyncio.to_thread(self._write_snapshot, features)
        return True

    def _write_snapshot(self, features: list[dict]) -> None:
        path = self.snapshot()
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".tmp")
            temporary.write_bytes(orjson.dumps({"version": self.version, "features": features}))
            os.replace(temporary, path)
        except OSError as exc:
            log.warning("geofences: cannot save the snapshot %s (%s)", path, exc)

    async def _read_snapshot(self) -> None:
        path = self.snapshot()
        if path is None or not path.exists():
            return
        try:
            saved = orjson.loads(path.read_bytes())
            index = await asyncio.to_thread(build_index, saved["features"])
        except (OSError, ValueError, KeyError, TypeError, BadGeofence) as exc:
            log.warning("geofences: cannot read the snapshot %s (%s)", path, exc)
            return
        self.index, self.version = index, saved["version"]
        self.loaded.set()
        log.warning("geofences: Postgres is away; using the %d saved in %s", len(index), path)

    @Service.task
    async def _poll(self) -> None:
        while not self.should_stop:
            await self.refresh()
            await self.sleep(self.poll_seconds)
