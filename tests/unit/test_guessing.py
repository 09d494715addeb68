"""Password guessing: failures per account and per address delay the next attempts, more
after each; an address that signed in before is not held up by guesses on its account; the
KDF takes a bounded queue."""
import asyncio
import threading

import pytest

from tracker.accounts.guessing import Bounded, KdfBusy, KdfSlots, Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_delay_starts_after_the_free_failures_and_doubles_up_to_a_cap():
    clock = Clock()
    throttle = Throttle(free=3, base=1.0, cap=8.0, clock=clock)
    waits = []
    for _ in range(8):
        waits.append(throttle.wait("ana", "10.0.0.1"))
        throttle.failed("ana", "10.0.0.1")
    assert waits[:3] == [0, 0, 0]
    assert throttle.wait("ana", "10.0.0.1") == 8.0  # capped
    clock.now += 8.0
    assert throttle.wait("ana", "10.0.0.1") == 0


def test_guesses_from_one_address_delay_that_address_whatever_the_account():
    clock = Clock()
    throttle = Throttle(free=2, clock=clock)
    for name in ("a", "b", "c"):
        throttle.failed(name, "10.0.0.1")
    assert throttle.wait("d", "10.0.0.1") > 0
    assert throttle.wait("d", "10.0.0.2") == 0


def test_an_address_that_signed_in_before_is_not_held_up_by_guesses_on_its_account():
    clock = Clock()
    throttle = Throttle(free=2, clock=clock)
    throttle.succeeded("Ana", "10.0.0.9")
    for n in range(10):
        throttle.failed("ana", f"10.0.1.{n}")
    assert throttle.wait("ana", "10.0.2.1") > 0   # a new address waits
    assert throttle.wait("ANA", "10.0.0.9") == 0   # the known one does not
    clock.now += 31 * 86400
    assert throttle.wait("ana", "10.0.0.9") == 0   # failures forgotten by now too


def test_failures_are_forgotten_after_a_while_and_a_success_clears_the_address():
    clock = Clock()
    throttle = Throttle(free=1, forget=60.0, clock=clock)
    throttle.failed("ana", "10.0.0.1")
    throttle.failed("ana", "10.0.0.1")
    assert throttle.wait("ana", "10.0.0.1") > 0
    clock.now += 61
    assert throttle.wait("ana", "10.0.0.1") == 0
    throttle.failed("bob", "10.0.0.3")
    throttle.failed("bob", "10.0.0.3")
    throttle.succeeded("carl", "10.0.0.3")
    assert throttle.wait("dan", "10.0.0.3") == 0


def test_bounded_memory_forgets_the_oldest():
    kept = Bounded(3)
    for n in range(5):
        kept.put(n, n)
    assert list(kept) == [2, 3, 4]


async def test_the_kdf_runs_a_few_at_a_time_and_refuses_beyond_its_queue():
    slots = KdfSlots(slots=1, waiting=2)
    release = threading.Event()
    running = [asyncio.ensure_future(slots.run(release.wait)) for _ in range(3)]
    await asyncio.sleep(0.05)
    with pytest.raises(KdfBusy):
        await slots.run(lambda: True)
    release.set()
    assert await asyncio.gather(*running) == [True] * 3
    assert await slots.run(lambda: 5) == 5 and slots.queued == 0
