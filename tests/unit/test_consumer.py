"""The offset bookkeeping of the worker's own consumer groups: nothing handed over twice, no
gap acknowledged, progress only in order and only for the current assignment."""
from types import SimpleNamespace

from aiokafka import TopicPartition

from tracker.stream.consumer import GroupConsumer
from tracker.settings import Settings

TP = TopicPartition("gps.positions", 2)


class FakeConsumer:
    def __init__(self, committed: int | None = 100) -> None:
        self._committed = committed
        self.seeks: list[int] = []
        self.commits: list[dict] = []

    async def committed(self, tp):
        return self._committed

    def seek(self, tp, offset):
        self.seeks.append(offset)

    def pause(self, *tps):
        self.paused = set(tps)

    def resume(self, *tps):
        self.paused = set()

    def assignment(self):
        return {TP}

    async def commit(self, offsets):
        self.commits.append(dict(offsets))


def records(*offsets: int):
    return [SimpleNamespace(offset=o) for o in offsets]


async def consumer(committed: int | None = 100) -> GroupConsumer:
    group = GroupConsumer(Settings.from_env({}), TP.topic, "g")
    group.consumer = FakeConsumer(committed)
    await group._assigned({TP})
    return group


async def offsets(group, *fetched) -> list[int]:
    return [r.offset for r in await group._contiguous(TP, records(*fetched))]


async def test_a_fetch_that_skips_offsets_is_dropped_and_read_again():
    group = await consumer(committed=100)
    assert await offsets(group, 103, 104) == []
    assert group.consumer.seeks == [100]
    assert await offsets(group, 100, 101, 102, 103) == [100, 101, 102, 103]


async def test_the_same_hole_twice_holds_no_records_and_is_accepted():
    group = await consumer(committed=100)
    assert await offsets(group, 105, 106) == []
    assert await offsets(group, 105, 106) == [105, 106]
    group.done(TP, group.epoch(TP), 105, 107)
    await group.commit({TP})
    assert group.consumer.commits == [{TP: 107}]


async def test_records_handed_over_already_are_not_handed_over_again():
    group = await consumer(committed=0)
    assert await offsets(group, 0, 1, 2) == [0, 1, 2]
    assert await offsets(group, 1, 2, 3) == [3]
    assert await offsets(group, 2) == []


async def test_a_group_without_commits_starts_where_the_consumer_starts():
    group = await consumer(committed=None)
    assert await offsets(group, 3, 4) == [3, 4]
    assert await offsets(group, 6) == []
    assert group.consumer.seeks == [5]


async def test_only_durable_offsets_are_committed_and_only_in_this_assignment():
    group = await consumer(committed=100)
    await offsets(group, 100, 101, 102)
    await group.commit({TP})
    assert group.consumer.commits == []  # nothing durable yet
    old_epoch = group.epoch(TP)
    group.done(TP, old_epoch, 100, 103)
    await group._revoked({TP})
    await group._assigned({TP})
    group.done(TP, old_epoch, 103, 200)  # late news from the earlier assignment
    await group.commit({TP})
    assert group.consumer.commits == [{TP: 103}]


async def test_rewind_reads_again_from_the_last_durable_offset_after_a_pause():
    group = await consumer(committed=100)
    await offsets(group, 100, 101, 102, 103)
    epoch = group.epoch(TP)
    group.done(TP, epoch, 100, 102)
    group.rewind(TP, epoch)
    assert group.consumer.seeks == [102] and group.consumer.paused == {TP}
    group.done(TP, epoch, 102, 104)  # a send of the abandoned epoch that finished late
    assert await offsets(group, 102, 103) == [102, 103]
    await group.commit({TP})
    assert group.consumer.commits == [{TP: 102}]


async def test_progress_that_does_not_continue_the_durable_offset_is_ignored():
    group = await consumer(committed=100)
    await offsets(group, 100, 101, 102, 103)
    epoch = group.epoch(TP)
    group.done(TP, epoch, 102, 104)  # the second slice finished first
    await group.commit({TP})
    assert group.consumer.commits == []
    group.done(TP, epoch, 100, 102)
    group.done(TP, epoch, 102, 104)
    await group.commit({TP})
    assert group.consumer.commits == [{TP: 104}]


async def test_a_failed_slice_sends_every_partition_of_the_fetch_back_to_be_read_again():
    from aiokafka.errors import KafkaConnectionError

    other = TopicPartition(TP.topic, 5)
    group = await consumer(committed=100)
    group.consumer.assignment = lambda: {TP, other}
    await group._assigned({other})

    async def handle(tp, records):
        raise KafkaConnectionError("broker away")

    group.handle = handle
    try:
        await group._hand_over({TP: records(100, 101), other: records(40, 41)})
    except KafkaConnectionError:
        pass
    else:
        raise AssertionError("the error must reach the loop, which pauses")
    assert group.consumer.seeks == [100, 40]  # the failed slice, and the one never handed over
