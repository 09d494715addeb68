/* The reports page (web/history_page.py): a report for the markers and period of the form, as a
   table on screen, with links that download the same report as CSV or XLSX. */
(function () {
  'use strict';
  var admin = window.trackerAdmin, query = window.trackerQuery, el = admin.el;
  var period = query.fill(24 * 7);
  var kind = query.params.get('kind') || 'trips';
  var tz = query.params.get('tz') || '';
  var TIMES = /(^time$|_time$)/;

  if (!query.chosen()) {
    admin.section('Choose markers', 'hint').appendChild(el('p', {text: 'Name one or more markers (or a group), a report and a period above, then Show.'}));
    return;
  }
  function url(format) {
    return '/api/reports/' + encodeURIComponent(kind) + '?' + query.apiQuery(period, {tz: tz, format: format});
  }
  var holder = admin.section(document.querySelector('#q-kind option[value="' + kind + '"]').textContent, 'report');
  holder.appendChild(el('p', null, 'Download: ', el('a', {href: url('xlsx'), download: '', text: 'Excel (XLSX)'}), ' · ',
                        el('a', {href: url('csv'), download: '', text: 'CSV'}), ' · ',
                        el('a', {href: url('json'), text: 'JSON'})));
  admin.api('GET', url('json')).then(function (answer) {
    holder.appendChild(admin.dataTable(answer.rows.length + ' rows, ' + answer.from + ' to ' + answer.to + ' (' + answer.tz + ')',
      answer.columns.map(function (column) {
        return [column, function (row) {
          var value = row[column];
          if (Array.isArray(value)) return value.join(', ');
          if (value !== null && TIMES.test(column)) return admin.when(value);
          return value;
        }];
      }), answer.rows, null, 'Nothing to report for this period.'));
    document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
  }).catch(admin.showError);
})();
