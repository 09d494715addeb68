"""Every setting, read once from the environment. The table of docs/settings.md mirrors this file
(tests/unit/test_settings_doc.py checks it)."""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from typing import Mapping


def _int(env: Mapping[str, str], name: str, default: int, minimum: int | None = None) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a whole number") from None
    if minimum is not None and value < minimum:
        raise SystemExit(f"{name}={raw!r} must be at least {minimum}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a number") from None


def _str(env: Mapping[str, str], name: str, default: str) -> str:
    return env.get(name) or default


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _str(env, name, default)
    if value not in choices:
        raise SystemExit(f"{name}={value!r} must be one of {', '.join(choices)}")
    return value


def parse_networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``10.0.0.0/8, ::1`` -> the networks; ValueError names a bad one."""
    networks = []
    for part in text.replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"{part!r} is not a network (such as 10.0.0.0/8 or ::1)") from None
    return tuple(networks)


def _networks(env: Mapping[str, str], name: str) -> tuple:
    """A list of networks; empty when unset."""
    try:
        return parse_networks(env.get(name) or "")
    except ValueError as exc:
        raise SystemExit(f"{name}: {exc}") from None


@dataclass(frozen=True)
class Settings:
    app_id: str
    broker: str
    database_url: str
    topic: str
    topic_partitions: int
    topic_replicas: int
    standby_replicas: int
    worker_id: str | None
    store: str
    state_format: str
    history_batch_size: int
    history_buffer: int
    fetch_wait_ms: int
    stale_after: float
    map_refresh_seconds: float
    map_assets: str
    tile_url: str
    tile_attribution: str
    ingest_auth: bool
    ingest_max_bytes: int
    ingest_batch_max_bytes: int
    role: str
    cluster_secret: str
    cluster_secret_previous: str
    metrics_token: str
    session_hours: float
    export_concurrency: int
    export_per_user: int
    write_timeout: float
    max_connections_per_address: int
    trusted_proxies: tuple
    public_url: str
    nominatim_url: str
    events_enabled: bool
    events_topic: str
    speed_limit: float | None
    overspeed_reset_seconds: float
    low_battery: float
    offline_after: float
    webhook_max_attempts: int
    webhook_retry_seconds: float
    webhook_timeout: float
    webhook_allow_private: tuple
    journeys_enabled: bool
    journeys_topic: str
    motion_speed: float
    motion_distance: float
    stop_min_seconds: float
    trip_min_meters: float
    trip_gap_seconds: float
    max_speed: float
    history_retention_days: float | None
    topic_retention_hours: float
    live_interval: float
    live_client_buffer: int
    live_max_viewers: int
    live_max_per_account: int
    geofence_max_vertices: int
    geofences_max: int
    geofences_max_vertices: int
    traccar_topic: str | None
    mqtt_url: str
    mqtt_password: str | None
    mqtt_password_file: str | None
    mqtt_pid_file: str | None
    mqtt_share_group: str
    mqtt_session_expiry: int
    mqtt_friends: bool

    @property
    def runs_stages(self) -> bool:
        """Whether this worker runs the pipeline (``TRACKER_ROLE=all``), or only the HTTP
        ingestion and the API (``ingest``)."""
        return self.role == "all"

    @property
    def dlq_topic(self) -> str:
        return f"{self.topic}.dlq"

    @property
    def events_dlq_topic(self) -> str:
        return f"{self.events_topic}.dlq"

    @property
    def batches_topic(self) -> str:
        """Internal to the app, like Faust's changelogs: two apps reading one input never share it."""
        return f"{self.app_id}-positions-batches"

    @property
    def bootstrap_servers(self) -> str:
        """The broker list without Faust's ``kafka://`` scheme, for plain Kafka clients."""
        return ",".join(url.split("://", 1)[-1] for url in self.broker.split(";"))

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Settings":
        return cls(
            app_id=_str(env, "TRACKER_APP_ID", "tracker"),
            broker=_str(env, "TRACKER_BROKER", "kafka://127.0.0.1:9092"),
            database_url=_str(
                env, "TRACKER_DATABASE_URL", "postgresql://tracker@127.0.0.1:5432/tracker"
            ),
            topic=_str(env, "TRACKER_TOPIC", "gps.positions"),
            topic_partitions=_int(env, "TRACKER_TOPIC_PARTITIONS", 8),
            topic_replicas=_int(env, "TRACKER_TOPIC_REPLICAS", 1),
            standby_replicas=_int(env, "TRACKER_STANDBY_REPLICAS", 0),
            worker_id=env.get("TRACKER_WORKER_ID") or None,
            store=_str(env, "TRACKER_STORE", "rocksdb://"),
            state_format=_choice(env, "TRACKER_STATE_FORMAT", "packed", ("packed", "json")),
            history_batch_size=_int(env, "TRACKER_HISTORY_BATCH_SIZE", 20_000),
            history_buffer=_int(env, "TRACKER_HISTORY_BUFFER", 200_000),
            fetch_wait_ms=_int(env, "TRACKER_FETCH_WAIT_MS", 1500, minimum=1),
            stale_after=_float(env, "TRACKER_STALE_AFTER", 300.0),
            map_refresh_seconds=_float(env, "TRACKER_MAP_REFRESH_SECONDS", 3.0),
            map_assets=_choice(env, "TRACKER_MAP_ASSETS", "local", ("local", "cdn")),
            tile_url=_str(env, "TRACKER_TILE_URL", "https://tile.openstreetmap.org/{z}/{x}/{y}.png"),
            tile_attribution=_str(
                env, "TRACKER_TILE_ATTRIBUTION",
                '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
            ),
            ingest_auth=_choice(env, "TRACKER_INGEST_AUTH", "on", ("on", "off")) == "on",
            ingest_max_bytes=_int(env, "TRACKER_INGEST_MAX_BYTES", 65536),
            ingest_batch_max_bytes=_int(env, "TRACKER_INGEST_BATCH_MAX_BYTES", 4 * 1024 * 1024),
            role=_choice(env, "TRACKER_ROLE", "all", ("all", "ingest")),
            cluster_secret=_str(env, "TRACKER_CLUSTER_SECRET", ""),
            cluster_secret_previous=_str(env, "TRACKER_CLUSTER_SECRET_PREVIOUS", ""),
            metrics_token=_str(env, "TRACKER_METRICS_TOKEN", ""),
            session_hours=_float(env, "TRACKER_SESSION_HOURS", 12.0),
            export_concurrency=_int(env, "TRACKER_EXPORT_CONCURRENCY", 2),
            export_per_user=_int(env, "TRACKER_EXPORT_PER_USER", 1),
            write_timeout=_float(env, "TRACKER_WRITE_TIMEOUT", 30.0),
            max_connections_per_address=_int(env, "TRACKER_MAX_CONNECTIONS_PER_ADDRESS", 128),
            trusted_proxies=_networks(env, "TRACKER_TRUSTED_PROXIES"),
            public_url=_str(env, "TRACKER_PUBLIC_URL", "").rstrip("/"),
            nominatim_url=_str(env, "TRACKER_NOMINATIM_URL", "").rstrip("/"),
            events_enabled=_choice(env, "TRACKER_EVENTS", "on", ("on", "off")) == "on",
            events_topic=_str(env, "TRACKER_EVENTS_TOPIC", "gps.events"),
            speed_limit=_float(env, "TRACKER_SPEED_LIMIT", 0.0) or None,
            overspeed_reset_seconds=_float(env, "TRACKER_OVERSPEED_RESET_SECONDS", 60.0),
            low_battery=_float(env, "TRACKER_LOW_BATTERY", 20.0),
            offline_after=_float(env, "TRACKER_OFFLINE_AFTER", 600.0),
            webhook_max_attempts=_int(env, "TRACKER_WEBHOOK_MAX_ATTEMPTS", 8),
            webhook_retry_seconds=_float(env, "TRACKER_WEBHOOK_RETRY_SECONDS", 1.0),
            webhook_timeout=_float(env, "TRACKER_WEBHOOK_TIMEOUT", 5.0),
            webhook_allow_private=_networks(env, "TRACKER_WEBHOOK_ALLOW_PRIVATE"),
            journeys_enabled=_choice(env, "TRACKER_JOURNEYS", "on", ("on", "off")) == "on",
            journeys_topic=_str(env, "TRACKER_JOURNEYS_TOPIC", "gps.journeys"),
            motion_speed=_float(env, "TRACKER_MOTION_SPEED", 1.5),
            motion_distance=_float(env, "TRACKER_MOTION_DISTANCE", 100.0),
            stop_min_seconds=_float(env, "TRACKER_STOP_MIN_SECONDS", 300.0),
            trip_min_meters=_float(env, "TRACKER_TRIP_MIN_METERS", 500.0),
            trip_gap_seconds=_float(env, "TRACKER_TRIP_GAP_SECONDS", 900.0),
            max_speed=_float(env, "TRACKER_MAX_SPEED", 100.0),
            history_retention_days=_float(env, "TRACKER_HISTORY_RETENTION_DAYS", 0.0) or None,
            topic_retention_hours=_float(env, "TRACKER_TOPIC_RETENTION_HOURS", 168.0),
            live_interval=_float(env, "TRACKER_LIVE_INTERVAL", 1.0),
            live_client_buffer=_int(env, "TRACKER_LIVE_CLIENT_BUFFER", 4 * 1024 * 1024),
            live_max_viewers=_int(env, "TRACKER_LIVE_MAX_VIEWERS", 1000),
            live_max_per_account=_int(env, "TRACKER_LIVE_MAX_PER_ACCOUNT", 10),
            geofence_max_vertices=_int(env, "TRACKER_GEOFENCE_MAX_VERTICES", 10_000),
            geofences_max=_int(env, "TRACKER_GEOFENCES_MAX", 1000),
            geofences_max_vertices=_int(env, "TRACKER_GEOFENCES_MAX_VERTICES", 100_000),
            traccar_topic=env.get("TRACKER_TRACCAR_TOPIC") or None,
            mqtt_url=_str(env, "TRACKER_MQTT_URL", "mqtt://tracker-bridge@127.0.0.1:1883"),
            mqtt_password=env.get("TRACKER_MQTT_PASSWORD") or None,
            mqtt_password_file=env.get("TRACKER_MQTT_PASSWORD_FILE") or None,
            mqtt_pid_file=env.get("TRACKER_MQTT_PID_FILE") or None,
            mqtt_share_group=_str(env, "TRACKER_MQTT_SHARE_GROUP", "tracker"),
            mqtt_session_expiry=_int(env, "TRACKER_MQTT_SESSION_EXPIRY", 7 * 24 * 3600),
            mqtt_friends=_choice(env, "TRACKER_MQTT_FRIENDS", "off", ("on", "off")) == "on",
        )


settings = Settings.from_env()
