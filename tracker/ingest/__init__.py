"""What phones and servers send: one converter per protocol, the MQTT bridge and its passwords, OwnTracks friends."""
