/* The markers-and-period form of the history and reports pages: it fills itself from the
   page's URL and, when sent, puts its values in the URL (times in ISO 8601), so that a view
   can be bookmarked and shared with those who may see the same markers. */
(function () {
  'use strict';
  var form = document.getElementById('query');
  var params = new URLSearchParams(location.search);
  var HOUR = 3600 * 1000;

  function local(date) {  // for <input type=datetime-local>
    var shifted = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
    return shifted.toISOString().slice(0, 16);
  }

  function range(defaultHours) {
    var to = params.get('to') ? new Date(params.get('to')) : new Date();
    var from = params.get('from') ? new Date(params.get('from')) : new Date(to.getTime() - defaultHours * HOUR);
    return {from: from, to: to};
  }

  function fill(defaultHours) {
    var period = range(defaultHours);
    Array.prototype.forEach.call(form.elements, function (input) {
      if (!input.name || input.type === 'submit') return;
      if (input.name === 'from' || input.name === 'to') input.value = local(period[input.name]);
      else if (params.get(input.name) !== null) input.value = params.get(input.name);
    });
    return period;
  }

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var next = new URLSearchParams();
    Array.prototype.forEach.call(form.elements, function (input) {
      if (!input.name || !input.value) return;
      next.set(input.name, input.type === 'datetime-local' ? new Date(input.value).toISOString() : input.value.trim());
    });
    location.search = next.toString();
  });

  /* The API query naming the same markers and period. */
  function apiQuery(period, extra) {
    var query = new URLSearchParams();
    ['markers', 'group'].forEach(function (name) { if (params.get(name)) query.set(name, params.get(name)); });
    query.set('from', period.from.toISOString());
    query.set('to', period.to.toISOString());
    Object.keys(extra || {}).forEach(function (name) { if (extra[name]) query.set(name, extra[name]); });
    return query.toString();
  }

  window.trackerQuery = {params: params, fill: fill, apiQuery: apiQuery,
                         chosen: function () { return !!(params.get('markers') || params.get('group')); }};
})();
