"""Where a marker's data stays in Kafka after ``tracker history erase``, and until when at
the latest, from each topic's settings as the broker reports them.

Kafka cannot delete one key's records: they go with their segment. A record of a topic that
deletes by time is gone at most ``segment.ms`` (the segment it is in rolls) plus
``retention.ms`` (the segment is then deleted) after it was written. A compacted changelog
keeps a key's older values behind its tombstone until the log cleaner compacts their
segment: at most ``segment.ms`` plus ``max.compaction.lag.ms`` when that is set, with no
bound otherwise (Kafka's default).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from tracker.settings import Settings

#: Kafka's "no limit" for a duration setting.
NO_LIMIT_MS = 2 ** 62


@dataclass(frozen=True)
class Copy:
    topic: str
    holds: str
    until: datetime | None  # None: no bound
    why: str


def topics(config: Settings) -> list[tuple[str, str]]:
    """(topic, what of a marker it holds), for every topic a marker's data passes through."""
    found = [(config.topic, "its raw fixes"), (config.dlq_topic, "its refused fixes"),
             (config.batches_topic, "its fixes, in batches"), (config.events_topic, "its events, with positions"),
             (config.events_dlq_topic, "its events no webhook took"), (config.journeys_topic, "its trips and stops")]
    if config.traccar_topic:
        found.append((config.traccar_topic, "its fixes as the Traccar server sent them"))
    found += [(f"{config.app_id}-latest-changelog", "its newest fixes (older values behind the tombstone)"),
              (f"{config.app_id}-events-state-changelog", "its events state, with its last fixes"),
              (f"{config.app_id}-journeys-state-changelog", "its motion state")]
    return found


def bound(settings: dict[str, str], now: datetime) -> tuple[datetime | None, str]:
    """Until when a record written at ``now`` may stay, and why, from a topic's settings."""
    policy = settings.get("cleanup.policy", "delete")
    segment = int(settings.get("segment.ms") or 604_800_000)
    limits = []
    if "delete" in policy:
        retention = int(settings.get("retention.ms") or -1)
        if 0 <= retention < NO_LIMIT_MS:
            limits.append((now + timedelta(milliseconds=segment + retention),
                           f"segment.ms {_hours(segment)} + retention.ms {_hours(retention)}"))
    if "compact" in policy:
        lag = int(settings.get("max.compaction.lag.ms") or NO_LIMIT_MS)
        if lag < NO_LIMIT_MS:
            limits.append((now + timedelta(milliseconds=segment + lag),
                           f"compacted: segment.ms {_hours(segment)} + max.compaction.lag.ms {_hours(lag)}"))
    if not limits:
        if "compact" in policy:
            return None, "compacted, with no max.compaction.lag.ms: until the log cleaner gets to it"
        return None, "retention.ms -1: kept forever"
    return min(limits)


def _hours(ms: int) -> str:
    return f"{ms / 3_600_000:g} h"


async def remaining(config: Settings, now: datetime) -> list[Copy]:
    """The topics that exist, each with until when a marker's records may stay in it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=config.bootstrap_servers)
    await admin.start()
    try:
        wanted = dict(topics(config))
        existing = {topic["topic"] for topic in await admin.describe_topics(list(wanted)) if topic["partitions"]}
        answers = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)
                                                for name in wanted if name in existing]) if existing else []
    finally:
        await admin.close()
    settings = {}
    for answer in answers:
        for code, _, _, name, entries in answer.resources:
            if not code:
                settings[name] = {entry[0]: entry[1] for entry in entries if entry[1] is not None}
    copies = []
    for name, holds in wanted.items():
        if name in settings:
            until, why = bound(settings[name], now)
            copies.append(Copy(name, holds, until, why))
    return copies
