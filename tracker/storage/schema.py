"""The Postgres schema, assembled from the tables each feature's store declares.

Each store module owns the DDL of its tables (its ``SCHEMA``): ``positions`` in
``tracker.positions.store``, devices, gateways, accounts and the audit trail in ``tracker.accounts``,
geofences, events, journeys and webhooks in their packages. ``create_schema`` runs them
in an order that satisfies their references, under a lock, so that several workers and
commands starting at once create it once. The history tables are partitioned by month
(``tracker.storage.months``): a table an earlier version made as a plain one is turned into
monthly partitions, every row kept, in the same transaction.
"""
from __future__ import annotations

import psycopg

from tracker.storage import months

#: Serialises concurrent schema creation by several workers starting at once.
SCHEMA_LOCK_ID = 0x67707374


def schema() -> str:
    """The DDL of every table, in the order it is run."""
    from tracker.accounts import audit, devices, gateways
    from tracker.accounts import store as accounts
    from tracker.events import store as events
    from tracker.geofences import store as geofences
    from tracker.journeys import store as journeys
    from tracker.positions import store as positions
    from tracker.storage import erase
    from tracker.tracks import uploads
    from tracker.webhooks import store as webhooks

    return "".join(module.SCHEMA for module in (positions, devices, gateways, accounts, geofences, events,
                                                journeys, webhooks, audit, uploads, erase))


async def create_schema(conn: psycopg.AsyncConnection) -> None:
    """Create what is missing of the schema. A history table that an earlier version made
    as a plain table is converted to monthly partitions, every row kept, in the same
    transaction (``tracker.storage.months``)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_ID,))
        plain = await months.set_aside_plain_tables(conn)
        await conn.execute(schema())
        await months.refill(conn, plain)
