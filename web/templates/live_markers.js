(function () {
  var map = {{ this._parent.get_name() }};
  var source = {{ this.source|tojson }};
  var refreshMs = {{ this.refresh_ms }};
  var staleAfter = {{ this.stale_after }};
  var renderer = L.canvas({ padding: 0.5 });
  // A Map, not an object: a marker id is whatever a device chose, and ids such as
  // "__proto__" or "constructor" would otherwise read or replace the object's own members.
  var markers = new Map();
  var fitted = false;
  window.tracker = { map: map, markers: markers, updates: 0 };

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
  function draw(collection) {
    var seen = new Set();
    var bounds = [];
    collection.features.forEach(function (f) {
      var p = f.properties, id = p.marker_id;
      var at = [f.geometry.coordinates[1], f.geometry.coordinates[0]];
      seen.add(id);
      bounds.push(at);
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
    });
    markers.forEach(function (m, id) {
      if (!seen.has(id)) { map.removeLayer(m.layer); markers.delete(id); }
    });
    if (!fitted && bounds.length) {
      fitted = true;
      map.fitBounds(L.latLngBounds(bounds).pad(0.05), { maxZoom: 15 });
    }
    window.tracker.updates += 1;
    status.el.textContent = bounds.length + " markers, updated " + new Date().toLocaleTimeString();
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
  refresh();
  setInterval(refresh, refreshMs);
})();
