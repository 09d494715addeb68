"""Generated bad records among good ones: no crash, all bad ones in the DLQ, all good ones stored.
``make fuzz`` runs 100,000 of each (bench/fuzz_stream.py)."""
from bench.fuzz_stream import run


def test_bad_records_go_to_the_dlq_and_good_ones_are_stored(stack):
    result = run(bad=3_000, good=3_000, seed=7, stack=stack)
    assert result["worker_alive"] and result["agent_crashes"] == 0, result
    assert result["bad_in_dlq"] == result["bad"] and result["bad_without_reason"] == 0, result
    assert result["good_stored"] == result["good"] and result["extra_rows"] == 0, result
