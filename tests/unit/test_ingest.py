"""The phone endpoints' checks, without a worker: who may report, and how long a body may take."""
import asyncio
from types import SimpleNamespace

import pytest

from web import ingest
from web.errors import ApiError


class Secrets:
    """The device registry as ``SecretLookup`` answers: secret -> device id."""

    def __init__(self, devices: dict[str, str]) -> None:
        self.devices = devices

    async def device_for(self, secret: str) -> str | None:
        return self.devices.get(secret)


async def refusal(claimed: str, secret: str) -> ApiError:
    with pytest.raises(ApiError) as caught:
        await ingest._authenticate(claimed, secret)
    return caught.value


async def test_an_unknown_secret_and_another_devices_secret_get_the_same_401(monkeypatch):
    monkeypatch.setattr(ingest, "secrets", Secrets({"mine": "phone-1", "theirs": "phone-2"}))
    await ingest._authenticate("phone-1", "mine")
    unknown, foreign = await refusal("phone-1", "nobody-has-this"), await refusal("phone-1", "theirs")
    assert unknown.code == foreign.code == 401
    assert unknown.detail == foreign.detail == "bad_credential"
    assert unknown.message == foreign.message
    assert "phone-2" not in foreign.message and "phone-1" not in foreign.message


class TricklingBody:
    """A request body of which a byte arrives every ``interval`` seconds, forever."""

    def __init__(self, interval: float) -> None:
        self.interval = interval

    async def read(self, n: int) -> bytes:
        await asyncio.sleep(self.interval)
        return b"x"


class WholeBody:
    def __init__(self, data: bytes) -> None:
        self.chunks = [data[i:i + 10] for i in range(0, len(data), 10)]

    async def read(self, n: int) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""


async def test_a_body_that_trickles_in_is_cut_off_with_408(monkeypatch):
    monkeypatch.setattr(ingest, "BODY_READ_SECONDS", 0.3)
    request = SimpleNamespace(content_length=None, content=TricklingBody(0.01))
    started = asyncio.get_running_loop().time()
    with pytest.raises(ApiError) as caught:
        await ingest._body(request)
    assert 0.3 <= asyncio.get_running_loop().time() - started < 1.0
    assert (caught.value.code, caught.value.detail) == (408, "body_timeout")


async def test_a_body_that_arrives_in_time_is_read_whole():
    data = b'{"device_id": "phone-1"}' * 10
    request = SimpleNamespace(content_length=len(data), content=WholeBody(data))
    assert await ingest._body(request) == data
