"""The settings a phone gets for a new device: its apps read them back as they are meant."""
import base64
from types import SimpleNamespace
from urllib.parse import parse_qs, unquote, urlsplit

import numpy
import orjson
import segno
import zxingcpp

from web import phone_settings

SECRET = "s3cr-et_with-url-chars"


def request(host="tracker.example:8080", secure=False):
    return SimpleNamespace(host=host, secure=secure, headers={})


def decode(text: str) -> str:
    """What a phone's camera reads from the code made for ``text``."""
    matrix = numpy.array(segno.make(text, error="m").matrix, dtype=numpy.uint8)
    image = numpy.kron(numpy.pad(1 - matrix, 4, constant_values=1), numpy.ones((4, 4), numpy.uint8)) * 255
    (found,) = zxingcpp.read_barcodes(image)
    return found.text


def test_traccar_client_reads_its_server_url_and_device_id_from_the_code():
    made = phone_settings.for_device(request(), "van-7", SECRET)["traccar_client"]
    url = urlsplit(decode(made["qr_text"]))
    # Traccar Client keeps the origin and path as its server URL and reads settings from the query.
    assert f"{url.scheme}://{url.netloc}{url.path}" == made["server_url"] == f"http://tracker.example:8080/ingest/osmand/{SECRET}"
    assert parse_qs(url.query)["id"] == ["van-7"]
    assert made["qr_svg"].startswith("data:image/svg+xml")


def test_owntracks_reads_http_mode_with_the_device_s_credentials_from_the_code():
    made = phone_settings.for_device(request(secure=True), "ann-phone", SECRET)["owntracks"]
    url = decode(made["qr_text"])
    assert url == made["config_url"] and url.startswith("owntracks:///config?inline=")
    configuration = orjson.loads(base64.b64decode(unquote(url.split("inline=", 1)[1])))
    assert configuration == {"_type": "configuration", "mode": 3, "url": "https://tracker.example:8080/ingest/owntracks",
                             "auth": True, "username": "ann-phone", "password": SECRET, "deviceId": "ann-phone",
                             "tid": "ne"}


def test_the_public_url_wins_over_the_request_s_host(monkeypatch):
    import dataclasses

    monkeypatch.setattr(phone_settings, "settings", dataclasses.replace(phone_settings.settings,
                                                                        public_url="https://gps.example.org"))
    made = phone_settings.for_device(request(), "van-7", SECRET)
    assert made["traccar_client"]["server_url"] == f"https://gps.example.org/ingest/osmand/{SECRET}"
