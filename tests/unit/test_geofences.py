"""Geofences: what is accepted (with a reason when it is not) and which points they hold."""
import pytest

from tracker.geofences.model import BadGeofence, GeofenceIndex, parse_feature

SQUARE = {"type": "Polygon", "coordinates": [[[14.0, 45.0], [14.1, 45.0], [14.1, 45.1], [14.0, 45.1], [14.0, 45.0]]]}
TWO_SQUARES = {"type": "MultiPolygon", "coordinates": [
    [[[0.0, 0.0], [0.1, 0.0], [0.1, 0.1], [0.0, 0.1], [0.0, 0.0]]],
    [[[1.0, 1.0], [1.1, 1.0], [1.1, 1.1], [1.0, 1.1], [1.0, 1.0]]],
]}


def feature(geometry, **properties):
    return {"type": "Feature", "geometry": geometry, "properties": {"name": "zone", **properties}}


def test_a_polygon_holds_its_inside_and_its_edge_but_not_the_outside():
    zone = parse_feature(feature(SQUARE))
    assert zone.contains(45.05, 14.05) and zone.contains(45.0, 14.05)
    assert not zone.contains(45.2, 14.05)


def test_a_multipolygon_holds_each_part_and_not_the_gap():
    zone = parse_feature(feature(TWO_SQUARES))
    assert zone.contains(0.05, 0.05) and zone.contains(1.05, 1.05)
    assert not zone.contains(0.5, 0.5)


def test_a_circle_holds_points_within_its_radius_in_metres():
    depot = parse_feature(feature({"type": "Point", "coordinates": [2.35, 48.85]}, radius=500))
    assert depot.contains(48.85, 2.35)
    assert depot.contains(48.85 + 450 / 111_320, 2.35)  # 450 m north
    assert not depot.contains(48.85 + 550 / 111_320, 2.35)  # 550 m north


def test_the_index_finds_the_geofences_of_a_point_for_the_markers_they_apply_to():
    zones = [parse_feature(feature(SQUARE, name="square"), 1),
             parse_feature(feature({"type": "Point", "coordinates": [14.05, 45.05]}, radius=100, name="circle",
                                   markers=["truck-*"]), 2),
             parse_feature(feature(TWO_SQUARES, name="far"), 3)]
    index = GeofenceIndex(zones)
    assert [g.name for g in index.containing("truck-7", 45.05, 14.05)] == ["square", "circle"]
    assert [g.name for g in index.containing("car-1", 45.05, 14.05)] == ["square"]
    assert index.containing("car-1", 10.0, 10.0) == []


@pytest.mark.parametrize("bad, reason", [
    ({"type": "Polygon"}, "Feature"),
    (feature({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}), "Polygon, a MultiPolygon or a Point"),
    (feature({"type": "Point", "coordinates": [2.35, 48.85]}), "radius"),
    (feature({"type": "Point", "coordinates": [2.35, 48.85]}, radius=-5), "radius"),
    (feature({"type": "Point", "coordinates": [200, 48.85]}, radius=5), "longitude"),
    (feature({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}), "not valid: Self-intersection"),
    (feature({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [2, 2], [0, 0]]]}), "not valid"),
    (feature({"type": "Polygon", "coordinates": "x"}), "malformed"),
    (feature(SQUARE, name=""), "name"),
    (feature(SQUARE, markers="truck-7"), "markers"),
    (feature(SQUARE, markers=["bad id!"]), "not a marker id"),
    (feature(SQUARE, speed_limit="fast"), "speed_limit"),
])
def test_a_bad_geofence_says_what_is_wrong(bad, reason):
    with pytest.raises(BadGeofence, match=reason):
        parse_feature(bad)


def test_a_feature_round_trips_through_its_geojson():
    depot = parse_feature(feature({"type": "Point", "coordinates": [2.35, 48.85]}, radius=500, speed_limit=8.3,
                                  markers=["van-*"]), 9)
    again = parse_feature(depot.feature(), 9)
    assert again == depot and again.feature()["id"] == 9


def test_every_ring_of_every_part_counts_towards_the_vertices():
    from tracker.geofences.model import vertex_count

    square = [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]
    hole = [[0.2, 0.2], [0.4, 0.2], [0.4, 0.4], [0.2, 0.2]]
    assert vertex_count({"type": "Polygon", "coordinates": [square, hole]}) == 9
    assert vertex_count({"type": "MultiPolygon", "coordinates": [[square, hole], [square]]}) == 14
    assert vertex_count({"type": "Point", "coordinates": [0, 0]}) == 1
    assert vertex_count({"type": "MultiPolygon", "coordinates": "x"}) == -1
    many = {"type": "Feature", "properties": {"name": "parts"}, "geometry": {
        "type": "MultiPolygon", "coordinates": [[[[i, 0], [i + 0.5, 0], [i + 0.5, 0.5], [i, 0]]] for i in range(10)]}}
    with pytest.raises(BadGeofence, match="at most 39 vertices .* has 40"):
        parse_feature(many, max_vertices=39)
    assert parse_feature(many, max_vertices=40).name == "parts"
