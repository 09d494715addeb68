"""Postgres: the connection pool, the schema assembled from each feature's tables, monthly partitions."""
