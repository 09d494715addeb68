"""Webhooks: the model, the table, the delivery outbox and each webhook's sender."""
