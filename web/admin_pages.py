"""``GET /admin/{page}``: the pages for the people who run the tracker: devices (with a phone's
settings as text and QR codes), users, groups, geofences drawn on a map
(``web/static/tracker/geofence_editor.js``), track files imported from the browser
(``web/static/tracker/import.js``), API tokens, webhooks (with their recent
deliveries and a test event), gateways, share links and the audit trail.

Each page is a small HTML shell, the same for all, and ``web/static/tracker/admin.js``,
which reads and changes everything through the JSON API (``web/devices.py`` and its
neighbours) and shows the API's own error messages. An admin sees every page; a viewer
only its tokens and share links, and no link to the others (403 if it asks for one).
"""
from __future__ import annotations

import html

from tracker.app import app
from tracker.settings import settings
from web import assets
from web.auth import require_page
from web.errors import Forbidden, HtmlPage, NotFound

ADMIN_JS = assets.OwnAsset("tracker_admin", "tracker/admin.js")
ADMIN_CSS = assets.OwnAsset("tracker_admin_css", "tracker/admin.css")
GEOFENCE_JS = assets.OwnAsset("tracker_geofence_editor", "tracker/geofence_editor.js")
HISTORY_JS = assets.OwnAsset("tracker_history", "tracker/history.js")
REPORTS_JS = assets.OwnAsset("tracker_reports", "tracker/reports.js")
QUERY_JS = assets.OwnAsset("tracker_query_form", "tracker/query_form.js")
IMPORT_JS = assets.OwnAsset("tracker_import", "tracker/import.js")


class Page:
    def __init__(self, slug: str, title: str, admin_only: bool = True, path: str | None = None,
                 scripts: tuple = (), styles: tuple = (), body: str = "") -> None:
        self.slug, self.title, self.admin_only = slug, title, admin_only
        self.path = path or f"/admin/{slug}"
        #: More of the page: its own scripts (after admin.js), stylesheets, and HTML before the lists.
        self.scripts, self.styles, self.body = scripts, styles, body


QUERY_FORM = """<form id="query" class="entry" aria-label="Which markers and when">
<label for="q-markers">Markers (ids, or prefixes ending in *)<input id="q-markers" name="markers" placeholder="truck-7, van-*"></label>
<label for="q-group">or a group<input id="q-group" name="group"></label>
<label for="q-from">From<input id="q-from" name="from" type="datetime-local"></label>
<label for="q-to">To<input id="q-to" name="to" type="datetime-local"></label>
{more}<div><button type="submit" class="primary">Show</button></div></form>"""

HISTORY_BODY = QUERY_FORM.format(more="""<label for="q-view">Show<select id="q-view" name="view">
<option value="">tracks, replay and heatmap</option><option value="heatmap">the heatmap only</option></select></label>
""") + """
<div id="history-map" role="region" aria-label="Map of the tracks"></div>
<div id="replay" role="group" aria-label="Replay of the tracks">
<button type="button" id="replay-play">Play</button>
<label for="replay-time">Time</label><input id="replay-time" type="range" min="0" max="1000" value="0">
<output id="replay-clock" for="replay-time">—</output>
<label for="replay-speed">Speed</label><select id="replay-speed"><option value="10">10×</option>
<option value="60" selected>60×</option><option value="600">600×</option><option value="3600">3600×</option></select></div>
<figure id="profile"><div class="chart"><canvas id="profile-chart" role="img" aria-label="Speed and altitude over time"></canvas></div>
<figcaption>Speed (km/h) and, where known, altitude (m) over time.</figcaption></figure>"""

REPORTS_BODY = QUERY_FORM.format(more="""<label for="q-kind">Report<select id="q-kind" name="kind">
<option value="trips">Trips</option><option value="stops">Stops</option><option value="events">Events</option>
<option value="summary">Daily summary</option></select></label>
<label for="q-tz">Time zone<input id="q-tz" name="tz" placeholder="UTC"></label>
""")

GEOFENCES_BODY = """<p id="geofence-help">Draw a polygon, a rectangle or a circle with the tools on the map, or add a
circle at the map's centre with the button below; then name it and save it. Choose a geofence on the map or in the
list to move or reshape it (drag it, or its corners and edges), or to change or delete it.</p>
<div id="geofence-map" role="region" aria-label="Map of the geofences" aria-describedby="geofence-help"></div>"""


#: The pages and the navigation, in order.
PAGES = [Page("map", "Live map", False, "/map"),
         Page("history", "History", False, "/history", scripts=(assets.LEAFLET_JS, assets.HEAT_JS, assets.CHART_JS,
                                                                 QUERY_JS, HISTORY_JS), styles=(assets.LEAFLET_CSS,),
              body=HISTORY_BODY),
         Page("reports", "Reports", False, "/reports", scripts=(QUERY_JS, REPORTS_JS), body=REPORTS_BODY),
         Page("devices", "Devices"), Page("users", "Users"), Page("groups", "Groups"),
         Page("geofences", "Geofences", scripts=(assets.LEAFLET_JS, assets.GEOMAN_JS, GEOFENCE_JS),
              styles=(assets.LEAFLET_CSS, assets.GEOMAN_CSS), body=GEOFENCES_BODY),
         Page("import", "Import", scripts=(IMPORT_JS,)),
         Page("tokens", "API tokens", False), Page("webhooks", "Webhooks"),
         Page("gateways", "Gateways"), Page("shares", "Share links", False), Page("audit", "Audit trail")]

BY_SLUG = {page.slug: page for page in PAGES if page.path.startswith("/admin/")}

SHELL = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}: GPS tracker</title>{styles}<link rel="stylesheet" href="{css}"></head>
<body data-page="{slug}" data-role="{role}" data-user="{user}" data-tiles="{tiles}" data-attribution="{attribution}">
<a class="skip" href="#main">Skip to the content</a>
<header><nav aria-label="Sections"><ul>{links}</ul></nav>
<form method="post" action="/logout"><button type="submit">Sign out {user}</button></form></header>
<main id="main" tabindex="-1"><h1>{title}</h1>
<p id="error" class="error" role="alert" hidden></p>
{body}<div id="content" aria-live="polite"></div></main>
<script src="{js}"></script>{scripts}</body></html>
"""


def navigation(is_admin: bool, current: str) -> str:
    """The links a user may follow: an admin all, a viewer only its own pages."""
    current_mark = ' aria-current="page"'
    return "".join(
        f'<li><a href="{page.path}"{current_mark if page.slug == current else ""}>{html.escape(page.title)}</a></li>'
        for page in PAGES if is_admin or not page.admin_only)


def shell(access, page: Page) -> str:
    return SHELL.format(
        title=html.escape(page.title), css=ADMIN_CSS.url, js=ADMIN_JS.url, slug=page.slug,
        role=html.escape(access.role), user=html.escape(access.user, quote=True),
        tiles=html.escape(settings.tile_url, quote=True), attribution=html.escape(settings.tile_attribution, quote=True),
        links=navigation(access.is_admin, page.slug), body=page.body,
        styles="".join(f'<link rel="stylesheet" href="{html.escape(s.url)}">' for s in page.styles),
        scripts="".join(f'<script src="{html.escape(s.url)}"></script>' for s in page.scripts))


@app.page("/admin/{page}", base=HtmlPage)
async def admin_page(web, request, page: str):
    access = await require_page(request)
    found = BY_SLUG.get(page)
    if found is None:
        raise NotFound("not_found", f"no page {page[:40]!r}")
    if found.admin_only and not access.is_admin:
        raise Forbidden("forbidden", "only an admin may see this page")
    return web.html(shell(access, found))
