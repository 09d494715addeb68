"""The short soak: three workers take a steady stream through one iteration of each
disturbance (a fourth worker joins and leaves, a ``kill -9``, a ``SIGSTOP`` longer than the
session timeout, partitions left quiet). After each, nothing may be lost or doubled and every
worker must show every marker's newest fix. ``make soak`` runs the long one (bench/soak.py).

Stale answers (a read older than one already served) are measured and printed among the
figures, not asserted yet."""
from bench.soak import Plan, run


def test_four_disturbances_lose_double_and_misplace_nothing(stack, figures):
    plan = Plan(iterations=4, markers=200, rate=500, samples=50, stop_seconds=12, quiet_seconds=15,
                hold_seconds=2, settle_seconds=3, recovery_timeout=150)
    report = run(plan, stack)
    tally = report.tally
    figures.append(("soak: stale answers served (4 iterations)",
                    f"{report.stale:,} of {tally.total('answers'):,}; {tally.by_kind('stale', plan.kinds)}"))
    figures.append(("soak: 503s", f"{tally.total('503'):,}; {tally.by_kind('503', plan.kinds)}"))
    figures.append(("soak: partitions stalled over 10 s", f"{len(report.stalls)}"))
    for kind in ("kill", "stop", "join", "leave"):
        figures.append((f"soak: recovery after {kind}", ", ".join(f"{s:.1f} s" for s in report.recoveries[kind])))
    table = "\n".join(f"{name}: {value} ({detail})" for name, value, detail in report.rows())
    assert report.aborted is None, table
    assert report.iterations == 4 and dict(report.kinds) == {"join": 1, "kill": 1, "stop": 1, "quiet": 1}
    assert report.acked >= 500 * 60, table  # the stream ran throughout
    assert report.lost == 0, table
    assert report.duplicated == 0, table
    assert report.wrong_latest == 0, table
