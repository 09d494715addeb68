/* The live map's markers on one canvas of their own: L.TrackerMarkers.

   Where at most `individualMax` markers are in view, each is drawn as a dot coloured by its
   status. Where more are, they are drawn as clusters that supercluster computes in a Web
   Worker (cluster_worker.js), so that indexing 100,000 markers never blocks the page; the
   index is rebuilt at most every `rebuildMs` while positions change.

   markers: the page's Map of marker id -> {lat, lon, ...}; statusOf(marker) -> one of
   "moving", "stopped", "stale", "offline". Events: "markerclick" {id} when a dot is clicked
   (a cluster click zooms to where it splits), "drawn" after every frame. */
(function () {
  "use strict";

  var COLORS = { moving: "#38761d", stopped: "#3d85c6", stale: "#e69138", offline: "#8c8c8c" };
  var ORDER = ["offline", "stale", "stopped", "moving"];  // drawn last is on top
  var DOT_RADIUS = 6;
  var HIT_SLOP = 3;

  function clusterRadius(count) { return 12 + 5 * Math.log10(count); }
  function clusterLabel(count) { return count >= 10000 ? Math.round(count / 1000) + "k" : String(count); }

  L.TrackerMarkers = L.Layer.extend({
    options: {
      pane: "trackerMarkers",
      individualMax: 3000,
      worker: null,        // URL of cluster_worker.js; without it, every marker in view is a dot
      supercluster: null,  // URL of supercluster's UMD build, loaded by the worker
      radius: 60,          // cluster radius in pixels
      maxZoom: 16,         // no clusters past this zoom
      rebuildMs: 1000,
    },

    initialize: function (markers, statusOf, options) {
      L.setOptions(this, options);
      this._markers = markers;
      this._statusOf = statusOf;
      this._hits = [];          // what the last frame drew: {x, y, r, id} or {x, y, r, cluster}
      this._drawnIds = [];
      this._frame = null;
      this._stale = true;       // positions changed since the last index was asked for
      this._generation = 0;     // of the last index asked for
      this._ids = new Map();    // generation -> the marker ids in that index, by position
      this._builtAt = 0;
      this._building = false;
      this._latestBuilt = null; // the generation the worker holds
      this._clusters = null;    // {generation, data} of the last answer
      this._asked = null;       // what the last query asked, to ask only once per view and index
      this._queries = 0;
      this._rebuildTimer = null;
      this.mode = "dots";
    },

    onAdd: function (map) {
      var pane = map.getPane(this.options.pane);
      if (!pane) {
        pane = map.createPane(this.options.pane);
        pane.style.zIndex = 450;  // over the geofences, under the popups
        pane.style.pointerEvents = "none";
      }
      this._canvas = L.DomUtil.create("canvas", "tracker-markers leaflet-zoom-hide", pane);
      map.on("moveend resize", this._moved, this);
      map.on("click", this._click, this);
      map.on("mousemove", this._hover, this);
      this._startWorker();
      this._moved();
    },

    onRemove: function (map) {
      map.off("moveend resize", this._moved, this);
      map.off("click", this._click, this);
      map.off("mousemove", this._hover, this);
      L.DomUtil.remove(this._canvas);
      if (this._worker) this._worker.terminate();
      this._worker = null;
    },

    /** Positions changed: draw them at the next frame. */
    changed: function () {
      this._stale = true;
      this.redraw();
    },

    redraw: function () {
      if (this._map && this._frame === null) this._frame = L.Util.requestAnimFrame(this._draw, this);
    },

    /** The ids drawn as dots in the last frame. */
    drawnIds: function () { return this._drawnIds.slice(); },

    _startWorker: function () {
      if (!this.options.worker || !this.options.supercluster || !window.Worker) return;
      try {
        this._worker = new Worker(this.options.worker);
      } catch (e) {
        this._worker = null;  // refused (a policy, an old browser): dots only
        return;
      }
      this._worker.onmessage = L.bind(this._answer, this);
      this._worker.onerror = L.bind(function () { this._worker = null; this.redraw(); }, this);
      this._worker.postMessage({ type: "init", supercluster: new URL(this.options.supercluster, location.href).href,
                                 radius: this.options.radius, maxZoom: this.options.maxZoom });
    },

    _moved: function () {
      var map = this._map, size = map.getSize(), ratio = window.devicePixelRatio || 1, canvas = this._canvas;
      L.DomUtil.setPosition(canvas, map.containerPointToLayerPoint([0, 0]));
      if (canvas.width !== Math.round(size.x * ratio) || canvas.height !== Math.round(size.y * ratio)) {
        canvas.width = Math.round(size.x * ratio);
        canvas.height = Math.round(size.y * ratio);
        canvas.style.width = size.x + "px";
        canvas.style.height = size.y + "px";
      }
      this.redraw();
    },

    _draw: function () {
      this._frame = null;
      var map = this._map;
      if (!map) return;
      var b = map.getBounds().pad(0.02);
      var south = b.getSouth(), north = b.getNorth(), west = b.getWest(), east = b.getEast();
      var max = this.options.individualMax, inView = [], many = false;
      var it = this._markers.values(), step;
      while (!(step = it.next()).done) {
        var m = step.value;
        if (m.lat >= south && m.lat <= north && m.lon >= west && m.lon <= east) {
          if (inView.length === max && this._worker) { many = true; break; }
          inView.push(m);
        }
      }
      var ratio = window.devicePixelRatio || 1, size = map.getSize();
      var ctx = this._canvas.getContext("2d");
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, size.x, size.y);
      this._hits = [];
      this._drawnIds = [];
      if (many) {
        this.mode = "clusters";
        this._drawClusters(ctx, [west, Math.max(south, -90), east, Math.min(north, 90)]);
      } else {
        this.mode = "dots";
        this._drawDots(ctx, inView);
      }
      this.fire("drawn");
    },

    _dot: function (ctx, x, y, color) {
      ctx.beginPath();
      ctx.arc(x, y, DOT_RADIUS, 0, 2 * Math.PI);
      ctx.fillStyle = color;
      ctx.fill();
      ctx.stroke();
    },

    _drawDots: function (ctx, inView) {
      var map = this._map, byStatus = { moving: [], stopped: [], stale: [], offline: [] };
      for (var i = 0; i < inView.length; i++) byStatus[this._statusOf(inView[i])].push(inView[i]);
      ctx.lineWidth = 1;
      ctx.strokeStyle = "#ffffff";
      for (var s = 0; s < ORDER.length; s++) {
        var group = byStatus[ORDER[s]], color = COLORS[ORDER[s]];
        for (var k = 0; k < group.length; k++) {
          var m = group[k], p = map.latLngToContainerPoint([m.lat, m.lon]);
          this._dot(ctx, p.x, p.y, color);
          this._hits.push({ x: p.x, y: p.y, r: DOT_RADIUS, id: m.id });
          this._drawnIds.push(m.id);
        }
      }
    },

    _drawClusters: function (ctx, bbox) {
      var now = Date.now(), wait = this._builtAt + this.options.rebuildMs - now;
      if (this._stale && !this._building) {
        if (wait <= 0) this._build(now);
        else if (this._rebuildTimer === null) {
          this._rebuildTimer = setTimeout(L.bind(function () { this._rebuildTimer = null; this.redraw(); }, this), wait);
        }
      }
      var zoom = Math.round(this._map.getZoom());
      var key = [zoom, bbox.map(function (x) { return x.toFixed(4); }), this._latestBuilt].join();
      if (this._latestBuilt !== null && key !== this._asked) {
        this._asked = key;
        this._worker.postMessage({ type: "query", id: ++this._queries, bbox: bbox, zoom: zoom });
      }
      var c = this._clusters;
      if (!c) return;
      var ids = this._ids.get(c.generation) || [], map = this._map, data = c.data;
      ctx.lineWidth = 2;
      ctx.strokeStyle = "#ffffff";
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.font = "bold 11px sans-serif";
      for (var k = 0; k < data.length; k += 4) {
        var p = map.latLngToContainerPoint([data[k + 1], data[k]]), count = data[k + 2], ref = data[k + 3];
        if (count === 1) {
          var m = this._markers.get(ids[ref]);
          if (!m) continue;
          this._dot(ctx, p.x, p.y, COLORS[this._statusOf(m)]);
          this._hits.push({ x: p.x, y: p.y, r: DOT_RADIUS, id: m.id });
          this._drawnIds.push(m.id);
        } else {
          var r = clusterRadius(count);
          ctx.beginPath();
          ctx.arc(p.x, p.y, r, 0, 2 * Math.PI);
          ctx.fillStyle = "rgba(11, 83, 148, 0.8)";
          ctx.fill();
          ctx.stroke();
          ctx.fillStyle = "#ffffff";
          ctx.fillText(clusterLabel(count), p.x, p.y);
          this._hits.push({ x: p.x, y: p.y, r: r, cluster: ref, lat: data[k + 1], lon: data[k] });
        }
      }
    },

    _build: function (now) {
      var n = this._markers.size, coords = new Float64Array(2 * n), ids = new Array(n), i = 0;
      this._markers.forEach(function (m, id) {
        coords[2 * i] = m.lon;
        coords[2 * i + 1] = m.lat;
        ids[i++] = id;
      });
      this._generation += 1;
      this._ids.set(this._generation, ids);
      this._stale = false;
      this._building = true;
      this._builtAt = now;
      this._worker.postMessage({ type: "load", generation: this._generation, coords: coords }, [coords.buffer]);
    },

    _answer: function (event) {
      var m = event.data;
      if (m.type === "loaded") {
        this._building = false;
        this._latestBuilt = m.generation;
        var self = this;
        this._ids.forEach(function (_, generation) {  // keep the ids of answers still on their way
          if (generation < m.generation - 1) self._ids.delete(generation);
        });
        this.redraw();
      } else if (m.type === "clusters") {
        if (m.id === this._queries) {
          this._clusters = { generation: m.generation, data: m.data };
          this.redraw();
        }
      } else if (m.type === "expanded") {
        var zoom = m.zoom === null ? this._map.getZoom() + 2 : m.zoom;
        this._map.setView([m.lat, m.lon], Math.min(zoom, this._map.getMaxZoom()));
      }
    },

    _hit: function (point) {
      for (var k = this._hits.length - 1; k >= 0; k--) {  // the last drawn is on top
        var h = this._hits[k], dx = h.x - point.x, dy = h.y - point.y;
        if (dx * dx + dy * dy <= (h.r + HIT_SLOP) * (h.r + HIT_SLOP)) return h;
      }
      return null;
    },

    _click: function (e) {
      var h = this._hit(e.containerPoint);
      if (!h) return;
      if (h.id !== undefined) this.fire("markerclick", { id: h.id });
      else if (this._worker) this._worker.postMessage({ type: "expand", clusterId: h.cluster, lat: h.lat, lon: h.lon });
    },

    _hover: function (e) {
      this._map.getContainer().style.cursor = this._hit(e.containerPoint) ? "pointer" : "";
    },
  });
})();
