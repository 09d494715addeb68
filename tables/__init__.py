"""Faust tables (RocksDB-backed, changelogged to Kafka)."""
