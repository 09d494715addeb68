"""The intake's validation alone, in one process, without Kafka: microseconds per record of the
reference rules (``parse_report`` over orjson), of the stream's read (``read_report``) and of
the whole verdict on a slice (``Judge.judge``), on records like the pipeline bench's (a
marker id, coordinates and an epoch in milliseconds), and on records with two attributes;
with the garbage collector set as a worker sets it (``tracker.app.GarbageCollection``).

    python -m bench.validation [--records 100000] [--rounds 5]
"""
from __future__ import annotations

import argparse
import gc
import random
import time
from types import SimpleNamespace

import orjson

from bench.report import print_table, progress
from tracker.app import GarbageCollection
from tracker.positions.decoding import read_report
from tracker.positions.intake import Judge
from tracker.positions.model import decode_object, parse_report


def records(count: int, attributes: bool, now_ms: int) -> list[SimpleNamespace]:
    rng = random.Random(1)
    made = []
    for i in range(count):
        marker = f"d{i % 10_000:05d}"
        report = {"marker_id": marker, "lat": 45 + rng.random(), "lon": 14 + rng.random(), "time": now_ms - count + i}
        if attributes:
            report["attributes"] = {"charge": True, "odometer": 1234.5}
        made.append(SimpleNamespace(key=marker.encode(), value=orjson.dumps(report), timestamp=now_ms))
    return made


def per_record_us(read, values: list, rounds: int) -> float:
    """The best of ``rounds`` passes over ``values``, in microseconds per record."""
    best = float("inf")
    for _ in range(rounds):
        began = time.perf_counter()
        for value in values:
            read(value)
        best = min(best, time.perf_counter() - began)
    return best / len(values) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    gc.set_threshold(*GarbageCollection.THRESHOLDS)
    now_ms = int(time.time() * 1000)
    now_us = now_ms * 1000
    rows = []
    for kind, with_attributes in (("plain", False), ("with attributes", True)):
        progress("validation", f"{args.records:,} {kind} records")
        sample = records(args.records, with_attributes, now_ms)
        values = [record.value for record in sample]
        reference = per_record_us(lambda raw: parse_report(decode_object(raw), now_us), values, args.rounds)
        fast = per_record_us(lambda raw: read_report(raw, now_us), values, args.rounds)
        judge = Judge(1)
        verdict = per_record_us(lambda whole: judge.judge(0, whole, now_ms), [sample], args.rounds) / len(sample)
        rows += [(f"{kind}: reference rules", f"{reference:.2f} µs/record", "parse_report(orjson)"),
                 (f"{kind}: read_report", f"{fast:.2f} µs/record", f"{reference / fast:.2f}× the reference"),
                 (f"{kind}: Judge.judge", f"{verdict:.2f} µs/record", "the verdict on a slice, partition and all")]
    print_table(rows, [])


if __name__ == "__main__":
    main()
