"""A table's local RocksDB store as the unit tests see it: all its partitions at once."""
from tables.changelog import PartitionStore
from tracker.settings import settings


def contents(table) -> dict[bytes, bytes]:
    """Every (key, value) of the table's local store, over all partitions."""
    store = PartitionStore(table)
    return {key: value for partition in range(settings.topic_partitions) for key, value in store.items(partition)}


def clear(table) -> None:
    store = PartitionStore(table)
    for partition in range(settings.topic_partitions):
        store.write(partition, [(key, None) for key, _ in list(store.items(partition))], -1)


def put(table, partition: int, key: bytes, value: bytes) -> None:
    PartitionStore(table).write(partition, [(key, value)], -1)
