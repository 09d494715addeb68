"""The OpenAPI document describes exactly the views the workers serve."""
import re
from pathlib import Path

import yaml

import web.events, web.geofences, web.health, web.history, web.index, web.ingest, web.journeys, web.live, web.login, web.map, web.markers, web.metrics, web.shares, web.static_files, web.webhooks  # noqa: F401,E401
import web.admin_pages, web.audit, web.devices, web.gateways, web.groups, web.history_page, web.imports, web.reports, web.stats, web.tokens, web.tracks, web.users, web.webhook_test  # noqa: F401,E401
from tracker.app import app

DOC = yaml.safe_load((Path(__file__).parents[2] / "web" / "openapi.yaml").read_text())


def test_every_view_is_documented_and_nothing_else():
    served = {re.sub(r"\{(\w+):[^}]+\}", r"{\1}", path) for path in app.web.views}
    assert served == set(DOC["paths"])


def test_every_path_parameter_is_declared():
    for path, item in DOC["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "put"):
                continue
            declared = set()
            for parameter in operation.get("parameters", []):
                if "$ref" in parameter:
                    parameter = DOC["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[1]]
                if parameter["in"] == "path":
                    declared.add(parameter["name"])
            assert declared == set(re.findall(r"\{(\w+)\}", path)), (path, method)


def test_documented_methods_are_the_served_ones():
    for path, view in app.web.views.items():
        documented = {m.upper() for m in DOC["paths"][re.sub(r"\{(\w+):[^}]+\}", r"{\1}", path)]
                      if m in ("get", "post", "put", "patch", "delete")}
        served = view.get_methods() - {"HEAD"}
        assert documented == served, path


def test_the_documented_marker_id_pattern_is_the_one_applied():
    from tracker.positions.model import MARKER_ID_PATTERN

    assert DOC["components"]["parameters"]["MarkerId"]["schema"]["pattern"] == f"^{MARKER_ID_PATTERN.pattern}$"


def test_the_documented_event_types_and_limits_are_the_served_ones():
    from tracker.events.model import TYPES
    from web.events import DEFAULT_LIMIT, MAX_LIMIT

    assert DOC["components"]["schemas"]["Event"]["properties"]["type"]["enum"] == list(TYPES)
    assert DOC["components"]["parameters"]["EventTypes"]["schema"]["items"]["enum"] == list(TYPES)
    limit = DOC["components"]["parameters"]["EventLimit"]["schema"]
    assert (limit["default"], limit["maximum"]) == (DEFAULT_LIMIT, MAX_LIMIT)
