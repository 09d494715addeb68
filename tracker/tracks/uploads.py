"""Imports started from the browser: their state in Postgres (its DDL is ``SCHEMA`` here), so
that any worker answers how one goes, whichever worker reads the file.

An import is ``waiting`` (for its file), ``reading`` (the file checked, as ``tracker import``
does first), ``sending`` (its points to ``gps.positions``; ``sent`` of ``total``), then
``done`` (``sent`` points imported, ``skipped`` left out with their reasons) or ``failed``
(``message`` says why, as ``tracker import`` would).
"""
from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

SCHEMA = """
CREATE TABLE IF NOT EXISTS track_imports (
    import_id   bigserial   PRIMARY KEY,
    marker_id   text        NOT NULL,
    filename    text        NOT NULL,
    created_by  bigint      REFERENCES users ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    state       text        NOT NULL DEFAULT 'waiting'
                            CHECK (state IN ('waiting', 'reading', 'sending', 'done', 'failed')),
    bytes       bigint      NOT NULL DEFAULT 0,
    total       bigint      NOT NULL DEFAULT 0,
    sent        bigint      NOT NULL DEFAULT 0,
    skipped     bigint      NOT NULL DEFAULT 0,
    files       jsonb       NOT NULL DEFAULT '[]',
    message     text        NOT NULL DEFAULT '',
    options     jsonb       NOT NULL DEFAULT '{}',
    finished_at timestamptz
);
COMMENT ON TABLE track_imports IS 'Track files imported from the browser (POST /api/imports): their progress and result';
"""

STATES = ("waiting", "reading", "sending", "done", "failed")
_COLUMNS = ("import_id, marker_id, filename, (SELECT name FROM users WHERE user_id = created_by) AS created_by, "
            "created_at, state, bytes, total, sent, skipped, files, message, options, finished_at")


async def create(conn: psycopg.AsyncConnection, marker_id: str, filename: str, created_by: int | None,
                 options: dict[str, Any]) -> int:
    cur = await conn.execute(
        "INSERT INTO track_imports (marker_id, filename, created_by, options) VALUES (%s, %s, %s, %s) "
        "RETURNING import_id", (marker_id, filename, created_by, Jsonb(options)))
    return (await cur.fetchone())[0]


async def get(conn: psycopg.AsyncConnection, import_id: int) -> dict | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_COLUMNS} FROM track_imports WHERE import_id = %s", (import_id,))
        return await cur.fetchone()


async def recent(conn: psycopg.AsyncConnection, limit: int) -> list[dict]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_COLUMNS} FROM track_imports ORDER BY import_id DESC LIMIT %s", (limit,))
        return await cur.fetchall()


async def claim(conn: psycopg.AsyncConnection, import_id: int, size: int) -> bool:
    """The file of a waiting import has arrived: it is being read now (False: it was not waiting)."""
    cur = await conn.execute("UPDATE track_imports SET state = 'reading', bytes = %s "
                             "WHERE import_id = %s AND state = 'waiting'", (size, import_id))
    return cur.rowcount == 1


async def update(conn: psycopg.AsyncConnection, import_id: int, **fields: Any) -> None:
    """Set some of state, total, sent, skipped, files, message; a final state sets finished_at."""
    assert set(fields) <= {"state", "total", "sent", "skipped", "files", "message"}, fields
    values = {key: Jsonb(value) if key == "files" else value for key, value in fields.items()}
    assignments = ", ".join(f"{key} = %({key})s" for key in values)
    if fields.get("state") in ("done", "failed"):
        assignments += ", finished_at = now()"
    await conn.execute(f"UPDATE track_imports SET {assignments} WHERE import_id = %(import_id)s",
                       {**values, "import_id": import_id})
