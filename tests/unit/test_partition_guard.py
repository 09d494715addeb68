"""The partition guard: a partition of the batches topic whose records the idle ``latest``
agent has not processed, and that has not moved for the stall time, is fetched again from
the first record not processed; a partition that moves, or a busy agent, is left alone. And
a changelog partition Faust's recovery waits for in vain is read again."""
from faust.types import TP

from tracker.stream.partition_guard import PartitionGuard, RecoveryGuard

TP2, TP5 = TP("latest-changelog", 2), TP("latest-changelog", 5)


class Cluster:
    """Offsets as the broker and the agent see them, and a clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.owned: list[int] | None = [0, 1]
        self.ends = {0: 10, 1: 5}
        self.committed = {0: 10, 1: 0}
        self.progress: dict[int, int] = {}
        self.idle = 60.0
        self.positions: dict[int, int] = {}
        self.restarted: list[tuple[int, int]] = []

    def guard(self) -> PartitionGuard:
        async def committed():
            return dict(self.committed)

        async def ends():
            return dict(self.ends)

        async def restart(partition, offset):
            self.restarted.append((partition, offset))
            return "active False"

        async def position(partition):
            return self.positions.get(partition)

        return PartitionGuard(lambda: self.owned, committed, ends, restart, position, self.progress,
                              lambda: self.idle, stall_seconds=15, dropped_seconds=1, clock=lambda: self.now)


async def test_a_partition_left_behind_by_an_idle_agent_is_fetched_again_from_its_first_unprocessed_record():
    cluster = Cluster()
    guard = cluster.guard()
    assert await guard.check() == []
    cluster.now += 10
    assert await guard.check() == []  # behind for 10 s only
    cluster.now += 6
    assert await guard.check() == [1]
    assert cluster.restarted == [(1, 0)]
    cluster.now += 5
    assert await guard.check() == []  # given the stall time again after a restart
    cluster.progress[1] = 5
    cluster.now += 30
    assert await guard.check() == [] and not guard.behind


async def test_a_partition_that_moves_is_not_stalled():
    cluster = Cluster()
    guard = cluster.guard()
    for step in range(1, 5):
        cluster.progress[1] = step
        cluster.now += 10
        assert await guard.check() == []
    assert cluster.restarted == []


async def test_the_agent_processing_other_partitions_is_not_a_stall():
    cluster = Cluster()
    cluster.idle = 2.0
    guard = cluster.guard()
    for _ in range(5):
        cluster.now += 10
        assert await guard.check() == []
    cluster.idle = 20.0
    assert await guard.check() == [1]


async def test_nothing_is_restarted_while_partitions_move_between_workers():
    cluster = Cluster()
    guard = cluster.guard()
    await guard.check()
    cluster.owned = None
    cluster.now += 30
    assert await guard.check() == [] and not guard.behind
    cluster.owned = [0]  # partition 1 went to another worker
    cluster.now += 30
    assert await guard.check() == []
    assert cluster.restarted == []


async def test_the_groups_commit_counts_as_progress():
    cluster = Cluster()
    guard = cluster.guard()
    await guard.check()
    cluster.committed[1] = 5  # the worker that owned it before finished it
    cluster.now += 30
    assert await guard.check() == [] and cluster.restarted == []


async def test_records_fetched_and_thrown_away_are_fetched_again_at_once():
    cluster = Cluster()
    cluster.positions[1] = 5  # the consumer went past offsets 0-4; the agent never got them
    guard = cluster.guard()
    assert await guard.check() == []
    cluster.now += 1.5
    assert await guard.check() == [1] and cluster.restarted == [(1, 0)]


async def test_a_fetch_position_past_the_agent_is_no_stall_while_the_agent_works():
    cluster = Cluster()
    cluster.positions[1] = 5
    cluster.idle = 0.0  # records on their way to the agent
    guard = cluster.guard()
    for _ in range(5):
        cluster.now += 2
        assert await guard.check() == []


class Recovery:
    """Faust's table recovery as the guard reads it."""

    def __init__(self, now: float) -> None:
        self.in_recovery = True
        self._recovery_started_at = now
        self._active_events_received_at: dict = {}
        self.active_offsets = {TP2: -1, TP5: 800}
        self.highwaters = {TP2: 727, TP5: 869}

    def active_remaining(self):
        return {tp: high - self.active_offsets[tp] for tp, high in self.highwaters.items()}


def recovery_guard(recovery, clock):
    restarted = []

    async def restart(tp, offset):
        restarted.append((tp, offset))

    return RecoveryGuard(lambda: recovery, restart, stall_seconds=10, clock=lambda: clock[0]), restarted


async def test_a_changelog_partition_the_recovery_waits_for_in_vain_is_read_again_from_where_it_stands():
    clock = [100.0]
    recovery = Recovery(now=100.0)
    guard, restarted = recovery_guard(recovery, clock)
    clock[0] = 105.0
    recovery._active_events_received_at[TP5] = 104.0  # arriving
    assert await guard.check() == []
    clock[0] = 111.0
    recovery._active_events_received_at[TP5] = 110.5
    assert await guard.check() == [TP2]
    assert restarted == [(TP2, 0)]  # nothing applied yet: from the start
    clock[0] = 115.0
    assert await guard.check() == [], "restarted again before the stall time"
    clock[0] = 122.0
    recovery._active_events_received_at[TP5] = 121.0
    assert await guard.check() == [TP2]


async def test_no_restart_outside_recovery_or_once_a_partition_is_done():
    clock = [200.0]
    recovery = Recovery(now=100.0)
    recovery.active_offsets = {tp: high for tp, high in recovery.highwaters.items()}
    guard, restarted = recovery_guard(recovery, clock)
    assert await guard.check() == []
    recovery.in_recovery = False
    recovery.active_offsets[TP2] = -1
    assert await guard.check() == [] and restarted == []
