"""Retrying what the broker or the database refuses for a while: the project's one backoff.

A stage never drops what it holds because Kafka or Postgres failed once: it waits
``DELAYS[attempt]`` seconds (the last one from then on) and tries again, logging each
failure, until the call passes or the service that retries is stopping.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, TypeVar

from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)

#: Seconds before each new attempt; the last one repeats.
DELAYS = (0.1, 0.25, 0.5, 1.0)

T = TypeVar("T")


class Stopped(Exception):
    """The service stopped before the call passed."""


def delay(attempt: int) -> float:
    """Seconds to wait after the failure of attempt ``attempt`` (counted from 0)."""
    return DELAYS[min(attempt, len(DELAYS) - 1)]


async def retrying(what: str, call: Callable[[], Awaitable[T]], *,
                   retry_on: type[BaseException] | tuple[type[BaseException], ...] = KafkaError,
                   expected: tuple[type[BaseException], ...] | None = None,
                   stopping: Callable[[], bool] | None = None,
                   after_failure: Callable[[], Awaitable[None]] | None = None) -> T:
    """``await call()`` until it stops raising ``retry_on``; what it returned.

    A failure is logged as a warning when it is one of ``expected`` (all of them when
    None), else as an error. ``after_failure`` runs after each failure (to drop a broken
    connection, say). ``Stopped`` is raised instead of waiting when ``stopping()`` is true.
    """
    attempt = 0
    while True:
        try:
            return await call()
        except retry_on as exc:
            if after_failure is not None:
                await after_failure()
            if stopping is not None and stopping():
                raise Stopped(what) from exc
            wait = delay(attempt)
            level = logging.WARNING if expected is None or isinstance(exc, expected) else logging.ERROR
            log.log(level, "%s failed (%r); retrying in %.2f s", what, exc, wait)
            attempt += 1
            await asyncio.sleep(wait)
