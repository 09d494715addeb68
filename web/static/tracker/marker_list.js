/* The live map's list of markers: L.Control.TrackerMarkerList.

   A row per marker the viewer may see: a status dot, the id, the device's name, how long ago
   it was last heard from (its last fix, or a later heartbeat), its speed and a link to its
   track page. The search box filters by id or
   name as you type; the list sorts by id or by newest fix; the counts per status head it,
   and a click on one shows only the markers in that status. Only the rows in view exist in
   the page, so a list of 100,000 markers costs what a list of 30 does.

   source: {markers: Map of id -> marker, statusOf(marker), heardAt(marker) -> ms (optional:
   else its fix time), focus(id), follow(id or null), following() -> id or null}. The page calls update(membershipChanged) after each change. */
(function () {
  "use strict";

  var ROW_HEIGHT = 26;
  var STATUSES = ["moving", "stopped", "stale", "offline"];
  var REFILTER_MS = 2000;  // how often a list sorted by time, or filtered by status, is redone
  var TRACK_ICON = '<svg viewBox="0 0 16 16" width="14" height="14" aria-hidden="true"><path d="M2 13 L6 7 L9 10 L14 3" ' +
    'fill="none" stroke="currentColor" stroke-width="2"/></svg>';

  function ageText(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min";
    if (s < 86400) return Math.floor(s / 3600) + " h";
    return Math.floor(s / 86400) + " d";
  }
  function speedText(speed) {
    return typeof speed === "number" ? (speed * 3.6).toFixed(0) + " km/h" : "";
  }
  function el(tag, className, parent) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (parent) parent.appendChild(node);
    return node;
  }

  var CSS = [
    ".tracker-list{background:#fff;font:12px sans-serif;border-radius:4px;width:300px;max-width:calc(100vw - 80px);",
    "box-shadow:0 1px 5px rgba(0,0,0,.4)}",
    ".tracker-list-toggle{display:block;width:100%;border:0;background:none;padding:6px 8px;font:bold 12px sans-serif;",
    "text-align:left;cursor:pointer}",
    ".tracker-list-toggle::after{content:' \\25be'}",
    ".tracker-list.collapsed .tracker-list-toggle::after{content:' \\25b8'}",
    ".tracker-list.collapsed .tracker-list-body{display:none}",
    ".tracker-list-counts{display:flex;gap:4px;padding:0 8px 6px;flex-wrap:wrap}",
    ".tracker-list-count{border:1px solid #ccc;border-radius:10px;background:#fff;padding:1px 6px;font:11px sans-serif;cursor:pointer}",
    ".tracker-list-count[aria-pressed=true]{background:#eef4fb;border-color:#3d85c6}",
    ".tracker-list-tools{display:flex;gap:4px;padding:0 8px 6px}",
    ".tracker-list-search{flex:1;min-width:0;font:12px sans-serif;padding:2px 4px}",
    ".tracker-list-sort{font:12px sans-serif}",
    ".tracker-list-following{padding:2px 8px 6px;color:#0b5394}",
    ".tracker-list-following[hidden]{display:none}",
    ".tracker-list-following button{margin-left:6px;font:11px sans-serif}",
    ".tracker-list-scroll{position:relative;overflow-y:auto;max-height:min(50vh,calc(100vh - 260px));border-top:1px solid #eee}",
    ".tracker-list-rows{position:absolute;left:0;right:0;margin:0;padding:0;list-style:none}",
    ".tracker-list-row{display:flex;align-items:center;gap:6px;height:" + ROW_HEIGHT + "px;box-sizing:border-box;",
    "padding:0 8px;border-bottom:1px solid #f3f3f3;cursor:pointer;white-space:nowrap}",
    ".tracker-list-row:hover,.tracker-list-row:focus,.tracker-list-row.selected{background:#eef4fb}",
    ".tracker-list-id{font-weight:bold;overflow:hidden;text-overflow:ellipsis;max-width:110px}",
    ".tracker-list-name{color:#666;overflow:hidden;text-overflow:ellipsis;flex:1;min-width:0}",
    ".tracker-list-age,.tracker-list-speed{color:#444;font-variant-numeric:tabular-nums}",
    ".tracker-list-track{color:#0b5394;display:flex}",
    ".tracker-list-shown{padding:4px 8px;color:#666;border-top:1px solid #eee}",
    ".tracker-dot{display:inline-block;width:10px;height:10px;border-radius:50%;flex:none}",
    ".tracker-dot[data-status=moving]{background:#38761d}.tracker-dot[data-status=stopped]{background:#3d85c6}",
    ".tracker-dot[data-status=stale]{background:#e69138}.tracker-dot[data-status=offline]{background:#8c8c8c}",
  ].join("");

  L.Control.TrackerMarkerList = L.Control.extend({
    options: { position: "topleft" },

    initialize: function (source, options) {
      L.setOptions(this, options);
      this._source = source;
      this._shown = [];        // the markers listed, in order
      this._byId = null;       // every marker sorted by id, redone when markers come or go
      this._query = "";
      this._sort = "id";
      this._only = null;       // a status, or null for all
      this._filteredAt = 0;
      this._dirty = true;      // the list must be filtered again
      this._selected = null;
    },

    onAdd: function () {
      if (!document.getElementById("tracker-list-style")) {
        var style = el("style", null, document.head);
        style.id = "tracker-list-style";
        style.textContent = CSS;
      }
      var self = this, box = el("div", "tracker-list");
      this._toggle = el("button", "tracker-list-toggle", box);
      this._toggle.type = "button";
      var body = el("div", "tracker-list-body", box);
      var counts = el("div", "tracker-list-counts", body);
      this._countButtons = {};
      STATUSES.forEach(function (status) {
        var button = el("button", "tracker-list-count", counts);
        button.type = "button";
        button.dataset.status = status;
        button.setAttribute("aria-pressed", "false");
        button.title = "show only the markers " + status;
        self._countButtons[status] = button;
      });
      var tools = el("div", "tracker-list-tools", body);
      this._search = el("input", "tracker-list-search", tools);
      this._search.type = "search";
      this._search.placeholder = "Search id or name";
      this._search.setAttribute("aria-label", "search markers by id or name");
      this._sortBox = el("select", "tracker-list-sort", tools);
      this._sortBox.setAttribute("aria-label", "sort markers");
      [["id", "by id"], ["time", "newest fix first"]].forEach(function (option) {
        var item = el("option", null, self._sortBox);
        item.value = option[0];
        item.textContent = option[1];
      });
      this._following = el("div", "tracker-list-following", body);
      this._scroll = el("div", "tracker-list-scroll", body);
      this._spacer = el("div", null, this._scroll);
      this._rows = el("ol", "tracker-list-rows", this._scroll);
      this._count = el("div", "tracker-list-shown", body);

      var small = window.matchMedia("(max-width: 600px), (max-height: 500px)").matches;
      this._setOpen(box, !small);
      this._toggle.addEventListener("click", function () { self._setOpen(box, box.classList.contains("collapsed")); });
      counts.addEventListener("click", function (ev) {
        var button = ev.target.closest(".tracker-list-count");
        if (!button) return;
        self._only = self._only === button.dataset.status ? null : button.dataset.status;
        self._changed();
      });
      this._search.addEventListener("input", function () {
        self._query = self._search.value.trim().toLowerCase();
        self._changed();
      });
      this._sortBox.addEventListener("change", function () { self._sort = self._sortBox.value; self._changed(); });
      this._scroll.addEventListener("scroll", function () { self._render(); }, { passive: true });
      this._rows.addEventListener("click", function (ev) {
        if (ev.target.closest("a")) return;  // the track link goes to the track page
        var row = ev.target.closest(".tracker-list-row");
        if (row) self._focus(row.dataset.id);
      });
      this._rows.addEventListener("keydown", function (ev) {
        var row = ev.target.closest(".tracker-list-row");
        if (row && ev.target === row && (ev.key === "Enter" || ev.key === " ")) {
          ev.preventDefault();
          self._focus(row.dataset.id);
        }
      });
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      this._box = box;
      this.update(true);
      return box;
    },

    /** The page changed positions (and, if membershipChanged, which markers there are). */
    update: function (membershipChanged) {
      if (!this._box) return;
      if (membershipChanged) { this._byId = null; this._dirty = true; }
      var now = Date.now();
      if ((this._sort === "time" || this._only) && now - this._filteredAt >= REFILTER_MS) this._dirty = true;
      this._counts();
      if (this._dirty) this._filter(now);
      this._render();
    },

    /** The ids listed now, in order. */
    shown: function () { return this._shown.map(function (m) { return m.id; }); },

    _changed: function () {
      this._dirty = true;
      this._scroll.scrollTop = 0;
      this.update(false);
    },

    _setOpen: function (box, open) {
      box.classList.toggle("collapsed", !open);
      this._toggle.setAttribute("aria-expanded", open ? "true" : "false");
    },

    _counts: function () {
      var statusOf = this._source.statusOf, counts = { moving: 0, stopped: 0, stale: 0, offline: 0 };
      this._source.markers.forEach(function (m) { counts[statusOf(m)] += 1; });
      for (var status in counts) {
        var button = this._countButtons[status];
        button.replaceChildren();
        el("span", "tracker-dot", button).dataset.status = status;
        button.appendChild(document.createTextNode(" " + status + " " + counts[status].toLocaleString("en")));
        button.setAttribute("aria-pressed", this._only === status ? "true" : "false");
      }
      this._toggle.textContent = "Markers (" + this._source.markers.size.toLocaleString("en") + ")";
    },

    _filter: function (now) {
      var source = this._source, q = this._query, only = this._only, statusOf = source.statusOf;
      if (this._byId === null) {
        this._byId = Array.from(source.markers.values()).sort(function (a, b) { return a.id < b.id ? -1 : a.id > b.id ? 1 : 0; });
      }
      var shown = this._byId.filter(function (m) {
        if (only && statusOf(m) !== only) return false;
        if (!q) return true;
        return m.id.toLowerCase().indexOf(q) >= 0 || (typeof m.name === "string" && m.name.toLowerCase().indexOf(q) >= 0);
      });
      if (this._sort === "time") shown.sort(function (a, b) { return b.t - a.t; });
      this._shown = shown;
      this._dirty = false;
      this._filteredAt = now;
      this._spacer.style.height = shown.length * ROW_HEIGHT + "px";
      var total = source.markers.size;
      this._count.textContent = shown.length === total ? total.toLocaleString("en") + " markers"
        : shown.length.toLocaleString("en") + " of " + total.toLocaleString("en") + " markers";
    },

    _render: function () {
      var following = this._source.following();
      this._following.hidden = following === null;
      if (following !== null) {
        this._following.replaceChildren(document.createTextNode("following "), el("b"));
        this._following.lastChild.textContent = following;
        var stop = el("button", null, this._following);
        stop.type = "button";
        stop.textContent = "stop";
        stop.addEventListener("click", L.bind(function () { this._source.follow(null); }, this));
      }
      var first = Math.floor(this._scroll.scrollTop / ROW_HEIGHT);
      var count = Math.ceil((this._scroll.clientHeight || 400) / ROW_HEIGHT) + 1;
      var now = Date.now(), statusOf = this._source.statusOf, heardAt = this._source.heardAt;
      var rows = document.createDocumentFragment();
      var focused = document.activeElement && document.activeElement.closest && document.activeElement.closest(".tracker-list-row");
      var focusedId = focused ? focused.dataset.id : null, refocus = null;
      for (var i = first; i < Math.min(first + count, this._shown.length); i++) {
        var m = this._shown[i], row = el("li", "tracker-list-row", rows);
        row.tabIndex = 0;
        row.dataset.id = m.id;
        if (m.id === this._selected) row.classList.add("selected");
        el("span", "tracker-dot", row).dataset.status = statusOf(m);
        el("span", "tracker-list-id", row).textContent = m.id;
        el("span", "tracker-list-name", row).textContent = typeof m.name === "string" ? m.name : "";
        el("span", "tracker-list-age", row).textContent = ageText(now - (heardAt ? heardAt(m) : m.t));
        el("span", "tracker-list-speed", row).textContent = speedText(m.speed);
        var link = el("a", "tracker-list-track", row);
        link.href = "/map/" + encodeURIComponent(m.id);
        link.title = "track of " + m.id;
        link.innerHTML = TRACK_ICON;  // a constant: no device text
        if (m.id === focusedId) refocus = row;
      }
      this._rows.style.top = first * ROW_HEIGHT + "px";
      this._rows.replaceChildren(rows);
      if (refocus) refocus.focus({ preventScroll: true });
    },

    _focus: function (id) {
      // The rows stay as they are until the next update: the click that led here is still
      // on its way to the map, which must find it came from the panel.
      this._selected = id;
      Array.prototype.forEach.call(this._rows.children, function (row) { row.classList.toggle("selected", row.dataset.id === id); });
      this._source.focus(id);
    },
  });
})();
