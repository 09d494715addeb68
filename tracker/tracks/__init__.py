"""Recorded tracks: the file readers, import, replay, simulation and paced sending."""
