"""``GET /history`` and ``GET /reports``: where markers have been, for anyone signed in (each
sees only its markers).

- ``/history?markers=&group=&from=&to=``: their tracks on a map, a heatmap layer (cells from
  ``/api/heatmap``), trips and stops, a replay of every marker together with a time slider
  and a speed, and a speed and altitude chart under the map; then their statistics by day,
  week and month as charts, and the countries and cities visited
  (``web/static/tracker/history.js``).
- ``/reports``: trips, stops, events or a daily summary for markers or a group and a period,
  on screen and as CSV or XLSX downloads (``web/static/tracker/reports.js``).

Both are the management pages' shell (``web.admin_pages``) with their own scripts; the
charts are Chart.js and the heatmap leaflet.heat, pinned in ``web.assets``.
"""
from __future__ import annotations

from tracker.app import app
from web.admin_pages import PAGES, shell
from web.auth import require_page
from web.errors import HtmlPage


@app.page("/history", base=HtmlPage)
async def history_page(web, request):
    access = await require_page(request)
    return web.html(shell(access, next(page for page in PAGES if page.slug == "history")))


@app.page("/reports", base=HtmlPage)
async def reports_page(web, request):
    access = await require_page(request)
    return web.html(shell(access, next(page for page in PAGES if page.slug == "reports")))
