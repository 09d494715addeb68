"""The one place that reads or writes private state of faust-streaming and aiokafka.

The rest of the project uses their public API only (a unit test greps for it). What is
done here has no public API: where a partition's fetch position stands, which partition
sets Faust's consumer holds it in, the progress of a table's recovery, one partition's
RocksDB database of a table, and the acknowledgement of offsets Faust never delivered.

These names can change in any release, so at import the module checks that the installed
versions are the ones it was written for and that every name it uses is still there. A
mismatch raises ``IncompatibleInternals`` with one line that says what differs: the
worker then refuses to start (``tracker.app``) instead of behaving differently inside a
swallowed exception.
"""
from __future__ import annotations

import inspect
import re
from importlib.metadata import version
from typing import Any, Iterable

import aiokafka.consumer.consumer as aiokafka_consumer
import aiokafka.consumer.subscription_state as aiokafka_subscription
import faust.stores.rocksdb as faust_rocksdb
import faust.tables.recovery as faust_recovery
import faust.transport.consumer as faust_consumer
import faust.transport.drivers.aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

#: The releases this module was written against (``pip show`` names).
VERSIONS = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0"}

#: Every private name used below, with the class whose source must still set or define it.
USED = {
    faust_consumer.Consumer: ("_acked", "_acked_index", "_committed_offset", "_n_acked", "_waiting_for_ack",
                              "_active_partitions", "_paused_partitions", "_buffered_partitions"),
    faust_consumer.ThreadDelegateConsumer: ("_thread",),
    faust_aiokafka.AIOKafkaConsumerThread: ("_consumer",),
    aiokafka_consumer.AIOKafkaConsumer: ("_subscription",),
    aiokafka_subscription.SubscriptionState: ("subscription",),
    aiokafka_subscription.Subscription: ("assignment",),
    faust_recovery.Recovery: ("_recovery_started_at", "_active_events_received_at", "active_offsets"),
    faust_rocksdb.Store: ("_db_for_partition", "offset_key"),
}


class IncompatibleInternals(RuntimeError):
    """The installed faust-streaming or aiokafka is not the one this module was written for."""


def check(versions: dict[str, str] = VERSIONS, used: dict[type, Iterable[str]] = USED) -> None:
    """Raise ``IncompatibleInternals`` unless the installed versions and names are as expected."""
    for package, expected in versions.items():
        installed = version(package)
        if installed != expected:
            raise IncompatibleInternals(
                f"{package} {installed} is installed; tracker.stream.faust_internals was written for {expected}")
    for cls, names in used.items():
        source = inspect.getsource(cls)
        for name in names:
            if not hasattr(cls, name) and not re.search(rf"\bself\.{re.escape(name)}\b", source):
                raise IncompatibleInternals(
                    f"{cls.__module__}.{cls.__qualname__} has no {name} any more "
                    f"(used by tracker.stream.faust_internals)")


check()


# --- the consumer -------------------------------------------------------------------

def fetch_position(consumer, tp: TP) -> int | None:
    """Where Faust's consumer fetches ``tp`` next, as aiokafka's subscription holds it, read
    without a call into the consumer's thread; None before the consumer has started, while
    it has no assignment, or before the partition's position is known."""
    client = consumer._thread._consumer
    subscription = client._subscription.subscription if client is not None else None
    if subscription is None or subscription.assignment is None:
        return None
    state = subscription.assignment.state_value(tp)
    return state.position if state is not None and state.has_valid_position else None


def partition_state(consumer, tp: TP) -> str:
    """What Faust's consumer makes of ``tp``, for a log line."""
    active = consumer._active_partitions
    return (f"active {active is None or tp in active}, paused {tp in consumer._paused_partitions}, "
            f"buffered {tp in consumer._buffered_partitions}, fetch position {fetch_position(consumer, tp)}")


def acknowledge(consumer, tp: TP, offsets: Iterable[int]) -> int:
    """Count ``offsets`` of ``tp`` as acknowledged, as ``Consumer.ack`` counts a delivered
    message (the same bookkeeping, under the same lock, waking the same waiter): for records
    read again outside Faust, which its commit would otherwise never pass. The number added."""
    added = 0
    with ack_lock:
        committed = consumer._committed_offset.get(tp)
        acked, index = consumer._acked[tp], consumer._acked_index[tp]
        for offset in offsets:
            if (committed is None or offset >= committed) and offset not in index:
                index.add(offset)
                acked.append(offset)
                added += 1
        consumer._n_acked += added
        notify(consumer._waiting_for_ack)
    return added


# --- table recovery -----------------------------------------------------------------

def recovery_started_at(recovery) -> float | None:
    """``time.monotonic()`` when the running table recovery started; None if none runs."""
    return recovery._recovery_started_at


def recovery_received_at(recovery) -> dict[TP, float]:
    """Per active changelog partition, ``time.monotonic()`` of the last record the recovery got."""
    return recovery._active_events_received_at


def recovery_offsets(recovery) -> dict[TP, int]:
    """Per active changelog partition, the last offset the recovery has applied."""
    return recovery.active_offsets


# --- a table's RocksDB store --------------------------------------------------------

def partition_db(store, partition: int) -> Any:
    """The ``rocksdict.Rdict`` of one partition of a table's RocksDB store (opened if need be)."""
    if not isinstance(store, faust_rocksdb.Store):
        raise TypeError(f"a table store of {type(store).__name__}: only rocksdb:// stores can be written by partition")
    return store._db_for_partition(partition)


def offset_key(store) -> bytes:
    """The key under which a RocksDB store keeps the changelog offset its recovery resumes from."""
    return store.offset_key
