"""Friends over MQTT (``tracker.ingest.mqtt_friends``), when ``TRACKER_MQTT_FRIENDS=on``: once a
second each worker publishes the friends of the phones whose marker ids fall in its
partitions, from the newest rows its live hub holds; a phone it takes over has its retained
friends read first, and those no longer permitted cleared. What each phone may see is read
from Postgres every ``FRIENDS_TTL`` seconds; while Postgres is down, the last answer stands."""
from __future__ import annotations

import asyncio
import logging
import time

from tracker.app import app
from tracker.storage.pool import DATABASE_ERRORS
from tracker.ingest.friends import FRIENDS_TTL, devices_access
from tracker.positions.intake import partition_of
from tracker.ingest.mqtt_friends import FriendsPublisher, MqttPublisher
from tracker.accounts.permissions import Access
from tracker.resources import database
from tracker.settings import settings
from tracker.stream.ownership import owned_partitions
from tracker.resources import live_hub as hub

log = logging.getLogger(__name__)

PUBLISH_SECONDS = 1.0


class WorkerFriends:
    def __init__(self) -> None:
        self.publisher: FriendsPublisher | None = None
        self.connection: MqttPublisher | None = None
        self.phones: dict[str, Access] = {}
        self.read_at = float("-inf")

    async def tick(self) -> None:
        owned = owned_partitions(app, settings.batches_topic)
        if owned is None or not hub.loaded.is_set():
            return
        if time.monotonic() - self.read_at >= FRIENDS_TTL:
            try:
                async with database.connection() as conn:
                    self.phones = await devices_access(conn)
                self.read_at = time.monotonic()
            except DATABASE_ERRORS as exc:
                log.warning("friends: cannot read the groups (%r); publishing from the last answer", exc)
        if self.publisher is None:
            client_id = f"tracker-friends-{settings.worker_id or app.conf.web_port}"
            self.connection = MqttPublisher(settings.mqtt_url, settings.mqtt_password, client_id)
            self.publisher = FriendsPublisher(self.connection.publish)
        mine = set(owned)
        phones = {user: access for user, access in self.phones.items()
                  if partition_of(user.encode(), settings.topic_partitions) in mine}
        taken = self.publisher.new_phones(phones)
        retained = None
        if taken:  # what an earlier owner left retained for them, before publishing anew
            try:
                retained = await asyncio.get_running_loop().run_in_executor(
                    None, self.connection.retained_friends, taken)
            except ConnectionError as exc:
                log.warning("friends: cannot read the friends retained for %d phones (%r); next time", len(taken), exc)
                return
        removed = [user for user in self.publisher.published if user not in self.phones]  # no longer devices
        self.publisher.update(phones, hub.positions, retained, removed)


if settings.mqtt_friends:
    worker_friends = WorkerFriends()

    @app.timer(PUBLISH_SECONDS)
    async def publish_friends() -> None:
        try:
            await worker_friends.tick()
        except Exception:  # noqa: BLE001 - tried again at the next tick
            log.exception("friends: cannot publish")
