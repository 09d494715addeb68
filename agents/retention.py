"""retention: drop the months of history past ``TRACKER_HISTORY_RETENTION_DAYS``, hourly, on the leader.

Postgres keeps ``positions``, ``events``, ``trips`` and ``stops`` in monthly partitions
(``tracker.storage.months``). Once an hour the worker that leads Faust's group makes sure the
partitions of this month and the next exist (so that a writer seldom has to create one at
the turn of a month), and, when a retention is set, drops every partition whose whole
month ended more than the retention ago: history goes a month at a time, at the first
check after the month's last instant is older than the retention (``tracker history prune``
does the same by hand). A failed check is logged and tried again an hour later.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import psycopg

from tracker.app import app
from tracker.storage.pool import DATABASE_ERRORS
from tracker.storage.months import PARTITIONED, Dropped, drop_older_than, ensure_partitions, month_bounds, month_of
from tracker.resources import database
from tracker.settings import settings

log = logging.getLogger(__name__)

CHECK_SECONDS = 3600.0


async def enforce(conn: psycopg.AsyncConnection, retention_days: float | None, now: datetime) -> list[Dropped]:
    """One check at ``now``: the partitions of this month and the next exist, and with a
    retention those whose month ended at or before ``now - retention_days`` are dropped;
    what was dropped."""
    following = month_bounds(month_of(now))[1]
    for table in PARTITIONED:
        await ensure_partitions(conn, table, (now, following))
    if retention_days is None:
        return []
    return await drop_older_than(conn, now - timedelta(days=retention_days))


@app.timer(CHECK_SECONDS, on_leader=True)
async def retention_check() -> None:
    try:
        async with database.connection() as conn:
            dropped = await enforce(conn, settings.history_retention_days, datetime.now(timezone.utc))
    except DATABASE_ERRORS as exc:
        log.warning("retention: the hourly check failed (%r); the next one tries again", exc)
        return
    except Exception:  # noqa: BLE001 - never out of the timer: the next hour tries again
        log.exception("retention: the hourly check failed")
        return
    if dropped:
        log.info("retention: dropped %d partitions older than %g days (%d rows): %s", len(dropped),
                 settings.history_retention_days, sum(d.rows for d in dropped),
                 ", ".join(d.partition for d in dropped))
