"""Events: the model (enter, exit, overspeed, battery, online/offline) and the events table."""
