"""Positions: the model and its one validation, the intake's verdict, the history store, the live hub."""
