/* Line overview (index.html): process columns of station tiles, line figures, andon band. */
(function () {
  'use strict';
  const { el, t, fmt } = MES;
  // A polled station sends a sample every poll (100 ms): 5 s without one means its figures are old.
  // A subscribed station (OPC UA monitored items) sends changes only, so silence is no sign of age:
  // its figures are current while it is online. A station counts as polled once it has sent
  // POLLED_SAMPLES samples within POLLED_WINDOW_MS.
  const SAMPLE_FRESH_MS = 5000;
  const POLLED_SAMPLES = 20;
  const POLLED_WINDOW_MS = 3000;
  const KPI_FRESH_MS = 5 * 60 * 1000;
  const SEVERITIES = ['critical', 'high', 'medium', 'low'];
  const ACTIVE = new Set(['active_unacknowledged', 'active_acknowledged']);

  // A big screen stays open for months: every collection the page keeps is bounded. The server's
  // lists answer at most 10,000 entries, so the page tracks as many; beyond that a figure is shown as
  // a lower bound ("10000+") until the page is reloaded.
  const MAX_TRACKED = 10000;
  const stations = new Map(); // id → station model
  const alerts = new Map(); // id → alert (not cleared), at most MAX_TRACKED
  const openDefects = new Set(); // ids, at most MAX_TRACKED
  const inProcess = new Set(); // vehicle ids, at most MAX_TRACKED
  const truncated = { alerts: false, defects: false, wip: false }; // some entries were forgotten
  const atLeast = (n, cut) => String(n) + (cut ? '+' : '');
  let lineKpi = null;
  let lineKpiAt = null;
  let shiftName = null;
  let plannedPerHour = null;

  // A station's figures are current while it is online, or replayed (values from a recording, whose
  // age is measured on the recording's clock).
  const current = (connection) => connection === 'online' || connection === 'replayed';

  // ---------------------------------------------------------------- model
  function model(summary, detail) {
    const roles = {};
    const units = {};
    for (const s of (detail && detail.signals) || []) {
      if (s.role) roles[s.role] = roles[s.role] || s.name;
      units[s.name] = s.unit || '';
    }
    // a utilities station (README "Energy and equipment health") has no measurement: its first condition or power signal
    const signals = (detail && detail.signals) || [];
    const firstMeasurement = signals.find((s) => s.role === 'measurement') || signals.find((s) => s.role === 'condition')
      || signals.find((s) => s.role === 'power');
    const st = {
      id: summary.id, name: summary.name, process: summary.process, ideal: summary.idealCycleTimeS,
      connection: MES.shownConnection(summary.connection), state: summary.state, vehicle: summary.currentVehicle,
      lastSampleAt: summary.lastSampleAt, kpi: summary.kpi && typeof summary.kpi === 'object' ? summary.kpi : null,
      kpiAt: MES.now(), roles, units, measurement: firstMeasurement ? firstMeasurement.name : null,
      measValue: firstMeasurement ? firstMeasurement.value : null, lastCycleS: null, anomalies: new Map(),
      arrivals: [], polled: false, notOnlineSince: current(MES.shownConnection(summary.connection)) ? null : MES.now(),
    };
    st.render = () => renderTile(st);
    return st;
  }

  // ---------------------------------------------------------------- DOM
  function buildRoute(list) {
    const order = [];
    for (const s of list) if (!order.includes(s.process)) order.push(s.process);
    const route = document.getElementById('route');
    route.style.gridTemplateColumns = 'repeat(' + Math.max(1, order.length) + ', minmax(0, 1fr))';
    // the stylesheet sizes tiles and figures by the fullest column (1, 2, 3, 4+ stations)
    const rows = Math.max(1, ...order.map((p) => list.filter((s) => s.process === p).length));
    document.body.dataset.rows = String(Math.min(rows, 4));
    route.replaceChildren(...order.map((p) =>
      el('section', { className: 'process', dataset: { process: p } },
        el('h2', { className: 'pname' }, MES.tOr('process', p)),
        list.filter((s) => s.process === p).map(buildTile))));
  }

  function buildTile(st) {
    const row = (key, cls) => [el('dt', { dataset: { i18n: key } }, t(key)), el('dd', { className: cls })];
    st.tile = el('a', { className: 'tile', id: 'tile-' + st.id, href: 'station.html?id=' + encodeURIComponent(st.id), dataset: { station: st.id, ageIn: '.head' } },
      el('div', { className: 'state-band' }, el('span', { className: 'band-sid' }, st.id), el('span', { className: 'state-name' }),
        el('span', { className: 'conn' }, el('span', { className: 'dot' }), el('span', { className: 'conn-txt' }))),
      el('div', { className: 'head' }, el('span', { className: 'sid' }, st.id), el('span', { className: 'sname' }, st.name)),
      el('dl', null,
        row('tile.vehicle', 'vehicle'), row('tile.cycle', 'cycle'), row('tile.oee', 'oee'), row('tile.anomaly', 'anomaly'),
        el('dt', { className: 'meas-name' }), el('dd', { className: 'meas-value' })));
    renderTile(st);
    return st.tile;
  }

  function renderTile(st) {
    const tile = st.tile;
    if (!tile) return;
    const q = (sel) => tile.querySelector(sel);
    const state = st.connection === 'offline' ? 'unknown' : st.state || 'unknown';
    const band = q('.state-band');
    band.className = 'state-band st-' + (MES.isState(state) ? state : 'unknown');
    MES.setText(q('.state-name'), st.connection === 'offline' ? t('conn.offline') : MES.tOr('state', state));
    q('.conn .dot').className = 'dot ' + (st.connection || '');
    MES.setText(q('.conn-txt'), MES.tOr('conn', st.connection || 'connecting'));
    tile.classList.toggle('conn-offline', st.connection === 'offline');
    tile.dataset.connection = st.connection || '';
    tile.dataset.state = st.state || '';

    MES.setText(q('dd.vehicle'), st.vehicle ? st.vehicle : t('tile.none'));
    const kpiCycle = st.kpi && st.kpi.cycleTimeS ? st.kpi.cycleTimeS.p50 ?? st.kpi.cycleTimeS.mean : null;
    const cycle = st.lastCycleS ?? kpiCycle;
    const cycleDd = q('dd.cycle');
    MES.setText(cycleDd, (cycle === null || cycle === undefined ? '—' : fmt.num(cycle, 1)) + ' / ' + (st.ideal ? fmt.num(st.ideal, 0) : '—') + ' ' + t('unit.s'));
    cycleDd.classList.toggle('over', cycle !== null && cycle !== undefined && st.ideal > 0 && cycle > st.ideal * 1.1);
    const oeeDd = q('dd.oee');
    MES.setText(oeeDd, st.kpi ? fmt.pct(st.kpi.oee) : '—');
    MES.stamp(oeeDd, st.kpiAt, KPI_FRESH_MS);

    let worst = null;
    for (const [signal, score] of st.anomalies) if (!worst || score > worst.score) worst = { signal, score };
    const anDd = q('dd.anomaly');
    MES.setText(anDd, worst ? fmt.num(worst.score, 2) + (worst.score > 0 ? ' · ' + worst.signal : '') : '—');
    anDd.classList.toggle('over', !!worst && worst.score >= 0.5 && worst.score < 0.8);
    anDd.classList.toggle('bad', !!worst && worst.score >= 0.8);

    if (st.measurement) {
      MES.setText(q('dt.meas-name'), st.measurement);
      MES.setText(q('dd.meas-value'), fmt.value(st.measValue) + (st.units[st.measurement] ? ' ' + st.units[st.measurement] : ''));
    }
    if (current(st.connection)) {
      MES.stamp(tile, st.lastSampleAt || MES.now(), st.polled ? SAMPLE_FRESH_MS : Infinity);
    } else {
      // offline or still connecting: what the tile shows is as old as its last sample
      if (st.lastSampleAt) MES.stamp(tile, st.lastSampleAt, 0, 'age.noData');
      else MES.stamp(tile, st.notOnlineSince || MES.now(), 0, st.connection === 'offline' ? 'age.offlineFor' : 'age.noData');
    }
  }
  function setConnection(st, connection) {
    if (connection === st.connection) return;
    st.connection = connection;
    st.notOnlineSince = current(connection) ? null : MES.now();
  }

  function buildFigures() {
    const fig = (id, key) => el('div', { className: 'figure', id: 'fig-' + id },
      el('div', { className: 'label', dataset: { i18n: key } }, t(key)), el('div', { className: 'value num' }, '—'), el('div', { className: 'sub' }));
    document.getElementById('figures').replaceChildren(
      fig('throughput', 'fig.throughput'), fig('oee', 'fig.oee'), fig('fpy', 'fig.fpy'),
      fig('wip', 'fig.wip'), fig('defects', 'fig.defects'), fig('alerts', 'fig.alerts'), fig('energy', 'fig.energy'));
  }

  function setFigure(id, value, sub, level, at, freshMs) {
    const f = document.getElementById('fig-' + id);
    MES.setText(f.querySelector('.value'), value);
    MES.setText(f.querySelector('.sub'), sub || '');
    f.classList.remove('good', 'warn', 'bad');
    if (level) f.classList.add(level);
    if (at !== undefined) MES.stamp(f, at, freshMs);
  }
  const ratioLevel = (v, good, warn) => (v === null || v === undefined ? null : v >= good ? 'good' : v >= warn ? 'warn' : 'bad');

  function renderFigures() {
    const k = lineKpi || {};
    const tp = k.throughputPerHour;
    setFigure('throughput', tp === null || tp === undefined ? '—' : fmt.num(tp, 1),
      plannedPerHour ? t('fig.plan', { plan: fmt.num(plannedPerHour, 0) }) : '',
      plannedPerHour && tp !== null && tp !== undefined ? ratioLevel(tp / plannedPerHour, 0.95, 0.8) : null, lineKpiAt, KPI_FRESH_MS);
    setFigure('oee', fmt.pct(k.oee), shiftName ? t('fig.shift', { name: shiftName }) : '', ratioLevel(k.oee, 0.85, 0.6), lineKpiAt, KPI_FRESH_MS);
    setFigure('fpy', fmt.pct(k.fpy), k.rty !== undefined && k.rty !== null ? t('fig.rty', { rty: fmt.pct(k.rty) }) : '',
      ratioLevel(k.fpy, 0.95, 0.85), lineKpiAt, KPI_FRESH_MS);
    setFigure('wip', atLeast(inProcess.size, truncated.wip), t('fig.wipSub'));
    setFigure('defects', atLeast(openDefects.size, truncated.defects), '', openDefects.size ? 'warn' : 'good');
    let active = 0;
    let unack = 0;
    for (const a of alerts.values()) {
      if (ACTIVE.has(a.state)) active++;
      if (a.state === 'active_unacknowledged' || a.state === 'cleared_unacknowledged') unack++;
    }
    setFigure('alerts', atLeast(active, truncated.alerts), t('fig.unack', { n: atLeast(unack, truncated.alerts) }), active ? 'bad' : 'good');
    // Energy (README "Energy and equipment health"): kWh per completed vehicle, idle energy below.
    const e = k.energy;
    const perVehicle = e && e.kWhPerVehicle !== null && e.kWhPerVehicle !== undefined ? fmt.num(e.kWhPerVehicle, 1) : '—';
    setFigure('energy', perVehicle, e ? t('fig.energyIdle', { idle: fmt.num(e.idleKWh, 1), total: fmt.num(e.kWh, 0) }) : '',
      null, e ? lineKpiAt : undefined, KPI_FRESH_MS);
  }

  function renderAndon() {
    const active = Array.from(alerts.values()).filter((a) => ACTIVE.has(a.state));
    const rank = (s) => { const i = SEVERITIES.indexOf(s); return i < 0 ? 9 : i; };
    active.sort((a, b) => rank(a.severity) - rank(b.severity) || MES.ms(b.raisedAt) - MES.ms(a.raisedAt));
    const andon = document.getElementById('andon');
    andon.classList.toggle('clear', active.length === 0);
    const counts = el('div', { className: 'counts' }, SEVERITIES.map((s) => {
      const n = active.filter((a) => a.severity === s).length;
      return el('div', { className: 'count ' + (n ? 'sev-' + s : 'zero'), dataset: { severity: s } }, el('span', { className: 'n' }, String(n)), MES.tOr('sev', s));
    }));
    const list = el('div', { className: 'list', id: 'andon-list' },
      active.length === 0 ? t('andon.clear') : active.slice(0, 3).map((a) =>
        el('div', { className: 'item', dataset: { alert: a.id } },
          el('span', { className: 'badge sev-' + a.severity }, MES.tOr('sev', a.severity)),
          el('b', null, a.station || ''), el('span', { className: 'msg' }, a.message || a.type),
          el('span', { className: 'muted' }, fmt.time(a.raisedAt)))));
    andon.replaceChildren(counts, list);
  }
  const renderAll = () => { for (const st of stations.values()) renderTile(st); renderFigures(); renderAndon(); MES.andonBoard.render(); };

  // ---------------------------------------------------------------- events
  const handlers = {
    station(d) {
      const st = stations.get(d.station);
      if (!st) return;
      if (d.connection) setConnection(st, MES.shownConnection(d.connection));
      if ('state' in d) st.state = d.state;
      MES.schedule(st.render);
    },
    sample(d) {
      const st = stations.get(d.station);
      if (!st) return;
      const v = d.values || {};
      // mes-server sends an empty sample when a Modbus poll fails; it carries no data
      if (!Object.keys(v).length) return;
      st.lastSampleAt = d.t || MES.now();
      if (!st.polled) {
        const now = Date.now();
        st.arrivals.push(now);
        if (st.arrivals.length > POLLED_SAMPLES) st.arrivals.shift();
        st.polled = st.arrivals.length === POLLED_SAMPLES && now - st.arrivals[0] <= POLLED_WINDOW_MS;
        if (st.polled) st.arrivals = [];
      }
      if (st.roles.vehicleId && st.roles.vehicleId in v) st.vehicle = v[st.roles.vehicleId] || null;
      if (st.measurement && st.measurement in v) st.measValue = v[st.measurement];
      setConnection(st, MES.mode() === 'replay' ? 'replayed' : 'online');
      MES.schedule(st.render);
    },
    operation(d) {
      const st = stations.get(d.station);
      if (!st || !d.completedAt || !d.startedAt) return;
      st.lastCycleS = (MES.ms(d.completedAt) - MES.ms(d.startedAt)) / 1000;
      MES.schedule(st.render);
    },
    vehicle(d) {
      if (d.status === 'in_process') inProcess.add(d.vehicleId);
      else inProcess.delete(d.vehicleId);
      if (MES.bound(inProcess, MAX_TRACKED)) truncated.wip = true;
      MES.schedule(renderFigures);
    },
    defect(d) {
      if (d.status === 'open') openDefects.add(d.id);
      else openDefects.delete(d.id);
      if (MES.bound(openDefects, MAX_TRACKED)) truncated.defects = true;
      MES.schedule(renderFigures);
    },
    alert(a) {
      if (a.state === 'cleared') alerts.delete(a.id);
      else alerts.set(a.id, a);
      // the andon needs the active ones: the others go first
      if (MES.bound(alerts, MAX_TRACKED, (old) => !ACTIVE.has(old.state))) truncated.alerts = true;
      MES.schedule(renderFigures);
      MES.schedule(renderAndon);
    },
    kpi(k) {
      const at = k.t || MES.now();
      if (k.scope === 'line' || k.id === 'line') {
        lineKpi = k;
        lineKpiAt = at;
        if (k.shift) shiftName = k.shift;
        MES.schedule(renderFigures);
      } else {
        const st = stations.get(k.id);
        if (!st) return;
        st.kpi = k;
        st.kpiAt = at;
        MES.schedule(st.render);
      }
    },
    anomaly(a) {
      const st = stations.get(a.station);
      if (!st) return;
      st.anomalies.set(a.signal, Number(a.score) || 0);
      MES.schedule(st.render);
    },
    // andon calls: the board (andonboard.js)
    andon(c) { MES.andonBoard.event(c); },
  };

  // ---------------------------------------------------------------- start
  const orEmpty = (p) => p.catch((e) => { console.warn(e.message); return null; });
  async function load() {
    const list = await MES.api('/api/stations');
    const [details, kpis, alertList, defects, anomalies, vehicles] = await Promise.all([
      Promise.all(list.map((s) => orEmpty(MES.api('/api/stations/' + encodeURIComponent(s.id))))),
      orEmpty(MES.api('/api/kpis?shift=current')),
      orEmpty(MES.api('/api/alerts?limit=10000')),
      orEmpty(MES.api('/api/defects?status=open&limit=10000')),
      orEmpty(MES.api('/api/anomalies')),
      orEmpty(MES.api('/api/vehicles?status=in_process&limit=10000')),
      orEmpty(MES.andonBoard.load()),
    ]);
    list.forEach((s, i) => stations.set(s.id, model(s, details[i])));
    // Plan: one vehicle per bottleneck ideal cycle (stations that see vehicles), unless the server says.
    const ideals = list.filter((s, i) => s.idealCycleTimeS > 0 && details[i] && (details[i].signals || []).some((g) => g.role === 'vehicleId')).map((s) => s.idealCycleTimeS);
    plannedPerHour = ideals.length ? 3600 / Math.max(...ideals) : null;
    if (kpis) {
      lineKpi = kpis.line || null;
      lineKpiAt = MES.now();
      if (lineKpi && (lineKpi.planPerHour || lineKpi.plannedPerHour)) plannedPerHour = lineKpi.planPerHour || lineKpi.plannedPerHour;
      shiftName = kpis.shift ? kpis.shift.name : null;
      for (const k of kpis.stations || []) {
        const st = stations.get(k.id);
        if (st) { st.kpi = k; st.kpiAt = MES.now(); }
      }
    }
    for (const a of alertList || []) if (a.state !== 'cleared') alerts.set(a.id, a);
    for (const d of defects || []) openDefects.add(d.id);
    for (const a of anomalies || []) handlers.anomaly(a);
    for (const v of vehicles || []) inProcess.add(v.vehicleId);
    // a full answer may have left some out
    truncated.alerts = (alertList || []).length >= MAX_TRACKED;
    truncated.defects = (defects || []).length >= MAX_TRACKED;
    truncated.wip = (vehicles || []).length >= MAX_TRACKED;
    buildRoute(Array.from(stations.values()));
    renderAll();
  }
  function start() {
    MES.onLang(() => {
      document.querySelectorAll('.process').forEach((p) => MES.setText(p.querySelector('.pname'), MES.tOr('process', p.dataset.process)));
      renderAll();
    });
    return MES.start({
      load, handlers,
      onError: (e) => document.getElementById('route').replaceChildren(el('p', { className: 'error-text' }, t('error', { message: e.message }))),
    });
  }
  /** Sizes of what the page keeps (tests and the console). */
  MES.kept = () => ({ stations: stations.size, alerts: alerts.size, andonCalls: MES.andonBoard.size(), openDefects: openDefects.size, inProcess: inProcess.size,
    truncated: Object.assign({}, truncated), max: MAX_TRACKED, delays: MES.metrics.delays.length, e2e: MES.metrics.e2e.length });
  MES.header();
  buildFigures();
  start();
})();
