"""Months of the history partitions, their names, and the ages ``tracker history prune`` takes."""
from datetime import datetime, timedelta, timezone

import pytest

from tracker.cli.main import main
from tracker.storage.months import (EPOCH, month_bounds, month_bounds_us, month_number, month_of, partition_name)
from tracker.cli.history import parse_age

UTC = timezone.utc


def micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


@pytest.mark.parametrize("moment, month", [
    (datetime(2026, 11, 1, tzinfo=UTC), (2026, 11)),
    (datetime(2026, 10, 31, 23, 59, 59, 999_999, tzinfo=UTC), (2026, 10)),
    (datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), (2026, 12)),
    (datetime(2027, 1, 1, tzinfo=UTC), (2027, 1)),
    (datetime(2028, 2, 29, 12, tzinfo=UTC), (2028, 2)),
    (datetime(1970, 1, 1, tzinfo=UTC), (1970, 1)),
    (datetime(1969, 12, 31, 23, 59, tzinfo=UTC), (1969, 12)),
])
def test_a_time_falls_in_its_utc_calendar_month(moment, month):
    year, number = month
    assert month_number(micros(moment)) == month_of(moment) == year * 12 + number - 1


def test_the_month_is_that_of_utc_whatever_the_time_zone_of_a_datetime():
    paris = timezone(timedelta(hours=1))
    assert month_of(datetime(2026, 11, 1, 0, 30, tzinfo=paris)) == month_of(datetime(2026, 10, 31, tzinfo=UTC))


def test_a_month_runs_from_its_first_instant_to_the_next_months():
    assert month_bounds(month_of(datetime(2026, 11, 15, tzinfo=UTC))) == (
        datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    assert month_bounds(month_of(datetime(2026, 12, 15, tzinfo=UTC))) == (
        datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert month_bounds(month_of(datetime(2028, 2, 3, tzinfo=UTC)))[1] - datetime(2028, 2, 1, tzinfo=UTC) \
        == timedelta(days=29)


@pytest.mark.parametrize("month", [month_of(datetime(year, number, 1, tzinfo=UTC))
                                   for year in (1969, 2026, 2027) for number in range(1, 13)])
def test_the_bounds_in_microseconds_hold_exactly_the_times_of_the_month(month):
    start, end = month_bounds_us(month)
    assert month_number(start) == month_number(end - 1) == month
    assert month_number(start - 1) == month - 1 and month_number(end) == month + 1


def test_a_partition_is_named_after_its_table_year_and_month():
    assert partition_name("positions", month_of(datetime(2026, 11, 27, tzinfo=UTC))) == "positions_y2026m11"
    assert partition_name("events", month_of(datetime(2027, 1, 1, tzinfo=UTC))) == "events_y2027m01"
    assert partition_name("stops", month_of(datetime(999, 3, 1, tzinfo=UTC))) == "stops_y0999m03"


@pytest.mark.parametrize("text, age", [
    ("90d", timedelta(days=90)), ("1d", timedelta(days=1)), ("36h", timedelta(hours=36)),
    ("1h", timedelta(hours=1)), (" 30d ", timedelta(days=30)), ("365d", timedelta(days=365)),
])
def test_older_than_takes_whole_days_or_hours(text, age):
    assert parse_age(text) == age


@pytest.mark.parametrize("text", ["", "90", "d", "0d", "0h", "-3d", "1.5d", "3w", "90m", "90D", "9 d", "1d2h",
                                  "9999999d"])
def test_older_than_refuses_anything_else(text):
    with pytest.raises(ValueError, match="is not an age such as 90d or 36h"):
        parse_age(text)


@pytest.mark.parametrize("args", [["history", "prune", "--older-than", "999999d"],
                                  ["history", "erase", "--marker", "a", "--to", "9999-12-31"],
                                  ["journeys", "rebuild", "--to", "9999-12-31"]])
def test_values_past_the_calendar_end_the_command_with_one_line_and_status_2(args, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("tracker: ") and err.count("\n") == 1, err


def test_a_bad_age_ends_the_command_with_one_line_and_status_2(capsys):
    assert main(["history", "prune", "--older-than", "soon"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("tracker: --older-than: 'soon' is not an age such as 90d or 36h")
