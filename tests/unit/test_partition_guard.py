"""The partition guard: a partition of the batches topic the ``latest`` agent has not
processed to its end, that has not moved for the stall time, and of which Faust delivered
nothing past what the agent processed, is fetched again from the agent's next offset (at
once when the fetch position shows the records were fetched and dropped); a partition that
moves, or whose records wait in the agent's queue, is left alone. And a changelog partition
Faust's recovery waits for in vain is read again."""
from faust.types import TP

from tracker.stream.partition_guard import PartitionGuard, RecoveryGuard

TP2, TP5 = TP("latest-changelog", 2), TP("latest-changelog", 5)


class Cluster:
    """Offsets as the broker, Faust and the agent see them, and a clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.generation = 4
        self.owned: list[int] | None = [0, 1]
        self.ends = {0: 10, 1: 5}
        self.next = {0: 10, 1: 0}
        self.delivered: dict[int, int] = {}
        self.positions: dict[int, int] = {}
        self.restarted: list[tuple[int, int, int]] = []
        self.refuse = False

    def guard(self) -> PartitionGuard:
        async def ends():
            return dict(self.ends)

        async def restart(partition, offset, generation):
            if self.refuse:
                return None
            self.restarted.append((partition, offset, generation))
            return "active False"

        return PartitionGuard(lambda: None if self.owned is None else (self.generation, self.owned), ends,
                              self.next.get, self.delivered.get, self.positions.get, restart,
                              stall_seconds=15, dropped_seconds=1, clock=lambda: self.now)


async def test_a_partition_left_behind_is_fetched_again_from_the_agents_next_offset():
    cluster = Cluster()
    guard = cluster.guard()
    assert await guard.check() == []
    cluster.now += 10
    assert await guard.check() == []  # behind for 10 s only
    cluster.now += 6
    assert await guard.check() == [1]
    assert cluster.restarted == [(1, 0, 4)]
    cluster.now += 5
    assert await guard.check() == []  # given the stall time again after a restart
    cluster.next[1] = 5
    cluster.now += 30
    assert await guard.check() == [] and not guard.behind


async def test_a_partition_that_moves_is_not_stalled():
    cluster = Cluster()
    guard = cluster.guard()
    for step in range(1, 5):
        cluster.next[1] = step
        cluster.now += 10
        assert await guard.check() == []
    assert cluster.restarted == []


async def test_records_delivered_and_waiting_in_the_agents_queue_are_no_stall():
    """Judged per partition: the agent busy with others, this one's records wait for it."""
    cluster = Cluster()
    cluster.delivered[1] = 3
    cluster.positions[1] = 5
    guard = cluster.guard()
    for _ in range(5):
        cluster.now += 10
        assert await guard.check() == []
    cluster.delivered[1] = None
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


async def test_a_restart_refused_because_the_assignment_changed_meanwhile_is_not_counted():
    cluster = Cluster()
    guard = cluster.guard()
    await guard.check()
    cluster.now += 20
    cluster.refuse = True
    assert await guard.check() == [] and guard.restarts == 0


async def test_records_fetched_and_thrown_away_are_fetched_again_at_once():
    cluster = Cluster()
    cluster.positions[1] = 5  # the consumer went past offsets 0-4; the agent never got them
    guard = cluster.guard()
    assert await guard.check() == []
    cluster.now += 1.5
    assert await guard.check() == [1] and cluster.restarted == [(1, 0, 4)]


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

    async def restart(tp, offset, started):
        restarted.append((tp, offset))
        return True

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
