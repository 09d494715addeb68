"""Plain Kafka clients for the command line tools (the worker uses Faust's own)."""
from __future__ import annotations

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from tracker.settings import Settings


async def ensure_topic(config: Settings, name: str) -> None:
    """Create ``name`` with the configured partitions unless it exists already."""
    admin = AIOKafkaAdminClient(bootstrap_servers=config.bootstrap_servers)
    await admin.start()
    try:
        if name in await admin.list_topics():
            return
        try:
            await admin.create_topics(
                [NewTopic(name, num_partitions=config.topic_partitions, replication_factor=config.topic_replicas)]
            )
        except TopicAlreadyExistsError:
            pass
    finally:
        await admin.close()


def positions_producer(config: Settings) -> AIOKafkaProducer:
    """A producer that waits for the broker's acknowledgement and batches for throughput."""
    return AIOKafkaProducer(
        bootstrap_servers=config.bootstrap_servers,
        acks="all",
        linger_ms=10,
        max_batch_size=256 * 1024,
        compression_type=None,
    )
