/* Vehicle page: a vehicle's route as a timeline (results, measurements against limits, lots, defects,
 * alerts), its key parts with their history, and the quality actions (hold, release with the quality
 * gate, scrap, raise and resolve defects; the token is asked once per browser session); a lot's
 * vehicles (recall tracing). ?id=VIN or ?lot=LOT. */
(function () {
  'use strict';
  const { el, t, fmt } = MES;
  const stationSpecs = new Map(); // station id → Promise<{signal name → {unit, limits}}>
  let shown = null; // {kind: 'vehicle'|'lot', key}
  let recent = [];
  let refreshTimer = null;
  let current = null; // the vehicle shown (GET /api/vehicles/{id})

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
    current = v;
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
    result.replaceChildren(...[
      el('div', { className: 'panel', id: 'vehicle-view', dataset: { vehicle: v.vehicleId } },
        el('h2', null, v.vehicleId + ' ', el('span', { className: 'badge vs-' + v.status, id: 'vehicle-status', dataset: { status: v.status } }, MES.tOr('vstatus', v.status))),
        v.holdReason ? el('p', { id: 'hold-reason', className: 'hold-reason' }, el('span', { className: 'muted' }, t('vehicle.holdReason') + ': '), v.holdReason) : null,
        el('p', { className: 'muted' }, t('vehicle.current') + ': ' + (v.currentStation || '—')),
        el('h2', null, t('vehicle.operations')), timeline),
      actionsPanel(v),
      partsPanel(v),
      orderPanel(v),
      el('div', { className: 'panel', id: 'vehicle-defects' }, el('h2', null, t('vehicle.defects') + ' (' + defects.length + ')'),
        defects.length === 0 ? el('p', { className: 'muted' }, t('vehicle.noDefects')) : el('table', null,
          el('thead', null, el('tr', null, ['alerts.col.severity', 'alerts.col.station', 'defect.code', 'defect.description', 'defect.status', 'alerts.col.raised', 'alerts.col.actions'].map((k) => el('th', null, t(k))))),
          el('tbody', null, defects.map((d) => el('tr', { dataset: { defect: d.id, status: d.status } }, el('td', null, el('span', { className: 'badge sev-' + d.severity }, MES.tOr('sev', d.severity))),
            el('td', null, d.station || '—'), el('td', null, d.code), el('td', null, d.description || '', d.comment ? el('div', { className: 'muted comment' }, '“' + d.comment + '”') : null),
            el('td', null, MES.tOr('dstatus', d.status), d.resolvedBy ? el('div', { className: 'muted' }, t('alerts.by', { user: d.resolvedBy })) : null),
            el('td', { className: 'num' }, fmt.dateTime(d.raisedAt)),
            el('td', { className: 'actions' }, d.status === 'open' ? el('button', { type: 'button', className: 'resolve',
              onclick: () => openAction('resolve', d) }, t('act.resolve')) : null)))))),
      el('div', { className: 'panel', id: 'vehicle-alerts' }, el('h2', null, t('vehicle.alerts') + ' (' + alerts.length + ')'),
        alerts.length === 0 ? el('p', { className: 'muted' }, t('vehicle.noAlerts')) : el('table', null,
          el('tbody', null, alerts.map((a) => el('tr', null, el('td', null, el('span', { className: 'badge sev-' + a.severity }, MES.tOr('sev', a.severity))),
            el('td', null, MES.tOr('astate', a.state)), el('td', null, a.station || '—'), el('td', null, a.message || ''), el('td', { className: 'num' }, fmt.dateTime(a.raisedAt))))))),
    ].filter(Boolean)); // panels a vehicle has not (no order, a server without key parts) are left out
  }

  /** Hold, release, scrap and raise a defect (quality staff; POSTs ask for the token once per session). */
  function actionsPanel(v) {
    const can = {
      hold: v.status === 'in_process' || v.status === 'completed',
      release: v.status === 'hold',
      scrap: v.status !== 'scrapped',
      defect: true,
    };
    const button = (kind, key, cls) => el('button', { type: 'button', id: 'act-' + kind + '-button', className: cls || '', disabled: !can[kind],
      onclick: () => openAction(kind) }, t(key));
    return el('div', { className: 'panel', id: 'vehicle-actions' },
      el('h2', null, t('act.title')),
      el('div', { className: 'toolbar flush' },
        button('hold', 'act.hold'), button('release', 'act.release'), button('scrap', 'act.scrap', 'danger'), button('defect', 'act.raiseDefect'),
        el('span', { className: 'spacer fill' }),
        el('span', { id: 'token-state', className: 'muted' }, t(MES.token() ? 'token.signedIn' : 'token.none')),
        el('button', { type: 'button', id: 'token-button', onclick: toggleToken }, t(MES.token() ? 'token.signout' : 'token.signin'))),
      el('p', { id: 'act-message', className: 'muted', role: 'status' },
        lastMessage && lastMessage.vehicle === v.vehicleId ? t('act.done', { action: t(ACTION_KEYS[lastMessage.kind]) }) : ''));
  }

  /** The vehicle's key parts: those in it, then those replaced, with who bound or removed them and why. */
  function partsPanel(v) {
    if (!Array.isArray(v.parts)) return null; // a server without key parts
    const time = (ms) => ms || 0;
    const parts = v.parts.slice().sort((a, b) => (a.removedAt ? 1 : 0) - (b.removedAt ? 1 : 0) || time(MES.ms(b.boundAt)) - time(MES.ms(a.boundAt)));
    const recallLink = (name, value) => (value ? el('a', { href: 'recall.html?' + name + '=' + encodeURIComponent(value), title: name === 'partNumber' ? t('parts.recall') : null }, value) : '—');
    const by = (user) => (user === 'plc' ? t('parts.plc') : user || '—');
    return el('div', { className: 'panel', id: 'vehicle-parts' }, el('h2', null, t('parts.title') + ' (' + parts.filter((p) => !p.removedAt).length + ')'),
      parts.length === 0 ? el('p', { className: 'muted' }, t('parts.none')) : el('table', null,
        el('thead', null, el('tr', null, ['parts.type', 'parts.serial', 'parts.number', 'parts.station', 'parts.bound', 'parts.by', 'parts.removed', 'parts.reason']
          .map((k) => el('th', null, t(k))))),
        el('tbody', null, parts.map((p) => el('tr', { className: p.removedAt ? 'removed' : 'current', dataset: { serial: p.serial, partType: p.partType, state: p.removedAt ? 'removed' : 'current' } },
          el('td', null, MES.tOr('ptype', p.partType), el('div', { className: 'muted' }, t(p.removedAt ? 'parts.history' : 'parts.current'))),
          el('td', { className: 'serial' }, recallLink('serial', p.serial)),
          el('td', null, recallLink('partNumber', p.partNumber)),
          el('td', null, p.station || '—'),
          el('td', { className: 'num' }, fmt.dateTime(p.boundAt)),
          el('td', null, by(p.boundBy)),
          el('td', { className: 'num' }, p.removedAt ? [fmt.dateTime(p.removedAt), el('div', { className: 'muted' }, by(p.removedBy))] : '—'),
          el('td', null, p.reason || '—'))))));
  }

  // ---------------------------------------------------------------- quality actions
  const dialog = document.getElementById('act-dialog');
  const SEVERITIES = ['low', 'medium', 'high', 'critical'];
  let pending = null; // {kind, vehicleId, defect}
  let lastMessage = null; // {vehicle, kind}: the last action done, said on the vehicle's page
  const ACTION_KEYS = { hold: 'act.hold', release: 'act.release', scrap: 'act.scrap', defect: 'act.raiseDefect', resolve: 'act.resolve' };
  let stationIds = null;

  async function stationList() {
    if (!stationIds) {
      try {
        stationIds = (await MES.api('/api/stations')).map((s) => s.id);
      } catch (e) {
        return [];
      }
    }
    return stationIds;
  }
  const q = (id) => document.getElementById(id);

  async function openAction(kind, defect) {
    if (!current) return;
    const v = current;
    pending = { kind, vehicleId: v.vehicleId, defect };
    const titles = { hold: 'act.holdTitle', release: 'act.releaseTitle', scrap: 'act.scrapTitle', defect: 'act.defectTitle', resolve: 'act.resolveTitle' };
    MES.setText(q('act-title'), t(titles[kind], { id: kind === 'resolve' ? defect.id : v.vehicleId }));
    MES.setText(q('act-text-label'), t(kind === 'resolve' ? 'act.comment' : kind === 'defect' ? 'act.comment' : 'act.reason'));
    q('act-text-row').classList.toggle('hidden', kind === 'defect');
    q('act-defect-fields').classList.toggle('hidden', kind !== 'defect');
    q('act-warn').classList.toggle('hidden', kind !== 'scrap');
    MES.setText(q('act-warn'), kind === 'scrap' ? t('act.scrapWarn') : '');
    q('act-override-row').classList.add('hidden');
    q('act-override').checked = false;
    q('act-error').textContent = '';
    q('act-text').value = '';
    q('act-ok').disabled = false;
    if (kind === 'defect') {
      const stations = await stationList();
      const last = (v.operations || []).slice(-1)[0];
      const preferred = v.currentStation || (last && last.station) || '';
      q('act-station').replaceChildren(el('option', { value: '' }, '—'), ...stations.map((s) => el('option', { value: s }, s)));
      q('act-station').value = stations.includes(preferred) ? preferred : '';
      q('act-severity').replaceChildren(...SEVERITIES.map((s) => el('option', { value: s }, MES.tOr('sev', s))));
      q('act-severity').value = 'medium';
      q('act-code').value = '';
      q('act-description').value = '';
    }
    dialog.showModal();
    (kind === 'defect' ? q('act-code') : q('act-text')).focus();
  }

  q('act-cancel').addEventListener('click', () => { dialog.close(); pending = null; });
  q('act-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!pending) return;
    const { kind, vehicleId, defect } = pending;
    const text = q('act-text').value.trim();
    const path = '/api/vehicles/' + encodeURIComponent(vehicleId) + '/';
    let url;
    let body;
    if (kind === 'defect') {
      const code = q('act-code').value.trim();
      if (!code) { q('act-error').textContent = t('act.required', { field: t('act.code') }); return; }
      url = '/api/defects';
      body = { vehicleId, code, description: q('act-description').value.trim(), severity: q('act-severity').value };
      if (q('act-station').value) body.station = q('act-station').value;
    } else if (kind === 'resolve') {
      url = '/api/defects/' + encodeURIComponent(defect.id) + '/resolve';
      body = { comment: text };
    } else {
      if (!text && kind !== 'release') { q('act-error').textContent = t('act.required', { field: t('act.reason') }); return; }
      url = path + kind;
      body = { reason: text };
      if (kind === 'release' && q('act-override').checked) body.override = true;
    }
    const ok = q('act-ok');
    ok.disabled = true;
    try {
      await MES.post(url, body);
      dialog.close();
      pending = null;
      lastMessage = { vehicle: vehicleId, kind };
      refresh();
    } catch (err) {
      if (err.code === 'gate_blocked') {
        // The quality gate (README "Key parts, recall and the quality gate"): an admin may override it.
        q('act-error').textContent = t('act.gateBlocked', { message: err.message });
        q('act-override-row').classList.remove('hidden');
      } else if (err.status === 403) {
        q('act-error').textContent = t('error', { message: err.message }) + ' ' + t('act.needsRole');
      } else {
        q('act-error').textContent = t('error', { message: err.message });
      }
      ok.disabled = false;
    }
    renderToken();
  });

  function renderToken() {
    const has = !!MES.token();
    MES.setText(q('token-state'), t(has ? 'token.signedIn' : 'token.none'));
    MES.setText(q('token-button'), t(has ? 'token.signout' : 'token.signin'));
  }
  async function toggleToken() {
    if (MES.token()) MES.setToken('');
    else await MES.askToken();
    renderToken();
  }
  document.addEventListener('mes:token', renderToken);

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
    part(p) { if (concerns(p)) refreshSoon(); },
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
