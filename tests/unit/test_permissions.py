"""Who sees which marker: admins all, viewers their groups' ids and prefixes, links one."""
from tracker.accounts.permissions import Access, access_of, format_grant, parse_grant, share_access

POSITIONS = [{"marker_id": marker} for marker in ("car-1", "car-10", "truck-7", "truck-", "bike", "trucks")]


def viewer(*grants):
    return access_of(2, "bob", "viewer", [parse_grant(text) for text in grants], "token")


def test_an_admin_sees_every_marker():
    admin = access_of(1, "alice", "admin", [], "session")
    assert admin.keep(POSITIONS) == POSITIONS
    assert admin.permits("anything")


def test_a_viewer_sees_exact_ids_and_prefixes_of_its_groups_only():
    bob = viewer("car-1", "truck-*")
    assert [p["marker_id"] for p in bob.keep(POSITIONS)] == ["car-1", "truck-7", "truck-"]
    assert not bob.permits("car-10")  # an exact id is not a prefix
    assert not bob.permits("trucks")


def test_a_viewer_without_groups_sees_nothing():
    assert viewer().keep(POSITIONS) == []
    assert not viewer().permits("car-1")


def test_a_share_link_sees_its_one_marker():
    link = share_access(5, "car-1")
    assert link.permits("car-1") and not link.permits("car-10") and not link.is_admin


def test_callers_who_see_the_same_markers_share_a_scope_key():
    assert viewer("car-1", "truck-*").scope_key == viewer("truck-*", "car-1").scope_key
    assert viewer("car-1").scope_key != viewer("car-1", "truck-*").scope_key


def test_grants_round_trip_between_the_command_line_and_storage():
    assert parse_grant("truck-*") == ("truck-", True)
    assert parse_grant("truck-7") == ("truck-7", False)
    assert format_grant(*parse_grant("truck-*")) == "truck-*"


def test_a_viewer_is_shown_only_the_grants_it_may_see():
    from tracker.accounts.permissions import visible_grants

    viewer = Access(user="v", role="viewer", marker_ids=frozenset({"van-1", "car-3"}), prefixes=("bus-",))
    assert visible_grants(viewer, []) == []                       # every marker: shown as it is
    assert visible_grants(viewer, ["van-*", "truck-1"]) == ["van-1"]
    assert visible_grants(viewer, ["bus-*"]) == ["bus-*"]          # all of it visible
    assert visible_grants(viewer, ["bus-1*"]) == ["bus-1*"]
    assert visible_grants(viewer, ["b*"]) == ["bus-*"]             # its own, narrower
    assert visible_grants(viewer, ["truck-*", "car-1"]) is None    # nothing of it
    admin = Access(user="a", role="admin")
    assert visible_grants(admin, ["truck-*"]) == ["truck-*"]
