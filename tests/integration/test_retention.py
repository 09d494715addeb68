"""Retention on the real Postgres and Kafka: history kept in monthly partitions, whole months
past the retention dropped (by the hourly check and by `tracker history prune`), plain tables
of an earlier version converted without losing a row, and the topics' retention.ms."""
import asyncio
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from agents.retention import enforce
from tracker.storage.schema import create_schema
from tracker.positions.store import copy_fixes
from tracker.events.store import write_events
from tracker.storage.months import (EPOCH, PARTITIONED, ensure_partitions, month_bounds, month_of, partition_name,
                                partitions)
from tracker.positions.model import format_time
from tracker.testing import wait_for

UTC = timezone.utc
TRACKER = str(Path(sys.executable).with_name("tracker"))


def connect(url: str, autocommit: bool = True):
    return psycopg.AsyncConnection.connect(url, autocommit=autocommit)


def micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def fix(marker_id: str, moment: datetime, lat: float = 45.0) -> list:
    return [marker_id, micros(moment), lat, 14.0, 12.5, 90.0, None, 5.0, 80.0, "test", None, micros(moment)]


async def fill_history(conn, now: datetime) -> dict[tuple[str, str], int]:
    """Rows in this month and the three before it, in every partitioned table (a different
    number per month): {(table, partition): rows}."""
    this = month_of(now)
    written = {}
    for age, month in enumerate(range(this - 3, this + 1)):
        start = month_bounds(month)[0] + timedelta(hours=1)
        counts = {"positions": 13 - 2 * age, "events": 4 - age, "trips": 1, "stops": 2}
        await copy_fixes(conn, [fix("rt-1", start + timedelta(seconds=i)) for i in range(counts["positions"])])
        await write_events(conn, [{"id": f"rt-1:low_battery:{month}:{i}", "marker_id": "rt-1", "type": "low_battery",
                                   "time": format_time(start + timedelta(minutes=i)), "position": {"lat": 45, "lon": 14}}
                                  for i in range(counts["events"])])
        for table in ("trips", "stops"):
            times = [start + timedelta(hours=i) for i in range(counts[table])]
            await ensure_partitions(conn, table, times)
            columns = ("start_lat, start_lon, end_lat, end_lon, distance_m, duration_s, max_speed, average_speed"
                       if table == "trips" else "lat, lon, duration_s")
            for moment in times:
                await conn.execute(f"INSERT INTO {table} (marker_id, start_time, end_time, {columns}) VALUES "
                                   f"('rt-1', %s, %s, {', '.join(['1'] * len(columns.split(',')))})",
                                   (moment, moment + timedelta(minutes=30)))
        written.update({(table, partition_name(table, month)): count for table, count in counts.items()})
    return written


async def rows_by_partition(conn) -> dict[tuple[str, str], int]:
    found = {}
    for table, column in PARTITIONED.items():
        cursor = await conn.execute(f"SELECT date_trunc('month', {column}, 'UTC'), count(*) FROM {table} GROUP BY 1")
        found.update({(table, partition_name(table, month_of(start))): count
                      for start, count in await cursor.fetchall()})
    return found


def month_end(partition: str) -> datetime:
    """The first instant after the month of a partition named ``<table>_y2026m11``."""
    year, month = map(int, re.search(r"_y([0-9]{4})m([0-9]{2})$", partition).groups())
    return datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)


def past(written: dict, cutoff: datetime) -> dict:
    """The partitions of ``written`` whose month ended at or before ``cutoff``."""
    return {key: rows for key, rows in written.items() if month_end(key[1]) <= cutoff}


async def test_the_hourly_check_drops_the_months_past_the_retention_and_keeps_the_rest(database):
    now = datetime.now(UTC)
    cutoff = now - timedelta(days=30)
    async with await connect(database) as conn:
        await create_schema(conn)
        written = await fill_history(conn, now)
        assert await rows_by_partition(conn) == written
        assert await enforce(conn, None, now) == []  # no retention set: nothing goes

        dropped = await enforce(conn, 30, now)
        expected = past(written, cutoff)
        # Whatever the day: the month three back always ended more than 30 days ago, this one never.
        this = month_of(now)
        assert ("positions", partition_name("positions", this - 3)) in expected
        assert ("positions", partition_name("positions", this)) not in expected
        assert {(d.table, d.partition): d.rows for d in dropped} == expected
        assert all(d.partition.endswith(f"_y{d.month:%Y}m{d.month:%m}") and d.month.day == 1 for d in dropped)
        assert await rows_by_partition(conn) == {k: v for k, v in written.items() if k not in expected}
        # The check also made next month's partitions, so that no writer waits for one then.
        for table in PARTITIONED:
            names = [p.name for p in await partitions(conn, table)]
            assert partition_name(table, this + 1) in names
            assert not set(names) & {name for t, name in expected if t == table}
        assert await enforce(conn, 30, now) == []  # nothing left to drop


def tracker_cli(database: str, *args: str) -> tuple[int, str, str]:
    done = subprocess.run([TRACKER, *args], env={**os.environ, "TRACKER_DATABASE_URL": database},
                          capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr


def listed(out: str) -> dict[tuple[str, str], int]:
    """(table, partition) -> rows of the table `tracker history prune` prints."""
    lines = out.splitlines()
    assert lines[0].split() == ["table", "partition", "month", "rows"], out
    return {(table, partition): int(rows.replace(",", "")) for table, partition, _, rows in
            (line.split() for line in lines[1:-1])}


def test_history_prune_lists_the_months_with_dry_run_then_drops_exactly_those(database):
    now = datetime.now(UTC)

    async def fill():
        async with await connect(database) as conn:
            await create_schema(conn)
            return await fill_history(conn, now)

    async def remaining():
        async with await connect(database) as conn:
            return await rows_by_partition(conn)

    written = asyncio.run(fill())
    expected = past(written, now - timedelta(days=30))

    code, out, err = tracker_cli(database, "history", "prune", "--older-than", "30d", "--dry-run")
    assert (code, err) == (0, "") and listed(out) == expected
    assert out.splitlines()[-1].startswith(f"would drop {len(expected)} partitions, {sum(expected.values())} rows")
    assert asyncio.run(remaining()) == written

    code, out, err = tracker_cli(database, "history", "prune", "--older-than", "30d")
    assert (code, err) == (0, "") and listed(out) == expected
    assert out.splitlines()[-1].startswith(f"dropped {len(expected)} partitions, {sum(expected.values())} rows")
    assert asyncio.run(remaining()) == {k: v for k, v in written.items() if k not in expected}

    code, out, err = tracker_cli(database, "history", "prune", "--older-than", "30d")
    assert code == 0 and out.startswith("nothing to drop: no month of history ended before ")
    code, out, err = tracker_cli(database, "history", "prune", "--older-than", "30 days")
    assert code == 2 and out == "" and err.count("\n") == 1 and "--older-than" in err


async def test_writers_create_each_month_once_at_once_and_a_known_month_costs_no_query(database):
    async with await connect(database) as conn:
        await create_schema(conn)
    month = month_of(datetime(2031, 5, 1, tzinfo=UTC))  # a month nobody made yet
    start, end = month_bounds(month)
    times = [micros(start) + i * 100_000_000 for i in range(20_000)]  # 20,000 fixes over 23 days
    connections = [await connect(database) for _ in range(6)]
    try:
        await asyncio.gather(*(ensure_partitions(c, "positions", times) for c in connections))
        assert [p.name for p in await partitions(connections[0], "positions")] == ["positions_y2031m05"]
    finally:
        for c in connections:
            await c.close()

    # Once known, the month needs no query: not even on a connection that cannot run one.
    async with await connect(database, autocommit=False) as broken:
        with pytest.raises(psycopg.errors.DivisionByZero):
            await broken.execute("SELECT 1 / 0")
        started = time.perf_counter()
        await ensure_partitions(broken, "positions", times)
        assert time.perf_counter() - started < 0.05
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):  # it would have failed
            await ensure_partitions(broken, "positions", [micros(end)])


#: positions and events as version 0.2 made them (before the monthly partitions).
OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS positions (
    marker_id   text             NOT NULL,
    fix_time    timestamptz      NOT NULL,
    lat         double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon         double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    speed       double precision,
    heading     double precision,
    altitude    double precision,
    accuracy    double precision,
    battery     double precision,
    source      text,
    attributes  jsonb,
    received_at timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (marker_id, fix_time)
);
COMMENT ON TABLE positions IS 'Every valid GPS fix, one row per marker and fix time';
CREATE TABLE IF NOT EXISTS events (
    event_id    text             PRIMARY KEY,
    marker_id   text             NOT NULL,
    type        text             NOT NULL,
    event_time  timestamptz      NOT NULL,
    lat         double precision,
    lon         double precision,
    event       jsonb            NOT NULL,
    recorded_at timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS events_by_marker ON events (marker_id, event_time DESC);
CREATE INDEX IF NOT EXISTS events_by_time ON events (event_time DESC);
"""
OLD_MONTHS = [datetime(2025, 11, 30, 23, 59, 59, tzinfo=UTC), datetime(2025, 12, 1, tzinfo=UTC),
              datetime(2026, 2, 14, 8, tzinfo=UTC), datetime(2026, 3, 31, 23, tzinfo=UTC)]


async def snapshot(conn) -> tuple[list, list]:
    positions_rows = await (await conn.execute(
        "SELECT marker_id, fix_time, lat, lon, speed, heading, altitude, accuracy, battery, source, attributes, "
        "received_at FROM positions ORDER BY marker_id, fix_time")).fetchall()
    events_rows = await (await conn.execute(
        "SELECT event_id, marker_id, type, event_time, lat, lon, event, recorded_at FROM events "
        "ORDER BY event_id")).fetchall()
    return positions_rows, events_rows


async def layout(conn) -> dict:
    """What a second create_schema must leave as it is: each table's oid and kind, and its partitions."""
    cursor = await conn.execute(
        "SELECT c.relname, c.oid, c.relkind, array(SELECT i.inhrelid::regclass::text FROM pg_inherits i "
        "WHERE i.inhparent = c.oid ORDER BY 1) FROM pg_class c WHERE c.relname = ANY(%s)", (list(PARTITIONED),))
    return {name: (oid, kind, children) for name, oid, kind, children in await cursor.fetchall()}


async def test_create_schema_turns_plain_history_tables_into_monthly_partitions_keeping_every_row(database):
    async with await connect(database) as conn:
        await conn.execute(OLD_SCHEMA)
        for n, moment in enumerate(OLD_MONTHS):
            for marker in ("old-1", "old-2"):
                await conn.execute(
                    "INSERT INTO positions (marker_id, fix_time, lat, lon, speed, source, attributes, received_at) "
                    "VALUES (%s, %s, %s, 14.5, 3.25, 'obd', %s, %s)",
                    (marker, moment, 45 + n / 10, Jsonb({"odometer": n}), moment))
            await conn.execute(
                "INSERT INTO events (event_id, marker_id, type, event_time, lat, lon, event, recorded_at) "
                "VALUES (%s, 'old-1', 'offline', %s, 45, 14.5, %s, %s)",
                (f"old-1:offline:{n}", moment, Jsonb({"id": f"old-1:offline:{n}"}), moment))
        before = await snapshot(conn)

        await create_schema(conn)

        assert await snapshot(conn) == before
        shape = await layout(conn)
        assert {table: kind for table, (_, kind, _) in shape.items()} == dict.fromkeys(PARTITIONED, "p")
        months = ["y2025m11", "y2025m12", "y2026m02", "y2026m03"]
        assert shape["positions"][2] == [f"positions_{m}" for m in months]
        assert shape["events"][2] == [f"events_{m}" for m in months]
        keys = dict(await (await conn.execute(
            "SELECT conrelid::regclass::text, array(SELECT attname FROM pg_attribute WHERE attrelid = conrelid "
            "AND attnum = ANY(conkey) ORDER BY array_position(conkey, attnum)) FROM pg_constraint "
            "WHERE contype = 'p' AND conrelid = ANY(ARRAY['positions'::regclass, 'events'::regclass])")).fetchall())
        assert keys == {"positions": ["marker_id", "fix_time"], "events": ["event_id", "event_time"]}
        indexes = [name for name, in await (await conn.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'events'::regclass ORDER BY 1")).fetchall()]
        assert indexes == ["events_by_marker", "events_by_time", "events_pkey"]
        comment, spike = await (await conn.execute(
            "SELECT obj_description('positions'::regclass), (SELECT count(*) FROM pg_attribute "
            "WHERE attrelid = 'positions'::regclass AND attname = 'spike')")).fetchone()
        assert comment.startswith("Every valid GPS fix") and spike == 1
        assert await (await conn.execute("SELECT to_regclass('positions_unpartitioned')")).fetchone() == (None,)

        await create_schema(conn)  # a second time: nothing to do
        assert await layout(conn) == shape and await snapshot(conn) == before

        # The writers find the old rows: nothing is written twice.
        assert await copy_fixes(conn, [fix("old-1", OLD_MONTHS[0], lat=45.0)]) == 0
        assert await write_events(conn, [{"id": "old-1:offline:2", "marker_id": "old-1", "type": "offline",
                                          "time": format_time(OLD_MONTHS[2])}]) == 0


async def topic_configs(settings, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        answer, = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        (_, _, _, _, entries), = answer.resources
        return {entry[0]: entry[1] for entry in entries}
    finally:
        await admin.close()


def test_the_worker_gives_its_topics_the_retention_of_the_setting_but_not_the_changelogs(stack):
    # The input topic exists already (the stack made it, with the broker's retention): the
    # worker sets it; the others it creates with it.
    hours = 5
    settings = stack.settings
    wanted = str(hours * 3_600_000)

    def retention(topic: str) -> str:
        return asyncio.run(topic_configs(settings, topic)).get("retention.ms")

    assert retention(settings.topic) != wanted
    worker = stack.worker(TRACKER_TOPIC_RETENTION_HOURS=str(hours)).start()
    worker.wait_ready()

    for topic in (settings.topic, settings.batches_topic, settings.dlq_topic, settings.events_topic):
        wait_for(lambda: retention(topic) == wanted, 30, f"{topic} to keep its records {hours} h")
    batches = asyncio.run(topic_configs(settings, settings.batches_topic))
    assert batches["max.message.bytes"] == str(4 * 1024 * 1024)  # its own setting kept
    assert retention(stack.changelog_topic) != wanted  # the tables' changelogs are kept whole
