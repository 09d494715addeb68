"""The short chaos run: one kill -9 and one Postgres stop while two workers take a stream;
positions, latest, events and trips checked after. ``make chaos`` runs the long one, with
Kafka restarts too (bench/chaos.py)."""
from bench.chaos import Plan, run


def test_kill_and_postgres_outage_lose_nothing(stack, figures):
    report = run(Plan(positions=20_000, markers=200, rate=2_000, kill_every=(3, 5), kills=1,
                      restart_kafka=False, postgres_stop_seconds=10), stack)
    for what, seconds in report.recoveries:
        figures.append((f"chaos: recovery after {what}", f"{seconds:.1f} s"))
    assert report.sent >= 22_000
    assert report.lost == 0, report.table()
    assert report.duplicates == 0, report.table()
    assert report.stored == report.expected, report.table()
    assert report.latest_wrong == 0, report.table()
    assert report.events_checked > 0 and report.events_wrong == 0, report.table()
    assert report.journeys_checked > 0 and report.journeys_wrong == 0, report.table()
    assert "postgres stopped and started" in report.events
