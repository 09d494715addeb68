"""Users, groups, API tokens, browser sessions and share links in Postgres (their DDL is
``SCHEMA`` here). Shared by the command line and the web views; every function takes an
open autocommit connection.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import psycopg
from psycopg.rows import class_row

from tracker.accounts import guessing
from tracker.accounts.credentials import hash_password, new_token, token_hash, verify_password
from tracker.accounts.permissions import ADMIN, ROLES, Access, access_of, share_access
from tracker.positions.model import MARKER_ID_PATTERN

SCHEMA = """
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
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS session_id bigserial;
CREATE UNIQUE INDEX IF NOT EXISTS sessions_session_id ON sessions (session_id);
CREATE TABLE IF NOT EXISTS shares (
    share_id     bigserial   PRIMARY KEY,
    token_sha256 bytea       NOT NULL UNIQUE,
    marker_id    text        NOT NULL,
    created_by   bigint      REFERENCES users ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);
COMMENT ON TABLE users IS 'People who may read positions: an admin sees every marker, a viewer those of its groups';
COMMENT ON COLUMN users.password_hash IS 'scrypt$N$r$p$salt$hash (base64); the password itself is never stored';
COMMENT ON TABLE group_markers IS 'The markers of a group: an exact marker id, or a marker-id prefix when is_prefix';
COMMENT ON TABLE api_tokens IS 'Bearer tokens for programs; only their SHA-256 is stored';
COMMENT ON TABLE sessions IS 'Browser sessions; the cookie holds a random id, only its SHA-256 is stored';
COMMENT ON TABLE shares IS 'Links that show one marker without an account until they expire or are revoked';
"""

USER_NAME_MAX = 64


class AccountError(Exception):
    """A request the accounts cannot carry out; the message says why, in one line."""


@dataclass(frozen=True)
class User:
    user_id: int
    name: str
    role: str
    created_at: datetime
    groups: list[str]


@dataclass(frozen=True)
class Group:
    group_id: int
    name: str
    markers: list[str]
    members: list[str]
    friends: bool = False


@dataclass(frozen=True)
class Token:
    token_id: int
    user_name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class Session:
    session_id: int
    user_name: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class Share:
    share_id: int
    marker_id: str
    created_by: str | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


def _check_name(name: str) -> None:
    if not (1 <= len(name) <= USER_NAME_MAX) or not name.isprintable() or ":" in name or name.strip() != name:
        raise AccountError(f"a name is 1 to {USER_NAME_MAX} printable characters, without ':' or "
                           "leading or trailing spaces")


# -- users ---------------------------------------------------------------------------------

async def add_user(conn: psycopg.AsyncConnection, name: str, role: str, password: str) -> int:
    _check_name(name)
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    try:
        cur = await conn.execute(
            "INSERT INTO users (name, role, password_hash) VALUES (%s, %s, %s) RETURNING user_id",
            (name, role, hash_password(password)))
    except psycopg.errors.UniqueViolation:
        raise AccountError(f"user {name!r} exists already") from None
    return (await cur.fetchone())[0]


async def set_password(conn: psycopg.AsyncConnection, name: str, password: str) -> None:
    cur = await conn.execute("UPDATE users SET password_hash = %s WHERE name = %s", (hash_password(password), name))
    if cur.rowcount == 0:
        raise AccountError(f"no user {name!r}")
    # Every session of the user ends with its old password.
    await conn.execute("DELETE FROM sessions WHERE user_id = (SELECT user_id FROM users WHERE name = %s)", (name,))


async def remove_user(conn: psycopg.AsyncConnection, name: str) -> None:
    """Remove a user, but never the last admin (nobody could manage the accounts then)."""
    async with conn.transaction():
        await conn.execute("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
        cur = await conn.execute("SELECT role FROM users WHERE name = %s", (name,))
        row = await cur.fetchone()
        if row is None:
            raise AccountError(f"no user {name!r}")
        if row[0] == ADMIN and await count_admins(conn) == 1:
            raise AccountError(f"{name!r} is the last admin: add another admin first")
        await conn.execute("DELETE FROM users WHERE name = %s", (name,))


async def list_users(conn: psycopg.AsyncConnection) -> list[User]:
    async with conn.cursor(row_factory=class_row(User)) as cur:
        await cur.execute(
            "SELECT u.user_id, u.name, u.role, u.created_at, "
            "       coalesce(array_agg(g.name ORDER BY g.name) FILTER (WHERE g.name IS NOT NULL), '{}') AS groups "
            "FROM users u LEFT JOIN group_members m USING (user_id) LEFT JOIN marker_groups g USING (group_id) "
            "GROUP BY u.user_id ORDER BY u.name")
        return await cur.fetchall()


async def count_admins(conn: psycopg.AsyncConnection) -> int:
    cur = await conn.execute("SELECT count(*) FROM users WHERE role = 'admin'")
    return (await cur.fetchone())[0]


async def password_row(conn: psycopg.AsyncConnection, name: str) -> tuple[int, str] | None:
    """(user id, stored password hash) of the user ``name``, or None."""
    cur = await conn.execute("SELECT user_id, password_hash FROM users WHERE name = %s", (name,))
    row = await cur.fetchone()
    return None if row is None else (row[0], row[1])


async def password_matches(name: str, password: str, row: tuple[int, str] | None) -> bool:
    """Whether ``password`` is that of the user whose ``password_row`` is ``row`` (an unknown
    user, None, costs the same time). No database connection is held meanwhile.

    scrypt runs in a thread, a few checks at a time (``tracker.accounts.guessing.kdf``; the
    caller holds a place in its queue). A password already found to match the hash still
    stored is not checked again (a client that sends HTTP Basic with every request, a live
    feed checking its access), so only a new guess costs scrypt."""
    stored = _dummy_hash() if row is None else row[1]
    remembered = _verified.get(_verified_key(name, password))
    if row is not None and remembered is not None and hmac.compare_digest(remembered, stored):
        return True
    matches = await guessing.kdf.compute(lambda: verify_password(password, stored))
    if matches and row is not None:
        _verified.put(_verified_key(name, password), stored)
    return matches and row is not None


def remembered(name: str, password: str) -> bool:
    """Whether ``password`` was found to be ``name``'s before (by this process)."""
    return _verified_key(name, password) in _verified


#: sha256(name, password) -> the stored hash it was found to match (``password_matches``).
_verified = guessing.Bounded(10_000)


def _verified_key(name: str, password: str) -> bytes:
    return hashlib.sha256(f"{name}\0{password}".encode()).digest()


@functools.cache
def _dummy_hash() -> str:
    """What an unknown user's password is checked against, so that it costs as much time as
    a known one's; made on first use, not at every start."""
    return hash_password("an unknown user's password")


async def access_for(conn: psycopg.AsyncConnection, user_id: int, via: str) -> Access | None:
    cur = await conn.execute("SELECT name, role FROM users WHERE user_id = %s", (user_id,))
    row = await cur.fetchone()
    if row is None:
        return None
    name, role = row
    cur = await conn.execute(
        "SELECT gm.marker_id, gm.is_prefix FROM group_members m JOIN group_markers gm USING (group_id) "
        "WHERE m.user_id = %s", (user_id,))
    return access_of(user_id, name, role, await cur.fetchall(), via)


# -- groups --------------------------------------------------------------------------------

async def _group_id(conn: psycopg.AsyncConnection, name: str) -> int:
    cur = await conn.execute("SELECT group_id FROM marker_groups WHERE name = %s", (name,))
    row = await cur.fetchone()
    if row is None:
        raise AccountError(f"no group {name!r}")
    return row[0]


async def _each(conn: psycopg.AsyncConnection, statement: str, rows: list[tuple]) -> None:
    """``statement`` once per row, all in one transaction."""
    async with conn.transaction():
        async with conn.cursor() as cur:
            await cur.executemany(statement, rows)


async def add_group(conn: psycopg.AsyncConnection, name: str) -> None:
    _check_name(name)
    try:
        await conn.execute("INSERT INTO marker_groups (name) VALUES (%s)", (name,))
    except psycopg.errors.UniqueViolation:
        raise AccountError(f"group {name!r} exists already") from None


async def remove_group(conn: psycopg.AsyncConnection, name: str) -> None:
    cur = await conn.execute("DELETE FROM marker_groups WHERE name = %s", (name,))
    if cur.rowcount == 0:
        raise AccountError(f"no group {name!r}")


async def grant(conn: psycopg.AsyncConnection, group: str, grants: list[tuple[str, bool]]) -> None:
    """Add marker ids and prefixes (``(text, is_prefix)``) to a group."""
    for marker, is_prefix in grants:
        if not MARKER_ID_PATTERN.fullmatch(marker):
            raise AccountError(f"{marker!r} is not a marker id or prefix")
    group_id = await _group_id(conn, group)
    await _each(conn, "INSERT INTO group_markers (group_id, marker_id, is_prefix) VALUES (%s, %s, %s) "
                      "ON CONFLICT DO NOTHING", [(group_id, marker, is_prefix) for marker, is_prefix in grants])


async def revoke_grant(conn: psycopg.AsyncConnection, group: str, grants: list[tuple[str, bool]]) -> None:
    group_id = await _group_id(conn, group)
    await _each(conn, "DELETE FROM group_markers WHERE group_id = %s AND marker_id = %s AND is_prefix = %s",
                [(group_id, marker, is_prefix) for marker, is_prefix in grants])


async def set_friends(conn: psycopg.AsyncConnection, group: str, friends: bool) -> None:
    """Whether the group's phones see each other in OwnTracks (``tracker.ingest.friends``)."""
    cur = await conn.execute("UPDATE marker_groups SET friends = %s WHERE name = %s", (friends, group))
    if cur.rowcount == 0:
        raise AccountError(f"no group {group!r}")


async def add_members(conn: psycopg.AsyncConnection, group: str, users: list[str]) -> None:
    group_id = await _group_id(conn, group)
    cur = await conn.execute("SELECT name, user_id FROM users WHERE name = ANY(%s)", (users,))
    found = dict(await cur.fetchall())
    missing = [user for user in users if user not in found]
    if missing:
        raise AccountError(f"no user {missing[0]!r}")
    await _each(conn, "INSERT INTO group_members (group_id, user_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                [(group_id, found[user]) for user in users])


async def remove_members(conn: psycopg.AsyncConnection, group: str, users: list[str]) -> None:
    group_id = await _group_id(conn, group)
    await conn.execute(
        "DELETE FROM group_members WHERE group_id = %s AND user_id IN (SELECT user_id FROM users WHERE name = ANY(%s))",
        (group_id, users))


async def list_groups(conn: psycopg.AsyncConnection) -> list[Group]:
    from tracker.accounts.permissions import format_grant

    cur = await conn.execute(
        "SELECT g.group_id, g.name, "
        "       coalesce((SELECT array_agg(ARRAY[gm.marker_id, gm.is_prefix::text] ORDER BY gm.marker_id) "
        "                 FROM group_markers gm WHERE gm.group_id = g.group_id), '{}'), "
        "       coalesce((SELECT array_agg(u.name ORDER BY u.name) FROM group_members m "
        "                 JOIN users u USING (user_id) WHERE m.group_id = g.group_id), '{}'), g.friends "
        "FROM marker_groups g ORDER BY g.name")
    return [Group(group_id, name, [format_grant(marker, is_prefix == "true") for marker, is_prefix in markers],
                  members, friends)
            for group_id, name, markers, members, friends in await cur.fetchall()]


# -- API tokens ----------------------------------------------------------------------------

async def add_token(conn: psycopg.AsyncConnection, user: str, expires_in: timedelta | None) -> tuple[int, str]:
    """A new token for ``user``: (its id, the token), shown once."""
    token = new_token()
    expires_at = None if expires_in is None else datetime.now(timezone.utc) + expires_in
    cur = await conn.execute(
        "INSERT INTO api_tokens (user_id, token_sha256, expires_at) "
        "SELECT user_id, %s, %s FROM users WHERE name = %s RETURNING token_id",
        (token_hash(token), expires_at, user))
    row = await cur.fetchone()
    if row is None:
        raise AccountError(f"no user {user!r}")
    return row[0], token


async def revoke_token(conn: psycopg.AsyncConnection, token_id: int) -> None:
    cur = await conn.execute(
        "UPDATE api_tokens SET revoked_at = now() WHERE token_id = %s AND revoked_at IS NULL", (token_id,))
    if cur.rowcount == 0:
        raise AccountError(f"no active token {token_id}")


async def list_tokens(conn: psycopg.AsyncConnection) -> list[Token]:
    async with conn.cursor(row_factory=class_row(Token)) as cur:
        await cur.execute(
            "SELECT t.token_id, u.name AS user_name, t.created_at, t.expires_at, t.revoked_at "
            "FROM api_tokens t JOIN users u USING (user_id) ORDER BY t.token_id")
        return await cur.fetchall()


async def token_access(conn: psycopg.AsyncConnection, token: str) -> Access | None:
    cur = await conn.execute(
        "SELECT user_id FROM api_tokens WHERE token_sha256 = %s AND revoked_at IS NULL "
        "AND (expires_at IS NULL OR expires_at > now())", (token_hash(token),))
    row = await cur.fetchone()
    return None if row is None else await access_for(conn, row[0], "token")


# -- browser sessions ----------------------------------------------------------------------

async def open_session(conn: psycopg.AsyncConnection, user_id: int, lifetime: timedelta) -> str:
    session = new_token()
    await conn.execute("DELETE FROM sessions WHERE expires_at < now()")
    await conn.execute("INSERT INTO sessions (session_sha256, user_id, expires_at) VALUES (%s, %s, %s)",
                       (token_hash(session), user_id, datetime.now(timezone.utc) + lifetime))
    return session


async def session_access(conn: psycopg.AsyncConnection, session: str) -> Access | None:
    cur = await conn.execute("SELECT user_id FROM sessions WHERE session_sha256 = %s AND expires_at > now()",
                             (token_hash(session),))
    row = await cur.fetchone()
    return None if row is None else await access_for(conn, row[0], "session")


async def close_session(conn: psycopg.AsyncConnection, session: str) -> None:
    await conn.execute("DELETE FROM sessions WHERE session_sha256 = %s", (token_hash(session),))


async def list_sessions(conn: psycopg.AsyncConnection, user: str | None = None) -> list[Session]:
    """The sessions that have not expired (``user``'s only), oldest first."""
    async with conn.cursor(row_factory=class_row(Session)) as cur:
        await cur.execute(
            "SELECT s.session_id, u.name AS user_name, s.created_at, s.expires_at FROM sessions s "
            "JOIN users u USING (user_id) WHERE s.expires_at > now() AND (%s::text IS NULL OR u.name = %s) "
            "ORDER BY s.session_id", (user, user))
        return await cur.fetchall()


async def end_sessions(conn: psycopg.AsyncConnection, session_ids: list[int], user: str | None = None) -> int:
    """End sessions by id, or every session of ``user``; how many ended."""
    if user is not None:
        cur = await conn.execute("SELECT 1 FROM users WHERE name = %s", (user,))
        if await cur.fetchone() is None:
            raise AccountError(f"no user {user!r}")
        cur = await conn.execute("DELETE FROM sessions WHERE user_id = (SELECT user_id FROM users WHERE name = %s)",
                                 (user,))
        return cur.rowcount
    cur = await conn.execute("DELETE FROM sessions WHERE session_id = ANY(%s) RETURNING session_id", (session_ids,))
    ended = {row[0] for row in await cur.fetchall()}
    missing = [str(i) for i in session_ids if i not in ended]
    if missing:
        raise AccountError(f"no session {', '.join(missing)}" + (" (the others ended)" if ended else ""))
    return len(ended)


# -- share links ---------------------------------------------------------------------------

async def add_share(conn: psycopg.AsyncConnection, marker_id: str, created_by: int | None,
                    expires_in: timedelta) -> tuple[int, str, datetime]:
    """A new link to ``marker_id``: (its id, the token, when it expires)."""
    if not MARKER_ID_PATTERN.fullmatch(marker_id):
        raise AccountError(f"{marker_id!r} is not a marker id")
    token = new_token()
    expires_at = datetime.now(timezone.utc) + expires_in
    cur = await conn.execute(
        "INSERT INTO shares (token_sha256, marker_id, created_by, expires_at) VALUES (%s, %s, %s, %s) "
        "RETURNING share_id", (token_hash(token), marker_id, created_by, expires_at))
    return (await cur.fetchone())[0], token, expires_at


async def share_of(conn: psycopg.AsyncConnection, token: str) -> Access | None:
    """The access a share link gives, while it is valid."""
    cur = await conn.execute(
        "SELECT share_id, marker_id, created_by FROM shares WHERE token_sha256 = %s AND revoked_at IS NULL "
        "AND expires_at > now()", (token_hash(token),))
    row = await cur.fetchone()
    if row is None:
        return None
    share_id, marker_id, created_by = row
    if created_by is not None:  # a link lasts only while its maker may still see the marker
        maker = await access_for(conn, created_by, "share")
        if maker is None or not maker.permits(marker_id):
            return None
    return share_access(share_id, marker_id)


async def revoke_share(conn: psycopg.AsyncConnection, share_id: int, by: Access | None) -> None:
    """Revoke a link; ``by`` (None from the command line) must be an admin or its creator."""
    cur = await conn.execute(
        "UPDATE shares SET revoked_at = now() WHERE share_id = %s AND revoked_at IS NULL "
        "AND (%s OR created_by = %s)",
        (share_id, by is None or by.is_admin, None if by is None else by.user_id))
    if cur.rowcount == 0:
        raise AccountError(f"no active share {share_id}")


async def list_shares(conn: psycopg.AsyncConnection, by: Access | None) -> list[Share]:
    async with conn.cursor(row_factory=class_row(Share)) as cur:
        await cur.execute(
            "SELECT s.share_id, s.marker_id, u.name AS created_by, s.created_at, s.expires_at, s.revoked_at "
            "FROM shares s LEFT JOIN users u ON u.user_id = s.created_by "
            "WHERE %s OR s.created_by = %s ORDER BY s.share_id",
            (by is None or by.is_admin, None if by is None else by.user_id))
        return await cur.fetchall()


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str | int | float, *, longest: timedelta) -> timedelta:
    """``90`` (seconds), ``"90s"``, ``"30m"``, ``"12h"`` or ``"30d"``; positive and at most ``longest``."""
    try:
        if isinstance(text, bool) or not isinstance(text, (int, float, str)):
            raise TypeError
        if isinstance(text, str) and text[-1:] in DURATION_UNITS:
            seconds = float(text[:-1]) * DURATION_UNITS[text[-1]]
        else:
            seconds = float(text)
    except (TypeError, ValueError):
        raise AccountError(f"{str(text)[:20]!r} is not a duration: use seconds or a number with s, m, h or d") from None
    if not 0 < seconds <= longest.total_seconds():
        raise AccountError(f"a duration must be positive and at most {longest.days} days")
    return timedelta(seconds=seconds)
