"""Password checks (``web.auth.password_access``): no database connection is held while
scrypt runs, a flood beyond the KDF's queue costs no query, and a password found right
before is answered without a place in the queue."""
import asyncio
import threading
from contextlib import asynccontextmanager
from types import SimpleNamespace

import pytest

from tracker.accounts import guessing
from tracker.accounts import store as accounts
from tracker.accounts.credentials import hash_password
from tracker.accounts.outage_cache import OutageCache
from tracker.accounts.permissions import Access
from web import auth
from web.errors import TooManyRequests

PASSWORD = "the-right-password"


class Database:
    def __init__(self) -> None:
        self.open = 0
        self.queries = 0

    @asynccontextmanager
    async def connection(self):
        self.open += 1
        try:
            yield self
        finally:
            self.open -= 1


@pytest.fixture()
def world(monkeypatch):
    db = Database()
    stored = hash_password(PASSWORD)
    monkeypatch.setattr(auth, "_cache", OutageCache(db.connection, 60.0))
    monkeypatch.setattr(guessing, "throttle", guessing.Throttle())
    monkeypatch.setattr(guessing, "kdf", guessing.KdfSlots(slots=1, waiting=1))
    monkeypatch.setattr(accounts, "_verified", guessing.Bounded(100))

    async def password_row(conn, name):
        db.queries += 1
        return (7, stored) if name == "ana" else None

    async def access_for(conn, user_id, via):
        db.queries += 1
        return Access(user="ana", role="viewer", user_id=user_id, via=via)

    monkeypatch.setattr(accounts, "password_row", password_row)
    monkeypatch.setattr(accounts, "access_for", access_for)
    return db


def request(address: str = "10.0.0.1"):
    return SimpleNamespace(remote=address, headers={})


async def test_no_connection_is_held_while_scrypt_runs(world, monkeypatch):
    real = accounts.verify_password
    open_during = []

    def verify(password, stored):
        open_during.append(world.open)
        return real(password, stored)

    monkeypatch.setattr(accounts, "verify_password", verify)
    assert await auth.password_access(request(), "ana", PASSWORD, "basic") is not None
    assert await auth.password_access(request(), "ana", "wrong", "basic") is None
    assert await auth.password_access(request(), "nobody", PASSWORD, "basic") is None
    assert open_during == [0, 0, 0]


async def test_a_flood_beyond_the_queue_costs_no_query_and_holds_up_no_one_who_signed_in(world, monkeypatch):
    assert await auth.password_access(request(), "ana", PASSWORD, "basic") is not None
    release = threading.Event()
    real = accounts.verify_password
    monkeypatch.setattr(accounts, "verify_password", lambda p, s: release.wait(10) and real(p, s))
    auth._cache.entries.clear()  # every answer stale: lookups again
    queries = world.queries
    guesses = [asyncio.ensure_future(auth.password_access(request(f"10.0.1.{n}"), "ana", f"guess-{n}", "basic"))
               for n in range(2)]  # one running, one waiting: the queue is full
    await asyncio.sleep(0.05)
    with pytest.raises(TooManyRequests):
        await auth.password_access(request("10.0.2.1"), "ana", "guess-3", "basic")
    assert world.queries == queries + 1  # the refused guess asked nothing; the row is cached
    # the right password, known to this worker: no place needed, no scrypt
    assert await auth.password_access(request("10.0.0.1"), "ana", PASSWORD, "basic") is not None
    release.set()
    assert await asyncio.gather(*guesses) == [None, None]
    assert guessing.kdf.queued == 0
