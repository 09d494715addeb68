"""Dead letters: the original bytes and the reason, small enough for any broker."""
import base64
import hashlib
from datetime import datetime, timezone

import orjson

from tracker.stream.dead_letters import MAX_PAYLOAD_BYTES, dead_letter
from tracker.positions.model import InvalidPosition

ERROR = InvalidPosition("not_json", "not valid JSON")
AT = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_a_small_payload_is_kept_whole_as_text_or_base64():
    letter = dead_letter(b"not json", ERROR, AT, "gps.positions", 3, 42)
    assert (letter["payload"], letter["payload_encoding"]) == ("not json", "utf-8")
    assert letter["reason"] == "not_json: not valid JSON" and letter["source"] == {
        "topic": "gps.positions", "partition": 3, "offset": 42}
    assert "payload_truncated" not in letter
    binary = dead_letter(b"\xff\xfe", ERROR, AT, "t", 0, 0)
    assert base64.b64decode(binary["payload"]) == b"\xff\xfe"


def test_a_huge_payload_is_cut_with_its_length_and_hash():
    control = b"\x01" * 900_000  # JSON escaping makes each byte six
    letter = dead_letter(control, ERROR, AT, "t", 0, 0)
    assert letter["payload_truncated"] is True and letter["payload_bytes"] == 900_000
    assert letter["payload_sha256"] == hashlib.sha256(control).hexdigest()
    assert len(orjson.dumps(letter)) < 1_000_000
    accented = "é".encode() * MAX_PAYLOAD_BYTES  # the cut falls inside a character
    text = dead_letter(accented, ERROR, AT, "t", 0, 0)
    assert text["payload_encoding"] == "utf-8" and set(text["payload"]) == {"é"}


def test_a_binary_payload_over_the_brokers_limit_keeps_its_head_length_and_hash():
    junk = bytes(range(256)) * 8_192  # 2 MiB, more than a broker takes in one record
    letter = dead_letter(junk, ERROR, AT, "t", 0, 0)
    assert letter["payload_encoding"] == "base64" and letter["payload_truncated"] is True
    assert base64.b64decode(letter["payload"]) == junk[:MAX_PAYLOAD_BYTES]
    assert (letter["payload_bytes"], letter["payload_sha256"]) == (len(junk), hashlib.sha256(junk).hexdigest())
    assert len(orjson.dumps(letter)) < 1_000_000
