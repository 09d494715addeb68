"""Deleting a marker's data on request (a person's right to erasure): ``tracker history delete``.

The command deletes the marker's rows in Postgres at once (``delete_history``) and sends a
forget record down the batches topic, on the marker's partition (``tracker.stream.batches``):
the ``latest`` agent removes the marker from its tables there (``tables.forget``), and the
history sink deletes again whatever rows of fixes read before the record it wrote since.
Fixes the marker sends after the record are kept.
"""
from __future__ import annotations

import psycopg
from psycopg import sql

from tracker.positions.model import time_of

#: Table -> its time column: every table holding a marker's rows.
TABLES = {"positions": "fix_time", "events": "event_time", "trips": "start_time", "stops": "start_time",
          "journeys_dirty": "wait_for"}


async def delete_history(conn: psycopg.AsyncConnection, marker_id: str, from_us: int | None,
                         to_us: int | None) -> dict[str, int]:
    """Delete the marker's rows with a time in [from, to) (open bounds: None) from every
    table, in one transaction; the rows deleted per table."""
    deleted = {}
    async with conn.transaction():
        for table, column in TABLES.items():
            query = sql.SQL("DELETE FROM {} WHERE marker_id = %s AND {} >= coalesce(%s, '-infinity'::timestamptz) "
                            "AND {} < coalesce(%s, 'infinity'::timestamptz)").format(
                sql.Identifier(table), sql.Identifier(column), sql.Identifier(column))
            cursor = await conn.execute(query, (marker_id, _time(from_us), _time(to_us)))
            deleted[table] = cursor.rowcount
    return deleted


def _time(micros: int | None):
    return None if micros is None else time_of(micros)


async def delete_command(args) -> int:
    """``tracker history delete --marker ID [--from T] [--to T]``."""
    from aiokafka.errors import KafkaError

    from tracker.stream import batches
    from tracker.cli.common import EXIT_UNAVAILABLE, EXIT_USAGE, CommandError, on_database
    from tracker.cli.journeys import day_or_time
    from tracker.stream.admin import existing_topics
    from tracker.stream.producer import positions_producer
    from tracker.positions.model import MARKER_ID_PATTERN, micros_of
    from tracker.settings import settings

    if not MARKER_ID_PATTERN.fullmatch(args.marker):
        raise CommandError(f"{args.marker!r} is not a marker id", EXIT_USAGE)
    try:
        from_us = None if args.start is None else micros_of(day_or_time(args.start))
        to_us = None if args.end is None else micros_of(day_or_time(args.end, end=True))
    except ValueError as exc:
        raise CommandError(f"--from/--to: {exc}; use a day (2026-11-28) or an ISO 8601 time", EXIT_USAGE) from None
    producer = positions_producer(settings)
    try:
        if await existing_topics(settings, [settings.batches_topic]):  # else no worker ever ran
            await producer.start()
            # The marker's partition of the batches topic, as for its positions: same key, same count.
            await (await producer.send(settings.batches_topic, key=args.marker.encode(),
                                       value=batches.encode_forget(args.marker, from_us, to_us)))
    except KafkaError as exc:
        raise CommandError(f"cannot reach Kafka at {settings.bootstrap_servers}: {exc}", EXIT_UNAVAILABLE) from None
    finally:
        await producer.stop()
    deleted = await on_database(lambda conn: delete_history(conn, args.marker, from_us, to_us))
    print(f"{'table':<16} {'rows deleted':>12}")
    for table, count in deleted.items():
        print(f"{table:<16} {count:>12,}")
    print(f"marker {args.marker!r}: the workers remove it from latest (and its motion and events state"
          f"{'' if from_us is None and to_us is None else ', for the whole history only'}) as they read the request")
    return 0


def add_delete_command(history_commands) -> None:
    delete = history_commands.add_parser(
        "delete", help="delete a marker's positions, events, trips and stops (a person's request), and its latest")
    delete.add_argument("--marker", required=True, help="the marker id")
    delete.add_argument("--from", dest="start", metavar="TIME", help="only from this day (UTC) or time (default: all)")
    delete.add_argument("--to", dest="end", metavar="TIME", help="only to this day (UTC, included) or time (excluded)")
    delete.set_defaults(run=delete_command)
