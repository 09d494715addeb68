"""History exports on a worker whose clients stop reading: one account cannot take every
export slot, and a client that reads nothing for ``TRACKER_WRITE_TIMEOUT`` is cut off, which
frees its slot."""
import socket
import time
from datetime import datetime, timezone

import psycopg
import pytest


ROWS = 200_000
PATH = "/api/markers/slot-long/history?from=2025-12-31&to=2026-02-01&limit=100000"
WRITE_TIMEOUT = 3


@pytest.fixture(scope="module")
def worker(stack):
    worker = stack.worker(TRACKER_WRITE_TIMEOUT=str(WRITE_TIMEOUT)).start()
    worker.wait_ready()
    stack.ensure_partitions("positions", datetime(2026, 1, 1, tzinfo=timezone.utc))
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO positions (marker_id, fix_time, lat, lon, speed, source) SELECT 'slot-long', "
                     "timestamptz '2026-01-01' + n * interval '1 second', 45 + n / 1e7, 14 + n / 1e7, 12.5, 'bench' "
                     "FROM generate_series(1, %s) n", (ROWS,))
    return worker


def stalled_export(worker, token: str) -> socket.socket:
    """An export asked for and never read past its status line: the worker's writes block."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", worker.web_port))
    sock.sendall(f"GET {PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    sock.settimeout(30)
    assert sock.recv(12) == b"HTTP/1.1 200"
    return sock


def drain(sock: socket.socket, limit: float = 20.0) -> tuple[bool, bytes]:
    """Read what the worker sent until it closes the connection (True) or ``limit`` seconds
    pass (False); the last bytes read."""
    sock.settimeout(2.0)
    tail, deadline = b"", time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(1 << 20)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return True, tail
        if not chunk:
            return True, tail
        tail = (tail + chunk)[-16:]
    return False, tail


def test_two_stalled_exports_of_one_account_leave_the_others_theirs(stack, worker):
    hoarder = stack.user("slot-hoarder", "viewer", ["slot-*"])
    other = stack.user("slot-other", "viewer", ["slot-*"])
    first = stalled_export(worker, hoarder)
    try:
        status, headers, body = worker.request("GET", PATH.replace("limit=100000", "limit=10"), token=hoarder)
        assert status == 429 and headers["Retry-After"] and "your history requests" in body["message"], body
        status, body = worker.get(PATH.replace("limit=100000", "limit=10"), token=other)
        assert status == 200 and body["count"] == 10
    finally:
        first.close()


def test_a_client_that_stops_reading_is_cut_off_and_its_slot_freed(stack, worker):
    reader = stack.user("slot-reader", "viewer", ["slot-*"])
    stalled = stalled_export(worker, reader)
    time.sleep(WRITE_TIMEOUT + 3)  # nothing read meanwhile: the worker's writes block
    try:
        status, body = worker.get(PATH.replace("limit=100000", "limit=10"), token=reader)
        assert status == 200 and body["count"] == 10, body  # its slot is free again
        ended, tail = drain(stalled)
        assert ended and not tail.endswith(b"0\r\n\r\n"), "the stalled export was not cut off"
    finally:
        stalled.close()
