"""Which device a secret belongs to: answers cached for seconds while Postgres answers, and
for minutes while it cannot be reached, so phones go on reporting through an outage."""
import asyncio
from contextlib import asynccontextmanager

import psycopg
import pytest

from tracker.accounts.devices import SecretLookup, secret_hash


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class FakeRegistry:
    """The ``devices`` table behind a pool's ``connection()``, which fails while ``down``."""

    def __init__(self, devices: dict[str, str]) -> None:
        self.by_digest = {secret_hash(secret): device_id for secret, device_id in devices.items()}
        self.down = False
        self.attempts = 0

    @asynccontextmanager
    async def connection(self):
        self.attempts += 1
        if self.down:
            raise psycopg.OperationalError("connection refused")
        yield self

    @asynccontextmanager
    async def cursor(self, row_factory=None):
        yield self

    async def execute(self, query, params):
        self.found = self.by_digest.get(params[0])

    async def fetchone(self):
        return self.found


def lookup_of(registry: FakeRegistry, clock: Clock) -> SecretLookup:
    return SecretLookup(registry.connection, clock=clock)


async def test_while_postgres_answers_a_removed_secret_stops_working_within_five_seconds():
    registry, clock = FakeRegistry({"s3cret": "phone-1"}), Clock()
    lookup = lookup_of(registry, clock)
    assert await lookup.device_for("s3cret") == "phone-1"
    registry.by_digest.clear()
    clock.now += 4.9
    assert await lookup.device_for("s3cret") == "phone-1"
    clock.now += 0.2
    assert await lookup.device_for("s3cret") is None


async def test_during_an_outage_a_known_secret_works_for_ten_minutes_after_postgres_last_confirmed_it():
    registry, clock = FakeRegistry({"s3cret": "phone-1"}), Clock()
    lookup = lookup_of(registry, clock)
    assert await lookup.device_for("s3cret") == "phone-1"
    registry.down = True
    for elapsed in (6, 60, 300, 599):
        clock.now = 1_000.0 + elapsed
        assert await lookup.device_for("s3cret") == "phone-1", elapsed
    clock.now = 1_000.0 + 601
    with pytest.raises(psycopg.OperationalError):
        await lookup.device_for("s3cret")


async def test_during_an_outage_a_secret_never_seen_is_refused_as_unavailable():
    registry, clock = FakeRegistry({"s3cret": "phone-1", "other": "phone-2"}), Clock()
    lookup = lookup_of(registry, clock)
    assert await lookup.device_for("s3cret") == "phone-1"
    registry.down = True
    with pytest.raises(psycopg.Error):
        await lookup.device_for("other")


async def test_after_a_failure_postgres_is_left_alone_briefly_and_its_answers_count_again_once_back():
    registry, clock = FakeRegistry({"s3cret": "phone-1"}), Clock()
    lookup = lookup_of(registry, clock)
    await lookup.device_for("s3cret")
    registry.down = True
    clock.now += 10
    assert await lookup.device_for("s3cret") == "phone-1"
    attempts = registry.attempts
    clock.now += 1
    assert await lookup.device_for("s3cret") == "phone-1"
    assert registry.attempts == attempts  # answered without waiting for a connection
    registry.down = False
    registry.by_digest.clear()  # removed while Postgres was away
    clock.now += 2
    await lookup.device_for("s3cret")  # answered from the cache, and looked up again behind it
    await asyncio.sleep(0.01)
    assert await lookup.device_for("s3cret") is None


async def test_a_flood_of_unknown_secrets_does_not_push_out_the_known_ones():
    registry, clock = FakeRegistry({"s3cret": "phone-1"}), Clock()
    lookup = SecretLookup(registry.connection, max_entries=100, clock=clock)
    await lookup.device_for("s3cret")
    for i in range(500):
        assert await lookup.device_for(f"guess-{i}") is None
    registry.down = True
    clock.now += 60
    assert await lookup.device_for("s3cret") == "phone-1"
