/* The live map's clustering, off the page's main thread (a Web Worker).

   The page sends every marker's position as one Float64Array [lon, lat, lon, lat, ...]
   ("load"), then asks for the clusters of a view ("query"); the index is rebuilt from
   scratch on each load, which takes a few hundred milliseconds for 100,000 markers: here,
   not on the thread that draws the map and answers the user.

   Messages in:  {type: "init", supercluster: url, radius, maxZoom}
                 {type: "load", generation, coords}
                 {type: "query", id, bbox: [west, south, east, north], zoom}
                 {type: "expand", clusterId, lat, lon}
   Messages out: {type: "loaded", generation}
                 {type: "clusters", id, generation, data}  data: Float64Array of
                     [lon, lat, count, ref] per cluster; ref is the cluster's id when
                     count > 1, else the marker's index in the load's coords
                 {type: "expanded", zoom, lat, lon} */
"use strict";

var index = null;
var generation = -1;
var options = null;

function load(coords) {
  var points = new Array(coords.length / 2);
  for (var i = 0; i < points.length; i++) {
    points[i] = { type: "Feature", properties: { i: i },
                  geometry: { type: "Point", coordinates: [coords[2 * i], coords[2 * i + 1]] } };
  }
  var next = new Supercluster(options);
  next.load(points);
  return next;
}

function clusters(bbox, zoom) {
  var found = index.getClusters(bbox, zoom);
  var data = new Float64Array(found.length * 4);
  for (var k = 0; k < found.length; k++) {
    var f = found[k], c = f.geometry.coordinates, p = f.properties;
    data[4 * k] = c[0];
    data[4 * k + 1] = c[1];
    data[4 * k + 2] = p.cluster ? p.point_count : 1;
    data[4 * k + 3] = p.cluster ? p.cluster_id : p.i;
  }
  return data;
}

self.onmessage = function (event) {
  var m = event.data;
  if (m.type === "init") {
    importScripts(m.supercluster);
    options = { radius: m.radius, maxZoom: m.maxZoom };
  } else if (m.type === "load") {
    index = load(m.coords);
    generation = m.generation;
    self.postMessage({ type: "loaded", generation: generation });
  } else if (m.type === "query" && index) {
    var data = clusters(m.bbox, m.zoom);
    self.postMessage({ type: "clusters", id: m.id, generation: generation, data: data }, [data.buffer]);
  } else if (m.type === "expand" && index) {
    var zoom;
    try { zoom = index.getClusterExpansionZoom(m.clusterId); } catch (e) { zoom = null; }
    self.postMessage({ type: "expanded", zoom: zoom, lat: m.lat, lon: m.lon });
  }
};
