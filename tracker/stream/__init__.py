"""Kafka: clients, topics, the batch record format, the worker's own consumer groups and their offsets, dead letters, the Postgres sink base."""
