"""Geofences: the model and its index, the table, every worker's cached copy."""
