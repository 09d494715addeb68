"""Clients that hold a worker's connections open, straight to the worker (no nginx in front):
headers that never end, a body that stops coming, no request at all, too many connections
from one address."""
import socket
import time

import pytest

from tracker.testing import wait_for

PER_ADDRESS = 20


@pytest.fixture(scope="module")
def worker(stack):
    worker = stack.worker(TRACKER_MAX_CONNECTIONS_PER_ADDRESS=str(PER_ADDRESS)).start()
    worker.wait_ready()
    return worker


def connect(worker, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", worker.web_port))
    sock.settimeout(30)
    return sock


def closed_after(sock: socket.socket, trickle: bytes = b"", every: float = 1.0, limit: float = 25.0) -> tuple[float, bytes]:
    """Seconds until the worker closes the connection while ``trickle`` is sent a byte at a
    time every ``every`` seconds, and what it answered."""
    started, answer = time.monotonic(), b""
    sock.settimeout(every)
    position = 0
    while time.monotonic() - started < limit:
        try:
            chunk = sock.recv(4096)
            if not chunk:
                return time.monotonic() - started, answer
            answer += chunk
        except socket.timeout:
            pass
        except ConnectionResetError:
            return time.monotonic() - started, answer
        if position < len(trickle):
            try:
                sock.send(trickle[position:position + 1])
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - started, answer
            position += 1
    return time.monotonic() - started, answer


def test_headers_that_trickle_in_are_cut_after_ten_seconds(worker):
    sock = connect(worker)
    seconds, answer = closed_after(sock, b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 100)
    assert seconds < 14, f"the worker kept a header trickle for {seconds:.0f} s"
    assert answer.startswith(b"HTTP/1.1 408"), answer


def test_a_connection_that_sends_nothing_is_closed(worker):
    seconds, _ = closed_after(connect(worker))
    assert seconds < 14, f"the worker kept a silent connection for {seconds:.0f} s"


def test_a_login_body_that_stops_coming_is_cut(worker):
    sock = connect(worker)
    sock.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                 b"Content-Length: 1000\r\n\r\nuser=admin&password=")
    seconds, _ = closed_after(sock)
    assert seconds < 14, f"the worker waited {seconds:.0f} s for the rest of a body"


def test_one_address_holds_a_bounded_number_of_connections_and_others_are_served(worker):
    held = [connect(worker, "127.0.0.3") for _ in range(PER_ADDRESS)]
    try:
        time.sleep(0.5)
        extra = connect(worker, "127.0.0.3")
        extra.settimeout(5)
        answer = extra.recv(4096)
        assert answer.startswith(b"HTTP/1.1 503") and b"Retry-After" in answer, answer
        assert worker.get("/health", token=None)[0] == 200  # another address
    finally:
        for sock in held:
            sock.close()
    wait_for(lambda: _served(worker, "127.0.0.3"), 10, "the address served again once its connections closed")


def _served(worker, source: str) -> bool:
    sock = connect(worker, source)
    try:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return sock.recv(4096).startswith(b"HTTP/1.1 200")
    finally:
        sock.close()
