"""Which partitions of a topic this worker consumes through Faust's group, as far as it knows."""
from __future__ import annotations


def owned_partitions(app, topic: str) -> list[int] | None:
    """The partitions of ``topic`` assigned to this worker; None while they may move (a
    rebalance or a table recovery under way, or the consumer's flow stopped)."""
    if app.rebalancing or app.in_recovery or not app.consumer.flow_active:
        return None
    return sorted(tp.partition for tp in app.consumer.assignment() if tp.topic == topic)
