"""Marker ids in URLs follow the one rule of ``tracker.positions.model``, and a refusal states it."""
import pytest

from web.errors import BadRequest
from web.params import marker_id_param


@pytest.mark.parametrize("marker_id", ["truck-7", "_x", "a.b:c", "__proto__", "x" * 64])
def test_marker_ids_that_follow_the_rule_pass(marker_id):
    assert marker_id_param(marker_id) == marker_id


@pytest.mark.parametrize("marker_id", ["-rf", "--help", ".", "..", ".env", "", "x" * 65, "a/b"])
def test_other_marker_ids_are_refused_with_the_rule(marker_id):
    with pytest.raises(BadRequest) as caught:
        marker_id_param(marker_id)
    assert caught.value.detail == "bad_marker_id" and caught.value.code == 400
    assert caught.value.message == (
        "marker_id must be 1 to 64 characters of A-Z a-z 0-9 _ . : -, not starting with - or .")
