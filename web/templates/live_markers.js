(function () {
  var map = {{ this._parent.get_name() }};
  var source = {{ this.source|tojson }};
  var refreshMs = {{ this.refresh_ms }};
  var staleAfterMs = {{ this.stale_after }} * 1000;
  var offlineAfterMs = {{ this.offline_after }} * 1000;
  var movingSpeed = {{ this.moving_speed }};
  // Optional parts, each null or false unless the page asked for it (a share link has none).
  var geofenceSource = {{ this.geofences|tojson }};
  var geofenceRefreshMs = {{ this.geofence_refresh_ms }};
  var eventSource = {{ this.events|tojson }};
  var eventsShown = {{ this.events_shown }};
  // The push feed (Server-Sent Events, web/live.py), or null: then the page polls `source`.
  var liveSource = {{ this.live|tojson }};
  var withList = {{ this.marker_list|tojson }};      // the side panel listing the markers
  var keepView = {{ this.keep_view|tojson }};        // the view (and followed marker) in the URL's hash
  var trackLinks = {{ this.track_links|tojson }};    // popups link to /map/{id}
  var renderer = L.canvas({ padding: 0.5 });  // the geofences'
  // A Map, not an object: a marker id is whatever a device chose, and ids such as
  // "__proto__" or "constructor" would otherwise read or replace the object's own members.
  // A marker: {id, lat, lon, t (fix time, ms), speed, heading, battery, moving, source, name,
  // heard (when the tracker last received a fix or heartbeat of it, ms)}.
  var markers = new Map();
  var fitted = false;
  var followed = null, popupId = null;
  var popup = L.popup({ autoPan: false, offset: [0, -4] });
  var layer = new L.TrackerMarkers(markers, statusOf, {{ this.layer_options|tojson }}).addTo(map);
  var list = null;
  window.tracker = { map: map, markers: markers, layer: layer, updates: 0, describeEvent: describeEvent,
                     openPopup: openPopup, focus: focus, popupId: function () { return popupId; }, follow: follow,
                     following: function () { return followed; }, statusOf: statusOf, heardAt: heardAt };

  var status = L.control({ position: "bottomleft" });
  status.onAdd = function () {
    this.el = L.DomUtil.create("div", "tracker-status");
    this.el.style.cssText = "background:#fff;padding:2px 6px;font:12px sans-serif;border-radius:3px";
    return this.el;
  };
  status.addTo(map);

  function heardAt(m) { return typeof m.heard === "number" && m.heard > m.t ? m.heard : m.t; }
  function statusOf(m) {
    // A parked phone whose heartbeats keep coming is not offline: its silence counts, not its fix's age.
    var age = Date.now() - heardAt(m);
    if (age > offlineAfterMs) return "offline";
    if (age > staleAfterMs) return "stale";
    if (m.moving === true || (m.moving !== false && typeof m.speed === "number" && m.speed > movingSpeed)) return "moving";
    return "stopped";
  }
  function fmt(value, unit, scale, digits) {
    return value === null || value === undefined ? "unknown" : (value * scale).toFixed(digits) + unit;
  }
  function line(parent, label, value) {
    var row = document.createElement("div");
    var name = document.createElement("b");
    name.textContent = label + ": ";
    row.appendChild(name);
    row.appendChild(document.createTextNode(value));
    parent.appendChild(row);
  }
  function popupBox(m) {
    // Built from text nodes: whatever a device sent is shown as text, never parsed as HTML.
    var box = document.createElement("div"), age = Math.max(0, Math.round((Date.now() - m.t) / 1000));
    box.className = "tracker-popup";
    line(box, "marker", m.id);
    if (typeof m.name === "string") line(box, "name", m.name);
    line(box, "fix", new Date(m.t).toISOString() + " (" + age + " s ago), " + statusOf(m));
    var heard = heardAt(m);
    if (heard > m.t) line(box, "last heard", new Date(heard).toISOString() + " (" +
                               Math.max(0, Math.round((Date.now() - heard) / 1000)) + " s ago)");
    line(box, "speed", fmt(m.speed, " km/h", 3.6, 1));
    line(box, "heading", fmt(m.heading, "\u00b0", 1, 0));
    line(box, "battery", fmt(m.battery, " %", 1, 0));
    if (m.source) line(box, "source", m.source);
    var actions = L.DomUtil.create("div", "tracker-popup-actions", box);
    var toggle = L.DomUtil.create("button", "tracker-follow", actions);
    toggle.type = "button";
    toggle.textContent = followed === m.id ? "stop following" : "follow";
    toggle.setAttribute("aria-pressed", followed === m.id ? "true" : "false");
    toggle.addEventListener("click", function () { follow(followed === m.id ? null : m.id); });
    if (trackLinks) {
      var link = L.DomUtil.create("a", "tracker-track-link", actions);
      link.href = "/map/" + encodeURIComponent(m.id);
      link.textContent = "track";
      link.style.marginLeft = "8px";
    }
    return box;
  }
  function openPopup(id) {
    var m = markers.get(id);
    if (!m) return false;
    popupId = id;
    popup.setLatLng([m.lat, m.lon]).setContent(popupBox(m)).openOn(map);
    return true;
  }
  map.on("popupclose", function (e) { if (e.popup === popup) popupId = null; });
  layer.on("markerclick", function (e) { openPopup(e.id); });

  /** Keep the map centred on a marker as it moves (null: stop). Dragging the map stops it. */
  function follow(id) {
    followed = id !== null && markers.has(id) ? id : null;
    if (followed !== null) {
      var m = markers.get(followed);
      map.setView([m.lat, m.lon], map.getZoom(), { animate: false });
    }
    // The popup's button says what it does now. Changed in place: this may run inside that
    // button's click, which the map must still find came from the popup (a replaced button
    // is detached, and the map would take the click as its own and close the popup).
    var toggle = popup.getElement() && popup.getElement().querySelector(".tracker-follow");
    if (toggle) {
      toggle.textContent = followed !== null && followed === popupId ? "stop following" : "follow";
      toggle.setAttribute("aria-pressed", followed !== null && followed === popupId ? "true" : "false");
    }
    if (list) list.update(false);
    saveView();
  }
  map.on("dragstart", function () { if (followed !== null) follow(null); });

  function focus(id) {
    var m = markers.get(id);
    if (!m) return;
    map.setView([m.lat, m.lon], Math.max(map.getZoom(), 15), { animate: false });
    openPopup(id);
  }

  // --- the view in the URL: #zoom/lat/lon, and /marker when one is followed ------------

  var wanted = null;  // a followed marker named by the URL, until it is known
  function saveView() {
    if (!keepView) return;
    var c = map.getCenter(), z = map.getZoom();
    var hash = "#" + z + "/" + c.lat.toFixed(5) + "/" + c.lng.toFixed(5) +
      (followed !== null ? "/" + encodeURIComponent(followed) : wanted !== null ? "/" + encodeURIComponent(wanted) : "");
    if (window.location.hash !== hash) history.replaceState(null, "", hash);
  }
  function readView() {
    var parts = window.location.hash.slice(1).split("/");
    var z = Number(parts[0]), lat = Number(parts[1]), lon = Number(parts[2]);
    if (parts.length < 3 || !isFinite(z) || !isFinite(lat) || !isFinite(lon) || Math.abs(lat) > 90) return false;
    map.setView([lat, lon], Math.max(0, Math.min(z, map.getMaxZoom() || 19)), { animate: false });
    if (parts.length > 3 && parts[3]) {
      try { wanted = decodeURIComponent(parts.slice(3).join("/")); } catch (e) { wanted = null; }
    }
    return true;
  }
  if (keepView) {
    fitted = readView();
    map.on("moveend", saveView);
  }

  // --- the markers: drawn by the layer, listed by the panel ------------------------------

  function drawn(how, box, membership) {
    if (!fitted && box) {
      fitted = true;
      map.fitBounds([[box[0], box[1]], [box[2], box[3]]], { maxZoom: 15, padding: [20, 20], animate: false });
    }
    if (wanted !== null && markers.has(wanted)) { var id = wanted; wanted = null; follow(id); }
    if (followed !== null) {
      var f = markers.get(followed);
      if (!f) follow(null);
      else if (!map.getCenter().equals([f.lat, f.lon], 1e-9)) map.panTo([f.lat, f.lon], { animate: false });
    }
    if (popupId !== null) {
      var m = markers.get(popupId);
      if (!m) map.closePopup(popup);
      else popup.setLatLng([m.lat, m.lon]).setContent(popupBox(m));
    }
    layer.changed();
    if (list) list.update(membership);
    window.tracker.updates += 1;
    status.el.textContent = markers.size + " markers, " + how + " " + new Date().toLocaleTimeString();
  }
  /** Puts a marker where it is now; true if it is new. */
  function place(m) {
    var known = markers.has(m.id);
    markers.set(m.id, m);
    return !known;
  }
  function extend(box, m) {
    if (!box) return [m.lat, m.lon, m.lat, m.lon];
    if (m.lat < box[0]) box[0] = m.lat;
    if (m.lon < box[1]) box[1] = m.lon;
    if (m.lat > box[2]) box[2] = m.lat;
    if (m.lon > box[3]) box[3] = m.lon;
    return box;
  }
  function fromFeature(f) {
    var p = f.properties;
    return { id: p.marker_id, lat: f.geometry.coordinates[1], lon: f.geometry.coordinates[0], t: Date.parse(p.time),
             speed: p.speed, heading: p.heading, battery: p.battery, moving: p.moving, source: p.source, name: p.name,
             heard: p.heard_at ? Date.parse(p.heard_at) : null };
  }
  function draw(collection) {
    var seen = new Set(), box = null, membership = false;
    collection.features.forEach(function (f) {
      var m = fromFeature(f);
      seen.add(m.id);
      box = extend(box, m);
      membership = place(m) || membership;
    });
    markers.forEach(function (m, id) { if (!seen.has(id)) { markers.delete(id); membership = true; } });
    drawn("updated", box, membership);
  }
  function refresh() {
    fetch(source, { cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) {  // the session ended: sign in again, then come back here
          window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname + window.location.search));
        }
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(draw)
      .catch(function (e) { status.el.textContent = "update failed: " + e.message + "; retrying"; });
  }
  function poll(notice) {
    if (window.tracker.polling) return;
    window.tracker.polling = true;
    if (notice) {
      var box = L.DomUtil.create("div", "tracker-fallback", map.getContainer());
      box.style.cssText = "position:absolute;bottom:30px;left:50%;transform:translateX(-50%);z-index:1000;" +
        "background:#fce5cd;padding:4px 8px;font:12px sans-serif;border-radius:3px";
      box.textContent = notice;
    }
    refresh();
    setInterval(refresh, refreshMs);
  }

  // --- the push feed: a snapshot, then only what changed --------------------------------

  function fromRow(row) {
    return { id: row[0], lat: row[1], lon: row[2], t: row[3], speed: row[4], heading: row[5], battery: row[6],
             moving: row[7], source: row[8], name: row[9], heard: row.length > 10 ? row[10] : null };
  }
  // A message's markers, from its rows ("m") or from its columns ("c", the layout this page
  // asks for): one array per field, times in ms before the message's "t" ("age") and after
  // the fix ("heard"), a field null in every row left out.
  function markersOf(body) {
    if (body.m) return body.m.map(fromRow);
    var c = body.c, t = body.t, out = new Array(c.id.length);
    function field(name, i) { return c[name] ? c[name][i] : null; }
    for (var i = 0; i < out.length; i++) {
      var time = t - c.age[i];
      out[i] = { id: c.id[i], lat: c.lat[i], lon: c.lon[i], t: time, speed: field("speed", i),
                 heading: field("heading", i), battery: field("battery", i), moving: field("moving", i),
                 source: field("source", i), name: field("name", i), heard: time + c.heard[i] };
    }
    return out;
  }
  window.tracker.markersOf = markersOf;
  function apply(body, snapshot) {
    var box = null, seen = snapshot ? new Set() : null, membership = false, found = markersOf(body);
    for (var i = 0; i < found.length; i++) {
      var m = found[i];
      if (seen) seen.add(m.id);
      if (snapshot) box = extend(box, m);
      membership = place(m) || membership;
    }
    body.r.forEach(function (id) { membership = markers.delete(id) || membership; });
    if (seen) markers.forEach(function (m, id) { if (!seen.has(id)) { markers.delete(id); membership = true; } });
    drawn("live", box, membership);
  }
  function listen() {
    var feed = new EventSource(liveSource);
    var opened = false;
    var fallback = "live updates unavailable: refreshing every " + Math.round(refreshMs / 1000) + " s instead";
    window.tracker.feed = feed;
    feed.addEventListener("snapshot", function (e) { opened = true; apply(JSON.parse(e.data), true); });
    feed.addEventListener("update", function (e) { apply(JSON.parse(e.data), false); });
    feed.onerror = function () {
      // A dropped connection reconnects by itself (with Last-Event-ID); a refused one does not.
      if (feed.readyState === EventSource.CLOSED) poll(fallback);
      else status.el.textContent = "live updates interrupted; reconnecting";
    };
    setTimeout(function () { if (!opened) { feed.close(); poll(fallback); } }, 10000);
  }

  if (withList) {
    list = new L.Control.TrackerMarkerList({ markers: markers, statusOf: statusOf, heardAt: heardAt, focus: focus,
                                             follow: follow, following: function () { return followed; } }).addTo(map);
    window.tracker.list = list;
  }

  // --- events: what each row says ---------------------------------------------------

  function short(x) { return String(Math.round(Number(x) * 10) / 10); }
  function known(x) { return x !== null && x !== undefined && x !== ""; }
  function describeEvent(e) {
    var area = known(e.geofence_name) ? String(e.geofence_name)
      : known(e.geofence_id) ? "geofence " + e.geofence_id : "a geofence";
    var text;
    switch (e.type) {
      case "geofence_enter": text = "entered " + area; break;
      case "geofence_exit": text = "left " + area; break;
      case "overspeed":
        text = "speeding" + (known(e.speed) ? " " + Number(e.speed).toFixed(1) + " m/s" : "")
          + (known(e.limit) ? " (limit " + short(e.limit) + ")" : "");
        break;
      case "low_battery": text = "battery" + (known(e.battery) ? " " + short(e.battery) + " %" : " low"); break;
      case "offline": text = "offline"; break;
      case "online": text = "back online"; break;
      case "alarm": text = "ALARM" + (known(e.alarm) ? " " + String(e.alarm) : ""); break;
      default: text = String(e.type);
    }
    return e.late === true ? text + " (late)" : text;
  }

  // --- geofences: a layer of their own, under the markers, refreshed now and then -----

  function geofenceLabel(p) {
    var box = document.createElement("div");
    var name = document.createElement("b");
    name.textContent = known(p.name) ? String(p.name) : "geofence";
    box.appendChild(name);
    if (known(p.speed_limit)) box.appendChild(document.createTextNode(", speed limit " + short(p.speed_limit) + " m/s"));
    return box;
  }
  function geofenceShape(f) {
    var g = f.geometry || {}, p = f.properties || {};
    var options = { renderer: renderer, color: "#b45f06", weight: 2, fillColor: "#f6b26b", fillOpacity: 0.15 };
    var layer;
    if (g.type === "Point" && typeof p.radius === "number") {
      layer = L.circle([g.coordinates[1], g.coordinates[0]], Object.assign({ radius: p.radius }, options));
    } else if (g.type === "Polygon") {
      layer = L.polygon(L.GeoJSON.coordsToLatLngs(g.coordinates, 1), options);
    } else if (g.type === "MultiPolygon") {
      layer = L.polygon(L.GeoJSON.coordsToLatLngs(g.coordinates, 2), options);
    } else {
      return null;
    }
    layer.geofenceId = f.id;
    layer.bindTooltip(geofenceLabel(p), { sticky: true });
    // Same canvas as the markers, drawn first: the markers stay on top and clickable.
    layer.on("add", function () { layer.bringToBack(); });
    return layer;
  }
  function startGeofences() {
    var layer = L.featureGroup().addTo(map);
    var lastBody = null, fetchedAt = 0;
    window.tracker.geofences = layer;
    window.tracker.geofenceUpdates = 0;
    L.control.layers(null, { "Geofences": layer }, { position: "topright" }).addTo(map);
    function load() {
      if (!map.hasLayer(layer)) return;  // hidden: nothing to fetch until it is shown again
      fetchedAt = Date.now();
      fetch(geofenceSource, { cache: "no-store" })
        .then(function (r) {
          if (!r.ok) throw new Error("HTTP " + r.status);
          return r.text();
        })
        .then(function (body) {
          if (body !== lastBody) {  // they rarely change: redraw only when they did
            var features = JSON.parse(body).features || [];
            layer.clearLayers();
            features.forEach(function (f) {
              var shape = geofenceShape(f);
              if (shape) layer.addLayer(shape);
            });
            lastBody = body;
          }
          window.tracker.geofenceUpdates += 1;
        })
        .catch(function () { /* kept as drawn; the next period tries again */ });
    }
    map.on("overlayadd", function (e) {
      if (e.layer === layer && Date.now() - fetchedAt >= geofenceRefreshMs) load();
    });
    load();
    setInterval(load, geofenceRefreshMs);
  }

  // --- events: a collapsible panel of the newest, each row leading to its marker ------

  function when(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    return d.toDateString() === new Date().toDateString() ? d.toLocaleTimeString() : d.toLocaleString();
  }
  function startEvents() {
    var style = document.createElement("style");
    style.textContent = [
      ".tracker-events{background:#fff;font:12px sans-serif;border-radius:4px;width:320px;",
      "max-width:calc(100vw - 80px);box-shadow:0 1px 5px rgba(0,0,0,.4)}",
      ".tracker-events-toggle{display:block;width:100%;border:0;background:none;padding:6px 8px;",
      "font:bold 12px sans-serif;text-align:left;cursor:pointer}",
      ".tracker-events-toggle::after{content:' \u25be'}",
      ".tracker-events.collapsed .tracker-events-toggle::after{content:' \u25b8'}",
      ".tracker-events.collapsed .tracker-events-body{display:none}",
      ".tracker-events-notice{padding:0 8px 6px;color:#a61c00}",
      ".tracker-events-notice:empty{display:none}",
      ".tracker-events-list{list-style:none;margin:0;padding:0;max-height:min(50vh,calc(100vh - 200px));overflow-y:auto}",
      ".tracker-event{padding:4px 8px;border-top:1px solid #eee;border-left:4px solid #999;cursor:pointer}",
      ".tracker-event:hover,.tracker-event:focus,.tracker-event.selected{background:#eef4fb}",
      ".tracker-event[data-type=geofence_enter],.tracker-event[data-type=online]{border-left-color:#38761d}",
      ".tracker-event[data-type=overspeed]{border-left-color:#cc0000}",
      ".tracker-event[data-type=low_battery]{border-left-color:#e69138}",
      ".tracker-event[data-type=alarm]{border-left-color:#cc0000;background:#f4cccc;font-weight:bold}",
      ".tracker-event-time{color:#666;margin-right:6px}",
      ".tracker-event-marker{font-weight:bold;margin-right:6px}",
      "@media (max-height:500px){.tracker-events-list{max-height:calc(100vh - 160px)}}",
    ].join("");
    document.head.appendChild(style);

    var panel = L.control({ position: "topright" });
    var list, notice, toggle, shown = [], signature = null;
    panel.onAdd = function () {
      var box = L.DomUtil.create("div", "tracker-events");
      toggle = L.DomUtil.create("button", "tracker-events-toggle", box);
      toggle.type = "button";
      toggle.textContent = "Events";
      var body = L.DomUtil.create("div", "tracker-events-body", box);
      notice = L.DomUtil.create("div", "tracker-events-notice", body);
      list = L.DomUtil.create("ol", "tracker-events-list", body);
      // Small screens start with the panel folded, leaving the map to the map.
      var small = window.matchMedia("(max-width: 600px), (max-height: 500px)").matches;
      setOpen(box, !small);
      toggle.addEventListener("click", function () { setOpen(box, box.classList.contains("collapsed")); });
      list.addEventListener("click", function (ev) {
        if (ev.target.closest("a")) return;  // the marker id: its link leads to the track page
        var row = ev.target.closest(".tracker-event");
        if (row) focusEvent(row);
      });
      list.addEventListener("keydown", function (ev) {
        var row = ev.target.closest(".tracker-event");
        if (row && ev.target === row && (ev.key === "Enter" || ev.key === " ")) { ev.preventDefault(); focusEvent(row); }
      });
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      return box;
    };
    panel.addTo(map);
    window.tracker.events = shown;
    window.tracker.eventUpdates = 0;
    window.tracker.eventsPanel = panel;

    function setOpen(box, open) {
      box.classList.toggle("collapsed", !open);
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    }
    function focusEvent(row) {
      var e = shown[Number(row.dataset.index)];
      if (!e) return;
      Array.prototype.forEach.call(list.children, function (r) { r.classList.toggle("selected", r === row); });
      var m = markers.get(e.marker_id);
      var at = m ? L.latLng(m.lat, m.lon)
        : e.position && typeof e.position.lat === "number" ? L.latLng(e.position.lat, e.position.lon) : null;
      if (!at) return;
      map.closePopup();
      if (m) map.once("moveend", function () { if (markers.has(e.marker_id)) openPopup(e.marker_id); });
      map.setView(at, Math.max(map.getZoom(), 14));
    }
    function row(e, index) {
      var item = document.createElement("li");
      item.className = "tracker-event";
      item.tabIndex = 0;
      item.dataset.index = String(index);
      item.dataset.type = String(e.type);
      var time = document.createElement("time");
      time.className = "tracker-event-time";
      time.dateTime = String(e.time);
      time.title = String(e.time);
      time.textContent = when(e.time);
      var link = document.createElement("a");
      link.className = "tracker-event-marker";
      link.href = "/map/" + encodeURIComponent(e.marker_id);
      link.title = "track of " + e.marker_id;
      link.textContent = String(e.marker_id);
      var text = document.createElement("span");
      text.className = "tracker-event-text";
      text.textContent = describeEvent(e);
      item.appendChild(time);
      item.appendChild(link);
      item.appendChild(text);
      return item;
    }
    function show(records) {
      var events = records.filter(function (e) { return e && typeof e.marker_id === "string"; })
        .map(function (e, i) { return { e: e, i: i, t: Date.parse(e.time) }; })
        .sort(function (a, b) { return (b.t - a.t) || (a.i - b.i); })  // newest first, ties as sent
        .slice(0, eventsShown)
        .map(function (x) { return x.e; });
      notice.textContent = events.length ? "" : "no events yet";
      toggle.textContent = "Events (" + events.length + ")";
      var next = events.map(function (e) { return e.id; }).join("\n");
      if (next === signature) return;  // unchanged: keep the rows (and the focus) as they are
      signature = next;
      shown.length = 0;
      Array.prototype.push.apply(shown, events);
      var rows = document.createDocumentFragment();
      events.forEach(function (e, i) { rows.appendChild(row(e, i)); });
      list.replaceChildren(rows);
    }
    function load() {
      fetch(eventSource, { cache: "no-store" })
        .then(function (r) {
          if (r.status === 404) throw new Error("events are not available here");
          if (!r.ok) throw new Error("events could not be loaded (HTTP " + r.status + "); retrying");
          return r.json();
        })
        .then(function (body) {
          var records = Array.isArray(body) ? body : body && Array.isArray(body.events) ? body.events : null;
          if (!records) throw new Error("events could not be read; retrying");
          show(records);
          window.tracker.eventUpdates += 1;
        })
        .catch(function (e) {
          notice.textContent = e instanceof SyntaxError ? "events could not be read; retrying" : e.message;
          window.tracker.eventUpdates += 1;
        });
    }
    load();
    setInterval(load, refreshMs);
  }

  if (liveSource && window.EventSource) listen(); else poll(null);
  if (geofenceSource) startGeofences();
  if (eventSource) startEvents();
})();
