"""A request's connection to Postgres: a pooled one, or 503 when the database cannot be reached."""
from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

import psycopg

from tracker.resources import database
from tracker.storage.pool import DATABASE_ERRORS
from web.errors import Unavailable


@asynccontextmanager
async def request_connection(code: str = "accounts_unavailable") -> AsyncIterator[psycopg.AsyncConnection]:
    """A pooled connection for a request's work on Postgres; 503 ``code`` when it cannot be reached."""
    try:
        async with database.connection() as conn:
            yield conn
    except DATABASE_ERRORS:
        raise Unavailable(code, "the database cannot be reached; retry") from None
