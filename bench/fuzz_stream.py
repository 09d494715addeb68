"""Bad records mixed into a stream of good ones, through a real worker: the worker must not
crash, every bad record must reach the DLQ with its reason, every good one Postgres.

    make fuzz                          (100,000 bad and 100,000 good records)
    python -m bench.fuzz_stream --bad 5000 --good 5000
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

from tracker.testing import Stack, wait_for
from tracker.positions.model import InvalidPosition, parse_position


def say(message: str) -> None:
    print(f"fuzz: {message}", file=sys.stderr, flush=True)


def good_record(i: int, base: datetime) -> dict:
    return {"marker_id": f"fz-{i % 500:03d}", "lat": 45 + (i % 1000) / 10_000, "lon": 14.0,
            "time": (base + timedelta(milliseconds=i)).isoformat().replace("+00:00", "Z"),
            "speed": 4.0, "battery": 50}


def mutate(record: dict, rng: random.Random) -> bytes:
    """One way of breaking a record, chosen at random."""
    r = dict(record)
    kind = rng.randrange(14)
    if kind == 0:
        r.pop(rng.choice(["marker_id", "lat", "lon", "time"]))
    elif kind == 1:
        r[rng.choice(["lat", "lon", "speed", "battery", "heading"])] = rng.choice(
            ["12", True, [1], {"x": 1}, "NaN"])
    elif kind == 2:
        r["lat"] = rng.choice([90.0001, -91, 1e308, -1e20])
    elif kind == 3:
        r["lon"] = rng.choice([180.5, -181, 360])
    elif kind == 4:
        r["marker_id"] = rng.choice(["", "x" * 65, "bad id", "<script>", "é", 42, None])
    elif kind == 5:
        r["time"] = rng.choice(["yesterday", "", "2026-13-45T00:00:00Z", -1, True, [2026]])
    elif kind == 6:
        r["time"] = (datetime.now(timezone.utc) + timedelta(days=30)).isoformat()
    elif kind == 7:
        r[rng.choice(["speed", "accuracy", "battery"])] = -rng.uniform(0.1, 100)
    elif kind == 8:
        return orjson.dumps(r)[: rng.randrange(1, 40)]  # truncated JSON
    elif kind == 9:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60)))  # binary junk
    elif kind == 10:
        return orjson.dumps(r).replace(b'"lat":', b'"lat":NaN,"x":', 1)  # NaN literal: not JSON
    elif kind == 11:
        return rng.choice([b"[]", b"null", b"42", b'"text"', b"", b"{}"])
    elif kind == 12:
        r["source"] = "x" * rng.randrange(65, 500)
    else:
        r["attributes"] = rng.choice([[1, 2], {"nested": {"a": 1}}, {"k": "v" * 300}])
    return orjson.dumps(r)


def build(bad: int, good: int, seed: int):
    rng = random.Random(seed)
    base = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=2)
    records, good_keys, bad_payloads = [], set(), []
    check_time = datetime.now(timezone.utc)
    for i in range(good):
        record = good_record(i, base)
        records.append((record["marker_id"].encode(), orjson.dumps(record)))
        good_keys.add((record["marker_id"], int((base + timedelta(milliseconds=i)).timestamp() * 1000)))
    while len(bad_payloads) < bad:
        payload = mutate(good_record(rng.randrange(good or 1), base), rng)
        try:
            parse_position(payload, now=check_time)
            continue  # the mutation happened to be harmless
        except InvalidPosition:
            pass
        bad_payloads.append(payload)
        records.insert(rng.randrange(len(records) + 1), (b"fuzz", payload))
    return records, good_keys, bad_payloads


def run(bad: int, good: int, seed: int = 1, stack: Stack | None = None) -> dict:
    stack = stack or Stack.create(Path(tempfile.mkdtemp(prefix="fuzz-")))
    records, good_keys, bad_payloads = build(bad, good, seed)
    worker = stack.worker().start()
    try:
        worker.wait_ready()
        say(f"sending {len(records):,} records ({bad:,} bad)")
        started = time.monotonic()
        stack.send(records)
        wait_for(lambda: stack.history_count() >= len(good_keys), 1800, "every good record stored", interval=1)
        letters = stack.read_topic(stack.settings.dlq_topic, expect=bad, timeout=600)
        elapsed = time.monotonic() - started
        rows = set(stack.query(
            "SELECT marker_id, (extract(epoch FROM fix_time) * 1000)::bigint FROM positions"))
        distinct = {(l["source"]["partition"], l["source"]["offset"]): l for l in letters}
        log = worker.log_path.read_text(errors="replace")
        return {
            "records": len(records),
            "seconds": elapsed,
            "worker_alive": worker.proc.poll() is None,
            "agent_crashes": log.count("Crashed reason"),
            "bad": bad,
            "bad_in_dlq": len(distinct),
            "bad_without_reason": sum(1 for l in distinct.values() if not l.get("reason") or ": " not in l["reason"]),
            "good": len(good_keys),
            "good_stored": len(rows & good_keys),
            "extra_rows": len(rows - good_keys),
        }
    finally:
        stack.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bad", type=int, default=100_000)
    parser.add_argument("--good", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    result = run(args.bad, args.good, args.seed)
    for name, value in result.items():
        print(f"{name:<20} {value:>12,.1f}" if isinstance(value, float) else f"{name:<20} {value!s:>12}")
    ok = (result["worker_alive"] and result["agent_crashes"] == 0 and result["bad_in_dlq"] == result["bad"]
          and result["bad_without_reason"] == 0 and result["good_stored"] == result["good"]
          and result["extra_rows"] == 0)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
