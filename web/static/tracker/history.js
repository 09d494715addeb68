/* The history view (web/history_page.py): the chosen markers' tracks over a period on a map,
   with a heatmap layer drawn from the server's cells (never from the points), trips and
   stops, a replay of every marker together, a speed and altitude chart, and statistics by
   day, week and month with the countries and cities visited. Everything comes from the JSON
   API; marker ids and place names go into the page as text. */
(function () {
  'use strict';
  var admin = window.trackerAdmin, query = window.trackerQuery, el = admin.el;
  var COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2'];
  var CHART_POINTS = 2000;  // per marker: the chart shows the shape, the map every point
  var period = query.fill(24);
  var started = performance.now();

  var map = L.map('history-map', {preferCanvas: true}).setView([20, 0], 2);
  L.tileLayer(document.body.dataset.tiles, {maxZoom: 19, attribution: document.body.dataset.attribution}).addTo(map);
  var trackLayer = L.layerGroup().addTo(map), stopLayer = L.layerGroup().addTo(map), replayLayer = L.layerGroup().addTo(map);
  var heat = L.heatLayer([], {radius: 14, blur: 12, maxZoom: 17, max: 1});
  L.control.layers(null, {'Tracks': trackLayer, 'Stops': stopLayer, 'Heatmap': heat, 'Replay': replayLayer},
                   {collapsed: false}).addTo(map);

  var view = window.historyView = {map: map, tracks: [], heat: heat, heatCells: 0, drawn: false, charts: {}};

  function colour(i) { return COLOURS[i % COLOURS.length]; }
  function km(m) { return (m / 1000).toFixed(1) + ' km'; }
  function hours(s) { return (s / 3600).toFixed(1) + ' h'; }
  function clock(ms) { return new Date(ms).toLocaleString(undefined, {dateStyle: 'short', timeStyle: 'medium'}); }

  if (!query.chosen()) {
    admin.section('Choose markers', 'hint').appendChild(el('p', {text: 'Name one or more markers (or a group) and a period above, then Show.'}));
    return;
  }

  // --- tracks -------------------------------------------------------------------------
  /* Every track drawn on one canvas straight from the API's columns: a month of fixes
     (100,000 points) is projected and drawn in milliseconds, where a Leaflet polyline would
     make an object of each point first. Redrawn after each move and zoom. */
  var TrackLines = L.Layer.extend({
    onAdd: function (map) {
      this._canvas = L.DomUtil.create('canvas', 'tracker-tracks leaflet-zoom-hide');
      map.getPanes().overlayPane.appendChild(this._canvas);
      map.on('moveend zoomend resize viewreset', this.redraw, this);
      this.redraw();
    },
    onRemove: function (map) {
      L.DomUtil.remove(this._canvas);
      map.off('moveend zoomend resize viewreset', this.redraw, this);
    },
    redraw: function () {
      var map = this._map, size = map.getSize(), canvas = this._canvas, ratio = window.devicePixelRatio || 1;
      var origin = map.getPixelBounds().min, scale = 256 * Math.pow(2, map.getZoom()), rad = Math.PI / 180;
      L.DomUtil.setPosition(canvas, map.containerPointToLayerPoint([0, 0]));
      canvas.width = size.x * ratio; canvas.height = size.y * ratio;
      canvas.style.width = size.x + 'px'; canvas.style.height = size.y + 'px';
      var context = canvas.getContext('2d');
      context.setTransform(ratio, 0, 0, ratio, 0, 0);
      context.lineWidth = 3; context.lineJoin = 'round'; context.globalAlpha = 0.8;
      view.tracks.forEach(function (track) {
        var lat = track.lat_e6, lon = track.lon_e6, lastX = NaN, lastY = NaN;
        context.strokeStyle = track.colour;
        context.beginPath();
        for (var k = 0; k < track.points; k++) {
          var phi = Math.max(-85.0511, Math.min(85.0511, lat[k] / 1e6)) * rad;
          var x = scale * (lon[k] / 360e6 + 0.5) - origin.x;
          var y = scale * (0.5 - Math.log(Math.tan(Math.PI / 4 + phi / 2)) / (2 * Math.PI)) - origin.y;
          if (k === 0) context.moveTo(x, y);
          else if (Math.abs(x - lastX) + Math.abs(y - lastY) >= 0.5) context.lineTo(x, y);
          else continue;
          lastX = x; lastY = y;
        }
        context.stroke();
      });
      view.trackRedraws = (view.trackRedraws || 0) + 1;
    }
  });

  function drawTracks(answer) {
    var south = 90, north = -90, west = 180, east = -180;
    answer.markers.forEach(function (track, i) {
      track.colour = colour(i);
      for (var k = 0; k < track.points; k++) {
        var lat = track.lat_e6[k] / 1e6, lon = track.lon_e6[k] / 1e6;
        if (lat < south) south = lat; if (lat > north) north = lat;
        if (lon < west) west = lon; if (lon > east) east = lon;
      }
    });
    view.tracks = answer.markers;
    if (south <= north) map.fitBounds([[south, west], [north, east]], {padding: [20, 20], animate: false});
    trackLayer.addLayer(new TrackLines());
    legend(answer.markers);
    var empty = answer.markers.filter(function (track) { return !track.points; }).map(function (t) { return t.marker_id; });
    if (empty.length) admin.showError(new Error('No positions in this period for ' + empty.join(', ')));
    var cut = answer.markers.filter(function (track) { return track.truncated; }).map(function (t) { return t.marker_id; });
    if (cut.length) admin.showError(new Error('Only the first ' + answer.markers[0].points.toLocaleString() +
                                              ' points are drawn for ' + cut.join(', ') + ': choose a shorter period'));
  }

  function latlng(track, k) { return [track.lat_e6[k] / 1e6, track.lon_e6[k] / 1e6]; }

  function legend(tracks) {
    var control = L.control({position: 'bottomleft'});
    control.onAdd = function () {
      var list = el('ul', {'class': 'tracker-legend', 'aria-label': 'Colours of the tracks'});
      tracks.forEach(function (track) {
        list.appendChild(el('li', null, el('span', {'class': 'swatch', style: 'background:' + track.colour}),
                            track.marker_id + ' (' + track.points.toLocaleString() + ' points)'));
      });
      return list;
    };
    control.addTo(map);
  }

  // --- heatmap: cells counted by the server for the map's zoom and view ----------------
  var heatTimer = null, heatOnly = query.params.get('view') === 'heatmap', heatFitted = false,
      skipMove = false;
  function loadHeat() {
    if (!map.hasLayer(heat)) return Promise.resolve();
    var b = map.getBounds().pad(0.5), size = map.getSize();
    var bbox = [Math.max(-180, b.getWest()), Math.max(-90, b.getSouth()), Math.min(180, b.getEast()), Math.min(90, b.getNorth())];
    var where = heatOnly && !heatFitted ? {fit: size.x + 'x' + size.y}  // the server says where the points are
      : {zoom: String(Math.min(20, map.getZoom())), bbox: bbox.map(function (v) { return v.toFixed(5); }).join(',')};
    return admin.api('GET', '/api/heatmap?' + query.apiQuery(period, where))
      .then(function (answer) {
        var max = answer.max || 1;
        heat.setLatLngs(answer.cells.map(function (cell) { return [cell[0], cell[1], Math.max(0.05, Math.sqrt(cell[2] / max))]; }));
        view.heatCells = answer.cells.length;
        view.heatPoints = answer.points;
        view.heatLoaded = (view.heatLoaded || 0) + 1;
        if (heatOnly && !heatFitted) {  // to where the points are, at the zoom the cells were made for
          heatFitted = true;
          if (answer.bounds) {
            skipMove = true;
            map.setView(L.latLngBounds(answer.bounds).getCenter(), answer.zoom, {animate: false});
          }
        }
        if (heatOnly && !view.heatReady) {
          view.heatReady = true;
          view.heatDrawnAt = performance.now();
          document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
        }
      });
  }
  map.on('overlayadd', function (event) { if (event.layer === heat) loadHeat().catch(admin.showError); });
  map.on('moveend', function () {
    if (skipMove) { skipMove = false; return; }  // the view the cells on the map were made for
    window.clearTimeout(heatTimer);
    heatTimer = window.setTimeout(function () { loadHeat().catch(admin.showError); }, 250);
  });

  // --- replay: every marker at the slider's time ---------------------------------------
  var slider = document.getElementById('replay-time'), clockOut = document.getElementById('replay-clock');
  var playButton = document.getElementById('replay-play'), speedSelect = document.getElementById('replay-speed');
  var replay = view.replay = {start: 0, end: 0, time: 0, playing: false, dots: []};

  function indexAt(t, times) {  // the last fix at or before t
    var low = 0, high = times.length - 1;
    if (!times.length || t < times[0]) return -1;
    while (low < high) {
      var mid = (low + high + 1) >> 1;
      if (times[mid] <= t) low = mid; else high = mid - 1;
    }
    return low;
  }

  function showTime(t) {
    replay.time = t;
    clockOut.textContent = clock(t);
    slider.value = String(Math.round((t - replay.start) / Math.max(1, replay.end - replay.start) * 1000));
    slider.setAttribute('aria-valuetext', clock(t));
    view.tracks.forEach(function (track, i) {
      var k = indexAt(t, track.t), dot = replay.dots[i];
      if (!dot) return;
      if (k < 0) { replayLayer.removeLayer(dot); return; }
      dot.setLatLng(latlng(track, k));
      replayLayer.addLayer(dot);
    });
  }

  function setupReplay() {
    var starts = view.tracks.filter(function (t) { return t.points; }).map(function (t) { return t.t[0]; });
    var ends = view.tracks.filter(function (t) { return t.points; }).map(function (t) { return t.t[t.points - 1]; });
    if (!starts.length) return;
    replay.start = Math.min.apply(null, starts);
    replay.end = Math.max.apply(null, ends);
    replay.dots = view.tracks.map(function (track) {
      return L.circleMarker([0, 0], {radius: 7, color: '#fff', weight: 2, fillColor: track.colour, fillOpacity: 1})
        .bindTooltip(document.createTextNode(track.marker_id), {permanent: true, direction: 'right', offset: [8, 0]});
    });
    showTime(replay.start);
  }

  var last = null;
  function step(now) {
    if (!replay.playing) return;
    if (last !== null) {
      var next = replay.time + (now - last) * Number(speedSelect.value);
      if (next >= replay.end) { showTime(replay.end); pause(); return; }
      showTime(next);
    }
    last = now;
    window.requestAnimationFrame(step);
  }
  function play() {
    if (replay.time >= replay.end) showTime(replay.start);
    replay.playing = true;
    last = null;
    playButton.textContent = 'Pause';
    window.requestAnimationFrame(step);
  }
  function pause() { replay.playing = false; playButton.textContent = 'Play'; }
  playButton.addEventListener('click', function () { if (replay.playing) pause(); else play(); });
  slider.addEventListener('input', function () {
    showTime(replay.start + (replay.end - replay.start) * Number(slider.value) / 1000);
  });
  view.play = play;
  view.pause = pause;
  view.showTime = showTime;

  // --- the speed and altitude chart ----------------------------------------------------
  function metres(a, b) {  // haversine
    var rad = Math.PI / 180, dLat = (b[0] - a[0]) * rad, dLon = (b[1] - a[1]) * rad;
    var h = Math.pow(Math.sin(dLat / 2), 2) + Math.cos(a[0] * rad) * Math.cos(b[0] * rad) * Math.pow(Math.sin(dLon / 2), 2);
    return 2 * 6371008.8 * Math.asin(Math.sqrt(h));
  }

  /* The speed each fix reported; where it reported none, the speed since the fix before. */
  function speeds(track) {
    var out = new Array(track.points);
    for (var k = 0; k < track.points; k++) {
      var reported = track.speed[k];
      if (reported !== null) { out[k] = reported; continue; }
      var dt = k ? (track.t[k] - track.t[k - 1]) / 1000 : 0;
      out[k] = dt > 0 ? metres(latlng(track, k - 1), latlng(track, k)) / dt : (k ? out[k - 1] : 0);
    }
    return out;
  }

  function sampled(track, values, scale) {
    var every = Math.max(1, Math.ceil(track.points / CHART_POINTS)), out = [];
    for (var k = 0; k < track.points; k += every) {
      if (values[k] !== null) out.push({x: track.t[k], y: values[k] * scale});
    }
    return out;
  }

  function drawProfile() {
    var datasets = [], altitude = false;
    view.tracks.forEach(function (track) {
      if (!track.points) return;
      datasets.push({label: track.marker_id + ' speed (km/h)', data: sampled(track, speeds(track), 3.6), borderColor: track.colour,
                     borderWidth: 1.5, pointRadius: 0, yAxisID: 'speed'});
      if (track.altitude.some(function (a) { return a !== null; })) {
        altitude = true;
        datasets.push({label: track.marker_id + ' altitude (m)', data: sampled(track, track.altitude, 1), borderColor: track.colour,
                       borderDash: [4, 3], borderWidth: 1, pointRadius: 0, yAxisID: 'altitude'});
      }
    });
    var scales = {x: {type: 'linear', ticks: {callback: function (v) { return new Date(v).toLocaleTimeString(undefined, {hour: '2-digit', minute: '2-digit'}); }}},
                  speed: {type: 'linear', position: 'left', title: {display: true, text: 'km/h'}, beginAtZero: true}};
    if (altitude) scales.altitude = {type: 'linear', position: 'right', title: {display: true, text: 'm'}, grid: {drawOnChartArea: false}};
    view.charts.profile = new Chart(document.getElementById('profile-chart'), {
      type: 'line', data: {datasets: datasets},
      options: {animation: false, parsing: false, normalized: true, maintainAspectRatio: false, scales: scales,
                plugins: {tooltip: {callbacks: {title: function (items) { return items.length ? clock(items[0].parsed.x) : ''; }}}},
                onClick: function (event, elements, chart) {
                  var t = chart.scales.x.getValueForPixel(event.x);
                  if (t >= replay.start && t <= replay.end) showTime(t);
                }}
    });
  }

  // --- trips and stops -------------------------------------------------------------------
  function journeys() {
    var holder = admin.section('Trips and stops', 'journeys');
    return Promise.all(view.tracks.map(function (track) {
      var range = 'from=' + encodeURIComponent(period.from.toISOString()) + '&to=' + encodeURIComponent(period.to.toISOString());
      var base = '/api/markers/' + encodeURIComponent(track.marker_id);
      return Promise.all([admin.api('GET', base + '/trips?' + range), admin.api('GET', base + '/stops?' + range)])
        .then(function (answers) {
          var trips = answers[0].trips, stops = answers[1].stops;
          stops.forEach(function (stop) {
            stopLayer.addLayer(L.circleMarker([stop.lat, stop.lon], {radius: 5, color: track.colour, fillOpacity: 0.3})
              .bindTooltip(document.createTextNode(track.marker_id + ': stopped ' + Math.round(stop.duration_s / 60) + ' min')));
          });
          holder.appendChild(el('h3', {text: track.marker_id}));
          holder.appendChild(admin.dataTable('Trips of ' + track.marker_id, [
            ['Start', function (t) { return clock(Date.parse(t.start_time)); }], ['End', function (t) { return clock(Date.parse(t.end_time)); }],
            ['Distance', function (t) { return km(t.distance_m); }], ['Duration', function (t) { return Math.round(t.duration_s / 60) + ' min'; }],
            ['Top speed', function (t) { return t.max_speed === null ? '—' : (t.max_speed * 3.6).toFixed(0) + ' km/h'; }]
          ], trips, null, 'No trips in this period.'));
          holder.appendChild(admin.dataTable('Stops of ' + track.marker_id, [
            ['Start', function (s) { return clock(Date.parse(s.start_time)); }], ['End', function (s) { return clock(Date.parse(s.end_time)); }],
            ['Duration', function (s) { return Math.round(s.duration_s / 60) + ' min'; }],
            ['Where', function (s) { return s.lat.toFixed(5) + ', ' + s.lon.toFixed(5); }]
          ], stops, null, 'No stops in this period.'));
        });
    }));
  }

  // --- statistics ------------------------------------------------------------------------
  function statistics() {
    var holder = admin.section('Statistics', 'stats');
    var unit = el('select', {id: 'stats-by'}, el('option', {value: 'day', text: 'by day'}),
                  el('option', {value: 'week', text: 'by week'}), el('option', {value: 'month', text: 'by month'}));
    holder.appendChild(el('p', null, el('label', {'for': 'stats-by', text: 'Show '}), unit));
    var totals = el('div', {'class': 'totals', 'aria-live': 'polite'});
    holder.appendChild(totals);
    var distanceCanvas = el('canvas', {id: 'distance-chart', role: 'img', 'aria-label': 'Distance per period'});
    var timeCanvas = el('canvas', {id: 'time-chart', role: 'img', 'aria-label': 'Driving and stopped time per period'});
    holder.appendChild(el('div', {'class': 'chart'}, distanceCanvas));
    holder.appendChild(el('div', {'class': 'chart'}, timeCanvas));
    var places = el('div');
    holder.appendChild(places);
    return admin.api('GET', '/api/stats?' + query.apiQuery(period)).then(function (stats) {
      view.stats = stats;
      [['Distance', km(stats.totals.distance_m)], ['Driving', hours(stats.totals.driving_s)],
       ['Stopped', hours(stats.totals.stopped_s)], ['Trips', String(stats.totals.trips)], ['Stops', String(stats.totals.stops)]]
        .forEach(function (pair) { totals.appendChild(el('p', null, el('strong', {text: pair[0] + ': '}), pair[1])); });
      function draw() {
        var rows = stats.by[unit.value], labels = rows.map(function (row) { return row.period; });
        if (view.charts.distance) { view.charts.distance.destroy(); view.charts.time.destroy(); }
        view.charts.distance = new Chart(distanceCanvas, {type: 'bar', data: {labels: labels, datasets: [
          {label: 'Distance (km)', data: rows.map(function (r) { return r.distance_m / 1000; }), backgroundColor: '#3d85c6'}]},
          options: {animation: false, maintainAspectRatio: false}});
        view.charts.time = new Chart(timeCanvas, {type: 'bar', data: {labels: labels, datasets: [
          {label: 'Driving (h)', data: rows.map(function (r) { return r.driving_s / 3600; }), backgroundColor: '#2ca02c'},
          {label: 'Stopped (h)', data: rows.map(function (r) { return r.stopped_s / 3600; }), backgroundColor: '#aaa'}]},
          options: {animation: false, maintainAspectRatio: false, scales: {x: {stacked: true}, y: {stacked: true}}}});
      }
      unit.addEventListener('change', draw);
      draw();
      places.replaceChildren(
        el('h3', {text: 'Countries visited'}),
        admin.dataTable('Countries, most visited first', [['Country', function (c) { return c.name || c.code; }],
          ['Visits', function (c) { return c.visits; }], ['First', function (c) { return clock(Date.parse(c.first)); }],
          ['Last', function (c) { return clock(Date.parse(c.last)); }]], stats.countries, null, 'None in this period.'),
        el('h3', {text: 'Cities visited'}),
        admin.dataTable('Cities, most visited first', [['City', function (c) { return c.name; }],
          ['Region', function (c) { return c.state; }], ['Country', function (c) { return c.country; }],
          ['Visits', function (c) { return c.visits; }]], stats.cities, null, 'None in this period.'));
    });
  }

  if (heatOnly) {  // the heatmap of every fix, without the tracks themselves
    ['replay', 'profile'].forEach(function (id) { document.getElementById(id).hidden = true; });
    map.addLayer(heat);
    loadHeat().catch(admin.showError);
    statistics().then(function () { view.complete = true; }).catch(admin.showError);
    return;
  }
  var timings = view.timings = {};
  function mark(name) { timings[name] = Math.round(performance.now() - started); }
  admin.api('GET', '/api/tracks?' + query.apiQuery(period)).then(function (answer) {
    mark('fetched');
    drawTracks(answer);
    mark('tracks');
    setupReplay();
    drawProfile();
    mark('chart');
    view.drawn = true;
    view.drawnAt = performance.now();  // since the page was asked for
    document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
    return Promise.all([journeys(), statistics()]);
  }).then(function () { view.complete = true; }).catch(admin.showError);
})();
