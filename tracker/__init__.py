"""Real-time GPS tracker: Kafka in, Faust in the middle, a map and an API out."""
