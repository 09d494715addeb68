/* The geofences page (web/admin_pages.py): every geofence on a Leaflet map, drawn and
   reshaped with Leaflet-Geoman, saved through /api/geofences. A shape the API refuses gets
   the API's own message. Names and markers go into the page as text. */
(function () {
  'use strict';
  var admin = window.trackerAdmin, el = admin.el;
  var DEFAULT_RADIUS = 200;
  var STYLE = {color: '#3d85c6', weight: 2, fillOpacity: 0.15};
  var SELECTED = {color: '#d35400', weight: 3, fillOpacity: 0.25};

  var map = L.map('geofence-map', {zoomControl: true}).setView([20, 0], 2);
  L.tileLayer(document.body.dataset.tiles, {maxZoom: 19, attribution: document.body.dataset.attribution}).addTo(map);
  map.pm.setGlobalOptions({allowSelfIntersection: true, snappable: false});
  map.pm.addControls({position: 'topleft', drawMarker: false, drawCircleMarker: false, drawPolyline: false,
                      drawText: false, cutPolygon: false, rotateMode: false, editMode: false, dragMode: false,
                      removalMode: false});

  var layers = new Map();  // geofence id -> layer
  var selected = null;     // the layer being changed (a new one has no geofenceId)
  var content = document.getElementById('content');

  // --- the form ------------------------------------------------------------------------
  var formSection = admin.section('New geofence', 'geofence');
  var hint = el('p', {text: 'Draw a shape on the map, or choose a geofence, to name it and set its speed limit.'});
  formSection.appendChild(hint);
  var form = admin.entryForm('The geofence', [
    {name: 'name', label: 'Name', required: true},
    {name: 'speed_limit', label: 'Speed limit (m/s, empty: none)', type: 'number'},
    {name: 'markers', label: 'Markers it applies to (empty: all)', placeholder: 'truck-* van-3'}
  ], 'Save the geofence', save);
  form.elements.speed_limit.step = 'any';
  form.hidden = true;
  var buttons = form.querySelector('div');
  var remove = el('button', {type: 'button', 'class': 'danger', text: 'Delete the geofence', on: {click: deleteSelected}});
  var cancel = el('button', {type: 'button', text: 'Cancel', on: {click: function () { admin.clearError(); unselect(true); }}});
  buttons.appendChild(cancel);
  buttons.appendChild(remove);
  formSection.appendChild(form);
  formSection.appendChild(el('p', null, el('button', {type: 'button', text: 'Add a circle at the map\'s centre',
    on: {click: function () {
      var layer = L.circle(map.getCenter(), Object.assign({radius: Math.max(20, DEFAULT_RADIUS * Math.pow(2, 15 - map.getZoom()))}, STYLE));
      layer.addTo(map);
      select(layer);
    }}})));

  function feature(layer) {
    if (layer instanceof L.Circle) {
      var centre = layer.getLatLng();
      return {type: 'Feature', geometry: {type: 'Point', coordinates: [centre.lng, centre.lat]},
              properties: {radius: layer.getRadius()}};
    }
    var shape = layer.toGeoJSON();
    return {type: 'Feature', geometry: shape.geometry, properties: {}};
  }

  function save(values) {
    var data = feature(selected);
    data.properties.name = values.name;
    data.properties.markers = admin.list(values.markers);
    if (values.speed_limit !== '') data.properties.speed_limit = Number(values.speed_limit);
    var id = selected.geofenceId;
    return admin.api(id === undefined ? 'POST' : 'PUT', '/api/geofences' + (id === undefined ? '' : '/' + id), data)
      .then(function (stored) {
        if (id === undefined) map.removeLayer(selected);
        selected = null;
        form.hidden = true;
        return refresh().then(function () { announce('Saved ' + stored.properties.name + '.'); });
      });
  }

  function deleteSelected() {
    if (!selected) return;
    if (selected.geofenceId === undefined) { unselect(true); return; }
    if (!window.confirm('Delete the geofence ' + selected.geofence.properties.name + '?')) return;
    admin.clearError();
    admin.api('DELETE', '/api/geofences/' + selected.geofenceId).then(function () {
      selected = null;
      form.hidden = true;
      return refresh();
    }).catch(admin.showError);
  }

  function announce(text) { hint.textContent = text; }

  function select(layer) {
    if (selected === layer) return;
    unselect(true);
    selected = layer;
    layer.setStyle(SELECTED);
    layer.pm.enable({allowSelfIntersection: true, draggable: true, snappable: false});
    var properties = layer.geofence ? layer.geofence.properties : {};
    formSection.querySelector('h2').textContent = layer.geofence ? 'Geofence ' + properties.name : 'New geofence';
    form.elements.name.value = properties.name || '';
    form.elements.speed_limit.value = properties.speed_limit === undefined ? '' : properties.speed_limit;
    form.elements.markers.value = (properties.markers || []).join(' ');
    remove.hidden = !layer.geofence;
    form.hidden = false;
    hint.textContent = 'Drag the shape or its handles to move or reshape it; then save.';
    form.elements.name.focus();
  }

  function unselect(restore) {
    if (!selected) return;
    var layer = selected;
    selected = null;
    layer.pm.disable();
    if (layer.geofenceId === undefined) map.removeLayer(layer);
    else if (restore) { redraw(); }
    form.hidden = true;
    formSection.querySelector('h2').textContent = 'New geofence';
  }

  map.on('pm:create', function (event) {
    event.layer.setStyle && event.layer.setStyle(STYLE);
    select(event.layer);
  });

  // --- the geofences -------------------------------------------------------------------
  function layerOf(geofence) {
    var geometry = geofence.geometry, layer;
    if (geometry.type === 'Point') {
      layer = L.circle([geometry.coordinates[1], geometry.coordinates[0]], Object.assign({radius: geofence.properties.radius}, STYLE));
    } else {
      layer = L.geoJSON(geometry, {style: function () { return STYLE; }}).getLayers()[0];
    }
    layer.geofenceId = geofence.id;
    layer.geofence = geofence;
    var label = geofence.properties.name + (geofence.properties.speed_limit !== undefined ?
      ', speed limit ' + geofence.properties.speed_limit + ' m/s' : '');
    layer.bindTooltip(document.createTextNode(label));
    layer.on('click', function () { select(layer); });
    return layer;
  }

  var shown = [];
  function redraw() {
    layers.forEach(function (layer) { map.removeLayer(layer); });
    layers.clear();
    shown.forEach(function (geofence) { var layer = layerOf(geofence); layer.addTo(map); layers.set(geofence.id, layer); });
  }

  var listArea = el('div');
  admin.section('Geofences', 'list').appendChild(listArea);
  var fitted = false;
  function refresh() {
    return admin.api('GET', '/api/geofences').then(function (collection) {
      shown = collection.features;
      if (!selected) redraw();
      if (!fitted && layers.size) {
        fitted = true;
        map.fitBounds(L.featureGroup(Array.from(layers.values())).getBounds(), {maxZoom: 15});
      }
      listArea.replaceChildren(admin.dataTable('Every geofence', [
        ['Geofence', function (g) { return g.properties.name; }],
        ['Shape', function (g) { return g.geometry.type === 'Point' ? 'circle, ' + Math.round(g.properties.radius) + ' m' : g.geometry.type.toLowerCase(); }],
        ['Speed limit', function (g) { return g.properties.speed_limit === undefined ? '—' : g.properties.speed_limit + ' m/s'; }],
        ['Markers', function (g) { return (g.properties.markers || []).join(' ') || 'all'; }]
      ], shown, function (g) {
        return [el('button', {type: 'button', text: 'Choose', on: {click: function () {
          var layer = layers.get(g.id);
          if (!layer) return;
          map.fitBounds(layer.getBounds(), {maxZoom: 16});
          select(layer);
        }}})];
      }, 'No geofences yet.'));
      document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
    });
  }
  refresh().catch(admin.showError);
  window.geofenceEditor = {map: map, layers: layers, selected: function () { return selected; }, refresh: refresh};
})();
