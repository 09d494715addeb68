"""The live feed on two real workers: a viewer on one worker gets, within 2 s, the positions of
markers on the other's partitions, and keeps getting them on the same connection after that
worker is killed with kill -9; a reconnecting viewer gets what it missed; a viewer that
stops reading is dropped; the GeoJSON list answers 304 to its own ETag and is gzipped."""
import gzip
import http.client
import socket
import threading
import time
import urllib.parse
import zlib

import orjson
import pytest

from tracker.testing import wait_for

MARKERS = 40


class Feed:
    """An SSE client in a thread: every position it was sent, with when it arrived."""

    def __init__(self, worker, token: str, path: str = "/api/live", gzipped: bool = False) -> None:
        url = urllib.parse.urlsplit(worker.url)
        self.connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        headers = {"Authorization": f"Bearer {token}", **({"Accept-Encoding": "gzip"} if gzipped else {})}
        self.connection.request("GET", path, headers=headers)
        self.response = self.connection.getresponse()
        assert self.response.status == 200, self.response.read()
        assert self.response.getheader("Content-Type") == "text/event-stream"
        assert self.response.getheader("Content-Encoding") == ("gzip" if gzipped else None)
        self.gzipped = gzipped
        self.seen: dict[tuple[str, int], float] = {}  # (marker, time ms) -> arrival
        self.rows: dict[tuple[str, int], list] = {}  # (marker, time ms) -> its row
        self.events: list[str] = []
        self.closed = False
        threading.Thread(target=self._read, daemon=True).start()

    def _lines(self):
        if not self.gzipped:
            yield from self.response
            return
        inflate, pending = zlib.decompressobj(16 + zlib.MAX_WBITS), b""
        while chunk := self.response.read1(65536):  # each message is flushed: it inflates whole
            *lines, pending = (pending + inflate.decompress(chunk)).split(b"\n")
            yield from (line + b"\n" for line in lines)

    def _read(self) -> None:
        event = None
        try:
            for line in self._lines():
                line = line.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                    self.events.append(event)
                elif line.startswith("data: "):
                    for row in rows_of(orjson.loads(line[6:])):
                        self.seen.setdefault((row[0], row[3]), time.monotonic())
                        self.rows[(row[0], row[3])] = row
        except (OSError, ValueError, AttributeError):  # AttributeError: http.client, once closed
            pass
        self.closed = True

    def close(self) -> None:
        if self.connection.sock is not None:  # ends the reading thread's read first (it holds the reader)
            try:
                self.connection.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.connection.close()


def rows_of(data: dict) -> list[list]:
    """A message's rows, from either layout (``layout=columns``: one array per field)."""
    if "m" in data:
        return data["m"]
    columns, now_ms = data["c"], data["t"]
    count = len(columns["id"])
    field = {name: columns.get(name, [None] * count) for name in ("speed", "heading", "battery", "moving", "source", "name")}
    return [[columns["id"][i], columns["lat"][i], columns["lon"][i], now_ms - columns["age"][i],
             *(field[name][i] for name in field), now_ms - columns["age"][i] + columns["heard"][i]] for i in range(count)]


def positions(t: int, prefix: str = "live-"):
    return [(f"{prefix}{i:02d}".encode(), orjson.dumps({"marker_id": f"{prefix}{i:02d}", "lat": 45 + i * 0.01,
                                                        "lon": 14.0, "time": t}))
            for i in range(MARKERS)]


@pytest.fixture(scope="module")
def workers(stack):
    # a small bound for the viewer that stops reading (the default is 4 MiB); messages every
    # 0.5 s (the default 1 s alone takes half of the 2 s the test allows on a busy machine)
    running = [stack.worker(TRACKER_WORKER_ID=f"live-{i}", TRACKER_LIVE_CLIENT_BUFFER="65536",
                            TRACKER_LIVE_INTERVAL="0.5").start()
               for i in range(2)]
    for worker in running:
        worker.wait_ready()
    return running


def arrived(feed: Feed, t: int) -> set[str]:
    return {marker for marker, time_ms in feed.seen if time_ms == t * 1000}


def test_a_viewer_gets_the_changes_of_every_workers_partitions_within_2_s(stack, workers, figures):
    a, b = workers
    feed = Feed(a, stack.admin_token)
    wait_for(lambda: "snapshot" in feed.events, 10, "the first snapshot")
    t = int(time.time())
    sent = time.monotonic()
    stack.send(positions(t))
    wait_for(lambda: len(arrived(feed, t)) == MARKERS, 10, "every marker on the feed")
    lags = sorted(feed.seen[(f"live-{i:02d}", t * 1000)] - sent for i in range(MARKERS))
    assert lags[-1] <= 2.0, lags
    assert b.health()["partitions"], "the other worker owns partitions, so some markers came through it"
    figures.append(("live: produce -> on the feed of another worker, slowest of 40", f"{lags[-1] * 1000:.0f} ms"))
    feed.close()


def test_a_gzipped_feed_delivers_each_message_as_it_is_sent_in_either_layout(stack, workers):
    feeds = [Feed(workers[0], stack.admin_token, gzipped=True),
             Feed(workers[0], stack.admin_token, path="/api/live?layout=columns", gzipped=True)]
    for feed in feeds:
        wait_for(lambda: "snapshot" in feed.events, 10, "the first snapshot")
    t = int(time.time()) + 2
    stack.send(positions(t, prefix="gz-"))
    for feed in feeds:
        wait_for(lambda: len({m for m, ms in feed.seen if ms == t * 1000 and m.startswith("gz-")}) == MARKERS, 10,
                 "every marker on the gzipped feed")
    by_rows, by_columns = ({key: row for key, row in feed.rows.items() if key[1] == t * 1000} for feed in feeds)
    assert by_columns == by_rows and by_rows[("gz-07", t * 1000)][1:3] == [45.07, 14.0]
    for feed in feeds:
        feed.close()


def test_an_unknown_layout_is_refused_with_the_ones_there_are(stack, workers):
    status, _, body = workers[0].request("GET", "/api/live?layout=grid", token=stack.admin_token)
    assert status == 400 and "rows, columns" in str(body)


def test_a_viewer_keeps_receiving_on_the_same_connection_after_a_worker_is_killed(stack, workers, figures):
    a, b = workers
    feed = Feed(a, stack.admin_token)
    wait_for(lambda: "snapshot" in feed.events, 10, "the first snapshot")
    try:
        b.kill()
        killed = time.monotonic()
        t = int(time.time()) + 1
        stack.send(positions(t, prefix="after-"))
        def missing() -> list[str]:
            seen = {m for m, ms in feed.seen if ms == t * 1000}
            return [f"after-{i:02d}" for i in range(MARKERS) if f"after-{i:02d}" not in seen]

        try:
            wait_for(lambda: not missing(), 120, "every marker after the kill, on the same connection")
            figures.append(("live: kill -9, then every marker on the feed", f"{time.monotonic() - killed:.1f} s"))
        except AssertionError:
            # Which part stalled: the pipeline (the fixes are not in `latest`) or the feed?
            in_latest = [m for m in missing() if (a.get(f"/api/markers/{m}")[1] or {}).get("time") is not None]
            raise AssertionError(f"missing on the feed: {missing()}; of them in latest: {in_latest}; "
                                 f"stages behind (partition: (committed, end)): {stack.pipeline_behind()}; "
                                 f"A's partitions: {a.health()}\n{a.log_tail(60)}") from None
        assert not feed.closed and feed.events.count("snapshot") == 1
    finally:
        feed.close()
        b.start()
        b.wait_ready()


def test_a_reconnecting_viewer_gets_only_what_it_missed(stack, workers):
    a = workers[0]
    url = urllib.parse.urlsplit(a.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    connection.request("GET", "/api/live", headers={"Authorization": f"Bearer {stack.admin_token}"})
    response = connection.getresponse()
    last_id = None
    for line in response:
        if line.startswith(b"id: "):
            last_id = line[4:].strip().decode()
            break
    connection.close()
    t = int(time.time()) + 2
    stack.send(positions(t, prefix="again-")[:3])
    wait_for(lambda: all(a.get(f"/api/markers/again-0{i}")[0] == 200 for i in range(3)), 20, "the new fixes in latest")
    time.sleep(1.5)  # a tick
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    connection.request("GET", "/api/live", headers={"Authorization": f"Bearer {stack.admin_token}",
                                                     "Last-Event-ID": last_id})
    response = connection.getresponse()
    lines = []
    for line in response:
        lines.append(line)
        if line.startswith(b"data: "):
            break
    connection.close()
    assert b"event: update\n" in lines
    rows = orjson.loads(lines[-1][6:])["m"]
    assert {row[0] for row in rows if row[0].startswith("again-")} == {"again-00", "again-01", "again-02"}
    assert len(rows) < MARKERS  # what changed since, not a snapshot of everything


def test_a_viewer_that_stops_reading_is_dropped(stack, workers):
    a = workers[0]
    url = urllib.parse.urlsplit(a.url)
    sock = socket.create_connection((url.hostname, url.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(f"GET /api/live HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {stack.admin_token}\r\n\r\n".encode())
    time.sleep(1.0)

    def dropped() -> float:
        text = a.get("/metrics")[1]
        return sum(float(line.split()[-1]) for line in text.splitlines()
                   if line.startswith("tracker_live_viewers_dropped_total"))

    before = dropped()
    base = int(time.time()) - 3_600
    for step in range(90):  # ~300 KB a second for a reader that never reads, past the socket buffers
        stack.send([(f"flood-{i}".encode(), orjson.dumps({"marker_id": f"flood-{i}", "lat": 45.0, "lon": 14.0,
                                                          "time": base + step}))
                    for i in range(5_000)])
        if dropped() > before:
            break
        time.sleep(0.2)
    assert dropped() > before, "the worker kept queueing for a client that does not read"
    sock.close()


def test_the_geojson_list_has_an_etag_and_is_gzipped(stack, workers):
    url = urllib.parse.urlsplit(workers[0].url)
    stack.wait_pipeline_committed(120)  # the flood above in `latest`: the list no longer changes

    def get(**headers):
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        connection.request("GET", "/api/markers.geojson", headers={"Authorization": f"Bearer {stack.admin_token}",
                                                                   **headers})
        response = connection.getresponse()
        answer = response.status, response.headers, response.read()
        connection.close()
        return answer

    status, headers, body = get(**{"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert orjson.loads(gzip.decompress(body))["type"] == "FeatureCollection"
    status, _, body = get(**{"If-None-Match": headers["ETag"]})
    assert status == 304 and not body
