"""A phone's friends for OwnTracks: the markers its friends groups permit, itself excepted,
newest first, capped; and the messages the app takes for each."""
from tracker.ingest.friends import friends
from tracker.accounts.permissions import Access
from tracker.ingest.protocols.owntracks import friend_messages, tracker_id

ROWS = {
    "fam-anna": ["fam-anna", 45.0, 2.0, 5_000, None, None, None, None, "owntracks", "Anna"],
    "fam-bob": ["fam-bob", 45.1, 2.1, 9_000, 5.0, 90.4, 71.6, True, "owntracks", None],
    "truck-7": ["truck-7", 46.0, 3.0, 7_000, None, None, None, None, "traccar", "Truck 7"],
    "other": ["other", 47.0, 4.0, 8_000, None, None, None, None, "osmand", None],
}


def test_friends_are_the_markers_permitted_without_the_phone_itself_newest_first():
    access = Access(user="fam-anna", role="viewer", marker_ids=frozenset({"fam-anna", "fam-bob", "gone"}),
                    prefixes=("truck-",))
    assert [row[0] for row in friends(access, ROWS)] == ["fam-bob", "truck-7"]
    assert [row[0] for row in friends(access, ROWS, limit=1)] == ["fam-bob"]


def test_a_phone_in_no_friends_group_sees_nobody():
    assert friends(Access(user="other", role="viewer"), ROWS) == []


def test_a_friend_is_a_location_and_a_card_in_owntracks_units():
    location, card = friend_messages(ROWS["fam-bob"])
    assert location == {"_type": "location", "topic": "owntracks/fam-bob/fam-bob", "tid": "FA", "lat": 45.1,
                        "lon": 2.1, "tst": 9, "vel": 18, "cog": 90, "batt": 72}
    assert card == {"_type": "card", "topic": "owntracks/fam-bob/fam-bob", "tid": "FA", "name": "fam-bob"}
    location, card = friend_messages(ROWS["truck-7"])
    assert "vel" not in location and card["name"] == "Truck 7" and card["tid"] == "TR"


def test_the_tracker_id_is_two_letters_of_the_name_or_the_id():
    assert tracker_id("x-1", "Élodie M.") == "ÉL"
    assert tracker_id("7", None) == "7"
    assert tracker_id("--", "") == "--"
