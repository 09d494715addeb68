"""Postgres: the schema, the worker's connection pool, and the batched history writer.

The schema lives here and nowhere else. Every valid position is one row of ``positions``,
unique on (marker_id, fix_time), so writing the same fixes twice (a replay after a crash)
adds nothing. The history tables are partitioned by month (``tracker.storage.months``): a
writer creates the months it needs before it inserts.
"""
from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator, Callable, Sequence

import psycopg
from faust import Service
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from tracker.storage import months as partitions
from tracker.positions.model import FIX_FIELDS

log = logging.getLogger(__name__)

SCHEMA = """
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
) PARTITION BY RANGE (fix_time);
ALTER TABLE positions ADD COLUMN IF NOT EXISTS attributes jsonb;
-- Before version 0.2 the optional measures were real (float32): a speed of 13.4 read back as
-- 13.3999996185. Rewritten once, at the first start after the upgrade.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
               AND table_name = 'positions' AND column_name = 'speed' AND data_type = 'real') THEN
        ALTER TABLE positions ALTER COLUMN speed TYPE double precision,
                              ALTER COLUMN heading TYPE double precision,
                              ALTER COLUMN altitude TYPE double precision,
                              ALTER COLUMN accuracy TYPE double precision,
                              ALTER COLUMN battery TYPE double precision;
    END IF;
END $$;
CREATE TABLE IF NOT EXISTS devices (
    device_id     text        PRIMARY KEY,
    name          text        NOT NULL DEFAULT '',
    secret_sha256 bytea       NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    rotated_at    timestamptz
);
COMMENT ON TABLE devices IS 'Phones and trackers allowed to report over HTTP; device_id is their marker id';
COMMENT ON COLUMN devices.secret_sha256 IS 'SHA-256 of the device secret; the secret itself is shown once and never stored';
CREATE TABLE IF NOT EXISTS gateways (
    name         text        PRIMARY KEY,
    token_sha256 bytea       NOT NULL UNIQUE,
    prefix       text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE gateways IS 'Servers that forward positions for many devices (a Traccar server): POST /ingest/traccar';
COMMENT ON COLUMN gateways.token_sha256 IS 'SHA-256 of the gateway token; the token itself is shown once and never stored';
COMMENT ON COLUMN gateways.prefix IS 'the marker ids it may report for start with this (empty: any)';
CREATE TABLE IF NOT EXISTS users (
    user_id       bigserial   PRIMARY KEY,
    name          text        NOT NULL UNIQUE,
    role          text        NOT NULL CHECK (role IN ('admin', 'viewer')),
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS marker_groups (
    group_id   bigserial   PRIMARY KEY,
    name       text        NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE marker_groups ADD COLUMN IF NOT EXISTS friends boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN marker_groups.friends IS 'the group''s phones see each other''s latest positions in OwnTracks (tracker.ingest.friends)';
CREATE TABLE IF NOT EXISTS group_markers (
    group_id  bigint  NOT NULL REFERENCES marker_groups ON DELETE CASCADE,
    marker_id text    NOT NULL,
    is_prefix boolean NOT NULL DEFAULT false,
    PRIMARY KEY (group_id, marker_id, is_prefix)
);
CREATE TABLE IF NOT EXISTS group_members (
    group_id bigint NOT NULL REFERENCES marker_groups ON DELETE CASCADE,
    user_id  bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE TABLE IF NOT EXISTS api_tokens (
    token_id     bigserial   PRIMARY KEY,
    user_id      bigint      NOT NULL REFERENCES users ON DELETE CASCADE,
    token_sha256 bytea       NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz
);
CREATE TABLE IF NOT EXISTS sessions (
    session_sha256 bytea       PRIMARY KEY,
    user_id        bigint      NOT NULL REFERENCES users ON DELETE CASCADE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS shares (
    share_id     bigserial   PRIMARY KEY,
    token_sha256 bytea       NOT NULL UNIQUE,
    marker_id    text        NOT NULL,
    created_by   bigint      REFERENCES users ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);
CREATE TABLE IF NOT EXISTS geofences (
    geofence_id bigserial   PRIMARY KEY,
    feature     jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS geofences_version (
    one     boolean PRIMARY KEY DEFAULT true CHECK (one),
    version bigint  NOT NULL
);
INSERT INTO geofences_version (one, version) VALUES (true, 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS events (
    event_id    text             NOT NULL,
    marker_id   text             NOT NULL,
    type        text             NOT NULL,
    event_time  timestamptz      NOT NULL,
    lat         double precision,
    lon         double precision,
    event       jsonb            NOT NULL,
    recorded_at timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, event_time)
) PARTITION BY RANGE (event_time);
CREATE INDEX IF NOT EXISTS events_by_marker ON events (marker_id, event_time DESC);
CREATE INDEX IF NOT EXISTS events_by_time ON events (event_time DESC);
COMMENT ON TABLE events IS 'What happened to markers (geofence_enter, overspeed, offline, ...), one row per event id, as written to gps.events';
COMMENT ON COLUMN events.event_id IS 'deterministic (marker, type, fix time, detail): a replay writes nothing twice; unique with event_time, the partition key';
COMMENT ON COLUMN events.event IS 'the event exactly as published on gps.events';
CREATE TABLE IF NOT EXISTS trips (
    marker_id       text             NOT NULL,
    start_time      timestamptz      NOT NULL,
    end_time        timestamptz      NOT NULL,
    start_lat       double precision NOT NULL,
    start_lon       double precision NOT NULL,
    end_lat         double precision NOT NULL,
    end_lon         double precision NOT NULL,
    distance_m      double precision NOT NULL,
    duration_s      double precision NOT NULL,
    max_speed       double precision NOT NULL,
    average_speed   double precision NOT NULL,
    start_geofences text[]           NOT NULL DEFAULT '{}',
    end_geofences   text[]           NOT NULL DEFAULT '{}',
    recorded_at     timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (marker_id, start_time)
) PARTITION BY RANGE (start_time);
CREATE TABLE IF NOT EXISTS stops (
    marker_id   text             NOT NULL,
    start_time  timestamptz      NOT NULL,
    end_time    timestamptz      NOT NULL,
    lat         double precision NOT NULL,
    lon         double precision NOT NULL,
    duration_s  double precision NOT NULL,
    recorded_at timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (marker_id, start_time)
) PARTITION BY RANGE (start_time);
CREATE TABLE IF NOT EXISTS journeys_dirty (
    marker_id  text        NOT NULL,
    day        date        NOT NULL,
    wait_for   timestamptz NOT NULL,
    marked_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (marker_id, day)
);
ALTER TABLE positions ADD COLUMN IF NOT EXISTS spike boolean NOT NULL DEFAULT false;
COMMENT ON TABLE trips IS 'Movements between two stops (tracker/journeys/motion.py), written by the journeys sink or a recompute; one per marker and start';
COMMENT ON TABLE stops IS 'Periods of at least TRACKER_STOP_MIN_SECONDS without motion (tracker/journeys/motion.py); one per marker and start';
COMMENT ON TABLE journeys_dirty IS 'Days (UTC) of a marker whose trips and stops a late fix made stale: recomputed from positions once it holds wait_for';
COMMENT ON COLUMN positions.spike IS 'a jump the motion model left out (implied speed above TRACKER_MAX_SPEED from both neighbours)';
CREATE TABLE IF NOT EXISTS webhooks (
    webhook_id bigserial   PRIMARY KEY,
    url        text        NOT NULL,
    secret     text        NOT NULL,
    types      text[]      NOT NULL DEFAULT '{}',
    markers    text[]      NOT NULL DEFAULT '{}',
    created_by bigint      REFERENCES users ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    webhook_id      bigint      NOT NULL REFERENCES webhooks ON DELETE CASCADE,
    event_id        text        NOT NULL,
    event           jsonb       NOT NULL,
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_owner     text,
    lease_until     timestamptz,
    delivered_at    timestamptz,
    PRIMARY KEY (webhook_id, event_id)
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (webhook_id, next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS webhook_deliveries_recent ON webhook_deliveries (webhook_id, created_at DESC);
COMMENT ON TABLE webhooks IS 'Where events are POSTed: types and markers (ids, or prefixes ending in *) empty means all';
COMMENT ON COLUMN webhooks.secret IS 'signs every body (X-Tracker-Signature); kept in clear to sign, shown only when created';
COMMENT ON TABLE webhook_deliveries IS 'The notifier''s outbox: one row per webhook and event id, so a replay delivers nothing twice';
COMMENT ON COLUMN webhook_deliveries.lease_owner IS 'the notifier that holds the row until lease_until; another takes it over after';
COMMENT ON TABLE geofences IS 'Areas markers enter and leave: a GeoJSON Feature each, checked by tracker/geofences/model.py';
COMMENT ON TABLE geofences_version IS 'Raised by every change to geofences, so that workers reload them when it moves';
COMMENT ON TABLE users IS 'People who may read positions: an admin sees every marker, a viewer those of its groups';
COMMENT ON COLUMN users.password_hash IS 'scrypt$N$r$p$salt$hash (base64); the password itself is never stored';
COMMENT ON TABLE group_markers IS 'The markers of a group: an exact marker id, or a marker-id prefix when is_prefix';
COMMENT ON TABLE api_tokens IS 'Bearer tokens for programs; only their SHA-256 is stored';
COMMENT ON TABLE sessions IS 'Browser sessions; the cookie holds a random id, only its SHA-256 is stored';
COMMENT ON TABLE shares IS 'Links that show one marker without an account until they expire or are revoked';
COMMENT ON TABLE positions IS 'Every valid GPS fix, one row per marker and fix time';
COMMENT ON COLUMN positions.speed IS 'm/s';
COMMENT ON COLUMN positions.heading IS 'degrees clockwise from north, 0-360';
COMMENT ON COLUMN positions.altitude IS 'm';
COMMENT ON COLUMN positions.accuracy IS 'm';
COMMENT ON COLUMN positions.battery IS 'percent, 0-100';
COMMENT ON COLUMN positions.received_at IS 'when the tracker accepted the fix';
COMMENT ON COLUMN positions.attributes IS 'extra values the device sent (charge, odometer, ...)';
"""

#: Serialises concurrent schema creation by several workers starting at once.
SCHEMA_LOCK_ID = 0x67707374
#: How long a request waits for a pooled connection before it fails (and answers 503).
CONNECT_TIMEOUT = 5.0

#: A fix as the history writer copies it (``FIX_FIELDS`` plus ``received_us``), with the
#: Postgres type of each field, and the ``positions`` column each one fills.
STAGING = (
    ("marker_id", "text", sql.Identifier("marker_id")),
    ("time_us", "int8", sql.SQL("timestamptz 'epoch' + time_us * interval '1 microsecond'")),
    ("lat", "float8", sql.Identifier("lat")),
    ("lon", "float8", sql.Identifier("lon")),
    ("speed", "float8", sql.Identifier("speed")),
    ("heading", "float8", sql.Identifier("heading")),
    ("altitude", "float8", sql.Identifier("altitude")),
    ("accuracy", "float8", sql.Identifier("accuracy")),
    ("battery", "float8", sql.Identifier("battery")),
    ("source", "text", sql.Identifier("source")),
    ("attributes", "jsonb", sql.Identifier("attributes")),
    ("received_us", "int8", sql.SQL("timestamptz 'epoch' + received_us * interval '1 microsecond'")),
)
assert tuple(name for name, _, _ in STAGING) == (*FIX_FIELDS, "received_us")
POSITION_COLUMNS = ("marker_id", "fix_time", "lat", "lon", "speed", "heading", "altitude", "accuracy",
                    "battery", "source", "attributes", "received_at")
ATTRIBUTES = FIX_FIELDS.index("attributes")
TIME_US = FIX_FIELDS.index("time_us")
ROW_WIDTH = len(STAGING)

_STAGING_TABLE = sql.Identifier("positions_incoming")
_CREATE_STAGING = sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS").format(
    _STAGING_TABLE, sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind))
                                       for name, kind, _ in STAGING))
_COPY = sql.SQL("COPY {} FROM STDIN (FORMAT BINARY)").format(_STAGING_TABLE)
_MERGE = sql.SQL("INSERT INTO positions ({}) SELECT {} FROM {} ON CONFLICT (marker_id, fix_time) DO NOTHING").format(
    sql.SQL(", ").join(map(sql.Identifier, POSITION_COLUMNS)),
    sql.SQL(", ").join(expression for _, _, expression in STAGING),
    _STAGING_TABLE,
)
_COPY_TYPES = [kind for _, kind, _ in STAGING]

#: Rows copied between two chances for the worker's other tasks to run.
YIELD_EVERY = 2_000

#: What a read or write may raise when Postgres is down or slow.
UNAVAILABLE = (psycopg.OperationalError, PoolTimeout)


class DatabaseUnavailable(Exception):
    """The worker's pool is not open (starting or stopping)."""


#: Everything a request's database work may raise when it cannot be done now.
DATABASE_ERRORS = UNAVAILABLE + (DatabaseUnavailable, psycopg.Error)


async def create_schema(conn: psycopg.AsyncConnection) -> None:
    """Create what is missing of the schema. A history table that an earlier version made
    as a plain table is converted to monthly partitions, every row kept, in the same
    transaction (``tracker.storage.months``)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_ID,))
        plain = await partitions.set_aside_plain_tables(conn)
        await conn.execute(SCHEMA)
        await partitions.refill(conn, plain)


class Database(Service):
    """The worker's one Postgres pool: opened in ``on_start``, closed in ``on_stop``.

    Opening does not wait for Postgres: the live path runs without it. The schema is
    created on the first connection that succeeds.
    """

    def __init__(self, url: str, *, max_size: int = 8, **kwargs) -> None:
        super().__init__(**kwargs)
        self.url = url
        self.max_size = max_size
        self.pool: AsyncConnectionPool | None = None
        self._schema_ready = False
        self._schema_lock = asyncio.Lock()
        self._opened = asyncio.Event()

    async def on_start(self) -> None:
        # After an outage psycopg_pool retries with a doubling delay; giving up after a few
        # seconds lets the next request start a fresh attempt instead of waiting it out.
        self.pool = AsyncConnectionPool(self.url, min_size=1, max_size=self.max_size, open=False,
                                        timeout=CONNECT_TIMEOUT, reconnect_timeout=CONNECT_TIMEOUT,
                                        kwargs={"autocommit": True}, name="tracker")
        await self.pool.open(wait=False)
        self._opened.set()

    async def ready(self) -> "Database":
        """Wait until the pool is open (not until Postgres answers)."""
        await self._opened.wait()
        return self

    async def on_stop(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    async def connect(self) -> psycopg.AsyncConnection:
        """A connection of its own (autocommit), for a long-lived writer that reconnects on its own terms."""
        conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
        try:
            await self._ensure_schema(conn)
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _ensure_schema(self, conn: psycopg.AsyncConnection) -> None:
        if not self._schema_ready:
            async with self._schema_lock:
                if not self._schema_ready:
                    await create_schema(conn)
                    self._schema_ready = True

    @asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[psycopg.AsyncConnection]:
        """A pooled connection (autocommit) on a database whose schema exists."""
        if self.pool is None or self.pool.closed:
            raise DatabaseUnavailable("the database pool is not open")
        async with self.pool.connection(timeout) as conn:
            await self._ensure_schema(conn)
            yield conn


async def copy_fixes(conn: psycopg.AsyncConnection, fixes: Sequence[list]) -> int:
    """Insert ``fixes`` into ``positions`` in one transaction: COPY into a staging table,
    then merge, skipping rows already there. Returns the number of new rows."""
    await partitions.ensure_partitions(conn, "positions", (fix[TIME_US] for fix in fixes))
    try:
        return await _copy_fixes(conn, fixes)
    except psycopg.errors.CheckViolation:
        partitions.forget(conn, "positions")  # a month dropped meanwhile: the retry creates it again
        raise


async def _copy_fixes(conn: psycopg.AsyncConnection, fixes: Sequence[list]) -> int:
    async with conn.transaction():
        async with conn.cursor() as cur:
            await cur.execute(_CREATE_STAGING)
            async with cur.copy(_COPY) as copy:
                copy.set_types(_COPY_TYPES)
                for i, fix in enumerate(fixes):
                    if len(fix) != ROW_WIDTH:  # fields a newer intake appended: not ours to write
                        fix = fix[:ROW_WIDTH]
                    if fix[ATTRIBUTES] is not None:
                        fix = list(fix)
                        fix[ATTRIBUTES] = Jsonb(fix[ATTRIBUTES])
                    await copy.write_row(fix)
                    if i % YIELD_EVERY == YIELD_EVERY - 1:
                        await asyncio.sleep(0)  # let the live path run between slices of a large batch
            await cur.execute(_MERGE)
            return cur.rowcount


#: A track point as the history endpoints show it (the query's column aliases).
TRACK_FIELDS = ("time", "lat", "lon", "speed", "heading", "altitude", "accuracy", "battery", "source")
_TRACK = sql.SQL(
    "SELECT fix_time AS time, lat, lon, speed, heading, altitude, accuracy, battery, source "
    "FROM positions WHERE marker_id = %s AND fix_time >= %s AND fix_time <= %s "
    "ORDER BY fix_time {order} LIMIT %s"
)
_HAS_MARKER = "SELECT EXISTS (SELECT 1 FROM positions WHERE marker_id = %s)"
_NEWEST_FIX = (
    "SELECT marker_id, (extract(epoch FROM fix_time) * 1000000)::bigint, lat, lon, speed, heading, altitude, "
    "accuracy, battery, source, attributes, (extract(epoch FROM received_at) * 1000000)::bigint "
    "FROM positions WHERE marker_id = %s ORDER BY fix_time DESC LIMIT 1"
)
_PAGE_END = sql.SQL(
    "SELECT fix_time FROM positions WHERE marker_id = %s AND fix_time >= %s AND fix_time <= %s "
    "ORDER BY fix_time {order} OFFSET %s LIMIT 1"
)
#: Rows fetched from a server-side cursor at a time while streaming a track.
STREAM_CHUNK = 2_000


async def read_track(conn: psycopg.AsyncConnection, marker_id: str, start, end, limit: int,
                     descending: bool) -> list[dict]:
    """Track points as dicts keyed by ``TRACK_FIELDS`` (``time`` an aware datetime), on the
    (marker_id, fix_time) primary key, in binary (a third faster than text on 100,000 rows)."""
    query = _TRACK.format(order=sql.SQL("DESC" if descending else "ASC"))
    async with conn.cursor(row_factory=_point_row, binary=True) as cur:
        await cur.execute(query, (marker_id, start, end, limit))
        return await cur.fetchall()


def _point_row(cursor) -> Callable[[Sequence], dict]:
    """A row factory for the track query: a dict per row, built by a literal (twice as fast as
    ``dict_row``'s ``dict(zip(...))`` on 100,000 rows)."""
    names = tuple(column.name for column in cursor.description or ())
    assert names in ((), TRACK_FIELDS), names

    def point(values: Sequence) -> dict:
        time, lat, lon, speed, heading, altitude, accuracy, battery, source = values
        return {"time": time, "lat": lat, "lon": lon, "speed": speed, "heading": heading,
                "altitude": altitude, "accuracy": accuracy, "battery": battery, "source": source}

    return point


async def page_end(conn: psycopg.AsyncConnection, marker_id: str, start, end, limit: int,
                   descending: bool):
    """The fix time of the first point after ``limit`` points (where the next page starts), or None."""
    query = _PAGE_END.format(order=sql.SQL("DESC" if descending else "ASC"))
    cur = await conn.execute(query, (marker_id, start, end, limit))
    row = await cur.fetchone()
    return None if row is None else row[0]


async def stream_track(conn: psycopg.AsyncConnection, marker_id: str, start, end, limit: int,
                       descending: bool) -> AsyncIterator[list[dict]]:
    """The points of ``read_track`` in chunks of ``STREAM_CHUNK``, from a server-side cursor:
    memory holds one chunk, however long the track."""
    query = _TRACK.format(order=sql.SQL("DESC" if descending else "ASC"))
    async with conn.transaction():
        async with conn.cursor(name="track", row_factory=_point_row, binary=True) as cur:
            await cur.execute(query, (marker_id, start, end, limit))
            while chunk := await cur.fetchmany(STREAM_CHUNK):
                yield chunk


async def newest_fix(conn: psycopg.AsyncConnection, marker_id: str) -> list | None:
    """The marker's newest stored fix as the ``latest`` table holds one (times in
    microseconds), or None."""
    cur = await conn.execute(_NEWEST_FIX, (marker_id,))
    row = await cur.fetchone()
    return None if row is None else list(row)


async def has_marker(conn: psycopg.AsyncConnection, marker_id: str) -> bool:
    cur = await conn.execute(_HAS_MARKER, (marker_id,))
    return (await cur.fetchone())[0]
