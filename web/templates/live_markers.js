(function () {
  var map = {{ this._parent.get_name() }};
  var source = {{ this.source|tojson }};
  var refreshMs = {{ this.refresh_ms }};
  var staleAfter = {{ this.stale_after }};
  // Optional layers, each null unless the page asked for it (a share link has neither).
  var geofenceSource = {{ this.geofences|tojson }};
  var geofenceRefreshMs = {{ this.geofence_refresh_ms }};
  var eventSource = {{ this.events|tojson }};
  var eventsShown = {{ this.events_shown }};
  // The push feed (Server-Sent Events, web/live.py), or null: then the page polls `source`.
  var liveSource = {{ this.live|tojson }};
  var renderer = L.canvas({ padding: 0.5 });
  // A Map, not an object: a marker id is whatever a device chose, and ids such as
  // "__proto__" or "constructor" would otherwise read or replace the object's own members.
  var markers = new Map();
  var fitted = false;
  window.tracker = { map: map, markers: markers, updates: 0, describeEvent: describeEvent };

  var status = L.control({ position: "bottomleft" });
  status.onAdd = function () {
    this.el = L.DomUtil.create("div", "tracker-status");
    this.el.style.cssText = "background:#fff;padding:2px 6px;font:12px sans-serif;border-radius:3px";
    return this.el;
  };
  status.addTo(map);

  function age(p) { return Math.max(0, Math.round((Date.now() - Date.parse(p.time)) / 1000)); }
  function isStale(p) { return age(p) > staleAfter; }
  function fmt(value, unit, scale, digits) {
    return value === null || value === undefined ? "unknown" : (value * scale).toFixed(digits) + unit;
  }
  function style(p) {
    return isStale(p)
      ? { color: "#555", fillColor: "#aaa", fillOpacity: 0.6, weight: 1 }
      : { color: "#0b5394", fillColor: "#3d85c6", fillOpacity: 0.9, weight: 1 };
  }
  function line(parent, label, value) {
    var row = document.createElement("div");
    var name = document.createElement("b");
    name.textContent = label + ": ";
    row.appendChild(name);
    row.appendChild(document.createTextNode(value));
    parent.appendChild(row);
  }
  function popup(id) {
    // Built from text nodes: whatever a device sent is shown as text, never parsed as HTML.
    return function () {
      var p = markers.get(id).props;
      var box = document.createElement("div");
      box.className = "tracker-popup";
      line(box, "marker", p.marker_id);
      line(box, "fix", p.time + " (" + age(p) + " s ago)" + (isStale(p) ? ", stale" : ""));
      line(box, "speed", fmt(p.speed, " km/h", 3.6, 1));
      line(box, "heading", fmt(p.heading, "\u00b0", 1, 0));
      line(box, "battery", fmt(p.battery, " %", 1, 0));
      if (p.source) line(box, "source", p.source);
      return box;
    };
  }
  function place(id, at, p) {
    var m = markers.get(id);
    if (!m) {
      var layer = L.circleMarker(at, Object.assign({ renderer: renderer, radius: 6 }, style(p)));
      m = { layer: layer, props: p };
      markers.set(id, m);
      layer.bindPopup(popup(id));
      layer.addTo(map);
    } else {
      m.props = p;
      m.layer.setLatLng(at);
      m.layer.setStyle(style(p));
      if (m.layer.isPopupOpen()) m.layer.setPopupContent(popup(id)());
    }
  }
  function remove(id) {
    var m = markers.get(id);
    if (m) { map.removeLayer(m.layer); markers.delete(id); }
  }
  function drawn(bounds, how) {
    if (!fitted && bounds.length) {
      fitted = true;
      map.fitBounds(L.latLngBounds(bounds).pad(0.05), { maxZoom: 15 });
    }
    window.tracker.updates += 1;
    status.el.textContent = markers.size + " markers, " + how + " " + new Date().toLocaleTimeString();
  }
  function draw(collection) {
    var seen = new Set();
    var bounds = [];
    collection.features.forEach(function (f) {
      var p = f.properties, id = p.marker_id;
      var at = [f.geometry.coordinates[1], f.geometry.coordinates[0]];
      seen.add(id);
      bounds.push(at);
      place(id, at, p);
    });
    markers.forEach(function (m, id) { if (!seen.has(id)) remove(id); });
    drawn(bounds, "updated");
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
      box.style.cssText = "position:absolute;top:10px;left:50px;z-index:1000;background:#fce5cd;padding:4px 8px;" +
        "font:12px sans-serif;border-radius:3px";
      box.textContent = notice;
    }
    refresh();
    setInterval(refresh, refreshMs);
  }

  // --- the push feed: a snapshot, then only what changed --------------------------------

  function props(row) {
    return { marker_id: row[0], lat: row[1], lon: row[2], time: new Date(row[3]).toISOString(), speed: row[4],
             heading: row[5], battery: row[6], moving: row[7], source: row[8] };
  }
  function apply(body, snapshot) {
    var bounds = [], seen = snapshot ? new Set() : null;
    body.m.forEach(function (row) {
      var p = props(row), at = [p.lat, p.lon];
      if (seen) seen.add(p.marker_id);
      bounds.push(at);
      place(p.marker_id, at, p);
    });
    body.r.forEach(remove);
    if (seen) markers.forEach(function (m, id) { if (!seen.has(id)) remove(id); });
    drawn(bounds, "live");
  }
  function listen() {
    var feed = new EventSource(liveSource);
    var opened = false;
    window.tracker.feed = feed;
    feed.addEventListener("snapshot", function (e) { opened = true; apply(JSON.parse(e.data), true); });
    feed.addEventListener("update", function (e) { apply(JSON.parse(e.data), false); });
    feed.onerror = function () {
      // A dropped connection reconnects by itself (with Last-Event-ID); a refused one does not.
      if (feed.readyState === EventSource.CLOSED) {
        poll("live updates unavailable: refreshing every " + Math.round(refreshMs / 1000) + " s instead");
      } else {
        status.el.textContent = "live updates interrupted; reconnecting";
      }
    };
    setTimeout(function () {
      if (!opened) { feed.close(); poll("live updates unavailable: refreshing every " + Math.round(refreshMs / 1000) + " s instead"); }
    }, 10000);
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
      var at = m ? m.layer.getLatLng()
        : e.position && typeof e.position.lat === "number" ? L.latLng(e.position.lat, e.position.lon) : null;
      if (!at) return;
      map.closePopup();  // another marker's open popup would pan the map back to itself
      if (m) map.once("moveend", function () { if (markers.get(e.marker_id) === m) m.layer.openPopup(); });
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
