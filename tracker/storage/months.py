"""Monthly range partitions (UTC) of the history tables, and dropping the months past a cutoff.

``positions``, ``events``, ``trips`` and ``stops`` are partitioned by calendar month of
their time column (``PARTITIONED``), one table per month named ``<table>_y2026m11``, with
no DEFAULT partition: a writer calls ``ensure_partitions`` with the times it is about to
insert. Old history goes by whole months: ``drop_older_than`` drops every partition whose
month ended at or before a cutoff, which costs no more than dropping a table, however many
rows it held.

A month is created as a table of its own (``LIKE`` the parent) and then attached: attaching
locks the parent in SHARE UPDATE EXCLUSIVE mode, which lets reads and writes go on, where
``CREATE TABLE ... PARTITION OF`` would wait for every query on the parent (a long export)
and hold every later one behind it. Creation is serialised per table by an advisory lock
and checks again under it, so workers doing it at once create each month once.

Each process remembers, per database and table, the months it knows exist, for
``CACHE_SECONDS``: the common case, a batch whose times all fall in a known month, costs no
query. A month dropped meanwhile by another process (only ever one past the retention) is
created again after that, or at once by a writer that calls ``forget`` when Postgres finds
no partition for a row.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterable, NamedTuple

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

#: The partitioned tables and their partition key (a timestamptz column).
PARTITIONED = {"positions": "fix_time", "events": "event_time", "trips": "start_time", "stops": "start_time"}

#: First key of the advisory lock that serialises creating partitions (the second is the table's index).
PARTITION_LOCK_ID = 0x67707370
#: How long a process trusts its knowledge that a month exists.
CACHE_SECONDS = 300.0
#: How long dropping a month waits for queries that use its table (it locks the parent, and
#: every later query waits behind it meanwhile); past it the drop fails, to be tried again.
DROP_LOCK_TIMEOUT = "5s"
#: A partition to drop is counted below this many rows (by Postgres' estimate); above, the
#: estimate is reported (a count would read the whole table).
COUNT_BELOW = 1_000_000

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


class Partition(NamedTuple):
    name: str
    start: datetime  # the month's first instant (UTC), included
    end: datetime  # the next month's first instant, excluded
    rows: int | None  # Postgres' estimate; None before the table was first vacuumed or analysed


class Dropped(NamedTuple):
    table: str
    partition: str
    month: datetime  # the month's first instant (UTC)
    rows: int  # counted, or Postgres' estimate for a partition of ``COUNT_BELOW`` rows or more


# --- months: pure functions ------------------------------------------------------------

def month_number(time_us: int) -> int:
    """The calendar month (UTC) of a time in microseconds since the epoch, as year * 12 + month - 1."""
    moment = EPOCH + timedelta(microseconds=time_us)
    return moment.year * 12 + moment.month - 1


def month_of(moment: datetime) -> int:
    """The calendar month (UTC) of an aware datetime, numbered as ``month_number`` does."""
    moment = moment.astimezone(timezone.utc)
    return moment.year * 12 + moment.month - 1


def month_bounds(month: int) -> tuple[datetime, datetime]:
    """[start, end) of a month numbered as ``month_number`` does, as aware UTC datetimes."""
    year, index = divmod(month, 12)
    following_year, following = divmod(month + 1, 12)
    return (datetime(year, index + 1, 1, tzinfo=timezone.utc),
            datetime(following_year, following + 1, 1, tzinfo=timezone.utc))


def month_bounds_us(month: int) -> tuple[int, int]:
    start, end = month_bounds(month)
    return (start - EPOCH) // _MICROSECOND, (end - EPOCH) // _MICROSECOND


def partition_name(table: str, month: int) -> str:
    """``positions_y2026m11`` for ``positions`` in November 2026."""
    year, index = divmod(month, 12)
    return f"{table}_y{year:04d}m{index + 1:02d}"


# --- creating ----------------------------------------------------------------------------

@dataclass
class _Known:
    """The months of one table of one database that this process knows exist."""
    filled: float
    months: set[int] = field(default_factory=set)
    #: [start, end) in microseconds of the last month a time fell in: checked first.
    start: int = 1
    end: int = 0


_known: dict[tuple, _Known] = {}


def _key(conn: psycopg.AsyncConnection, table: str) -> tuple:
    info = conn.info
    return info.host, info.port, info.dbname, table


def forget(conn: psycopg.AsyncConnection, table: str) -> None:
    """Forget the months known to exist for ``table`` of ``conn``'s database: the next
    ``ensure_partitions`` asks Postgres. For a writer whose insert found no partition."""
    _known.pop(_key(conn, table), None)


async def ensure_partitions(conn: psycopg.AsyncConnection, table: str, times: Iterable) -> None:
    """Create the missing month partitions of ``table`` for ``times`` (microseconds since
    the epoch as int, or aware datetimes), in a short transaction of their own (a savepoint
    if ``conn`` is in one already). Months known to exist cost no query."""
    if table not in PARTITIONED:
        raise ValueError(f"{table} is not partitioned")
    key = _key(conn, table)
    known = _known.get(key)
    now = time.monotonic()
    if known is None or now - known.filled > CACHE_SECONDS:
        known = _known[key] = _Known(now)
    months, start, end = known.months, known.start, known.end
    missing: set[int] = set()
    for moment in times:
        if type(moment) is not int:
            moment = (moment - EPOCH) // _MICROSECOND
        if start <= moment < end:
            continue
        month = month_number(moment)
        if month not in months:
            missing.add(month)
        start, end = month_bounds_us(month)
    if missing:
        async with conn.transaction():
            await create_months(conn, table, missing)
        months |= missing
    known.start, known.end = start, end


async def create_months(conn: psycopg.AsyncConnection, table: str, months: Iterable[int]) -> list[str]:
    """Create and attach the partitions of ``table`` for ``months`` (numbered as
    ``month_number`` does) that do not exist; the names created. Runs in the caller's
    transaction, which must be one (the advisory lock is held until it ends)."""
    wanted = {partition_name(table, month): month for month in months}
    existing = await _names(conn, table)
    if all(name in existing for name in wanted):
        return []
    await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (PARTITION_LOCK_ID, list(PARTITIONED).index(table)))
    existing = await _names(conn, table)  # again: another process may have created them meanwhile
    created = []
    for name, month in sorted(wanted.items(), key=lambda item: item[1]):
        if name in existing:
            continue
        start, end = month_bounds(month)
        await conn.execute(sql.SQL(
            "CREATE TABLE IF NOT EXISTS {partition} (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
            "INCLUDING INDEXES INCLUDING STORAGE)").format(partition=sql.Identifier(name),
                                                           parent=sql.Identifier(table)))
        await conn.execute(sql.SQL("ALTER TABLE {parent} ATTACH PARTITION {partition} FOR VALUES FROM ({start}) "
                                   "TO ({end})").format(parent=sql.Identifier(table),
                                                        partition=sql.Identifier(name),
                                                        start=sql.Literal(start), end=sql.Literal(end)))
        created.append(name)
        log.info("partitions: created %s for %s", name, f"{start:%Y-%m}")
    return created


async def _names(conn: psycopg.AsyncConnection, table: str) -> set[str]:
    cursor = await conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(%s)", (table,))
    return {name for name, in await cursor.fetchall()}


# --- reading and dropping ------------------------------------------------------------------

#: Each partition with the bounds of its range, read back as timestamptz (so whatever the
#: session's time zone), and Postgres' row estimate (-1: never vacuumed or analysed).
_PARTITIONS = """
SELECT name, bounds[1]::timestamptz, bounds[2]::timestamptz, reltuples
FROM (SELECT c.relname AS name, c.reltuples,
             regexp_match(pg_get_expr(c.relpartbound, c.oid), $$^FOR VALUES FROM \\('([^']+)'\\) TO \\('([^']+)'\\)$$)
             AS bounds
      FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = to_regclass(%s)) AS p
WHERE bounds IS NOT NULL
ORDER BY 2
"""


async def partitions(conn: psycopg.AsyncConnection, table: str) -> list[Partition]:
    """The range partitions of ``table``, oldest first."""
    cursor = await conn.execute(_PARTITIONS, (table,))
    return [Partition(name, start.astimezone(timezone.utc), end.astimezone(timezone.utc),
                      None if estimate < 0 else round(estimate))
            for name, start, end, estimate in await cursor.fetchall()]


async def drop_older_than(conn: psycopg.AsyncConnection, cutoff: datetime, dry_run: bool = False) -> list[Dropped]:
    """Drop every partition of every partitioned table whose month ended at or before
    ``cutoff`` (aware); with ``dry_run`` only say which. The partitions of one table are
    dropped in one transaction, each table after the other (so that this never holds one
    table while waiting for another); an error leaves the tables done before it done."""
    if cutoff.tzinfo is None:
        raise ValueError("the cutoff must be an aware datetime")
    dropped: list[Dropped] = []
    for table in PARTITIONED:
        async with conn.transaction():
            old = [p for p in await partitions(conn, table) if p.end <= cutoff]
            if not old:
                continue
            rows = [p.rows if p.rows is not None and p.rows >= COUNT_BELOW else await _count(conn, p.name)
                    for p in old]
            if not dry_run:
                await conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(DROP_LOCK_TIMEOUT)))
                for partition in old:
                    await conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(partition.name)))
        if not dry_run:
            forget(conn, table)
        for partition, count in zip(old, rows):
            dropped.append(Dropped(table, partition.name, partition.start, count))
            if not dry_run:
                log.info("partitions: dropped %s (%s, %d rows)", partition.name, f"{partition.start:%Y-%m}", count)
    return dropped


async def _count(conn: psycopg.AsyncConnection, name: str) -> int:
    cursor = await conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name)))
    return (await cursor.fetchone())[0]


# --- converting plain tables ---------------------------------------------------------------

async def set_aside_plain_tables(conn: psycopg.AsyncConnection) -> dict[str, str]:
    """Rename each table of ``PARTITIONED`` that is still a plain table to
    ``<table>_unpartitioned``, without its indexes and keys (their names are then free for
    the partitioned table); ``{table: new name}``. For ``tracker.storage.schema.create_schema``, which
    then creates the partitioned tables and calls ``refill``, all in one transaction."""
    cursor = await conn.execute(
        "SELECT c.relname FROM unnest(%s::text[]) AS t(name) JOIN pg_class c ON c.oid = to_regclass(t.name) "
        "WHERE c.relkind = 'r'", (list(PARTITIONED),))
    plain = [name for name, in await cursor.fetchall()]
    renamed = {}
    for table in plain:
        keys = await conn.execute("SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(%s) "
                                  "AND contype IN ('p', 'u', 'x')", (table,))
        for name, in await keys.fetchall():
            await conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                sql.Identifier(table), sql.Identifier(name)))
        indexes = await conn.execute("SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                                     "WHERE i.indrelid = to_regclass(%s)", (table,))
        for name, in await indexes.fetchall():
            await conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        renamed[table] = f"{table}_unpartitioned"
        await conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(
            sql.Identifier(table), sql.Identifier(renamed[table])))
    return renamed


async def refill(conn: psycopg.AsyncConnection, renamed: dict[str, str]) -> None:
    """Move every row of the tables ``set_aside_plain_tables`` renamed into the partitioned
    tables of the same name (the month partitions their rows need first), then drop them."""
    for table, old in renamed.items():
        column = sql.Identifier(PARTITIONED[table])
        cursor = await conn.execute(sql.SQL("SELECT DISTINCT date_trunc('month', {}, 'UTC') FROM {}").format(
            column, sql.Identifier(old)))
        months = [month_of(start) for start, in await cursor.fetchall()]
        await create_months(conn, table, months)
        cursor = await conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped "
            "AND attname IN (SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 "
            "AND NOT attisdropped) ORDER BY attnum", (old, table))
        columns = sql.SQL(", ").join(sql.Identifier(name) for name, in await cursor.fetchall())
        cursor = await conn.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
            sql.Identifier(table), columns, columns, sql.Identifier(old)))
        await conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(old)))
        log.info("partitions: %s is now partitioned by month: %d rows moved into %d partitions",
                    table, cursor.rowcount, len(months))
