"""Password guessing, throttled inside the worker, so that a flood of guesses sent straight
to it (no nginx in front) neither finds passwords quickly nor slows anyone else down.

- ``Throttle``: failed attempts are counted per account (the name tried, known or not) and
  per client address. After ``FREE_FAILURES`` failures, each further attempt on that
  account, or from that address, must wait a delay that doubles with each failure (1 s,
  2 s, 4 s... at most ``MAX_DELAY_SECONDS``) from the last one; an attempt that comes sooner
  is refused (429 with ``Retry-After``) without its password being checked, so it costs no
  KDF. Counts are forgotten ``FORGET_SECONDS`` after the last failure, and reset by a success
  (the address's).
- Never a lock an attacker can use against a user: an account's delay does not apply to an
  address that signed in to that account before (``REMEMBER_SECONDS``), and it is bounded.
- ``KdfSlots``: scrypt runs in threads, ``SLOTS`` at a time, with at most ``WAITING`` checks
  queued behind them; a check beyond that is refused at once (``KdfBusy``, 429), rather than
  queue and hold the worker's CPU for everyone else.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from typing import Callable, TypeVar

FREE_FAILURES = 5
BASE_DELAY_SECONDS = 1.0
MAX_DELAY_SECONDS = 60.0
FORGET_SECONDS = 900.0
REMEMBER_SECONDS = 30 * 86400.0
#: Accounts, addresses and known (account, address) pairs each remembered at most.
MAX_KEYS = 50_000
SLOTS = 1
WAITING = 8

T = TypeVar("T")


class KdfBusy(Exception):
    """Too many password checks queued already."""


class Bounded(OrderedDict):
    """A dict that forgets its oldest entries beyond ``limit``."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def put(self, key, value) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


class Throttle:
    def __init__(self, free: int = FREE_FAILURES, base: float = BASE_DELAY_SECONDS, cap: float = MAX_DELAY_SECONDS,
                 forget: float = FORGET_SECONDS, remember: float = REMEMBER_SECONDS, max_keys: int = MAX_KEYS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.free, self.base, self.cap, self.forget, self.remember = free, base, cap, forget, remember
        self.clock = clock
        #: ("account", name) or ("address", address) -> (failures, time of the last)
        self.failures: Bounded = Bounded(max_keys)
        #: (account, address) -> when it last signed in
        self.known: Bounded = Bounded(max_keys)

    def _delay(self, key, now: float) -> float:
        entry = self.failures.get(key)
        if entry is None:
            return 0.0
        count, last = entry
        if now - last > self.forget:
            del self.failures[key]
            return 0.0
        if count < self.free:
            return 0.0
        return max(0.0, last + min(self.cap, self.base * 2.0 ** (count - self.free)) - now)

    def wait(self, account: str, address: str) -> float:
        """Seconds before an attempt on ``account`` from ``address`` is allowed (0: now)."""
        now = self.clock()
        delays = [self._delay(("address", address), now)]
        known = self.known.get((account.casefold(), address))
        if known is None or now - known > self.remember:
            delays.append(self._delay(("account", account.casefold()), now))
        return max(delays)

    def failed(self, account: str, address: str) -> None:
        now = self.clock()
        for key in (("account", account.casefold()), ("address", address)):
            count, last = self.failures.get(key, (0, now))
            self.failures.put(key, ((0 if now - last > self.forget else count) + 1, now))

    def succeeded(self, account: str, address: str) -> None:
        self.failures.pop(("address", address), None)
        self.known.put((account.casefold(), address), self.clock())


class KdfSlots:
    def __init__(self, slots: int = SLOTS, waiting: int = WAITING) -> None:
        self.slots, self.waiting = slots, waiting
        self._semaphore = asyncio.Semaphore(slots)
        self.queued = 0  # checks running or waiting

    def full(self) -> bool:
        return self.queued >= self.slots + self.waiting

    @contextlib.contextmanager
    def place(self):
        """A place among the checks running or waiting, for the whole of one check (its
        lookup included); ``KdfBusy`` when there is none."""
        if self.full():
            raise KdfBusy(f"{self.queued} password checks are running or waiting")
        self.queued += 1
        try:
            yield
        finally:
            self.queued -= 1

    async def compute(self, function: Callable[[], T]) -> T:
        """``function()`` in a thread when a slot is free."""
        async with self._semaphore:
            return await asyncio.to_thread(function)

    async def run(self, function: Callable[[], T]) -> T:
        with self.place():
            return await self.compute(function)


throttle = Throttle()
kdf = KdfSlots()
