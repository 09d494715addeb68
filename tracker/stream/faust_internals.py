"""The one place that reads or writes private state of faust-streaming and aiokafka.

The rest of the project uses their public API only (a unit test greps for it). What is
done here has no public API: where a partition's fetch position stands, which partition
sets Faust's consumer holds it in, the progress of a table's recovery, one partition's
RocksDB database of a table, and the acknowledgement of offsets Faust never delivered.

It also holds the patches to faust-streaming that keep it from dropping records after a
rebalance (``PATCHES``; ``install`` applies them, ``tracker.app`` at import):

- ``FlowControlEvent.resume`` empties the queues made with ``clear_on_resume`` (an agent's
  channel, the tables' changelog queue) only when the flow was suspended (a rebalance
  began): that clear throws away events of the previous assignment. Faust's recovery
  also calls it while the flow runs (after reading the changelogs, after starting the
  standbys, when it completes), and then it threw away records delivered in the current
  assignment whose offsets the consumer had already passed: the first records of a
  partition after a rebalance, and standby changelog records (a standby's RocksDB then
  silently lacked those keys).
- ``Recovery.on_recovery_completed`` stops the consumer's flow before it resumes the
  stream partitions and seeks them to their committed offsets (Faust resumes the flow
  after the seek): records fetched between the two are no longer delivered from the
  position before the seek.
- ``Consumer._wait_next_records`` hands the consumer's thread a copy of the set of active
  partitions, not the set itself: aiokafka reads that set while it waits for records, and
  when a rebalance empties it meanwhile aiokafka returns the records of every partition,
  which Faust then drops as not active while their fetch positions have moved past them.

These names can change in any release, so at import the module checks that the installed
versions are the ones it was written for, that every name it uses is still there, and
that each function it replaces has the source it was written against (a SHA-256 of it).
A mismatch raises ``IncompatibleInternals`` with one line that says what differs: the
worker then refuses to start (``tracker.app``) instead of behaving differently inside a
swallowed exception.
"""
from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import types
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any, Callable, Iterable

import aiokafka.consumer.consumer as aiokafka_consumer
import aiokafka.consumer.subscription_state as aiokafka_subscription
import faust.app.base as faust_base_app
import faust.stores.rocksdb as faust_rocksdb
import faust.tables.recovery as faust_recovery
import faust.transport.consumer as faust_consumer
import faust.transport.drivers.aiokafka as faust_aiokafka
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata
from faust.types import TP
from faust.types.tuples import ack_lock
from mode.utils.futures import notify
from mode.utils.queues import FlowControlEvent

from tracker.metrics import FAUST_DROPPED, FAUST_DROPS_PREVENTED
from tracker.settings import settings

log = logging.getLogger(__name__)

#: The releases this module was written against (``pip show`` names).
VERSIONS = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0", "mode-streaming": "0.7.1"}

#: Every private name used below, with the class that must still define it or use it in its code.
USED = {
    faust_consumer.Consumer: ("_acked", "_acked_index", "_committed_offset", "_n_acked", "_waiting_for_ack",
                              "_active_partitions", "_paused_partitions", "_buffered_partitions", "_read_offset",
                              "_get_active_partitions", "_getmany"),
    faust_consumer.ThreadDelegateConsumer: ("_thread",),
    faust_aiokafka.AIOKafkaConsumerThread: ("_consumer",),
    aiokafka_consumer.AIOKafkaConsumer: ("_subscription", "_coordinator", "_fetch_max_wait_ms"),
    aiokafka_subscription.SubscriptionState: ("subscription",),
    aiokafka_subscription.Subscription: ("assignment",),
    faust_recovery.Recovery: ("_recovery_started_at", "_active_events_received_at", "active_offsets",
                              "_set_recovery_ended", "_is_changelog_tp", "_wait"),
    faust_base_app.App: ("_fetcher",),
    faust_rocksdb.Store: ("_db_for_partition", "offset_key"),
    FlowControlEvent: ("_suspend", "_resume", "_queues"),
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
        found = _attribute_names(cls)
        for name in names:
            if not hasattr(cls, name) and name not in found:
                raise IncompatibleInternals(
                    f"{cls.__module__}.{cls.__qualname__} has no {name} any more "
                    f"(used by tracker.stream.faust_internals)")


def _attribute_names(cls: type) -> set[str]:
    """Every attribute name the code of ``cls``'s own methods (and the functions nested in
    them) reads, sets or calls: from their bytecode, which takes microseconds where parsing
    the class's source took a third of a second at every start."""
    codes = []
    for value in vars(cls).values():
        function = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
        code = getattr(inspect.unwrap(function) if callable(function) else function, "__code__", None)
        if code is not None:
            codes.append(code)
    names: set[str] = set()
    while codes:
        code = codes.pop()
        names.update(code.co_names)
        codes.extend(const for const in code.co_consts if isinstance(const, types.CodeType))
    return names


check()


# --- patches ------------------------------------------------------------------------

@dataclass(frozen=True)
class Patch:
    """``owner.name`` replaced by ``replacement``, if its source still hashes to ``sha256``."""

    owner: type
    name: str
    sha256: str
    replacement: Callable
    why: str

    @property
    def qualname(self) -> str:
        return f"{self.owner.__module__}.{self.owner.__qualname__}.{self.name}"

    def original(self) -> Callable:
        return self.owner.__dict__[self.name]

    def check(self) -> None:
        found = hashlib.sha256(inspect.getsource(self.original()).encode()).hexdigest()
        if found != self.sha256:
            raise IncompatibleInternals(f"{self.qualname} is not the function tracker.stream.faust_internals patches "
                                        f"(source SHA-256 {found[:16]}, expected {self.sha256[:16]})")


def _resume(self: FlowControlEvent) -> None:
    """``FlowControlEvent.resume``, clearing the managed queues only when the flow was suspended."""
    was_suspended = self._suspend.is_set()
    self._suspend.clear()
    self._resume.set()
    if was_suspended:
        self.clear()
    else:
        kept = sum(queue.qsize() for queue in self._queues)
        if kept:
            FAUST_DROPS_PREVENTED.labels("clear_on_resume").inc(kept)


async def _on_recovery_completed(self, generation_id: int = 0) -> None:
    """``Recovery.on_recovery_completed`` with the consumer's flow stopped from before the
    stream partitions are resumed until after they are sought (marked "changed")."""
    consumer = self.app.consumer
    self.log.info("Restore complete!")
    await self.app.on_rebalance_complete.send()
    self._set_recovery_ended()
    callback_coros = [
        asyncio.ensure_future(table.on_recovery_completed(self.actives_for_table[table],
                                                          self.standbys_for_table[table]))
        for table in self.tables.values()
    ]
    if callback_coros:
        await asyncio.wait(callback_coros)
    assignment = consumer.assignment()
    if self.app.consumer_generation_id != generation_id:
        self.log.warning(f"Recovery rebalancing again app id {self.app.consumer_generation_id} param {generation_id}")
        return
    consumer.stop_flow()  # changed: nothing fetched is delivered until the seek is done
    consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})
    if assignment:
        self.log.info("Seek stream partitions to committed offsets.")
        await self._wait(consumer.perform_seek(), timeout=self.app.conf.broker_request_timeout)
    self.completed.set()
    self.log.dev("Resume stream partitions")
    self.app.flow_control.resume()
    consumer.resume_flow()
    await self.app._fetcher.maybe_start()
    self.tables.on_actives_ready()
    if not self.app.assignor.assigned_standbys():
        self.tables.on_standbys_ready()
    self.app.on_rebalance_end()
    self.log.info("Worker ready")


async def _wait_next_records(self, timeout: float):
    """``Consumer._wait_next_records`` handing the fetch a copy of the active partitions
    (marked "changed"); what it fetched is filtered by the live set, as before."""
    if not self.flow_active:
        await self.wait(self.can_resume_flow)
    try:
        self.not_waiting_next_records.set()
        is_client_only = self.app.client_only
        if is_client_only:
            active_partitions = None
        else:
            active_partitions = self._get_active_partitions()
        records = {}
        if is_client_only or active_partitions:
            records = await self._getmany(
                active_partitions=None if active_partitions is None else set(active_partitions),  # changed: a copy
                timeout=timeout)
        self._tracker_fetched = sum(map(len, records.values())) if records else 0
        if not (is_client_only or active_partitions):
            await self.sleep(1)
        return records, active_partitions
    finally:
        self.not_waiting_next_records.set()


_getmany = faust_consumer.Consumer.getmany
GETMANY_SHA256 = "4b168d84882a70d6e3e2f9804430a63b92f8fd117d3187cbb4aeb54305bda34e"


async def _counting_getmany(self, timeout: float):
    """``Consumer.getmany``, counting the records it fetched and did not deliver."""
    delivered = stale = 0
    read_offsets = self._read_offset
    async for tp, message in _getmany(self, timeout):
        delivered += 1
        last = read_offsets.get(tp)
        if last is not None and message.offset < last:
            stale += 1
        yield tp, message
    dropped = getattr(self, "_tracker_fetched", 0) - delivered
    self._tracker_fetched = 0
    if dropped > 0:
        FAUST_DROPPED.labels("getmany").inc(dropped)
    if stale:
        FAUST_DROPPED.labels("stale_offset").inc(stale)


_create_worker_consumer = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer


def _create_worker_consumer_waiting_less(self, transport):
    """``AIOKafkaConsumerThread._create_worker_consumer`` with a fetch wait of
    ``TRACKER_FETCH_WAIT_MS`` instead of a fixed 1,500 ms (its default). aiokafka keeps one
    fetch in flight per broker, and leaves out of it the partitions whose records it holds
    undelivered; a partition drained meanwhile is fetched again only once that fetch
    returns, which the broker holds up to the wait when the other partitions have nothing
    new. At 2,000 positions/s, produce to the ``latest`` changelog took p50 876 ms with
    1,500 ms, 169 ms with 100 ms."""
    consumer = _create_worker_consumer(self, transport)
    consumer._fetch_max_wait_ms = settings.fetch_wait_ms  # read when the consumer starts its fetcher
    return consumer


PATCHES = (
    Patch(FlowControlEvent, "resume", "4dcdc1253fd0dcb40de18a3702503c01d21e9da7e5e55b122fb92615f27648d9",
          _resume, "a resume clears the queues only after a suspension"),
    Patch(faust_recovery.Recovery, "on_recovery_completed", "6ef567acf072e46da3fccbccc6d662371f634f622c3d510972d5df81f70ae3ac",
          _on_recovery_completed, "the flow stops before the stream partitions are resumed and sought"),
    Patch(faust_consumer.Consumer, "_wait_next_records", "6218e1969a636b3ff504ad1b8e7ad58a113572e43d746cc96d684ed5153032c6",
          _wait_next_records, "the fetch gets a copy of the active partitions"),
    Patch(faust_consumer.Consumer, "getmany", GETMANY_SHA256, _counting_getmany,
          "records fetched and not delivered are counted"),
    Patch(faust_aiokafka.AIOKafkaConsumerThread, "_create_worker_consumer",
          "c2701bfc3e6f6cad95c2be36d6a255a86e2c57d18d36cc1082b5fb5c482d99d7", _create_worker_consumer_waiting_less,
          "the agent's fetches wait for new records TRACKER_FETCH_WAIT_MS, not 1,500 ms"),
)


#: The functions the patches replaced, by ``Patch.qualname`` (for the tests that run both).
REPLACED: dict[str, Callable] = {}


def install(patches: Iterable[Patch] = PATCHES) -> list[str]:
    """Apply the patches not applied yet (each checked first); the names of those applied."""
    applied = []
    for patch in patches:
        if patch.original() is patch.replacement:
            continue
        patch.check()
        REPLACED[patch.qualname] = patch.original()
        setattr(patch.owner, patch.name, patch.replacement)
        applied.append(f"{patch.qualname} ({patch.why})")
    return applied


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


def read_offset(consumer, tp: TP) -> int | None:
    """The offset of the last record Faust's consumer delivered of ``tp`` (None: none since
    its last seek)."""
    return consumer._read_offset.get(tp)


async def commit(consumer, offsets: dict[TP, int], generation: int, timeout: float) -> bool:
    """Commit ``offsets`` (per partition, the next offset to read) as Faust's group member
    of ``generation``: through the consumer's own aiokafka client, in its thread, so that
    the broker checks the member and its generation. Nothing is committed, and False is
    returned, when the member is in another generation by now (a rebalance), a partition is
    not assigned to it, or the broker refuses (the group rebalanced) or does not answer in
    ``timeout`` seconds."""
    thread = consumer._thread

    async def in_thread() -> bool:
        client = thread._consumer
        if client is None or client._coordinator.generation != generation:
            return False
        wanted = {TopicPartition(tp.topic, tp.partition): OffsetAndMetadata(offset, "") for tp, offset in offsets.items()}
        if not wanted or not set(wanted) <= client.assignment():
            return False
        try:
            await asyncio.wait_for(client.commit(wanted), timeout)
        except (KafkaError, asyncio.TimeoutError) as exc:
            log.warning("commit of %s in generation %d refused: %r", sorted(offsets), generation, exc)
            return False
        return True

    return await thread.call_thread(in_thread)


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
