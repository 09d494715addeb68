"""The history writer on the real Postgres: fixes known to be new are copied straight into
``positions``, the others merged; a fix taken as new that is there already never fails a
write nor doubles a row, and every field comes back as it was sent."""
from datetime import datetime, timezone

import psycopg

from tracker.positions.store import copy_fixes
from tracker.storage.schema import create_schema

START_US = 1_765_000_000_000_000  # 2025-12-06T05:46:40Z


def fix(marker_id: str, second: int, attributes=None) -> list:
    time_us = START_US + second * 1_000_000 + 123
    return [marker_id, time_us, 45.0 + second * 1e-6, 14.0, 12.5, 90.0, None, 5.0, 80.0, "test", attributes,
            time_us + 456]


async def rows(conn) -> list[tuple]:
    cur = await conn.execute("SELECT marker_id, fix_time, lat, speed, altitude, source, attributes, received_at "
                             "FROM positions ORDER BY marker_id, fix_time")
    return await cur.fetchall()


async def test_new_fixes_are_copied_and_read_back_exactly(database):
    async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
        await create_schema(conn)
        added = await copy_fixes(conn, [fix("a", 0)], [fix("a", 1, {"charge": True}), fix("b", 1)])
        assert added == 3
        (marker, fix_time, lat, speed, altitude, source, attributes, received_at), *_ = await rows(conn)
    assert (marker, lat, speed, altitude, source, attributes) == ("a", 45.0, 12.5, None, "test", None)
    assert fix_time == datetime(2025, 12, 6, 5, 46, 40, 123, tzinfo=timezone.utc)
    assert received_at == datetime(2025, 12, 6, 5, 46, 40, 579, tzinfo=timezone.utc)


async def test_a_fix_taken_as_new_that_is_there_already_is_merged(database):
    async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
        await create_schema(conn)
        assert await copy_fixes(conn, [], [fix("a", 0), fix("a", 1)]) == 2
        # a replay: the same two fixes (one given as new) and two that are not there yet
        added = await copy_fixes(conn, [fix("a", 0), fix("b", 5)], [fix("a", 1), fix("a", 2)])
        assert added == 2
        assert [(r[0], r[1].second) for r in await rows(conn)] == [("a", 40), ("a", 41), ("a", 42), ("b", 45)]
        assert await copy_fixes(conn, [], [fix("a", 2)]) == 0  # alone, and there already
        assert len(await rows(conn)) == 4
