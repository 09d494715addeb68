/* The management pages (web/admin_pages.py): each reads and changes what it shows through the
   JSON API, shows the API's own error messages, and refreshes its lists while it is open.
   Every text from the API goes into the page as text, never as HTML. */
(function () {
  'use strict';
  var body = document.body;
  var page = body.dataset.page, isAdmin = body.dataset.role === 'admin', me = body.dataset.user;
  var content = document.getElementById('content'), errorBox = document.getElementById('error');
  var REFRESH_MS = 10000;

  function el(tag, attrs) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === undefined || value === null || value === false) return;
      if (key === 'text') node.textContent = value;
      else if (key === 'on') Object.keys(value).forEach(function (type) { node.addEventListener(type, value[type]); });
      else if (key in node && typeof value !== 'string') node[key] = value;
      else node.setAttribute(key, value === true ? '' : value);
    });
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined) continue;
      node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
    }
    return node;
  }

  function ApiError(status, code, message) { this.status = status; this.code = code; this.message = message; }

  function api(method, path, data) {
    var options = {method: method, credentials: 'same-origin', headers: {'Accept': 'application/json'}};
    if (data !== undefined) {
      options.headers['Content-Type'] = 'application/json';
      options.body = JSON.stringify(data);
    }
    return fetch(path, options).then(function (response) {
      if (response.status === 204) return null;
      return response.json().catch(function () { return {}; }).then(function (answer) {
        if (!response.ok) throw new ApiError(response.status, answer.error, answer.message || response.statusText);
        return answer;
      });
    }, function () {
      throw new ApiError(0, 'unreachable', 'The tracker cannot be reached; check the connection and try again.');
    });
  }

  function words(error) {
    if (!(error instanceof ApiError)) return String(error && error.message || error);
    if (error.status === 401) return 'You are signed out: sign in again (' + error.message + ').';
    if (error.status === 403) return 'Not allowed: ' + error.message + '.';
    if (error.status === 404) return 'Not found: ' + error.message + '.';
    if (error.status === 409) return 'Already there: ' + error.message + '.';
    if (error.status === 503) return 'The tracker is busy or its database cannot be reached: ' + error.message + '.';
    return error.message.charAt(0).toUpperCase() + error.message.slice(1) + '.';
  }

  function showError(error) {
    errorBox.textContent = words(error);
    errorBox.hidden = false;
  }

  function clearError() { errorBox.hidden = true; errorBox.textContent = ''; }

  function when(iso) {
    if (!iso) return '—';
    var date = new Date(iso);
    return isNaN(date) ? iso : date.toLocaleString(undefined, {dateStyle: 'medium', timeStyle: 'short'});
  }

  function list(text) {
    return String(text || '').split(/[\s,]+/).filter(function (part) { return part; });
  }

  /* A form: fields are {name, label, type, options, required, value, help}; submit(values, form). */
  function entryForm(label, fields, submitLabel, submit) {
    var form = el('form', {'class': 'entry', 'aria-label': label, novalidate: true});
    fields.forEach(function (field) {
      var id = page + '-' + field.name, input;
      if (field.type === 'select') {
        input = el('select', {id: id, name: field.name});
        field.options.forEach(function (option) { input.appendChild(el('option', {value: option, text: option})); });
        if (field.value) input.value = field.value;
      } else if (field.type === 'checkbox') {
        input = el('input', {id: id, name: field.name, type: 'checkbox', checked: !!field.value});
      } else {
        input = el('input', {id: id, name: field.name, type: field.type || 'text', required: !!field.required,
                             placeholder: field.placeholder, value: field.value || '', autocomplete: 'off'});
      }
      var labelNode = el('label', {'for': id, 'class': field.type === 'checkbox' ? 'check' : null});
      if (field.type === 'checkbox') { labelNode.appendChild(input); labelNode.appendChild(document.createTextNode(field.label)); }
      else { labelNode.appendChild(document.createTextNode(field.label)); labelNode.appendChild(input); }
      form.appendChild(labelNode);
    });
    var button = el('button', {type: 'submit', 'class': 'primary', text: submitLabel});
    form.appendChild(el('div', null, button));
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      clearError();
      var values = {};
      fields.forEach(function (field) {
        var input = form.elements[field.name];
        values[field.name] = field.type === 'checkbox' ? input.checked : input.value.trim();
      });
      button.disabled = true;
      Promise.resolve().then(function () { return submit(values, form); })
        .catch(showError).then(function () { button.disabled = false; });
    });
    return form;
  }

  /* A table of rows; columns are [heading, row -> text]; actions(row) -> buttons. */
  function dataTable(caption, columns, rows, actions, empty) {
    if (!rows.length) return el('p', {text: empty});
    var head = el('tr');
    columns.forEach(function (column) { head.appendChild(el('th', {scope: 'col', text: column[0]})); });
    if (actions) head.appendChild(el('th', {scope: 'col', text: 'Actions'}));
    var tbody = el('tbody');
    rows.forEach(function (row) {
      var tr = el('tr');
      columns.forEach(function (column, i) {
        var value = column[1](row);
        tr.appendChild(el(i === 0 ? 'th' : 'td', {scope: i === 0 ? 'row' : null},
                          value instanceof Node ? value : String(value === null || value === undefined ? '—' : value)));
      });
      if (actions) {
        var cell = el('td', {'class': 'actions'});
        actions(row).forEach(function (button) { cell.appendChild(button); });
        tr.appendChild(cell);
      }
      tbody.appendChild(tr);
    });
    return el('div', {'class': 'table-wrap', role: 'region', 'aria-label': caption, tabindex: '0'},
              el('table', null, el('caption', {text: caption}), el('thead', null, head), tbody));
  }

  function action(label, handler, danger, question) {
    return el('button', {type: 'button', 'class': danger ? 'danger' : null, text: label, on: {click: function () {
      if (question && !window.confirm(question)) return;
      clearError();
      Promise.resolve().then(handler).catch(showError);
    }}});
  }

  function section(title, id) {
    var node = el('section', {'aria-labelledby': id + '-title', id: id}, el('h2', {id: id + '-title', text: title}));
    content.appendChild(node);
    return node;
  }

  /* A list section that loads from the API and refreshes itself while the page is open;
     it is redrawn only when what the API answers changed, so that focus stays put. */
  function liveList(holder, load, render, every) {
    var shown = null, area = el('div');
    holder.appendChild(area);
    function refresh() {
      return load().then(function (rows) {
        var text = JSON.stringify(rows);
        if (text === shown) return;
        shown = text;
        area.replaceChildren(render(rows));
        body.dataset.loaded = String(Number(body.dataset.loaded || 0) + 1);
      });
    }
    refresh().catch(showError);
    if (every !== 0) window.setInterval(function () { refresh().catch(showError); }, every || REFRESH_MS);
    return refresh;
  }

  function shownOnce(holder, title, parts) {
    holder.replaceChildren(el('h2', {id: page + '-once-title', text: title}),
                           el('p', {'class': 'notice', text: 'Copy it now: it is shown only once.'}));
    parts.forEach(function (part) { holder.appendChild(part); });
    holder.hidden = false;
    holder.focus();
  }

  function settingsList(pairs) {
    var dl = el('dl', {'class': 'settings'});
    pairs.forEach(function (pair) { dl.appendChild(el('dt', {text: pair[0]})); dl.appendChild(el('dd', {text: pair[1]})); });
    return dl;
  }

  function onceArea() {
    var holder = el('section', {id: 'shown-once', tabindex: '-1', hidden: true, 'aria-labelledby': page + '-once-title'});
    content.appendChild(holder);
    return holder;
  }

  // --- the pages ----------------------------------------------------------------------

  function devices() {
    var once;
    function showSettings(device) {
      var traccar = device.settings.traccar_client, owntracks = device.settings.owntracks;
      shownOnce(once, 'Settings for ' + device.device_id, [
        settingsList([['Device id', device.device_id], ['Secret', device.secret]]),
        el('div', {'class': 'phones'},
          el('section', {'aria-label': 'Traccar Client'}, el('h3', {text: 'Traccar Client'}),
            settingsList([['Server URL', traccar.server_url], ['Device identifier', traccar.device_id]]),
            el('figure', null, el('img', {src: traccar.qr_svg, 'data-qr': 'traccar', 'data-text': traccar.qr_text,
                                          alt: 'QR code with the server URL and device identifier for Traccar Client'}),
               el('figcaption', {text: 'Scan it in Traccar Client (Settings, the QR code button).'}))),
          el('section', {'aria-label': 'OwnTracks'}, el('h3', {text: 'OwnTracks'}),
            settingsList([['Mode', owntracks.mode], ['URL', owntracks.url], ['Username', owntracks.username],
                          ['Password', owntracks.password], ['Device ID', owntracks.device_id],
                          ['Tracker ID', owntracks.tracker_id]]),
            el('figure', null, el('img', {src: owntracks.qr_svg, 'data-qr': 'owntracks', 'data-text': owntracks.qr_text,
                                          alt: 'QR code with the OwnTracks configuration link'}),
               el('figcaption', null, 'Scan it with the phone\'s camera, or ',
                  el('a', {href: owntracks.config_url, text: 'open it on the phone'}), '.'))))
      ]);
    }
    var adding = section('Add a device', 'add');
    adding.appendChild(entryForm('Add a device', [
      {name: 'device_id', label: 'Device id (its marker id)', required: true, placeholder: 'phone-ann'},
      {name: 'name', label: 'Name', placeholder: 'Ann\'s phone'}
    ], 'Add the device', function (values, form) {
      return api('POST', '/api/devices', {device_id: values.device_id, name: values.name}).then(function (device) {
        form.reset();
        showSettings(device);
        return refresh();
      });
    }));
    once = onceArea();
    var refresh = liveList(section('Devices', 'list'), function () { return api('GET', '/api/devices'); }, function (rows) {
      return dataTable('Registered devices, with when each last reported', [
        ['Device', function (d) { return d.device_id; }], ['Name', function (d) { return d.name; }],
        ['Last fix', function (d) { return when(d.last_fix_at); }], ['Added', function (d) { return when(d.created_at); }],
        ['Secret rotated', function (d) { return when(d.rotated_at); }]
      ], rows, function (d) {
        return [
          action('New secret', function () {
            return api('POST', '/api/devices/' + encodeURIComponent(d.device_id) + '/rotate', {}).then(function (device) {
              showSettings(device);
              return refresh();
            });
          }, false, 'Give ' + d.device_id + ' a new secret? Its old secret stops working.'),
          action('Remove', function () {
            return api('DELETE', '/api/devices/' + encodeURIComponent(d.device_id)).then(refresh);
          }, true, 'Remove ' + d.device_id + '? It can no longer report.')
        ];
      }, 'No devices yet.');
    });
  }

  function users() {
    var once;
    section('Add a user', 'add').appendChild(entryForm('Add a user', [
      {name: 'name', label: 'Name', required: true},
      {name: 'role', label: 'Role', type: 'select', options: ['viewer', 'admin']},
      {name: 'password', label: 'Password (empty: make one)', type: 'password'}
    ], 'Add the user', function (values, form) {
      var data = {name: values.name, role: values.role};
      if (values.password) data.password = values.password;
      return api('POST', '/api/users', data).then(function (user) {
        form.reset();
        if (user.password) shownOnce(once, 'Password of ' + user.name, [settingsList([['User', user.name], ['Password', user.password]])]);
        return refresh();
      });
    }));
    once = onceArea();
    var refresh = liveList(section('Users', 'list'), function () { return api('GET', '/api/users'); }, function (rows) {
      return dataTable('People who may sign in', [
        ['User', function (u) { return u.name; }], ['Role', function (u) { return u.role; }],
        ['Groups', function (u) { return u.groups.join(', ') || '—'; }], ['Added', function (u) { return when(u.created_at); }]
      ], rows, function (u) {
        return [
          action('New password', function () {
            return api('POST', '/api/users/' + u.id + '/password', {}).then(function (answer) {
              shownOnce(once, 'New password of ' + u.name, [settingsList([['User', u.name], ['Password', answer.password]])]);
            });
          }, false, 'Give ' + u.name + ' a new password? Their sessions end.'),
          action('Remove', function () { return api('DELETE', '/api/users/' + u.id).then(refresh); }, true,
                 'Remove ' + u.name + '? Their tokens, sessions and share links end.')
        ];
      }, 'No users.');
    });
  }

  function groups() {
    var editing = null, form;
    var adding = section('Add a group', 'add');
    form = entryForm('Add or change a group', [
      {name: 'name', label: 'Name', required: true},
      {name: 'markers', label: 'Markers (ids, or prefixes ending in *)', placeholder: 'truck-* van-3'},
      {name: 'members', label: 'Members (user names)', placeholder: 'ann bob'},
      {name: 'friends', label: 'Its phones see each other in OwnTracks', type: 'checkbox'}
    ], 'Save the group', function (values) {
      var data = {markers: list(values.markers), members: list(values.members), friends: values.friends};
      var done = editing === null ? api('POST', '/api/groups', Object.assign({name: values.name}, data))
                                  : api('PATCH', '/api/groups/' + editing, data);
      return done.then(function () { stopEditing(); return refresh(); });
    });
    adding.appendChild(form);
    function stopEditing() {
      editing = null;
      form.reset();
      form.elements.name.disabled = false;
      adding.querySelector('h2').textContent = 'Add a group';
    }
    var refresh = liveList(section('Groups', 'list'), function () { return api('GET', '/api/groups'); }, function (rows) {
      return dataTable('Groups: the markers their members see', [
        ['Group', function (g) { return g.name; }], ['Markers', function (g) { return g.markers.join(' ') || '—'; }],
        ['Members', function (g) { return g.members.join(', ') || '—'; }],
        ['OwnTracks friends', function (g) { return g.friends ? 'yes' : 'no'; }]
      ], rows, function (g) {
        return [
          action('Change', function () {
            editing = g.id;
            form.elements.name.value = g.name;
            form.elements.name.disabled = true;
            form.elements.markers.value = g.markers.join(' ');
            form.elements.members.value = g.members.join(' ');
            form.elements.friends.checked = g.friends;
            adding.querySelector('h2').textContent = 'Change the group ' + g.name;
            form.elements.markers.focus();
          }),
          action('Remove', function () { return api('DELETE', '/api/groups/' + g.id).then(refresh); }, true,
                 'Remove the group ' + g.name + '? Its members stop seeing its markers.')
        ];
      }, 'No groups yet.');
    });
  }

  function tokens() {
    var once, fields = [{name: 'expires_in', label: 'Expires in (30d, 12h; empty: never)', placeholder: '30d'}];
    if (isAdmin) fields.unshift({name: 'user', label: 'For the user', value: me, required: true});
    section('Make a token', 'add').appendChild(entryForm('Make an API token', fields, 'Make the token', function (values, form) {
      var data = {};
      if (values.user) data.user = values.user;
      if (values.expires_in) data.expires_in = values.expires_in;
      return api('POST', '/api/tokens', data).then(function (token) {
        form.reset();
        shownOnce(once, 'Token ' + token.id + ' for ' + token.user,
                  [settingsList([['Token', token.token], ['Use it as', 'Authorization: Bearer ' + token.token]])]);
        return refresh();
      });
    }));
    once = onceArea();
    var refresh = liveList(section(isAdmin ? 'Tokens' : 'Your tokens', 'list'), function () { return api('GET', '/api/tokens'); }, function (rows) {
      return dataTable('API tokens for programs (the tokens themselves are never shown again)', [
        ['Token', function (t) { return '#' + t.id; }], ['User', function (t) { return t.user; }],
        ['Made', function (t) { return when(t.created_at); }],
        ['Expires', function (t) { return t.expires_at ? when(t.expires_at) : 'never'; }],
        ['Revoked', function (t) { return when(t.revoked_at); }]
      ], rows, function (t) {
        return t.revoked_at ? [] : [action('Revoke', function () {
          return api('DELETE', '/api/tokens/' + t.id).then(refresh);
        }, true, 'Revoke token #' + t.id + '? Programs using it stop working.')];
      }, 'No tokens yet.');
    });
  }

  function webhooks() {
    var once, deliveriesOf = null, deliveries;
    section('Add a webhook', 'add').appendChild(entryForm('Add a webhook', [
      {name: 'url', label: 'URL (https://…)', required: true, type: 'url'},
      {name: 'types', label: 'Event types (empty: all)', placeholder: 'geofence_enter overspeed'},
      {name: 'markers', label: 'Markers (empty: all)', placeholder: 'truck-*'}
    ], 'Add the webhook', function (values, form) {
      return api('POST', '/api/webhooks', {url: values.url, types: list(values.types), markers: list(values.markers)})
        .then(function (hook) {
          form.reset();
          shownOnce(once, 'Secret of webhook ' + hook.id, [settingsList([['URL', hook.url], ['Secret', hook.secret]]),
            el('p', {text: 'Each delivery is signed with it: X-Tracker-Signature is its HMAC-SHA256 of the body.'})]);
          return refresh();
        });
    }));
    once = onceArea();
    var refresh = liveList(section('Webhooks', 'list'), function () { return api('GET', '/api/webhooks'); }, function (rows) {
      return dataTable('Where events are sent', [
        ['Webhook', function (h) { return '#' + h.id; }], ['URL', function (h) { return h.url; }],
        ['Types', function (h) { return h.types.join(', ') || 'all'; }],
        ['Markers', function (h) { return h.markers.join(', ') || 'all'; }], ['Added', function (h) { return when(h.created_at); }]
      ], rows, function (h) {
        return [
          action('Deliveries', function () { deliveriesOf = h; return showDeliveries(); }),
          action('Send a test event', function () {
            return api('POST', '/api/webhooks/' + h.id + '/test', {}).then(function () { deliveriesOf = h; return showDeliveries(); });
          }),
          action('Remove', function () { return api('DELETE', '/api/webhooks/' + h.id).then(refresh); }, true,
                 'Remove webhook #' + h.id + '?')
        ];
      }, 'No webhooks yet.');
    });
    deliveries = section('Recent deliveries', 'deliveries');
    var area = el('div', null, el('p', {text: 'Choose a webhook\'s Deliveries to list them here.'}));
    deliveries.appendChild(area);
    function showDeliveries() {
      if (deliveriesOf === null) return Promise.resolve();
      var hook = deliveriesOf;
      return api('GET', '/api/webhooks/' + hook.id + '/deliveries?limit=50').then(function (answer) {
        deliveries.querySelector('h2').textContent = 'Recent deliveries of webhook #' + hook.id;
        area.replaceChildren(dataTable('Newest first, to ' + hook.url, [
          ['Event', function (d) { return d.event_id; }], ['Type', function (d) { return d.type; }],
          ['Marker', function (d) { return d.marker_id; }], ['Status', function (d) { return d.status; }],
          ['Attempts', function (d) { return d.attempts; }], ['HTTP status', function (d) { return d.last_status; }],
          ['Error', function (d) { return d.last_error; }], ['Made', function (d) { return when(d.created_at); }],
          ['Delivered', function (d) { return when(d.delivered_at); }]
        ], answer.deliveries, null, 'No deliveries yet.'));
      });
    }
    window.setInterval(function () { showDeliveries().catch(showError); }, 3000);
  }

  function gateways() {
    var once;
    section('Add a gateway', 'add').appendChild(entryForm('Add a gateway', [
      {name: 'name', label: 'Name (A-Z a-z 0-9 _ . -)', required: true, placeholder: 'traccar-1'},
      {name: 'prefix', label: 'Marker id prefix (empty: any)', placeholder: 'fleet-'}
    ], 'Add the gateway', function (values, form) {
      return api('POST', '/api/gateways', {name: values.name, prefix: values.prefix}).then(function (gateway) {
        form.reset();
        shownOnce(once, 'Token of gateway ' + gateway.name, [settingsList([
          ['Forward to', location.origin + '/ingest/traccar'], ['Header', 'Authorization: Bearer ' + gateway.token]])]);
        return refresh();
      });
    }));
    once = onceArea();
    var refresh = liveList(section('Gateways', 'list'), function () { return api('GET', '/api/gateways'); }, function (rows) {
      return dataTable('Servers that forward many devices\' positions', [
        ['Gateway', function (g) { return g.name; }], ['Prefix', function (g) { return g.prefix || '(any)'; }],
        ['Added', function (g) { return when(g.created_at); }]
      ], rows, function (g) {
        return [action('Remove', function () {
          return api('DELETE', '/api/gateways/' + encodeURIComponent(g.name)).then(refresh);
        }, true, 'Remove the gateway ' + g.name + '? Its token stops working.')];
      }, 'No gateways yet.');
    });
  }

  function shares() {
    var once;
    section('Share a marker', 'add').appendChild(entryForm('Share a marker', [
      {name: 'marker_id', label: 'Marker id', required: true},
      {name: 'expires_in', label: 'For (24h, 7d; at most 30d)', value: '24h'}
    ], 'Make the link', function (values, form) {
      return api('POST', '/api/shares', {marker_id: values.marker_id, expires_in: values.expires_in || '24h'}).then(function (share) {
        form.reset();
        shownOnce(once, 'Link to ' + share.marker_id, [el('p', null, el('a', {href: share.url, text: share.url})),
          el('p', {text: 'Anyone with the link sees ' + share.marker_id + ' until ' + when(share.expires_at) + '.'})]);
        return refresh();
      });
    }));
    once = onceArea();
    var refresh = liveList(section(isAdmin ? 'Share links' : 'Your share links', 'list'), function () { return api('GET', '/api/shares'); }, function (rows) {
      return dataTable('Links that show one marker without an account', [
        ['Link', function (s) { return '#' + s.id; }], ['Marker', function (s) { return s.marker_id; }],
        ['By', function (s) { return s.created_by || '(command line)'; }], ['Made', function (s) { return when(s.created_at); }],
        ['Expires', function (s) { return when(s.expires_at); }], ['Revoked', function (s) { return when(s.revoked_at); }]
      ], rows, function (s) {
        return s.revoked_at ? [] : [action('Revoke', function () {
          return api('DELETE', '/api/shares/' + s.id).then(refresh);
        }, true, 'Revoke link #' + s.id + '? It stops working at once.')];
      }, 'No share links yet.');
    });
  }

  function audit() {
    liveList(section('Latest changes', 'list'), function () { return api('GET', '/api/audit?limit=200'); }, function (rows) {
      return dataTable('Who changed what through the API, newest first', [
        ['When', function (e) { return when(e.at); }], ['Who', function (e) { return e.actor; }],
        ['Signed in by', function (e) { return e.via; }], ['What', function (e) { return e.action; }],
        ['Target', function (e) { return e.target; }], ['Detail', function (e) { return JSON.stringify(e.detail); }]
      ], rows, null, 'No changes yet.');
    });
  }

  var PAGES = {devices: devices, users: users, groups: groups, tokens: tokens, webhooks: webhooks,
               gateways: gateways, shares: shares, audit: audit};
  window.trackerAdmin = {api: api, words: words, el: el, dataTable: dataTable, entryForm: entryForm,
                         showError: showError, clearError: clearError, when: when, list: list, section: section};
  if (PAGES[page]) PAGES[page]();
})();
