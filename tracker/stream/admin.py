"""Creating the topics and reading their partition counts, with the admin client."""
from __future__ import annotations

import asyncio
import logging
from typing import Mapping

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from tracker.settings import Settings

log = logging.getLogger(__name__)


async def ensure_topic(config: Settings, name: str) -> None:
    """Create ``name`` with the configured partitions unless it exists already."""
    await ensure_topics(config, {name: {}})


async def ensure_topics(config: Settings, topics: Mapping[str, Mapping[str, str]]) -> dict[str, int]:
    """Create the missing topics, and give each the ``retention.ms`` it is declared with, if
    any, also when it exists already; return every topic's partition count. (It asks about
    these topics only: a listing of every topic on a busy cluster costs seconds to decode.)"""
    admin = AIOKafkaAdminClient(bootstrap_servers=config.bootstrap_servers)
    await admin.start()
    try:
        counts = await _partition_counts(admin, topics)
        missing = [
            NewTopic(name, num_partitions=config.topic_partitions, replication_factor=config.topic_replicas,
                     topic_configs=dict(topic_config))
            for name, topic_config in topics.items() if not counts.get(name)
        ]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
        # A topic just created (by this call or another worker's) may not show its
        # partitions in the metadata yet.
        for _ in range(50):
            counts = await _partition_counts(admin, topics)
            if all(counts.get(name) for name in topics):
                break
            await asyncio.sleep(0.2)
        # Also for the topics just "created": describing a missing topic may have made the
        # broker create it with its defaults first (auto.create.topics.enable).
        await _set_retention(admin, {name: topic_config for name, topic_config in topics.items()
                                     if "retention.ms" in topic_config})
        return counts
    finally:
        await admin.close()


#: ``config_source`` of a topic's own override in a DescribeConfigs answer (version 1 and later).
_TOPIC_OVERRIDE = 1


async def _set_retention(admin: AIOKafkaAdminClient, topics: Mapping[str, Mapping[str, str]]) -> None:
    """Set each topic's ``retention.ms`` to the declared one where it differs. aiokafka has
    no IncrementalAlterConfigs, and AlterConfigs replaces all of a topic's overrides: the
    request carries the topic's current overrides and its declared config (cleanup.policy
    and the rest) with the new retention. A failure is logged: the topic keeps its retention."""
    if not topics:
        return
    try:
        answers = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name) for name in topics])
        changes = []
        for answer in answers:
            for code, message, _, name, entries in answer.resources:
                if code or name not in topics:
                    log.warning("topic %s: cannot read its config (error %s: %s)", name, code, message)
                    continue
                current = {entry[0]: entry[1] for entry in entries}
                wanted = topics[name]["retention.ms"]
                if current.get("retention.ms") == wanted:
                    continue
                overrides = {entry[0]: entry[1] for entry in entries if answer.API_VERSION >= 1
                             and entry[3] == _TOPIC_OVERRIDE and entry[1] is not None}
                changes.append(ConfigResource(ConfigResourceType.TOPIC, name, configs={**overrides, **topics[name]}))
                log.info("topic %s: retention.ms %s -> %s", name, current.get("retention.ms"), wanted)
        if changes:
            for answer in await admin.alter_configs(changes):
                for code, message, _, name in answer.resources:
                    if code:
                        log.warning("topic %s: cannot set its retention (error %s: %s)", name, code, message)
    except Exception as exc:  # noqa: BLE001 - the topics work as they are: not a reason to stop
        log.warning("cannot set the topics' retention: %r", exc)


async def existing_topics(config: Settings, names) -> dict[str, int]:
    """The partition count of each of ``names`` that exists."""
    admin = AIOKafkaAdminClient(bootstrap_servers=config.bootstrap_servers)
    await admin.start()
    try:
        return {name: count for name, count in (await _partition_counts(admin, names)).items() if count}
    finally:
        await admin.close()


async def _partition_counts(admin: AIOKafkaAdminClient, topics) -> dict[str, int]:
    return {topic["topic"]: len(topic["partitions"]) for topic in await admin.describe_topics(list(topics))}
