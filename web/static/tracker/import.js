/* The import page (web/imports.py): a track file uploaded from the browser, its upload and
   import followed as they go, and the result: points imported, and those skipped and why. */
(function () {
  'use strict';
  var admin = window.trackerAdmin, el = admin.el;
  var POLL_MS = 500;
  var FORMATS = '.gpx,.kml,.kmz,.tcx,.geojson,.json,.csv,.rec,.zip';
  var form, fileInput, progress, status, result;

  var adding = admin.section('Import a track file', 'add');
  adding.appendChild(el('p', {text: 'GPX, KML or KMZ, TCX, GeoJSON, CSV, Overland, Google Takeout (Records.json, ' +
    'Semantic Location History, Timeline.json or the whole .zip) and OwnTracks .rec files, with their own times.'}));
  form = admin.entryForm('Import a track file', [
    {name: 'marker_id', label: 'As the marker', required: true, placeholder: 'hiker'},
    {name: 'start', label: 'Files without times: first point at', type: 'datetime-local'},
    {name: 'interval', label: 'and seconds between points', type: 'number'}
  ], 'Import the file', upload);
  fileInput = el('input', {id: 'import-file', name: 'file', type: 'file', accept: FORMATS, required: true});
  form.insertBefore(el('label', {'for': 'import-file'}, 'Track file', fileInput), form.firstChild);
  adding.appendChild(form);

  var going = admin.section('Progress', 'progress');
  progress = el('progress', {id: 'import-progress', max: '1', value: '0', 'aria-label': 'Progress of the import'});
  status = el('p', {id: 'import-status', role: 'status', text: 'Nothing imported yet.'});
  going.appendChild(progress);
  going.appendChild(status);
  result = el('div', {id: 'import-result'});
  going.appendChild(result);

  function mb(bytes) { return (bytes / 1048576).toFixed(1) + ' MB'; }

  function put(url, file) {  // XMLHttpRequest: fetch tells nothing of an upload's progress
    return new Promise(function (resolve, reject) {
      var request = new XMLHttpRequest();
      request.open('PUT', url);
      request.setRequestHeader('Content-Type', 'application/octet-stream');
      request.upload.onprogress = function (event) {
        progress.max = event.total || file.size;
        progress.value = event.loaded;
        status.textContent = 'Uploading ' + file.name + ': ' + mb(event.loaded) + ' of ' + mb(event.total || file.size) + '.';
      };
      request.onload = function () {
        var answer = {};
        try { answer = JSON.parse(request.responseText); } catch (ignored) { /* not JSON */ }
        if (request.status >= 200 && request.status < 300) resolve(answer);
        else reject(new Error(answer.message || request.statusText));
      };
      request.onerror = function () { reject(new Error('The tracker cannot be reached; check the connection and try again')); };
      request.send(file);
    });
  }

  function show(job) {
    if (job.state === 'reading') {
      progress.removeAttribute('value');
      status.textContent = 'Reading ' + job.filename + '…';
    } else if (job.state === 'sending') {
      progress.max = job.total || 1;
      progress.value = job.sent;
      status.textContent = 'Importing: ' + job.sent.toLocaleString() + ' of ' + job.total.toLocaleString() + ' points sent.';
    } else if (job.state === 'done') {
      progress.max = 1;
      progress.value = 1;
      status.textContent = 'Imported ' + job.sent.toLocaleString() + ' points as ' + job.marker_id + '; ' +
        job.skipped.toLocaleString() + ' skipped.';
    } else if (job.state === 'failed') {
      progress.max = 1;
      progress.value = 0;
      status.textContent = 'The import failed.';
      admin.showError(new Error(job.message));
    }
    if (job.state === 'done' || job.state === 'failed') {
      result.replaceChildren();
      if (job.message && job.state === 'done') result.appendChild(el('p', {text: job.message}));
      job.files.forEach(function (file) {
        result.appendChild(el('h3', {text: file.name + ' (' + file.format + ')'}));
        result.appendChild(el('p', {text: file.points.toLocaleString() + ' points from ' + admin.when(file.first) + ' to ' +
          admin.when(file.last) + (file.interpolated ? ', ' + file.interpolated + ' with interpolated times' : '') + '.'}));
        result.appendChild(admin.dataTable('Points skipped in ' + file.name, [
          ['Why', function (r) { return r.reason; }], ['How many', function (r) { return r.count; }],
          ['The first', function (r) { return r.first_at; }]], file.reasons, null, 'No point skipped.'));
      });
      if (job.state === 'done') {
        result.appendChild(el('p', null, el('a', {href: '/history?markers=' + encodeURIComponent(job.marker_id) +
          (job.files.length ? '&from=' + encodeURIComponent(job.files[0].first) + '&to=' +
           encodeURIComponent(new Date(Date.parse(job.files[job.files.length - 1].last) + 1000).toISOString()) : ''),
          text: 'See ' + job.marker_id + '\'s track'})));
      }
    }
    document.body.dataset.importState = job.state;
  }

  function follow(id) {
    return admin.api('GET', '/api/imports/' + id).then(function (job) {
      show(job);
      if (job.state === 'done' || job.state === 'failed') return refresh();
      return new Promise(function (resolve) { window.setTimeout(resolve, POLL_MS); }).then(function () { return follow(id); });
    });
  }

  function upload(values) {
    var file = fileInput.files[0];
    if (!file) throw new Error('Choose a track file first');
    var data = {marker_id: values.marker_id, filename: file.name};
    if (values.start) { data.start = new Date(values.start).toISOString(); data.interval = Number(values.interval); }
    result.replaceChildren();
    return admin.api('POST', '/api/imports', data).then(function (job) {
      document.body.dataset.importState = 'uploading';
      return put(job.upload, file).then(function () { return follow(job.id); });
    });
  }

  var refresh = (function () {
    var area = el('div');
    admin.section('Latest imports', 'list').appendChild(area);
    function load() {
      return admin.api('GET', '/api/imports').then(function (rows) {
        area.replaceChildren(admin.dataTable('Imports from the browser, newest first', [
          ['File', function (j) { return j.filename; }], ['Marker', function (j) { return j.marker_id; }],
          ['State', function (j) { return j.state; }], ['Points', function (j) { return j.sent.toLocaleString() + ' of ' + j.total.toLocaleString(); }],
          ['Skipped', function (j) { return j.skipped.toLocaleString(); }], ['By', function (j) { return j.created_by; }],
          ['When', function (j) { return admin.when(j.created_at); }]], rows, null, 'No imports yet.'));
        document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
      });
    }
    load().catch(admin.showError);
    window.setInterval(function () { load().catch(admin.showError); }, 5000);
    return load;
  })();
})();
