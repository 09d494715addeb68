"""The benchmarks' one way of printing their figures: a table of (measure, result, detail)."""
from __future__ import annotations

import sys


def print_table(rows: list[tuple[str, str, str]], failures: list[str]) -> None:
    """Print the rows, then each failure, and exit 1 if there was any."""
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print(f"{'measure':<{width}}  {'result':>{value_width}}  detail")
    for name, value, detail in rows:
        print(f"{name:<{width}}  {value:>{value_width}}  {detail}")
    for failure in failures:
        print(f"FAILED: {failure}")
    sys.exit(1 if failures else 0)
