"""Which partitions this worker owns through Faust's group, and which it may answer for.

A worker answers reads of ``latest`` only for partitions it actively owns in the current
generation, once its tables are recovered, while it has proven lately that it is still that
member of the group (``tracker.stream.commits.AgentCommits.proven``). Otherwise another
worker may hold newer values already, or this one may not have read them all yet: the
answer would look current and be older than one already served.
"""
from __future__ import annotations


def owned_partitions(app, topic: str) -> list[int] | None:
    """The partitions of ``topic`` assigned to this worker; None while they may move (a
    rebalance or a table recovery under way, or the consumer's flow stopped)."""
    if app.rebalancing or app.in_recovery or not app.consumer.flow_active:
        return None
    return sorted(tp.partition for tp in app.consumer.assignment() if tp.topic == topic)


class Readiness:
    """The partitions of ``topic`` (and of the tables co-partitioned with it) that this
    worker may answer for now; ``commits`` proves its membership."""

    def __init__(self, app, topic: str, commits) -> None:
        self.app, self.topic, self.commits = app, topic, commits

    def partitions(self) -> frozenset[int]:
        if not self.app.tables.recovery.completed.is_set() or not self.commits.proven():
            return frozenset()
        return frozenset(owned_partitions(self.app, self.topic) or ())
