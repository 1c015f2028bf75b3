/* Recall page: the vehicles that match every criterion given (material lot, key-part number or
 * serial, a station within a time window, model) from GET /api/recall, as a table with why each
 * matched; CSV of the result and ?format=csv links to the list endpoints (operations in the window,
 * each vehicle's operations). The criteria are in the address (recall.html?lot=…), so a recall can
 * be shared; times are entered in this browser's time zone and sent as UTC. Live: `vehicle` events
 * update the status of listed vehicles. */
(function () {
  'use strict';
  const { el, t } = MES;
  const FIELDS = ['lot', 'partNumber', 'serial', 'station', 'from', 'to', 'model'];
  const TIMES = new Set(['from', 'to']);
  const form = document.getElementById('recall-form');
  const input = (name) => document.getElementById('crit-' + name);
  const message = document.getElementById('recall-message');
  const resultPanel = document.getElementById('recall-result');
  let stations = [];
  let last = null; // {query, answer}: the result shown
  let csvUrl = null;
  let seq = 0;

  /** RFC 3339 (UTC) → the value of a datetime-local input in this browser's time zone. */
  function toLocalInput(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return '';
    const p = (n) => String(n).padStart(2, '0');
    return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + 'T' + p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds());
  }
  /** A datetime-local value (this browser's time zone) → RFC 3339 UTC with milliseconds; null if not a time. */
  function fromLocalInput(value) {
    const d = new Date(value);
    return Number.isNaN(d.getTime()) ? null : d.toISOString();
  }

  /** The criteria of the form as query parameters; throws a message key for a bad one. */
  function criteria() {
    const q = new URLSearchParams();
    for (const name of FIELDS) {
      const raw = input(name).value.trim();
      if (!raw) continue;
      if (TIMES.has(name)) {
        const iso = fromLocalInput(raw);
        if (!iso) throw new Error(t('recall.badTime', { field: t('recall.' + name) }));
        q.set(name, iso);
      } else {
        q.set(name, raw);
      }
    }
    if (q.get('from') && q.get('to') && q.get('from') > q.get('to')) throw new Error(t('recall.fromAfterTo'));
    return q;
  }

  function fillStations() {
    const sel = input('station');
    const keep = sel.value;
    sel.replaceChildren(el('option', { value: '' }, t('recall.anyStation')),
      ...stations.map((s) => el('option', { value: s.id }, s.id + ' · ' + MES.tOr('process', s.process))));
    sel.value = keep;
  }

  function setMessage(text, kind) {
    MES.setText(message, text || '');
    message.className = kind === 'error' ? 'error-text' : 'muted';
    message.dataset.kind = kind || '';
  }

  async function search(pushUrl) {
    let q;
    try {
      q = criteria();
    } catch (e) {
      setMessage(e.message, 'error');
      return;
    }
    if ([...q.keys()].length === 0) {
      setMessage(t('recall.needCriterion'), 'error');
      return;
    }
    if (pushUrl) history.replaceState(null, '', 'recall.html?' + q.toString());
    const mine = ++seq;
    setMessage(t('loading'));
    let answer;
    try {
      answer = await MES.api('/api/recall?' + q.toString() + '&limit=10000');
    } catch (e) {
      if (mine !== seq) return;
      resultPanel.classList.add('hidden');
      last = null;
      if (e.status === 404) setMessage(t('recall.noRoute'), 'error');
      else if (e.status === 400 || e.status === 422) setMessage(t('recall.badCriteria', { message: e.message }), 'error');
      else setMessage(t('error', { message: e.message }), 'error');
      return;
    }
    if (mine !== seq) return;
    last = { query: q, answer };
    setMessage('');
    render();
  }

  const statusBadge = (s) => (s ? el('span', { className: 'badge vs-' + s }, MES.tOr('vstatus', s)) : '—');
  const csvHref = (path, params) => path + '?' + params.toString();

  function render() {
    if (!last) return;
    const { query, answer } = last;
    const vehicles = answer.vehicles || [];
    const count = Number.isFinite(answer.count) ? answer.count : vehicles.length;
    const countEl = document.getElementById('recall-count');
    MES.setText(countEl, vehicles.length < count ? t('recall.countSome', { count, shown: vehicles.length })
      : t(count === 1 ? 'recall.countOne' : 'recall.count', { count }));
    countEl.dataset.count = String(count);
    const body = document.getElementById('recall-body');
    body.replaceChildren(...(vehicles.length === 0
      ? [el('tr', { className: 'empty' }, el('td', { colSpan: 6 }, el('div', { className: 'empty-state', id: 'recall-none' }, t('recall.none'))))]
      : vehicles.map((v) => {
        const ops = new URLSearchParams({ vehicle: v.vehicleId, format: 'csv', limit: '1000000' });
        return el('tr', { dataset: { vehicle: v.vehicleId, status: v.status || '' } },
          el('td', null, el('a', { className: 'vin', href: 'vehicle.html?id=' + encodeURIComponent(v.vehicleId) }, v.vehicleId)),
          el('td', null, v.orderId ? el('a', { href: 'orders.html?q=' + encodeURIComponent(v.orderId) }, v.orderId) : '—'),
          el('td', null, v.model || '—'),
          el('td', { className: 'status' }, statusBadge(v.status)),
          el('td', null, el('ul', { className: 'matched' }, (v.matchedBy || []).map((m) => el('li', null, m)))),
          el('td', null, el('a', { className: 'csv', href: csvHref('/api/operations', ops), download: 'operations-' + v.vehicleId + '.csv',
            onclick: download }, t('recall.csvVehicleOps'))));
      })));
    // The result as CSV (RFC 4180; a byte-order mark so spreadsheet programs read UTF-8).
    if (csvUrl) URL.revokeObjectURL(csvUrl);
    csvUrl = URL.createObjectURL(new Blob(['\ufeff' + toCSV(vehicles)], { type: 'text/csv;charset=utf-8' }));
    const csvVehicles = document.getElementById('csv-vehicles');
    csvVehicles.href = csvUrl;
    csvVehicles.download = 'recall-' + new Date(MES.now() || Date.now()).toISOString().slice(0, 10) + '.csv';
    // Operations in the window (at the station, or at every station), from the operations list.
    const inWindow = new URLSearchParams();
    for (const name of ['station', 'from', 'to']) if (query.get(name)) inWindow.set(name, query.get(name));
    const csvOps = document.getElementById('csv-operations');
    csvOps.classList.toggle('hidden', [...inWindow.keys()].length === 0);
    inWindow.set('format', 'csv');
    inWindow.set('limit', '1000000');
    csvOps.href = csvHref('/api/operations', inWindow);
    resultPanel.classList.remove('hidden');
  }

  const CSV_COLUMNS = ['vehicleId', 'orderId', 'model', 'status', 'matchedBy'];
  function csvField(value) {
    const s = value === null || value === undefined ? '' : Array.isArray(value) ? value.join('; ') : String(value);
    return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }
  function toCSV(vehicles) {
    return [CSV_COLUMNS.join(',')].concat(vehicles.map((v) => CSV_COLUMNS.map((c) => csvField(v[c])).join(','))).join('\r\n') + '\r\n';
  }

  /** A CSV link of the server: followed as it is (streamed to disk) unless this session has a token,
   *  which a link cannot send; then fetched with it and saved. */
  async function download(e) {
    const a = e.currentTarget;
    if (!MES.token()) return;
    e.preventDefault();
    try {
      const res = await fetch(a.getAttribute('href'), { headers: { Authorization: 'Bearer ' + MES.token() }, cache: 'no-store' });
      if (!res.ok) {
        let text = res.statusText;
        try { text = (await res.json()).error.message; } catch (err) { /* not the API's error shape */ }
        throw new Error(text);
      }
      const url = URL.createObjectURL(await res.blob());
      const save = el('a', { href: url, download: a.download || 'export.csv', className: 'hidden' });
      document.body.append(save);
      save.click();
      save.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (err) {
      setMessage(t('error', { message: err.message }), 'error');
    }
  }
  document.getElementById('csv-operations').addEventListener('click', download);

  function fillFromAddress() {
    const params = new URLSearchParams(location.search);
    let any = false;
    for (const name of FIELDS) {
      const value = params.get(name);
      if (value === null) continue;
      any = true;
      if (name === 'station' && !stations.some((s) => s.id === value)) {
        stations.push({ id: value, process: '' });
        fillStations();
      }
      input(name).value = TIMES.has(name) ? toLocalInput(value) : value;
    }
    return any;
  }

  form.addEventListener('submit', (e) => { e.preventDefault(); search(true); });
  document.getElementById('recall-clear').addEventListener('click', () => {
    form.reset();
    seq++;
    last = null;
    resultPanel.classList.add('hidden');
    setMessage('');
    history.replaceState(null, '', 'recall.html');
  });

  MES.header();
  fillStations();
  const fromAddress = fillFromAddress();
  MES.onLang(() => { fillStations(); render(); });
  MES.start({
    async load() {
      try {
        stations = await MES.api('/api/stations');
      } catch (e) {
        stations = [];
      }
      fillStations();
      fillFromAddress();
      MES.api('/api/orders?limit=1000').then((orders) => {
        const models = Array.from(new Set((orders || []).map((o) => o.model).filter(Boolean))).sort();
        document.getElementById('models').replaceChildren(...models.map((m) => el('option', { value: m })));
      }, () => {});
      if (fromAddress) await search(false);
    },
    handlers: {
      vehicle(v) {
        if (!last) return;
        const listed = (last.answer.vehicles || []).find((x) => x.vehicleId === v.vehicleId);
        if (!listed || listed.status === v.status) return;
        listed.status = v.status;
        MES.schedule(render);
      },
    },
  });
})();
