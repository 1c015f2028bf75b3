/* Station page: live trend charts (canvas) of each measurement with spec limits, control limits and
 * anomaly marks; state history; fault codes; andon calls (stationandon.js); downtime stretches with the
 * reason picker (downtime.js).
 * ?id=STATION; without it, a list of stations. */
(function () {
  'use strict';
  const { el, t, fmt } = MES;
  // Colours come from mes.css (its custom properties), machine states from the server (/api/meta and
  // the state signal's own `states` map).
  const colour = (name) => MES.cssVar('--' + name);
  const stateColour = (name) => (MES.isState(name) && colour('state-' + name)) || colour('dim');
  const stateClass = (name) => 'st-' + (MES.isState(name) ? name : 'unknown');
  const id = MES.query('id');
  let windowMin = 5;
  let station = null; // the /api/stations/{id} answer
  let kpi = null;
  const charts = new Map(); // signal → {name, unit, limits, points: [[ms, v]], marks: [[ms, score]], score, canvas}
  const codeNames = {}; // state code → name, learned from (stateCode, state) pairs
  let stateSignal = null;
  let stateMap = null; // the state signal's `states` (code → name), if configured
  let faultSignal = null;
  let stateSeries = []; // [[ms, state name]]
  let faultSeries = []; // [[ms, code]]
  let lastStateCode = null;
  let polled = false; // learned: 20 samples within 3 s
  let arrivals = [];

  const windowMs = () => windowMin * 60 * 1000;
  const stateName = (code) => codeNames[code] || MES.stateName(code, stateMap);

  // ---------------------------------------------------------------- charts
  function drawChart(c) {
    const canvas = c.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    if (!w || !h) return;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const g = canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const now = MES.now();
    const x0 = now - windowMs();
    const pts = c.points.filter((p) => p[0] >= x0);
    const pad = { l: 64, r: 12, t: 10, b: 24 };
    const pw = w - pad.l - pad.r;
    const ph = h - pad.t - pad.b;
    // control limits: the engine's baseline (GET /api/anomalies `baseline`), the limits its rules use
    const b = c.baseline;
    const cl = b && b.lcl !== null && b.lcl !== undefined && b.ucl !== null && b.ucl !== undefined ? { mean: b.mean, lcl: b.lcl, ucl: b.ucl } : null;
    let lo = Infinity;
    let hi = -Infinity;
    for (const p of pts) { lo = Math.min(lo, p[1]); hi = Math.max(hi, p[1]); }
    if (c.limits) { lo = Math.min(lo, c.limits.low); hi = Math.max(hi, c.limits.high); }
    if (cl) { lo = Math.min(lo, cl.lcl); hi = Math.max(hi, cl.ucl); }
    if (!Number.isFinite(lo)) { lo = 0; hi = 1; }
    if (hi - lo < 1e-9) { hi += 1; lo -= 1; }
    const span = hi - lo;
    lo -= span * 0.08;
    hi += span * 0.08;
    const X = (ms) => pad.l + ((ms - x0) / windowMs()) * pw;
    const Y = (v) => pad.t + (1 - (v - lo) / (hi - lo)) * ph;

    // axes and grid
    g.font = '14px sans-serif';
    g.fillStyle = colour('muted');
    g.strokeStyle = colour('line');
    g.lineWidth = 1;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (let i = 0; i <= 4; i++) {
      const v = lo + ((hi - lo) * i) / 4;
      g.beginPath(); g.moveTo(pad.l, Y(v)); g.lineTo(w - pad.r, Y(v)); g.stroke();
      g.fillText(fmt.num(v), pad.l - 6, Y(v));
    }
    g.textAlign = 'center';
    g.textBaseline = 'top';
    for (let i = 0; i <= windowMin; i += windowMin <= 5 ? 1 : 5) {
      const ms = x0 + i * 60000;
      g.textAlign = i === windowMin ? 'right' : i === 0 ? 'left' : 'center';
      g.fillText(i === windowMin ? '0' : '-' + (windowMin - i) + ' min', X(ms), h - pad.b + 5);
    }
    const hline = (v, colour, dash) => {
      g.save(); g.strokeStyle = colour; g.setLineDash(dash); g.lineWidth = 1.5;
      g.beginPath(); g.moveTo(pad.l, Y(v)); g.lineTo(w - pad.r, Y(v)); g.stroke(); g.restore();
    };
    if (c.limits) { hline(c.limits.low, colour('bad'), [6, 4]); hline(c.limits.high, colour('bad'), [6, 4]); }
    if (cl) { hline(cl.lcl, colour('muted'), [2, 4]); hline(cl.ucl, colour('muted'), [2, 4]); }

    // anomaly marks
    g.fillStyle = colour('anomaly-band');
    for (const [ms, score] of c.marks) {
      if (ms < x0 || score < 0.5) continue;
      g.fillRect(X(ms) - 2, pad.t, 4, ph);
    }
    // the series
    g.save();
    g.beginPath();
    g.rect(pad.l, pad.t, pw, ph);
    g.clip();
    g.strokeStyle = colour('info');
    g.lineWidth = 1.5;
    g.beginPath();
    pts.forEach((p, i) => (i ? g.lineTo(X(p[0]), Y(p[1])) : g.moveTo(X(p[0]), Y(p[1]))));
    g.stroke();
    g.fillStyle = colour('bad');
    for (const p of pts) {
      if (c.limits && (p[1] < c.limits.low || p[1] > c.limits.high)) { g.beginPath(); g.arc(X(p[0]), Y(p[1]), 3, 0, 7); g.fill(); }
    }
    g.restore();
    if (!pts.length) {
      g.fillStyle = colour('dim'); g.textAlign = 'center'; g.textBaseline = 'middle';
      g.fillText(t('station.noData'), pad.l + pw / 2, pad.t + ph / 2);
    }
    const last = pts.length ? pts[pts.length - 1] : null;
    const value = c.el.querySelector('.cur');
    MES.setText(value, last ? fmt.value(last[1]) + (c.unit ? ' ' + c.unit : '') : '—');
    value.classList.toggle('out-of-spec', !!(last && c.limits && (last[1] < c.limits.low || last[1] > c.limits.high)));
    // polled stations sample every poll: 5 s of silence means old; subscribed ones report changes only
    // (current while online); an offline station's values are old at once
    const current = station && (station.connection === 'online' || station.connection === 'replayed');
    const fresh = !current ? 0 : polled ? 5000 : Infinity;
    MES.stamp(value, last ? last[0] : NaN, fresh);
    MES.setText(c.el.querySelector('.score'), c.score !== null ? t('station.score', { score: fmt.num(c.score, 2) }) : '');
    c.canvas.dataset.points = String(pts.length);
  }

  function buildCharts() {
    const host = document.getElementById('charts');
    host.replaceChildren();
    for (const c of charts.values()) {
      c.canvas = el('canvas', { className: 'trend', dataset: { signal: c.name } });
      c.el = el('div', { className: 'chart', id: 'chart-' + c.name },
        el('h3', null, el('span', null, c.name + (c.limits ? ' [' + fmt.value(c.limits.low) + ' … ' + fmt.value(c.limits.high) + (c.unit ? ' ' + c.unit : '') + ']' : '')),
          el('span', { className: 'score muted' }), el('span', { className: 'cur num' })), c.canvas);
      c.draw = () => drawChart(c);
      host.append(c.el);
    }
    document.getElementById('legend').replaceChildren(
      el('span', null, el('i', { className: 'spec' }), t('station.spec')),
      el('span', null, el('i', { className: 'control' }), t('station.engine')),
      el('span', null, el('i', { className: 'anomaly' }), t('station.anomaly')));
  }

  // ---------------------------------------------------------------- state history and faults
  function drawStates() {
    const canvas = document.getElementById('state-strip');
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    if (!w) return;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    const g = canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.fillStyle = colour('panel2');
    g.fillRect(0, 0, w, h);
    const now = MES.now();
    const x0 = now - windowMs();
    const X = (ms) => ((Math.max(ms, x0) - x0) / windowMs()) * w;
    stateSeries.forEach(([ms, name], i) => {
      const end = i + 1 < stateSeries.length ? stateSeries[i + 1][0] : now;
      if (end < x0) return;
      g.fillStyle = stateColour(name);
      g.fillRect(X(ms), 0, Math.max(1, X(end) - X(ms)), h);
    });
    const rows = [];
    for (let i = stateSeries.length - 1; i >= 0 && rows.length < 12; i--) {
      const [ms, name] = stateSeries[i];
      const end = i + 1 < stateSeries.length ? stateSeries[i + 1][0] : now;
      rows.push(el('tr', null, el('td', { className: 'num' }, fmt.time(new Date(ms))),
        el('td', null, el('span', { className: 'badge ' + stateClass(name) }, MES.tOr('state', name))),
        el('td', { className: 'num' }, fmt.age(end - ms))));
    }
    document.querySelector('#state-table tbody').replaceChildren(...rows);
  }

  function renderFaults() {
    const current = faultSeries.length ? faultSeries[faultSeries.length - 1][1] : null;
    MES.setText(document.getElementById('current-fault'), current === null ? '—' : String(current));
    document.getElementById('current-fault').classList.toggle('out-of-spec', !!current);
    const dt = (kpi && kpi.downtimeByFault) || {};
    const entries = Object.entries(dt).sort((a, b) => b[1] - a[1]);
    document.querySelector('#downtime-table tbody').replaceChildren(...(entries.length ? entries.map(([code, s]) =>
      el('tr', null, el('td', null, code), el('td', { className: 'num' }, fmt.seconds(s)))) : [el('tr', null, el('td', { colSpan: 2, className: 'muted' }, t('station.noFaults')))]));
    const rows = [];
    for (let i = faultSeries.length - 1; i >= 0 && rows.length < 10; i--) {
      if (faultSeries[i][1]) rows.push(el('tr', null, el('td', { className: 'num' }, fmt.dateTime(new Date(faultSeries[i][0]))), el('td', null, String(faultSeries[i][1]))));
    }
    document.querySelector('#fault-table tbody').replaceChildren(...rows);
  }

  function renderFacts() {
    const s = station;
    const k = kpi || {};
    MES.setText(document.getElementById('station-title'), s.id + ' — ' + s.name + ' (' + MES.tOr('process', s.process) + ')');
    const fact = (key, value, cls) => el('div', { className: cls || '' }, el('span', { className: 'k' }, t(key)), el('span', { className: 'v' }, value));
    const ct = k.cycleTimeS || {};
    document.getElementById('station-facts').replaceChildren(
      fact('station.connection', el('span', null, el('span', { className: 'dot ' + s.connection }), ' ', MES.tOr('conn', s.connection))),
      fact('station.state', el('span', { className: 'badge ' + stateClass(s.state), id: 'station-state' }, MES.tOr('state', s.state || 'unknown'))),
      fact('station.vehicle', s.currentVehicle ? el('a', { href: 'vehicle.html?id=' + encodeURIComponent(s.currentVehicle) }, s.currentVehicle) : '—'),
      fact('station.protocol', s.protocol || '—'),
      fact('station.latency', s.pollLatencyMs !== null && s.pollLatencyMs !== undefined ? fmt.num(s.pollLatencyMs, 1) + ' ms' : '—'),
      fact('kpi.oee', fmt.pct(k.oee)), fact('kpi.availability', fmt.pct(k.availability)), fact('kpi.performance', fmt.pct(k.performance)),
      fact('kpi.quality', fmt.pct(k.quality)), fact('kpi.fpy', fmt.pct(k.fpy)),
      fact('kpi.count', (k.goodCount ?? '—') + ' / ' + (k.totalCount ?? '—')),
      fact('kpi.throughput', fmt.num(k.throughputPerHour, 1)),
      fact('kpi.cycle', fmt.num(ct.p50, 1) + ' / ' + fmt.num(ct.p95, 1) + ' ' + t('unit.s')),
      fact('kpi.mtbf', fmt.seconds(k.mtbfS)), fact('kpi.mttr', fmt.seconds(k.mttrS)));
  }

  const redrawAll = () => { for (const c of charts.values()) c.draw(); drawStates(); };

  // ---------------------------------------------------------------- events
  // Every series is bounded by age (the longest window) and by count: 31 min at 20 samples/s, so
  // points stamped in the future (a PLC clock ahead) or out of order cannot pile up.
  const MAX_POINTS = 31 * 60 * 20;
  function prune(list) {
    const cut = MES.now() - 30 * 60 * 1000 - 60000; // keep the longest window
    let i = 0;
    while (i < list.length && list[i][0] < cut) i++;
    i = Math.max(i, list.length - MAX_POINTS);
    if (i > 0) list.splice(0, i);
  }
  function pushState(ms, name) {
    if (stateSeries.length && stateSeries[stateSeries.length - 1][1] === name) return;
    if (stateSeries.length && ms < stateSeries[stateSeries.length - 1][0]) ms = stateSeries[stateSeries.length - 1][0];
    stateSeries.push([ms, name]);
    prune(stateSeries);
    MES.schedule(drawStates);
  }
  const handlers = {
    sample(d) {
      if (d.station !== id) return;
      const ms = MES.ms(d.t) || MES.now();
      const v = d.values || {};
      if (!Object.keys(v).length) return; // an empty sample (failed Modbus poll) carries no data
      if (!polled) {
        arrivals.push(Date.now());
        if (arrivals.length > 20) arrivals.shift();
        polled = arrivals.length === 20 && arrivals[19] - arrivals[0] <= 3000;
      }
      for (const [name, value] of Object.entries(v)) {
        const c = charts.get(name);
        if (c && typeof value === 'number' && !(d.bad || []).includes(name)) {
          c.points.push([ms, value]);
          prune(c.points);
          MES.schedule(c.draw);
        }
      }
      if (stateSignal && stateSignal in v && v[stateSignal] !== lastStateCode) {
        lastStateCode = v[stateSignal];
        pushState(ms, stateName(lastStateCode));
      }
      if (faultSignal && faultSignal in v && (!faultSeries.length || faultSeries[faultSeries.length - 1][1] !== v[faultSignal])) {
        faultSeries.push([ms, v[faultSignal]]);
        prune(faultSeries);
        MES.schedule(renderFaults);
      }
    },
    station(d) {
      if (d.station !== id) return;
      MES.downtimePicker.changed(); // a downtime stretch may have begun or ended
      if (d.connection) station.connection = MES.shownConnection(d.connection);
      if ('state' in d) {
        station.state = d.state;
        if (lastStateCode !== null && d.state) codeNames[lastStateCode] = d.state;
        if (d.state) pushState(MES.ms(d.t) || MES.now(), d.state);
      }
      MES.schedule(renderFacts);
    },
    vehicle(v) {
      if (v.currentStation === id && station.currentVehicle !== v.vehicleId) { station.currentVehicle = v.vehicleId; MES.schedule(renderFacts); }
    },
    kpi(k) {
      if (k.id !== id) return;
      kpi = k;
      MES.schedule(renderFacts);
      MES.schedule(renderFaults);
    },
    andon(c) { MES.stationAndon.event(c); },
    anomaly(a) {
      if (a.station !== id) return;
      const c = charts.get(a.signal);
      if (!c) return;
      c.score = Number(a.score);
      if (a.baseline) c.baseline = a.baseline;
      c.marks.push([MES.ms(a.since) || MES.now(), c.score]);
      if (a.score >= 0.5) c.marks.push([MES.now(), c.score]);
      prune(c.marks);
      MES.schedule(c.draw);
    },
  };

  async function history(name) {
    const from = new Date(MES.now() - 30 * 60 * 1000).toISOString();
    try {
      const rows = await MES.api('/api/stations/' + encodeURIComponent(id) + '/signals/' + encodeURIComponent(name) + '?from=' + encodeURIComponent(from) + '&limit=10000');
      return rows.map((r) => [MES.ms(r.t), r.v]).filter((p) => Number.isFinite(p[0])).sort((a, b) => a[0] - b[0]);
    } catch (e) {
      console.warn('history of ' + name + ': ' + e.message);
      return [];
    }
  }

  function showError(e) {
    document.getElementById('picker').classList.remove('hidden');
    document.getElementById('station-list').replaceChildren(el('p', { className: 'error-text' }, t('error', { message: e.message })));
  }

  function start() {
    if (!id) {
      return MES.start({
        async load() {
          const list = await MES.api('/api/stations');
          document.getElementById('picker').classList.remove('hidden');
          document.getElementById('station-list').replaceChildren(...list.map((s) =>
            el('a', { className: 'chip', href: 'station.html?id=' + encodeURIComponent(s.id) }, s.id + ' · ' + s.name)));
        },
        onError: showError, handlers: { station() {} },
      });
    }
    return MES.start({
      load, handlers, onError: showError,
      retry: (e) => e.status !== 404, // an unknown station stays unknown
    }).then((stream) => {
      if (!stream) return;
      setInterval(redrawAll, 1000); // the time axis moves even when values do not
      window.addEventListener('resize', redrawAll);
    });
  }

  /** The station's snapshot: facts, KPIs, anomalies and the history behind every chart. */
  async function load() {
    station = await MES.api('/api/stations/' + encodeURIComponent(id));
    if (station) station.connection = MES.shownConnection(station.connection);
    document.title = 'Line MES — ' + station.id;
    document.getElementById('station-view').classList.remove('hidden');
    if (station.stateCode !== null && station.stateCode !== undefined && station.state) codeNames[station.stateCode] = station.state;
    for (const s of station.signals || []) {
      if (s.role === 'measurement' || (s.limits && typeof s.value === 'number')) {
        charts.set(s.name, { name: s.name, unit: s.unit || '', limits: s.limits || null, points: [], marks: [], score: null });
      }
      if (s.role === 'state') { stateSignal = s.name; stateMap = s.states || null; }
      if (s.role === 'faultCode') faultSignal = s.name;
    }
    buildCharts();
    const [kpis, anomalies] = await Promise.all([
      MES.api('/api/kpis?shift=current').catch(() => null),
      MES.api('/api/anomalies').catch(() => []),
    ]);
    kpi = kpis && kpis.stations ? kpis.stations.find((k) => k.id === id) || null : null;
    if (!kpi && station.kpi && typeof station.kpi === 'object') kpi = station.kpi;
    const names = Array.from(charts.keys());
    const series = await Promise.all(names.map(history).concat([stateSignal ? history(stateSignal) : [], faultSignal ? history(faultSignal) : []]));
    names.forEach((n, i) => { const c = charts.get(n); c.points = series[i].concat(c.points); prune(c.points); });
    const st = series[names.length];
    if (st.length) lastStateCode = st[st.length - 1][1];
    stateSeries = [];
    for (const [ms, code] of st) pushState(ms, stateName(code));
    if (!stateSeries.length && station.state) pushState(MES.ms(station.lastSampleAt) || MES.now(), station.state);
    const ft = series[names.length + 1];
    faultSeries = ft.filter((p, i) => i === 0 || p[1] !== ft[i - 1][1]);
    prune(faultSeries);
    for (const a of anomalies || []) handlers.anomaly(a);
    await Promise.all([MES.downtimePicker.load(), MES.stationAndon.load()]);
    renderFacts();
    renderFaults();
    redrawAll();
    MES.setText(document.getElementById('trends-title'), t('station.trends', { min: windowMin }));
  }

  /** Sizes of what the page keeps (tests and the console). */
  MES.kept = () => ({ points: Object.fromEntries(Array.from(charts, ([n, c]) => [n, c.points.length])),
    marks: Object.fromEntries(Array.from(charts, ([n, c]) => [n, c.marks.length])), states: stateSeries.length,
    faults: faultSeries.length, maxPoints: MAX_POINTS, delays: MES.metrics.delays.length, e2e: MES.metrics.e2e.length });

  document.getElementById('window').addEventListener('change', (e) => {
    windowMin = Number(e.target.value) || 5;
    MES.setText(document.getElementById('trends-title'), t('station.trends', { min: windowMin }));
    redrawAll();
  });
  MES.header();
  MES.onLang(() => {
    if (!station) return;
    MES.setText(document.getElementById('trends-title'), t('station.trends', { min: windowMin }));
    buildCharts();
    renderFacts();
    renderFaults();
    MES.downtimePicker.render();
    MES.stationAndon.render();
    redrawAll();
  });
  start();
})();
