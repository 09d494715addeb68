"""Faust agents, one job each."""
