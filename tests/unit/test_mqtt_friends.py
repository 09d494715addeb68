"""Friends over MQTT: what a worker publishes under each phone's name, and when; and the
bridge leaving the workers' friend messages out of the history."""
from types import SimpleNamespace

import orjson

from tracker.ingest.mqtt_bridge import is_friend_message
from tracker.ingest.mqtt_friends import MARK, FriendsPublisher
from tracker.accounts.permissions import Access


def row(marker_id, time_ms, name=None, lat=45.0):
    return [marker_id, lat, 14.0, time_ms, None, None, None, None, "owntracks", name]


def family(user):
    return Access(user=user, role="viewer", marker_ids=frozenset({"anna", "bob", "carl"}))


class Broker:
    def __init__(self):
        self.messages = []

    def publish(self, topic, payload):
        self.messages.append((topic, orjson.loads(payload) if payload else None))

    def take(self):
        taken, self.messages = self.messages, []
        return taken


def test_each_friend_is_published_under_the_phones_name_once_until_it_moves():
    broker = Broker()
    publisher = FriendsPublisher(broker.publish)
    rows = {"anna": row("anna", 1_000), "bob": row("bob", 2_000, "Bob"), "eve": row("eve", 3_000)}
    assert publisher.update({"anna": family("anna")}, rows) == 2
    assert broker.take() == [
        ("owntracks/anna/friend.bob", {"_type": "location", "topic": "owntracks/anna/friend.bob", "tid": "BO",
                                       "lat": 45.0, "lon": 14.0, "tst": 2}),
        ("owntracks/anna/friend.bob/info", {"_type": "card", "topic": "owntracks/anna/friend.bob", "tid": "BO",
                                            "name": "Bob"}),
    ]
    assert publisher.update({"anna": family("anna")}, rows) == 0  # nothing changed
    rows["bob"] = row("bob", 4_000, "Bob", lat=45.5)
    rows["carl"] = row("carl", 5_000)
    publisher.update({"anna": family("anna")}, rows)
    assert [(topic, m["_type"]) for topic, m in broker.take()] == [
        ("owntracks/anna/friend.carl", "location"), ("owntracks/anna/friend.carl/info", "card"),
        ("owntracks/anna/friend.bob", "location")]  # the card again only when the name changes


def test_a_friend_no_longer_permitted_is_removed_with_empty_retained_messages():
    broker = Broker()
    publisher = FriendsPublisher(broker.publish)
    rows = {"bob": row("bob", 2_000)}
    publisher.update({"anna": family("anna")}, rows)
    broker.take()
    publisher.update({"anna": Access(user="anna", role="viewer")}, rows)
    assert broker.take() == [("owntracks/anna/friend.bob", None), ("owntracks/anna/friend.bob/info", None)]


def test_a_phone_that_moved_to_another_worker_is_forgotten_without_removing_anything():
    broker = Broker()
    publisher = FriendsPublisher(broker.publish)
    publisher.update({"anna": family("anna")}, {"bob": row("bob", 2_000)})
    broker.take()
    assert publisher.update({}, {"bob": row("bob", 2_000)}) == 0 and broker.take() == []
    publisher.update({"anna": family("anna")}, {"bob": row("bob", 2_000)})
    assert len(broker.take()) == 2  # back on this worker: published again in full


def test_the_bridge_knows_a_friend_message_by_its_user_property():
    assert is_friend_message(SimpleNamespace(properties=SimpleNamespace(UserProperty=[MARK])))
    assert not is_friend_message(SimpleNamespace(properties=SimpleNamespace(UserProperty=[("a", "b")])))
    assert not is_friend_message(SimpleNamespace(properties=None))


def test_a_phone_taken_over_has_the_friends_it_may_no_longer_see_cleared():
    """What an earlier owner left retained: eve (no longer a friend) removed, bob published anew."""
    broker = Broker()
    publisher = FriendsPublisher(broker.publish)
    phones = {"anna": family("anna")}
    assert publisher.new_phones(phones) == ["anna"]
    publisher.update(phones, {"bob": row("bob", 2_000), "eve": row("eve", 3_000)}, {"anna": {"bob", "eve"}})
    published = broker.take()
    assert ("owntracks/anna/friend.eve", None) in published and ("owntracks/anna/friend.eve/info", None) in published
    assert [topic for topic, message in published if message is not None] == [
        "owntracks/anna/friend.bob", "owntracks/anna/friend.bob/info"]
    assert publisher.new_phones(phones) == []


def test_a_phone_that_is_no_longer_a_device_has_its_friends_cleared():
    broker = Broker()
    publisher = FriendsPublisher(broker.publish)
    rows = {"bob": row("bob", 2_000)}
    publisher.update({"anna": family("anna")}, rows)
    broker.take()
    assert publisher.update({}, rows, removed=["anna"]) == 2
    assert broker.take() == [("owntracks/anna/friend.bob", None), ("owntracks/anna/friend.bob/info", None)]
