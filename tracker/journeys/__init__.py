"""Journeys: the motion model, the gps.journeys records, the trips/stops tables, the rebuild from history."""
