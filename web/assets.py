"""The map's JavaScript and CSS: one manifest, fetched from the npm registry at install time.

``python -m web.assets fetch`` (run by ``make install``) installs the pinned npm packages
into ``.cache/npm`` and copies the files the pages use into ``web/static/vendor``, which the
worker serves under ``/static/vendor/``. With ``TRACKER_MAP_ASSETS=cdn`` the pages load the
same files from a public CDN instead.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tracker.settings import settings

ROOT = Path(__file__).resolve().parent.parent
STATIC = Path(__file__).resolve().parent / "static"
VENDOR = STATIC / "vendor"
NPM_PREFIX = ROOT / ".cache" / "npm"
CDN = "https://cdn.jsdelivr.net/npm"


@dataclass(frozen=True)
class Asset:
    name: str  # the key Folium knows the asset by
    package: str
    version: str
    path: str  # inside the package

    @property
    def local_path(self) -> str:
        return f"{self.package}/{self.path}"

    @property
    def url(self) -> str:
        if settings.map_assets == "cdn":
            return f"{CDN}/{self.package}@{self.version}/{self.path}"
        return f"/static/vendor/{self.local_path}"


LEAFLET_JS = Asset("leaflet", "leaflet", "1.9.4", "dist/leaflet.js")
LEAFLET_CSS = Asset("leaflet_css", "leaflet", "1.9.4", "dist/leaflet.css")
JQUERY = Asset("jquery3.7.1", "jquery", "3.7.1", "dist/jquery.min.js")
JQUERY_UI = Asset("jqueryui1.10.2", "jquery-ui-dist", "1.13.3", "jquery-ui.min.js")
ISO8601 = Asset("iso8601", "iso8601-js-period", "0.2.1", "iso8601.js")
MOMENT = Asset("moment", "moment", "2.18.1", "min/moment.min.js")
TIMEDIMENSION_JS = Asset(
    "leaflet.timedimension", "leaflet-timedimension", "1.1.1", "dist/leaflet.timedimension.min.js"
)
TIMEDIMENSION_CSS = Asset(
    "leaflet.timedimension_css", "leaflet-timedimension", "1.1.1",
    "dist/leaflet.timedimension.control.css",
)
SUPERCLUSTER = Asset("supercluster", "supercluster", "9.1.0", "dist/supercluster.min.js")
#: Drawing and editing geofences on the map (``web/geofence_editor.py``).
GEOMAN_JS = Asset("leaflet_geoman", "@geoman-io/leaflet-geoman-free", "2.20.2", "dist/leaflet-geoman.min.js")
GEOMAN_CSS = Asset("leaflet_geoman_css", "@geoman-io/leaflet-geoman-free", "2.20.2", "dist/leaflet-geoman.css")
#: The history view's heatmap layer, drawn from the server's cells.
HEAT_JS = Asset("leaflet_heat", "leaflet.heat", "0.2.0", "dist/leaflet-heat.js")
#: The history view's and statistics' charts.
CHART_JS = Asset("chartjs", "chart.js", "4.6.1", "dist/chart.umd.min.js")
#: Leaflet's default marker icons, found relative to leaflet.css.
LEAFLET_IMAGES = [
    Asset(f"leaflet_{name}", "leaflet", "1.9.4", f"dist/images/{name}")
    for name in ("marker-icon.png", "marker-icon-2x.png", "marker-shadow.png", "layers.png", "layers-2x.png")
]

ALL = [LEAFLET_JS, LEAFLET_CSS, JQUERY, JQUERY_UI, ISO8601, MOMENT, TIMEDIMENSION_JS,
       TIMEDIMENSION_CSS, SUPERCLUSTER, *LEAFLET_IMAGES, GEOMAN_JS, GEOMAN_CSS, HEAT_JS, CHART_JS]


@dataclass(frozen=True)
class OwnAsset:
    """A file of this project under ``web/static``, served by the worker whatever
    ``TRACKER_MAP_ASSETS`` says; its URL carries a hash of its content, so that a browser
    holding an older copy (they are cached for a day) asks again after a change."""

    name: str
    path: str

    @property
    def url(self) -> str:
        return f"/static/{self.path}?v={_content_hash(self.path)}"


@lru_cache(maxsize=None)
def _content_hash(path: str) -> str:
    return hashlib.sha256((STATIC / path).read_bytes()).hexdigest()[:12]


MARKER_LAYER = OwnAsset("tracker_marker_layer", "tracker/marker_layer.js")
MARKER_LIST = OwnAsset("tracker_marker_list", "tracker/marker_list.js")
CLUSTER_WORKER = OwnAsset("tracker_cluster_worker", "tracker/cluster_worker.js")
REPLAY_BUTTONS = OwnAsset("tracker_replay_buttons", "tracker/replay_buttons.css")

#: What each kind of page loads, as Folium's (name, url) pairs.
MAP_JS = [LEAFLET_JS, MARKER_LAYER, MARKER_LIST]
MAP_CSS = [LEAFLET_CSS]
REPLAY_JS = [JQUERY, JQUERY_UI, ISO8601, TIMEDIMENSION_JS, MOMENT]
REPLAY_CSS = [TIMEDIMENSION_CSS, REPLAY_BUTTONS]


def pairs(assets: list[Asset | OwnAsset]) -> list[tuple[str, str]]:
    return [(asset.name, asset.url) for asset in assets]


def missing() -> list[str]:
    return [asset.local_path for asset in ALL if not (VENDOR / asset.local_path).is_file()]


def fetch() -> int:
    if not missing():
        print("assets: all present in web/static/vendor")
        return 0
    npm = shutil.which("npm")
    if npm is None:
        print("assets: npm is needed to fetch the map's JavaScript and CSS", file=sys.stderr)
        return 1
    specs = sorted({f"{asset.package}@{asset.version}" for asset in ALL})
    NPM_PREFIX.mkdir(parents=True, exist_ok=True)
    print(f"assets: npm install {' '.join(specs)}")
    result = subprocess.run(
        [npm, "install", "--no-save", "--no-audit", "--no-fund", "--ignore-scripts",
         "--prefix", str(NPM_PREFIX), *specs],
        stdout=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        print("assets: npm install failed", file=sys.stderr)
        return 1
    for asset in ALL:
        source = NPM_PREFIX / "node_modules" / asset.package / asset.path
        target = VENDOR / asset.local_path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    print(f"assets: {len(ALL)} files in {VENDOR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] != ["fetch"]:
        print("usage: python -m web.assets fetch", file=sys.stderr)
        sys.exit(2)
    sys.exit(fetch())
