"""The ``latest`` agent's own commits: what it processed, in the generation it read it, and
the lease that lets the worker answer for its partitions."""
from types import SimpleNamespace

import pytest
from faust.types import TP

from tracker.stream import commits as commits_module
from tracker.stream.commits import LEASE_SECONDS, STALL_SECONDS, AgentCommits

TOPIC = "batches"


class Member:
    """Faust's app and group member as the commits see them, and the broker's answers."""

    def __init__(self) -> None:
        self.now = 100.0
        self.app = SimpleNamespace(consumer_generation_id=7, rebalancing=False, in_recovery=False,
                                   consumer=SimpleNamespace(assignment=lambda: self.assignment))
        self.assignment = {TP(TOPIC, 0), TP(TOPIC, 3), TP("other", 1)}
        self.group = {0: 40, 3: 0}
        self.sent: list[tuple[dict, int]] = []
        self.accept = True

    async def committed(self):
        return dict(self.group)

    async def ends(self):
        return {0: 50, 3: 0}

    async def commit(self, consumer, offsets, generation, timeout):
        self.sent.append(({tp.partition: offset for tp, offset in offsets.items()}, generation))
        return self.accept


@pytest.fixture()
def member(monkeypatch):
    member = Member()
    monkeypatch.setattr(commits_module.faust_internals, "commit", member.commit)
    return member


def agent_commits(member: Member) -> AgentCommits:
    return AgentCommits(member.app, TOPIC, member.committed, member.ends, clock=lambda: member.now)


async def test_what_the_agent_processed_is_committed_as_the_member_of_its_generation(member):
    commits = agent_commits(member)
    commits.processed(7, {0: 45})
    assert await commits.commit()
    assert member.sent == [({0: 45, 3: 0}, 7)]  # partition 3: the group's commit as it stands


async def test_work_read_in_a_generation_that_is_over_is_not_committed(member):
    commits = agent_commits(member)
    commits.processed(7, {0: 45})
    member.app.consumer_generation_id = 8  # a rebalance gave the partitions out again
    commits.processed(7, {0: 48})
    assert await commits.commit()
    assert member.sent == [({0: 40, 3: 0}, 8)]


async def test_nothing_is_sent_during_a_rebalance_but_what_is_revoked_is_committed_first(member):
    commits = agent_commits(member)
    commits.processed(7, {0: 47, 3: 2})
    await commits.commit()
    member.app.rebalancing = True
    assert not await commits.commit()
    commits.processed(7, {0: 49})
    await commits.on_revoked({TP(TOPIC, 0), TP("other", 1)})
    assert member.sent[-1] == ({0: 49}, 7)
    assert 0 not in commits.next_offset and commits.next_offset == {3: 2}
    assert not commits.proven()


async def test_an_accepted_commit_proves_ownership_for_the_lease_only(member):
    commits = agent_commits(member)
    assert not commits.proven()
    await commits.commit()
    assert commits.proven()
    member.now += LEASE_SECONDS + 0.1
    commits._ticked_at = member.now
    assert not commits.proven()
    member.accept = False
    assert not await commits.commit()
    assert not commits.proven()
    member.accept = True
    assert await commits.commit() and commits.proven()


async def test_a_worker_that_stood_still_answers_again_only_after_a_new_commit(member):
    """A worker stopped (SIGSTOP) past the session timeout may have lost its partitions."""
    commits = agent_commits(member)
    await commits.commit()
    member.now += STALL_SECONDS + 0.5  # no tick of the event loop meanwhile
    assert not commits.proven()
    commits._ticked_at = member.now
    assert not commits.proven(), "a lease from before the stall proves nothing after it"
    assert await commits.commit() and commits.proven()


async def test_a_revocation_waits_for_the_batch_in_flight_before_it_commits(member):
    import asyncio

    commits = agent_commits(member)
    commits.working()
    revoking = asyncio.ensure_future(commits.on_revoked({TP(TOPIC, 0)}))
    await asyncio.sleep(0.05)
    assert not revoking.done() and member.sent == []
    commits.processed(7, {0: 44})
    commits.finished()
    await revoking
    assert member.sent == [({0: 44}, 7)]
