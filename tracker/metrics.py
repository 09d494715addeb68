"""The tracker's own Prometheus metrics (``GET /metrics`` also carries Faust's)."""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

POSITIONS_ACCEPTED = Counter(
    "tracker_positions_accepted", "Records on gps.positions that are valid positions")
HEARTBEATS_ACCEPTED = Counter(
    "tracker_heartbeats_accepted", "Records on gps.positions that are valid heartbeats (reports without a position)")
POSITIONS_REJECTED = Counter(
    "tracker_positions_rejected", "Records on gps.positions that are not valid positions", ["reason"])
POSITIONS_RESENT = Counter(
    "tracker_positions_resent", "Valid records re-sent under their marker id (another key or partition)")
DLQ_RECORDS = Counter(
    "tracker_dlq_records", "Records written to the dead-letter topic (acknowledged by the broker)")
LATEST_UPDATES = Counter(
    "tracker_latest_updates", "Rows of the latest table written (one per marker per batch at most)")
EVENTS_RAISED = Counter(
    "tracker_events_raised", "Events sent to gps.events (a replayed batch counts again)", ["type"])
EVENTS_ROWS = Counter(
    "tracker_events_rows_written", "Rows added to Postgres events (replayed duplicates not counted)")
JOURNEYS_RECORDS = Counter(
    "tracker_journeys_records", "Trips, stops, spikes and days to recompute sent to gps.journeys (a replayed batch counts again)",
    ["kind"])
JOURNEYS_ROWS = Counter(
    "tracker_journeys_rows_written", "Trips and stops written to Postgres, spikes flagged, days recomputed", ["kind"])
HISTORY_ROWS = Counter(
    "tracker_history_rows_written", "Rows added to Postgres positions (replayed duplicates not counted)")
PARTITION_RESTARTS = Counter(
    "tracker_latest_partition_restarts",
    "Partitions of the batches topic Faust's consumer had stopped delivering, fetched again (tracker.stream.partition_guard)")
LIVE_VIEWERS = Gauge("tracker_live_viewers", "Clients connected to /api/live on this worker")
LIVE_DROPPED = Counter("tracker_live_viewers_dropped", "Clients of /api/live disconnected for not reading fast enough")
HISTORY_BUFFERED = Gauge(
    "tracker_history_buffered_rows", "Fixes read from the batches topic and waiting for Postgres")
HISTORY_WRITE_SECONDS = Histogram(
    "tracker_history_write_seconds", "Time to commit one batch to Postgres, retries included",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
HISTORY_LAG_SECONDS = Histogram(
    "tracker_history_lag_seconds", "From a record's Kafka timestamp to its row being committed (oldest of each batch)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
WEBHOOK_ATTEMPTS = Counter(
    "tracker_webhook_attempts", "Webhook POSTs by result: delivered, retry (to be tried again), "
    "failed (the last attempt failed: the event went to gps.events.dlq)", ["result"])
WEBHOOK_LAG_SECONDS = Histogram(
    "tracker_webhook_lag_seconds", "From an event's record on gps.events to its webhook's 2xx (first attempts)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
INGEST_REQUESTS = Counter(
    "tracker_ingest_requests", "Requests to the phone endpoints", ["endpoint", "status"])
INGEST_REPORTS = Counter(
    "tracker_ingest_reports", "Reports taken by the phone endpoints: position, heartbeat (no usable coordinates: "
    "keeps the marker alive, stores no position), rejected (of a request of many: to gps.positions.dlq)",
    ["endpoint", "kind"])
OWNTRACKS_MESSAGES = Counter(
    "tracker_owntracks_messages", "OwnTracks messages posted over HTTP, by _type (other: a type not known)", ["type"])
NO_FIX = Counter(
    "tracker_positions_without_fix", "Forwarded positions a tracker sent without a GPS fix (valid: false): "
    "heartbeats, not positions", ["source"])
CLUSTER_SCANS = Counter(
    "tracker_cluster_scans", "Cluster-wide reads of latest (this worker's rows and every peer's); viewers share them")
FAUST_DROPPED = Counter(
    "tracker_faust_dropped",
    "Records faust-streaming's consumer fetched and did not deliver (tracker.stream.faust_internals): getmany "
    "(the rest of a fetch after the flow stopped or the generation changed), stale_offset (an offset before the "
    "last one delivered)", ["site"])
FAUST_DROPS_PREVENTED = Counter(
    "tracker_faust_drops_prevented",
    "Records faust-streaming would have dropped without tracker.stream.faust_internals' patches: clear_on_resume "
    "(events in a queue cleared by a resume while the flow ran), active_set (a fetch for partitions paused meanwhile)",
    ["site"])
