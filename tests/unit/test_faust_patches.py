"""The patches of ``tracker.stream.faust_internals``: each scenario runs with Faust's own
function, which loses records, and with the patch, which loses none."""
import asyncio
from types import SimpleNamespace

import pytest
from faust.types import TP
from mode.utils.queues import FlowControlEvent, FlowControlQueue

from tracker.stream import faust_internals

PATCHES = {patch.name: patch for patch in faust_internals.PATCHES}


def faust_own(name: str):
    patch = PATCHES[name]
    return faust_internals.REPLACED[patch.qualname]


def test_the_patches_are_installed_when_the_app_is_imported():
    import tracker.app  # noqa: F401

    for patch in faust_internals.PATCHES:
        assert patch.original() is patch.replacement, patch.qualname


@pytest.mark.parametrize("patched", [True, False])
def test_a_resume_while_the_flow_runs_keeps_the_events_queued(patched, monkeypatch):
    if not patched:
        monkeypatch.setattr(FlowControlEvent, "resume", faust_own("resume"))
    flow = FlowControlEvent(initially_suspended=True)
    channel = FlowControlQueue(flow_control=flow, clear_on_resume=True)
    channel.put_nowait("before the rebalance")
    flow.resume()  # the first resume after a suspension empties the queue, patched or not
    assert channel.qsize() == 0
    channel.put_nowait("offset 10")  # delivered in the current assignment
    flow.resume()  # Faust's recovery resumes again while the flow runs
    assert (channel.qsize() == 1) is patched
    flow.suspend()
    flow.resume()
    assert channel.qsize() == 0


class Partition:
    """One stream partition as Faust's fetcher and aiokafka handle it: while the flow runs
    and the partition is active, every record from the fetch position on is delivered to
    the agent's channel."""

    def __init__(self, channel, committed: int, end: int) -> None:
        self.channel, self.committed, self.end = channel, committed, end
        self.position = committed
        self.flow_active = True
        self.active = False
        self.calls: list[str] = []

    def fetch(self) -> None:
        while self.flow_active and self.active and self.position < self.end:
            self.channel.put_nowait(self.position)
            self.position += 1

    # --- the consumer's API, as on_recovery_completed uses it ---------------------------
    def assignment(self):
        return {TP("batches", 0)}

    def stop_flow(self) -> None:
        self.calls.append("stop_flow")
        self.flow_active = False

    def resume_flow(self) -> None:
        self.calls.append("resume_flow")
        self.flow_active = True

    def resume_partitions(self, tps) -> None:
        self.calls.append("resume_partitions")
        self.active = True
        self.fetch()

    async def perform_seek(self) -> None:
        self.calls.append("perform_seek")
        self.position = self.committed
        self.fetch()


def recovery(partition: Partition, flow: FlowControlEvent):
    """What ``Recovery.on_recovery_completed`` uses of its recovery and app."""

    async def nothing(*args, **kwargs):
        return None

    async def wait(coroutine, timeout=None):
        return await coroutine

    app = SimpleNamespace(consumer=partition, consumer_generation_id=3, flow_control=flow,
                          conf=SimpleNamespace(broker_request_timeout=10.0),
                          on_rebalance_complete=SimpleNamespace(send=nothing),
                          _fetcher=SimpleNamespace(maybe_start=nothing),
                          assignor=SimpleNamespace(assigned_standbys=lambda: set()), on_rebalance_end=lambda: None)
    tables = SimpleNamespace(values=lambda: [], on_actives_ready=lambda: None, on_standbys_ready=lambda: None)
    logger = SimpleNamespace(info=lambda *a: None, dev=lambda *a: None, warning=lambda *a: None)
    return SimpleNamespace(app=app, log=logger, tables=tables, actives_for_table={}, standbys_for_table={},
                           completed=asyncio.Event(), _set_recovery_ended=lambda: None,
                           _is_changelog_tp=lambda tp: False, _wait=wait)


@pytest.mark.parametrize("patched", [True, False])
async def test_records_fetched_when_recovery_completes_are_all_delivered(patched, monkeypatch):
    """Faust's flow control as it was (every resume clears), so that only this patch differs."""
    monkeypatch.setattr(FlowControlEvent, "resume", faust_own("resume"))
    flow = FlowControlEvent(initially_suspended=False)
    channel = FlowControlQueue(flow_control=flow, clear_on_resume=True)
    partition = Partition(channel, committed=40, end=50)
    complete = PATCHES["on_recovery_completed"].replacement if patched else faust_own("on_recovery_completed")
    await complete(recovery(partition, flow), 3)
    partition.fetch()  # the fetcher goes on from where the consumer stands
    delivered = set(channel._queue)
    assert (delivered == set(range(40, 50))) is patched, (delivered, partition.calls)
    if patched:
        assert partition.calls.index("stop_flow") < partition.calls.index("resume_partitions")


class Fetching:
    """What ``Consumer._wait_next_records`` uses of its consumer; aiokafka's fetch returns
    the records of the partitions it is given when it ends, of all when the set is empty
    (a rebalance empties Faust's set of active partitions while the fetch waits)."""

    ALL = {TP("batches", p) for p in range(4)}

    def __init__(self) -> None:
        self.flow_active = True
        self.app = SimpleNamespace(client_only=False)
        self.not_waiting_next_records = asyncio.Event()
        self.active = {TP("batches", 0), TP("batches", 1)}

    def _get_active_partitions(self):
        return self.active

    async def _getmany(self, active_partitions, timeout):
        self.active.clear()
        await asyncio.sleep(0)
        return {tp: [f"record of {tp.partition}"] for tp in self.ALL if not active_partitions or tp in active_partitions}

    async def sleep(self, seconds):
        await asyncio.sleep(0)


@pytest.mark.parametrize("patched", [True, False])
async def test_a_fetch_returns_only_partitions_that_were_active_when_it_began(patched):
    wait_next = PATCHES["_wait_next_records"].replacement if patched else faust_own("_wait_next_records")
    records, _ = await wait_next(Fetching(), 1.0)
    assert (set(records) == {TP("batches", 0), TP("batches", 1)}) is patched, set(records)


@pytest.mark.parametrize("patched", [True, False])
async def test_the_agents_fetches_wait_for_new_records_only_as_long_as_the_setting(patched, monkeypatch):
    """Faust's fixed 1,500 ms holds fixes back by up to that long at any load: aiokafka
    fetches a drained partition again only once the fetch in flight returns."""
    import dataclasses

    from tracker.app import app
    from tracker.settings import settings

    monkeypatch.setattr(faust_internals, "settings", dataclasses.replace(settings, fetch_wait_ms=100))
    create = (PATCHES["_create_worker_consumer"].replacement if patched
              else faust_own("_create_worker_consumer"))
    consumer = create(app.consumer._thread, app.transport)
    try:
        assert consumer._fetch_max_wait_ms == (100 if patched else 1_500)
    finally:
        await consumer.stop()  # never started: only its resources are let go
