"""The partition guard: a partition of the batches topic whose records the idle ``latest``
agent has not processed, and that has not moved for the stall time, is fetched again from
the first record not processed; a partition that moves, or a busy agent, is left alone."""
from tracker.partition_guard import PartitionGuard


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
