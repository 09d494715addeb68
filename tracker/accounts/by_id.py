"""Accounts found by their numeric ids, as the HTTP API names them in its paths (the command
line names users and groups by name); and the tokens of one user, for a viewer that manages
its own. The changes themselves are ``tracker.accounts.store``'s, shared with the command line.
"""
from __future__ import annotations

import psycopg
from psycopg.rows import class_row

from tracker.accounts.store import AccountError, Group, Token, User, list_groups, list_users


def _one(found: list, what: str):
    if not found:
        raise AccountError(f"no {what}")
    return found[0]


async def user(conn: psycopg.AsyncConnection, user_id: int) -> User:
    return _one([u for u in await list_users(conn) if u.user_id == user_id], f"user {user_id}")


async def group(conn: psycopg.AsyncConnection, group_id: int) -> Group:
    return _one([g for g in await list_groups(conn) if g.group_id == group_id], f"group {group_id}")


async def group_by_name(conn: psycopg.AsyncConnection, name: str) -> Group:
    return _one([g for g in await list_groups(conn) if g.name == name], f"group {name!r}")


async def user_name(conn: psycopg.AsyncConnection, user_id: int) -> str:
    cur = await conn.execute("SELECT name FROM users WHERE user_id = %s", (user_id,))
    row = await cur.fetchone()
    if row is None:
        raise AccountError(f"no user {user_id}")
    return row[0]


async def tokens_of(conn: psycopg.AsyncConnection, user_id: int | None) -> list[Token]:
    """The tokens of ``user_id`` (None: everyone's), oldest first."""
    async with conn.cursor(row_factory=class_row(Token)) as cur:
        await cur.execute(
            "SELECT t.token_id, u.name AS user_name, t.created_at, t.expires_at, t.revoked_at "
            "FROM api_tokens t JOIN users u USING (user_id) WHERE %(user)s::bigint IS NULL OR t.user_id = %(user)s "
            "ORDER BY t.token_id", {"user": user_id})
        return await cur.fetchall()


async def token_owner(conn: psycopg.AsyncConnection, token_id: int) -> int | None:
    cur = await conn.execute("SELECT user_id FROM api_tokens WHERE token_id = %s", (token_id,))
    row = await cur.fetchone()
    return None if row is None else row[0]
