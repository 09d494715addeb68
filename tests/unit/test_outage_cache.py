"""The lookup cache during a Postgres outage: callers it knows keep their answers at once,
without waiting for connections that time out, and a revocation applies once Postgres is back."""
import asyncio
from contextlib import asynccontextmanager

import psycopg
import pytest

from tracker.accounts.outage_cache import OutageCache


class Database:
    """Stands in for the pool: ``down`` makes a connection take ``connect_seconds`` and fail."""

    def __init__(self) -> None:
        self.down = False
        self.connect_seconds = 0.5
        self.answers = {"token": "alice"}
        self.connections = 0

    @asynccontextmanager
    async def connection(self):
        self.connections += 1
        if self.down:
            await asyncio.sleep(self.connect_seconds)
            raise psycopg.OperationalError("connection refused")
        yield self


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def setup():
    db, clock = Database(), Clock()
    return db, clock, OutageCache(db.connection, ttl=2.0, outage_grace=600.0, retry_after=2.0, clock=clock)


async def lookup_of(db, key):
    async def lookup(conn):
        return db.answers.get(key)
    return lookup


async def ask(cache, db, key="token") -> tuple[str | None, float]:
    loop = asyncio.get_running_loop()
    started = loop.time()
    answer = await cache.get(key, await lookup_of(db, key))
    return answer, loop.time() - started


async def test_during_an_outage_known_callers_are_answered_at_once_every_time(setup):
    db, clock, cache = setup
    assert (await ask(cache, db))[0] == "alice"
    db.down = True
    clock.now += 3  # stale: the first lookup after this finds Postgres away
    answer, waited = await ask(cache, db)
    assert answer == "alice" and waited >= 0.5  # the one request that learns of the outage
    for _ in range(5):
        clock.now += 3  # past the pause: each of these would have waited for a connection
        answer, waited = await ask(cache, db)
        assert answer == "alice" and waited < 0.1
    await asyncio.sleep(0.6)  # the background lookups fail quietly


async def test_once_postgres_is_back_the_background_lookup_applies_a_revocation(setup):
    db, clock, cache = setup
    await ask(cache, db)
    db.down = True
    clock.now += 3
    await ask(cache, db)
    db.down, db.answers = False, {}  # back, and the token was revoked meanwhile
    clock.now += 3
    assert (await ask(cache, db))[0] == "alice"  # answered from the cache, looked up behind
    await asyncio.sleep(0.05)
    clock.now += 0.1
    assert (await ask(cache, db))[0] is None  # the lookup behind it brought the revocation
    assert not cache.in_outage


async def test_an_unknown_caller_during_an_outage_is_refused(setup):
    db, clock, cache = setup
    db.down = True
    with pytest.raises(psycopg.OperationalError):
        await ask(cache, db, "stranger")
