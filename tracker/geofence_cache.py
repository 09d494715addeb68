"""Every worker's copy of the geofences, current within ``POLL_SECONDS``.

A service that loads the geofences from Postgres when it starts and then asks for
``geofences_version`` every ``POLL_SECONDS``: one small query, and a reload only when
the version moved. While Postgres cannot be reached it keeps the last set it loaded (and
an empty one until the first load), so the stream never waits for the database.
"""
from __future__ import annotations

import asyncio
import logging
from typing import AsyncContextManager, Callable

import psycopg
from faust import Service

from tracker import geofence_store
from tracker.db import DATABASE_ERRORS
from tracker.geofences import GeofenceIndex

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0

Connect = Callable[[], AsyncContextManager[psycopg.AsyncConnection]]


class GeofenceCache(Service):
    def __init__(self, connection: Connect, poll_seconds: float = POLL_SECONDS, **kwargs) -> None:
        super().__init__(**kwargs)
        self.connection = connection
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
            return False
        self.index, self.version = GeofenceIndex(geofences), version
        self.loaded.set()
        return True

    @Service.task
    async def _poll(self) -> None:
        while not self.should_stop:
            await self.refresh()
            await self.sleep(self.poll_seconds)
