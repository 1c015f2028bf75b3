/* Vehicle page: a vehicle's route as a timeline (results, measurements against limits, lots, defects,
 * alerts); a lot's vehicles (recall tracing). ?id=VIN or ?lot=LOT. */
(function () {
  'use strict';
  const { el, t, fmt } = MES;
  const stationSpecs = new Map(); // station id → Promise<{signal name → {unit, limits}}>
  let shown = null; // {kind: 'vehicle'|'lot', key}
  let recent = [];
  let refreshTimer = null;

  function specsOf(station) {
    if (!stationSpecs.has(station)) {
      stationSpecs.set(station, MES.api('/api/stations/' + encodeURIComponent(station)).then((d) => {
        const m = {};
        for (const s of d.signals || []) m[s.name] = { unit: s.unit || '', limits: s.limits || null };
        return m;
      }).catch(() => ({})));
    }
    return stationSpecs.get(station);
  }
  const vehicleLink = (id, status) => el('a', { className: 'chip' + (status ? ' vs-' + status : ''), href: 'vehicle.html?id=' + encodeURIComponent(id),
    title: status ? MES.tOr('vstatus', status) : null, onclick: (e) => { e.preventDefault(); show('vehicle', id); } }, id);
  const lotLink = (lot) => el('a', { className: 'chip lot', href: 'vehicle.html?lot=' + encodeURIComponent(lot),
    onclick: (e) => { e.preventDefault(); show('lot', lot); } }, lot);
  const result = document.getElementById('result');

  async function renderVehicle(id) {
    let v;
    try {
      v = await MES.api('/api/vehicles/' + encodeURIComponent(id));
    } catch (e) {
      result.replaceChildren(el('div', { className: 'panel error-text', id: 'not-found' },
        e.status === 404 ? t('vehicle.notFound', { id }) : t('error', { message: e.message })));
      return;
    }
    if (!shown || shown.kind !== 'vehicle' || shown.key !== id) return;
    const ops = (v.operations || []).slice().sort((a, b) => MES.ms(a.startedAt || a.completedAt) - MES.ms(b.startedAt || b.completedAt));
    const specs = await Promise.all(ops.map((op) => specsOf(op.station)));
    const timeline = el('ol', { className: 'timeline', id: 'timeline' }, ops.length === 0 ? el('li', { className: 'muted' }, t('vehicle.noOps')) :
      ops.map((op, i) => {
        const spec = specs[i];
        const res = op.result === 'ok' || op.result === 'nok' ? op.result : null;
        const dur = op.completedAt && op.startedAt ? MES.ms(op.completedAt) - MES.ms(op.startedAt) : null;
        const meas = Object.entries(op.measurements || {});
        return el('li', { className: 'op ' + (res || ''), dataset: { station: op.station } },
          el('h3', null, el('a', { href: 'station.html?id=' + encodeURIComponent(op.station) }, op.station),
            el('span', { className: 'muted' }, MES.tOr('process', op.process)),
            el('span', { className: 'badge result ' + (res || '') }, res ? t('result.' + res) : t('result.none')),
            el('span', { className: 'muted num' }, fmt.dateTime(op.startedAt) + ' → ' + (op.completedAt ? fmt.time(op.completedAt) : t('vehicle.inProgress')) +
              (dur !== null ? ' (' + fmt.age(dur) + ')' : ''))),
          meas.length ? el('table', { className: 'measurements' },
            el('thead', null, el('tr', null, el('th', null, t('vehicle.measurement')), el('th', null, t('vehicle.value')), el('th', null, t('vehicle.limits')))),
            el('tbody', null, meas.map(([name, value]) => {
              const s = spec[name] || {};
              // The vehicle's build spec may set its own limits (README "Orders and build specs").
              const own = v.spec && v.spec.limits ? v.spec.limits[op.station + '.' + name] : null;
              const lim = own || s.limits;
              const out = lim && typeof value === 'number' && (value < lim.low || value > lim.high);
              return el('tr', { className: out ? 'out-of-spec' : '' }, el('td', null, name),
                el('td', { className: 'num' }, fmt.value(value) + (s.unit ? ' ' + s.unit : '') + (out ? ' ✖' : '')),
                el('td', { className: 'num muted', title: own ? MES.t('spec.fromSpec') : null },
                  (lim ? fmt.value(lim.low) + ' … ' + fmt.value(lim.high) : '—') + (own ? ' *' : '')));
            }))) : null,
          (op.lots || []).length ? el('div', { className: 'chips' }, el('span', { className: 'muted' }, t('vehicle.lots') + ':'), op.lots.map(lotLink)) : null);
      }));
    const defects = v.defects || [];
    const alerts = v.alerts || [];
    result.replaceChildren(
      el('div', { className: 'panel', id: 'vehicle-view', dataset: { vehicle: v.vehicleId } },
        el('h2', null, v.vehicleId + ' ', el('span', { className: 'badge vs-' + v.status, id: 'vehicle-status' }, MES.tOr('vstatus', v.status))),
        el('p', { className: 'muted' }, t('vehicle.current') + ': ' + (v.currentStation || '—')),
        el('h2', null, t('vehicle.operations')), timeline),
      orderPanel(v),
      el('div', { className: 'panel', id: 'vehicle-defects' }, el('h2', null, t('vehicle.defects') + ' (' + defects.length + ')'),
        defects.length === 0 ? el('p', { className: 'muted' }, t('vehicle.noDefects')) : el('table', null,
          el('thead', null, el('tr', null, ['alerts.col.severity', 'alerts.col.station', 'defect.code', 'defect.description', 'defect.status', 'alerts.col.raised'].map((k) => el('th', null, t(k))))),
          el('tbody', null, defects.map((d) => el('tr', null, el('td', null, el('span', { className: 'badge sev-' + d.severity }, MES.tOr('sev', d.severity))),
            el('td', null, d.station || '—'), el('td', null, d.code), el('td', null, d.description || ''), el('td', null, d.status), el('td', { className: 'num' }, fmt.dateTime(d.raisedAt))))))),
      el('div', { className: 'panel', id: 'vehicle-alerts' }, el('h2', null, t('vehicle.alerts') + ' (' + alerts.length + ')'),
        alerts.length === 0 ? el('p', { className: 'muted' }, t('vehicle.noAlerts')) : el('table', null,
          el('tbody', null, alerts.map((a) => el('tr', null, el('td', null, el('span', { className: 'badge sev-' + a.severity }, MES.tOr('sev', a.severity))),
            el('td', null, MES.tOr('astate', a.state)), el('td', null, a.station || '—'), el('td', null, a.message || ''), el('td', { className: 'num' }, fmt.dateTime(a.raisedAt))))))));
  }

  /** The vehicle's order, model, options and resolved build spec (nothing without models). */
  function orderPanel(v) {
    if (!v.orderId) return null;
    const s = v.spec || {};
    const kv = (key, value) => el('div', null, el('span', { className: 'k' }, MES.t(key)), value);
    const limits = Object.entries(s.limits || {});
    const ideal = Object.entries(s.idealCycleTimeS || {});
    const parts = Object.entries(s.parts || {});
    const table = (rows) => el('table', null, el('tbody', null, rows.map(([k, val]) => el('tr', null, el('td', null, k), el('td', { className: 'num' }, val)))));
    return el('div', { className: 'panel', id: 'vehicle-order', dataset: { order: v.orderId } },
      el('h2', null, MES.t('spec.title')),
      el('div', { className: 'kv' },
        kv('spec.order', el('a', { href: 'orders.html?q=' + encodeURIComponent(v.orderId) }, v.orderId)),
        kv('spec.orderStatus', el('span', { className: 'badge os-' + v.orderStatus }, MES.tOr('ostatus', v.orderStatus))),
        kv('spec.model', v.model), kv('spec.options', (v.options || []).join(', ') || MES.t('spec.none')),
        kv('spec.route', (s.route || []).map((p) => MES.tOr('process', p)).join(' → '))),
      el('div', { className: 'spec-grid' },
        el('div', { id: 'spec-limits' }, el('h3', null, MES.t('spec.limits')), limits.length ? table(limits.map(([k, l]) =>
          [k, fmt.value(l.low) + ' … ' + fmt.value(l.high)])) : el('p', { className: 'muted' }, MES.t('spec.none'))),
        el('div', { id: 'spec-ideal' }, el('h3', null, MES.t('spec.ideal')), table(ideal.map(([k, x]) => [k, fmt.value(x)]))),
        el('div', { id: 'spec-parts' }, el('h3', null, MES.t('spec.parts')), parts.length ? table(parts) : el('p', { className: 'muted' }, MES.t('spec.none')))));
  }

  async function renderLot(lot) {
    let l;
    try {
      l = await MES.api('/api/lots/' + encodeURIComponent(lot));
    } catch (e) {
      result.replaceChildren(el('div', { className: 'panel error-text', id: 'not-found' }, t('error', { message: e.message })));
      return;
    }
    if (!shown || shown.kind !== 'lot' || shown.key !== lot) return;
    result.replaceChildren(el('div', { className: 'panel', id: 'lot-view', dataset: { lot } },
      el('h2', null, t('vehicle.lotVehicles', { lot: l.lotId || lot }) + ' (' + (l.vehicles || []).length + ')'),
      el('p', { className: 'muted' }, t('vehicle.lotStations') + ': ' + ((l.stations || []).join(', ') || '—')),
      (l.vehicles || []).length ? el('div', { className: 'chips', id: 'lot-vehicles' }, l.vehicles.map(vehicleLink)) : el('p', { className: 'muted' }, t('vehicle.lotNone'))));
  }

  function show(kind, key) {
    key = (key || '').trim();
    if (!key) return;
    shown = { kind, key };
    document.getElementById(kind === 'vehicle' ? 'vehicle-input' : 'lot-input').value = key;
    history.replaceState(null, '', 'vehicle.html?' + (kind === 'vehicle' ? 'id=' : 'lot=') + encodeURIComponent(key));
    result.replaceChildren(el('p', { className: 'muted' }, t('loading')));
    refresh();
  }
  function refresh() {
    if (!shown) return;
    if (shown.kind === 'vehicle') renderVehicle(shown.key);
    else renderLot(shown.key);
  }
  function refreshSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, 300);
  }
  function renderRecent() {
    const host = document.getElementById('recent');
    if (!recent.length) host.replaceChildren(el('span', { className: 'muted' }, t('vehicle.noRecent')));
    else host.replaceChildren(...recent.slice(0, 16).map((v) => vehicleLink(v.vehicleId, v.status)));
  }
  function renderHint() {
    if (!shown) result.replaceChildren(el('p', { className: 'empty-state', id: 'hint' }, t('vehicle.hint')));
  }

  document.getElementById('vehicle-form').addEventListener('submit', (e) => { e.preventDefault(); show('vehicle', document.getElementById('vehicle-input').value); });
  document.getElementById('lot-form').addEventListener('submit', (e) => { e.preventDefault(); show('lot', document.getElementById('lot-input').value); });

  const concerns = (d) => shown && (shown.kind === 'vehicle' ? d.vehicleId === shown.key : (d.lots || []).includes(shown.key));
  const handlers = {
    vehicle(v) {
      recent = [v].concat(recent.filter((x) => x.vehicleId !== v.vehicleId)).slice(0, 50);
      MES.schedule(renderRecent);
      if (concerns(v)) refreshSoon();
    },
    operation(op) { if (concerns(op)) refreshSoon(); },
    defect(d) { if (concerns(d)) refreshSoon(); },
    alert(a) { if (concerns(a)) refreshSoon(); },
  };

  function start() {
    return MES.start({
      async load() {
        try {
          recent = await MES.api('/api/vehicles?limit=50');
        } catch (e) {
          recent = [];
        }
        renderRecent();
      },
      handlers, onReconnect: refreshSoon,
    });
  }
  MES.header();
  MES.onLang(() => { refresh(); renderRecent(); renderHint(); });
  if (MES.query('id')) show('vehicle', MES.query('id'));
  else if (MES.query('lot')) show('lot', MES.query('lot'));
  else renderHint();
  start();
})();
