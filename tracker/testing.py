"""Real workers on the real broker and database, each test module in its own namespace.

A ``Stack`` has its own Faust app id, its own topics and its own Postgres database, so
modules never see each other's data. ``Worker`` runs ``faust -A tracker.app worker`` as a
separate process that a test can stop, or kill with SIGKILL.
"""
from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import orjson
import psycopg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from tracker.stream.admin import ensure_topic
from tracker.stream.producer import positions_producer
from tracker.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
FAUST = str(Path(sys.executable).with_name("faust"))


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``condition`` until it returns something truthy; fail saying ``what`` never happened."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Stack:
    name: str
    env: dict[str, str]
    tmp: Path
    workers: list["Worker"] = field(default_factory=list)
    #: An API token of the stack's admin (user ``admin``); ``Worker.get`` sends it unless told otherwise.
    admin_token: str = ""
    admin_password: str = ""

    def sign_in(self, page, worker: "Worker", path: str = "/map", user: str = "admin",
                password: str | None = None) -> None:
        """Sign a Playwright ``page`` in through the login form, landing on ``path``."""
        page.goto(f"{worker.url}/login?next={urllib.parse.quote(path, safe='')}")
        page.fill("#user", user)
        page.fill("#password", password or self.admin_password)
        with page.expect_navigation():
            page.click("button[type=submit]")

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    @classmethod
    def create(cls, tmp: Path, topic: str | None = None) -> "Stack":
        """A new namespace; ``topic``: read an input topic that exists already (another
        stack's), instead of a new one."""
        broker = os.environ.get("TRACKER_BROKER")
        admin_url = os.environ.get("TRACKER_DATABASE_URL")
        if not broker or not admin_url:
            raise RuntimeError(
                "integration tests need the real services: run `make test`, or "
                '`scripts/services start && eval "$(scripts/services env)"` first'
            )
        name = "it" + uuid.uuid4().hex[:10]
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        database_url = psycopg.conninfo.make_conninfo(admin_url, dbname=name)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")},
            "TRACKER_BROKER": broker,
            "TRACKER_DATABASE_URL": database_url,
            "TRACKER_APP_ID": name,
            "TRACKER_TOPIC": topic or f"{name}.positions",
            "TRACKER_EVENTS_TOPIC": f"{name}.events",
            "TRACKER_JOURNEYS_TOPIC": f"{name}.journeys",
            "TRACKER_STORE": "rocksdb://",
            "TRACKER_TOPIC_PARTITIONS": "8",
            "TRACKER_CLUSTER_SECRET": secrets.token_hex(16),
            # The tests' webhook receivers listen on loopback.
            "TRACKER_WEBHOOK_ALLOW_PRIVATE": "127.0.0.0/8",
            "PYTHONUNBUFFERED": "1",
        }
        if os.environ.get("TRACKER_TOPIC_REPLICAS"):  # on several brokers (scripts/services cluster-env)
            env["TRACKER_TOPIC_REPLICAS"] = os.environ["TRACKER_TOPIC_REPLICAS"]
        stack = cls(name=name, env=env, tmp=tmp)
        run_sync(ensure_topic(stack.settings, stack.settings.topic))
        stack.admin_password = secrets.token_urlsafe(12)
        stack.admin_token = stack.user("admin", "admin", password=stack.admin_password)
        return stack

    def user(self, name: str, role: str = "viewer", grants: Iterable[str] = (),
             password: str | None = None) -> str:
        """A new user with an API token (returned); a viewer sees ``grants`` (marker ids,
        or prefixes ending in ``*``) through a group of its own."""
        from tracker.accounts import store as accounts
        from tracker.storage.schema import create_schema
        from tracker.accounts.permissions import parse_grant

        async def create() -> str:
            async with await psycopg.AsyncConnection.connect(self.settings.database_url, autocommit=True) as conn:
                await create_schema(conn)
                await accounts.add_user(conn, name, role, password or secrets.token_urlsafe(12))
                grants_list = [parse_grant(text) for text in grants]
                if grants_list:
                    await accounts.add_group(conn, f"{name}-markers")
                    await accounts.grant(conn, f"{name}-markers", grants_list)
                    await accounts.add_members(conn, f"{name}-markers", [name])
                return (await accounts.add_token(conn, name, None))[1]

        return run_sync(create())

    def worker(self, **env: str) -> "Worker":
        """A new worker of this stack; ``env`` overrides settings for it alone."""
        worker = Worker(self, len(self.workers) + 1, env)
        self.workers.append(worker)
        return worker

    def close(self) -> None:
        """Stop the workers, then delete the stack's topics and database: a broker kept for
        a day of test runs would otherwise hold tens of thousands of partitions (and run
        out of open files)."""
        for worker in self.workers:
            worker.stop()
        try:
            run_sync(_delete_topics(self.settings, self.name))
            admin_url = os.environ.get("TRACKER_DATABASE_URL")
            if admin_url:
                with psycopg.connect(admin_url, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        except Exception as exc:  # noqa: BLE001 - cleaning up must never fail a test
            print(f"stack {self.name}: cleaning up failed: {exc!r}", file=sys.stderr)

    # --- Postgres -------------------------------------------------------------------
    def query(self, sql: str, *params: Any) -> list[tuple]:
        with psycopg.connect(self.settings.database_url, autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()

    def add_geofences(self, features: Iterable[dict]) -> list[int]:
        """Store geofences (GeoJSON Features) directly, as ``tracker geofences import`` does."""
        from tracker.geofences import store as geofence_store
        from tracker.storage.schema import create_schema
        from tracker.geofences.model import parse_feature

        async def add() -> list[int]:
            async with await psycopg.AsyncConnection.connect(self.settings.database_url, autocommit=True) as conn:
                await create_schema(conn)
                return await geofence_store.add_many(conn, [parse_feature(f) for f in features])

        return run_sync(add())

    def ensure_partitions(self, table: str, *times) -> None:
        """Create the month partitions of ``table`` that rows at ``times`` (aware datetimes)
        need (``tracker.storage.months``), for a test that inserts rows itself."""
        from tracker.storage.schema import create_schema
        from tracker.storage.months import ensure_partitions

        async def ensure() -> None:
            async with await psycopg.AsyncConnection.connect(self.settings.database_url, autocommit=True) as conn:
                await create_schema(conn)
                await ensure_partitions(conn, table, times)

        run_sync(ensure())

    def history_count(self) -> int:
        try:
            return self.query("SELECT count(*) FROM positions")[0][0]
        except psycopg.errors.UndefinedTable:
            return 0

    # --- Kafka ------------------------------------------------------------------------
    def send(self, records: Iterable[tuple[bytes, bytes]]) -> int:
        return run_sync(_send(self.settings, list(records)))

    def end_offsets(self, topic: str) -> dict[int, int]:
        """partition -> the offset the next record of ``topic`` will get."""
        return run_sync(_end_offsets(self.settings, topic))

    def committed(self, group_suffix: str, topic: str) -> dict[int, int]:
        """partition -> the offset a consumer group of this stack (``""`` for Faust's own,
        ``"-intake"``, ``"-history"``) has committed for ``topic``."""
        partitions = [TopicPartition(topic, p) for p in range(self.settings.topic_partitions)]
        offsets = run_sync(committed_offsets(self.settings, self.name + group_suffix, partitions))
        return {tp.partition: offset for tp, offset in offsets.items()}

    def caught_up(self, group_suffix: str, topic: str, ends: dict[int, int] | None = None) -> bool:
        """Whether a consumer group of this stack has committed all of ``topic`` (or, with
        ``ends``, everything before those offsets)."""
        committed = self.committed(group_suffix, topic)
        ends = self.end_offsets(topic) if ends is None else ends
        return all(committed.get(p, 0) >= end for p, end in ends.items())

    def stages(self, sinks: bool = False) -> dict[str, tuple[str, str]]:
        """stage -> (its consumer group's suffix, the topic it reads): the intake, ``latest``
        and the history; with ``sinks``, also the events sink, the notifier and the journeys
        sink (their topics exist once the workers have started)."""
        config = self.settings
        stages = {"intake": ("-intake", config.topic), "latest": ("", config.batches_topic),
                  "history": ("-history", config.batches_topic)}
        if sinks:
            stages.update({"events": ("-events", config.events_topic), "notifier": ("-notifier", config.events_topic),
                           "journeys": ("-journeys", config.journeys_topic)})
        return stages

    def pipeline_behind(self, sinks: bool = False) -> dict[str, dict[int, tuple[int, int]]]:
        """The pipeline's stages that have not committed all they read: stage -> partition ->
        (committed, end). Empty when the intake, ``latest`` and the history (with ``sinks``,
        every consumer group of the stack) are caught up."""
        behind = {}
        for stage, (group_suffix, topic) in self.stages(sinks).items():
            committed = self.committed(group_suffix, topic)
            late = {p: (committed.get(p, 0), end) for p, end in self.end_offsets(topic).items()
                    if committed.get(p, 0) < end}
            if late:
                behind[stage] = late
        return behind

    def wait_pipeline_committed(self, timeout: float, sinks: bool = False) -> None:
        """Wait until every stage has committed all it read; fail naming the partitions behind."""
        deadline = time.monotonic() + timeout
        while behind := self.pipeline_behind(sinks):
            if time.monotonic() > deadline:
                raise AssertionError(f"after {timeout:.0f} s, stages behind (partition: (committed, end)): {behind}")
            time.sleep(0.2)

    @property
    def changelog_topic(self) -> str:
        return f"{self.name}-latest-changelog"

    def records(self, topic: str) -> list[Any]:
        """Every record of ``topic`` up to its end as of now (``ConsumerRecord``s), each
        partition's in offset order."""
        return run_sync(_records(self.settings, topic))

    def last_values(self, topic: str) -> dict[str, Any]:
        """Each key's last value in ``topic`` (a changelog), decoded from JSON; keys whose
        last record is a tombstone left out."""
        last: dict[str, Any] = {}
        for record in self.records(topic):
            if record.value is None:
                last.pop(record.key.decode(), None)
            else:
                last[record.key.decode()] = orjson.loads(record.value)
        return last

    def read_topic(self, topic: str, expect: int, timeout: float = 30.0) -> list[Any]:
        return run_sync(_read(self.settings, topic, expect, timeout))


def settle_latest(worker: "Worker", expected: Mapping[str, tuple[float, float]],
                  timeout: float = 60.0) -> dict[str, tuple[float, float]]:
    """Every marker's (lat, lon) in ``latest`` as ``worker`` answers for the cluster, once it
    equals ``expected`` or ``timeout`` has passed. ``latest`` and the history are separate
    stages, so a complete history does not mean ``latest`` has caught up to the same moment;
    the caller asserts on what this returns."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = worker.get("/api/markers", timeout=60)
        shown = {p["marker_id"]: (p["lat"], p["lon"]) for p in body} if status == 200 else {}
        if all(shown.get(marker) == position for marker, position in expected.items()) \
                or time.monotonic() > deadline:
            return shown
        time.sleep(0.5)


def partition_owners(workers: Iterable["Worker"], partitions: int = 8) -> dict[int, list[int]] | None:
    """The partitions each worker owns (by index), as their ``/health`` says, once every one of
    ``partitions`` has exactly one owner and every worker owns some; None until then."""
    workers = list(workers)
    health = [w.health() for w in workers]
    if not all(health):
        return None
    owned = {w.index: h["partitions"] for w, h in zip(workers, health)}
    every = sorted(p for partitions_of in owned.values() for p in partitions_of)
    return owned if every == list(range(partitions)) and all(owned.values()) else None


async def serve_http(app, shutdown_timeout: float = 0.1):
    """Serve an aiohttp ``app`` on a free loopback port: (its runner, to ``cleanup()``; its URL)."""
    from aiohttp import web

    runner = web.AppRunner(app, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


def run_sync(coroutine):
    """Run a coroutine to completion on a thread of its own, so that it works even where the
    calling thread already runs an event loop (Playwright's sync API does)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _send(settings: Settings, records: Iterable[tuple[bytes, bytes]]) -> int:
    producer = positions_producer(settings)
    await producer.start()
    sent, window = 0, []
    try:
        for key, value in records:
            window.append(await producer.send(settings.topic, key=key, value=value))
            if len(window) >= 50_000:
                await asyncio.gather(*window)
                sent, window = sent + len(window), []
        await asyncio.gather(*window)
    finally:
        await producer.stop()
    return sent + len(window)


async def committed_offsets(config: Settings, group_id: str, partitions: Iterable[TopicPartition],
                            admin: AIOKafkaAdminClient | None = None) -> dict[TopicPartition, int]:
    """The offsets ``group_id`` has committed for ``partitions`` (absent: none committed),
    asked through ``admin`` (a started client) or a client of its own."""
    own = admin is None
    if own:
        admin = AIOKafkaAdminClient(bootstrap_servers=config.bootstrap_servers)
        await admin.start()
    try:
        answer = await admin.list_consumer_group_offsets(group_id, partitions=list(partitions))
    finally:
        if own:
            await admin.close()
    return {tp: meta.offset for tp, meta in answer.items() if meta.offset >= 0}


async def _delete_topics(settings: Settings, prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


async def _end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
        return {tp.partition: offset for tp, offset in (await consumer.end_offsets(partitions)).items()}
    finally:
        await consumer.stop()


async def _records(settings: Settings, topic: str) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        found: dict[int, list] = {p: [] for p in range(settings.topic_partitions)}
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                found[tp.partition].extend(record for record in records if record.offset < ends[tp])
        return [record for p in sorted(found) for record in found[p]]
    finally:
        await consumer.stop()


async def _read(settings: Settings, topic: str, expect: int, timeout: float) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.bootstrap_servers, auto_offset_reset="earliest",
        enable_auto_commit=False, group_id=None,
    )
    await consumer.start()
    values: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        while len(values) < expect and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for messages in batches.values():
                values.extend(orjson.loads(message.value) for message in messages)
        # Linger briefly so that a surplus (a duplicate) would be seen too.
        for messages in (await consumer.getmany(timeout_ms=1000)).values():
            values.extend(orjson.loads(message.value) for message in messages)
    finally:
        await consumer.stop()
    return values


def _body(content_type: str, raw: bytes) -> Any:
    return json.loads(raw) if "json" in content_type else raw.decode(errors="replace")


ADMIN: Any = object()  # "the stack admin's token", the default of ``Worker.get``


class _KeepRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_NO_REDIRECTS = urllib.request.build_opener(_KeepRedirects)


class Worker:
    def __init__(self, stack: Stack, index: int, env: dict[str, str] | None = None) -> None:
        self.stack = stack
        self.env = {**stack.env, "TRACKER_WORKER_ID": f"worker-{index}", **(env or {})}
        self.index = index
        self.web_port = free_port()
        self.datadir = stack.tmp / f"worker-{index}"
        self.log_path = stack.tmp / f"worker-{index}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start(self) -> "Worker":
        command = [
            FAUST, "-A", "tracker.app", "--datadir", str(self.datadir), "worker", "-l", "info",
            "--web-port", str(self.web_port), "--web-host", "127.0.0.1",
        ]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            command, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()
        return self

    def get(self, path: str, timeout: float = 10.0, token: str | None = ADMIN,
            headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """Status and body (decoded JSON for JSON answers, else text), asked with the stack
        admin's token, another ``token``, or none (``token=None``)."""
        status, _, body = self.request("GET", path, timeout=timeout, token=token, headers=headers)
        return status, body

    def request(self, method: str, path: str, body: bytes | None = None, timeout: float = 10.0,
                token: str | None = ADMIN, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
        """Status, headers and body of any request; redirects are not followed."""
        headers = dict(headers or {})
        token = self.stack.admin_token if token is ADMIN else token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        try:
            with _NO_REDIRECTS.open(request, timeout=timeout) as response:
                return response.status, response.headers, _body(response.headers.get("Content-Type", ""),
                                                                response.read())
        except urllib.error.HTTPError as error:
            return error.code, error.headers, _body(error.headers.get("Content-Type", ""), error.read())

    def health(self) -> dict | None:
        try:
            status, body = self.get("/health", timeout=2.0)
        except (OSError, urllib.error.URLError):
            return None
        return body if status == 200 else None

    def wait_ready(self, timeout: float = 120.0) -> dict:
        def ready():
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"worker {self.index} exited:\n{self.log_tail()}")
            return self.health()

        try:
            return wait_for(ready, timeout, f"worker {self.index} to be ready", interval=0.5)
        except AssertionError as error:
            raise AssertionError(f"{error}\n{self.log_tail()}") from None

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def cpu_seconds(self) -> float:
        """User and system CPU time of the worker process so far (``/proc/PID/stat``)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill(self) -> None:
        """SIGKILL, as a crash would: no shutdown, no final commit, no flush."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def pause(self) -> None:
        """SIGSTOP: the process freezes (no heartbeat, no answer) until ``resume``."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after ``pause``."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGCONT)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text[-lines:])
