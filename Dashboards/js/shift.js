/* Shift report page: the figures of a shift (the previous one by default, the current one so far,
 * or any stored shift by date and name) per station and for the line; print, CSV and JSON; the
 * handover notes of the previous shift and a form to leave one for the next (an operator token,
 * asked once per browser session). */
(function () {
  'use strict';
  const { el, fmt } = MES;
  const t = MES.t;
  let view = viewFromQuery();
  let shown = null; // the KPI document shown
  let currentShift = null; // the running shift (GET /api/kpis)
  let stationNames = {};
  let refreshTimer = null;
  let loads = 0; // only the newest load() renders (a click while one is on its way must win)

  const dateInput = document.getElementById('shift-date');
  const nameSelect = document.getElementById('shift-name');
  const message = document.getElementById('shift-message');

  function viewFromQuery() {
    const date = MES.query('date'), shift = MES.query('shift');
    if (date && shift) return { kind: 'named', date, name: shift };
    if (shift === 'current') return { kind: 'current' };
    return { kind: 'previous' };
  }
  function query(v) {
    if (v.kind === 'named') return 'date=' + encodeURIComponent(v.date) + '&shift=' + encodeURIComponent(v.name);
    return 'shift=' + v.kind;
  }

  function fillShiftNames() {
    const keep = nameSelect.value;
    const shifts = (MES.meta().shifts || []).map((s) => s.name);
    const names = shifts.length ? shifts : ['day'];
    nameSelect.replaceChildren(...names.map((n) => el('option', { value: n }, n)));
    if (names.includes(keep)) nameSelect.value = keep;
  }

  async function load() {
    const mine = ++loads;
    const current = await MES.api('/api/kpis');
    if (mine !== loads) return;
    currentShift = current.shift;
    let doc = current;
    let note = '';
    if (view.kind === 'previous') {
      // the newest stored shift that began before the current one (none yet: the current shift)
      const before = currentShift && currentShift.start ? '&to=' + encodeURIComponent(currentShift.start) : '';
      const newest = await MES.api('/api/shifts?limit=1' + before);
      if (newest.length) doc = await MES.api('/api/kpis?date=' + encodeURIComponent(newest[0].date) + '&shift=' + encodeURIComponent(newest[0].shift));
      else note = t('shift.noPrevious');
    } else if (view.kind === 'named') {
      try {
        doc = await MES.api('/api/kpis?' + query(view));
      } catch (e) {
        if (e.status !== 404) throw e;
        doc = null;
        note = t('shift.notStored', { name: view.name, date: view.date });
      }
    }
    if (mine !== loads) return;
    shown = doc;
    MES.setText(message, note);
    history.replaceState(null, '', 'shift.html?' + query(view));
    render();
    await Promise.all([renderNotes(), renderHistory()]);
  }

  /** A time in the plant's zone (/api/meta `timezone`; shift times are plant times), with the date. */
  function plantTime(iso, withDate) {
    if (!iso) return '—';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return '—';
    const opts = { hour: '2-digit', minute: '2-digit', hour12: false };
    if (withDate) Object.assign(opts, { year: 'numeric', month: '2-digit', day: '2-digit' });
    try {
      return d.toLocaleString(MES.lang() === 'zh' ? 'zh-CN' : 'en-CA', Object.assign({ timeZone: MES.meta().timezone || undefined }, opts));
    } catch (e) {
      return withDate ? fmt.dateTime(d) : fmt.time(d);
    }
  }
  const isCurrent = (doc) => !!(doc && doc.shift && currentShift && doc.shift.start === currentShift.start && doc.shift.name === currentShift.name);
    const downtime = (k) => (k && k.downtimeByFault ? Object.values(k.downtimeByFault).reduce((a, b) => a + Number(b || 0), 0) : null);

  function render() {
    const title = document.getElementById('shift-title');
    const sub = document.getElementById('shift-sub');
    const line = document.getElementById('shift-line');
    const body = document.getElementById('shift-stations-body');
    if (!shown || !shown.shift) {
      MES.setText(title, '—');
      MES.setText(sub, '');
      line.replaceChildren();
      body.replaceChildren();
      setLinks(null);
      return;
    }
    const s = shown.shift;
    dateInput.value = s.date || '';
    if ([...nameSelect.options].some((o) => o.value === s.name)) nameSelect.value = s.name;
    title.dataset.shift = s.name;
    title.dataset.date = s.date || '';
    MES.setText(title, t('shift.title', { name: s.name, date: s.date || '' }));
    const parts = [t('shift.span', { start: plantTime(s.start, true), end: plantTime(s.end, true) }) + (MES.meta().timezone ? ' (' + MES.meta().timezone + ')' : '')];
    const breaks = (s.breaks || []).map((b) => plantTime(b.start) + '–' + plantTime(b.end));
    parts.push(breaks.length ? t('shift.breaks', { breaks: breaks.join(', ') }) : t('shift.noBreaks'));
    if (s.countedFrom && s.countedFrom !== s.start) parts.push(t('shift.countedFrom', { time: plantTime(s.countedFrom, true) }));
    if (isCurrent(shown)) parts.push(t('shift.running'));
    MES.setText(sub, parts.join(' · '));

    const l = shown.line || {};
    const figures = [
      ['fig.oee', fmt.pct(l.oee), 'oee'], ['shift.col.availability', fmt.pct(l.availability), 'availability'],
      ['shift.col.performance', fmt.pct(l.performance), 'performance'], ['shift.col.quality', fmt.pct(l.quality), 'quality'],
      ['fig.fpy', fmt.pct(l.fpy), 'fpy'], ['shift.rty', fmt.pct(l.rty), 'rty'],
      ['shift.col.goodTotal', (l.goodCount ?? '—') + ' / ' + (l.totalCount ?? '—'), 'count'],
      ['shift.col.completed', String(l.completedVehicles ?? '—'), 'completed'],
      ['shift.throughput', fmt.num(l.throughputPerHour, 1), 'throughput'], ['shift.col.downtime', fmt.seconds(downtime(l)), 'downtime'],
      ['shift.mtbf', fmt.seconds(l.mtbfS), 'mtbf'], ['shift.mttr', fmt.seconds(l.mttrS), 'mttr'],
    ];
    const rows = [];
    for (let i = 0; i < figures.length; i += 3) {
      rows.push(el('tr', null, figures.slice(i, i + 3).map(([key, value, name]) =>
        [el('th', null, t(key)), el('td', { className: 'num', dataset: { figure: name } }, value)]).flat()));
    }
    line.replaceChildren(...rows);

    body.replaceChildren(...(shown.stations || []).map((k) => el('tr', { dataset: { station: k.id } },
      el('td', null, k.id, stationNames[k.id] ? el('div', { className: 'muted' }, stationNames[k.id]) : null),
      el('td', { className: 'num' }, fmt.pct(k.oee)), el('td', { className: 'num', dataset: { figure: 'availability' } }, fmt.pct(k.availability)),
      el('td', { className: 'num' }, fmt.pct(k.performance)), el('td', { className: 'num' }, fmt.pct(k.quality)),
      el('td', { className: 'num' }, fmt.pct(k.fpy)), el('td', { className: 'num' }, k.goodCount + ' / ' + k.totalCount),
      el('td', { className: 'num' }, fmt.num(k.cycleTimeS && k.cycleTimeS.mean, 1) + ' / ' + fmt.num(k.cycleTimeS && k.cycleTimeS.p95, 1)),
      el('td', { className: 'num' }, fmt.seconds(k.runTimeS)), el('td', { className: 'num' }, fmt.seconds(k.plannedTimeS)),
      el('td', { className: 'num' }, fmt.seconds(downtime(k))), el('td', { className: 'num' }, String(k.faults ?? '—')))));
    setLinks(s);
  }

  function setLinks(s) {
    const q = s ? 'date=' + encodeURIComponent(s.date || '') + '&shift=' + encodeURIComponent(s.name) : '';
    const lang = MES.lang() === 'zh' ? 'zh' : 'both';
    document.getElementById('shift-csv').href = s ? '/api/reports/shift?' + q + '&format=csv' : '#';
    document.getElementById('shift-json').href = s ? '/api/reports/shift?' + q + '&format=json' : '#';
    document.getElementById('shift-html').href = s ? '/api/reports/shift?' + q + '&format=html&lang=' + lang : '#';
  }

  function noteItems(notes) {
    if (!notes.length) return [el('li', { className: 'muted' }, t('shift.notesNone'))];
    return notes.slice().reverse().map((n) => el('li', { dataset: { note: n.id } },
      el('div', { className: 'note-head muted' }, t('shift.by', { time: plantTime(n.t, true), user: n.user })),
      el('div', { className: 'note-text' }, n.text)));
  }

  async function renderNotes() {
    const [previous, current] = await Promise.all([
      MES.api('/api/shifts/notes?shift=previous').catch(() => []),
      MES.api('/api/shifts/notes?shift=current').catch(() => []),
    ]);
    const p = previous[0];
    MES.setText(document.getElementById('notes-previous-title'),
      p ? t('shift.notesFrom', { name: p.shift, date: p.date }) : t('shift.notesFromNone'));
    document.getElementById('notes-previous').replaceChildren(...noteItems(previous));
    MES.setText(document.getElementById('notes-current-title'),
      t('shift.notesThis', { name: currentShift ? currentShift.name : '—', date: currentShift ? currentShift.date : '' }));
    document.getElementById('notes-current').replaceChildren(...noteItems(current));
  }

  async function renderHistory() {
    let rows;
    try {
      rows = await MES.api('/api/shifts?limit=21');
    } catch (e) {
      return;
    }
    const body = document.getElementById('shift-history-body');
    body.replaceChildren(...(rows.length === 0 ? [el('tr', null, el('td', { colSpan: 6, className: 'muted' }, t('shift.historyNone')))] :
      rows.map((r) => el('tr', { className: 'clickable', dataset: { date: r.date, shift: r.shift },
        onclick: () => { view = { kind: 'named', date: r.date, name: r.shift }; load().catch(showError); } },
        el('td', null, el('a', { href: 'shift.html?date=' + encodeURIComponent(r.date) + '&shift=' + encodeURIComponent(r.shift),
          onclick: (e) => e.preventDefault() }, r.date)),
        el('td', null, r.shift), el('td', { className: 'num' }, fmt.pct(r.line && r.line.oee)),
        el('td', { className: 'num' }, fmt.pct(r.line && r.line.availability)),
        el('td', { className: 'num' }, r.line ? r.line.goodCount + ' / ' + r.line.totalCount : '—'),
        el('td', { className: 'num' }, String(r.line ? r.line.completedVehicles : '—'))))));
  }

  function showError(e) { MES.setText(message, t('error', { message: e.message })); }

  function renderToken() {
    const has = !!MES.token();
    MES.setText(document.getElementById('token-state'), t(has ? 'token.signedIn' : 'token.none'));
    MES.setText(document.getElementById('token-button'), t(has ? 'token.signout' : 'token.signin'));
  }

  // Live: while the current shift is shown its figures follow the kpi events (at most every 5 s);
  // a shift change brings the new previous shift, its notes and the history.
  function refreshSoon() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      const before = currentShift && currentShift.start;
      MES.api('/api/kpis').then((cur) => {
        const changed = cur.shift && before && cur.shift.start !== before;
        currentShift = cur.shift;
        if (changed) { load().catch(showError); return; }
        if (view.kind === 'current' || isCurrent(shown)) { shown = cur; render(); }
      }, () => {});
    }, 5000);
  }

  MES.header();
  MES.applyI18n();
  renderToken();
  document.getElementById('shift-form').addEventListener('submit', (e) => {
    e.preventDefault();
    if (!dateInput.value) return;
    view = { kind: 'named', date: dateInput.value, name: nameSelect.value };
    load().catch(showError);
  });
  document.getElementById('shift-previous').addEventListener('click', () => { view = { kind: 'previous' }; load().catch(showError); });
  document.getElementById('shift-current').addEventListener('click', () => { view = { kind: 'current' }; load().catch(showError); });
  document.getElementById('shift-print').addEventListener('click', () => window.print());
  document.getElementById('token-button').addEventListener('click', async () => {
    if (MES.token()) MES.setToken('');
    else await MES.askToken();
    renderToken();
  });
  document.addEventListener('mes:token', renderToken);
  document.getElementById('note-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = document.getElementById('note-text');
    const out = document.getElementById('note-message');
    if (!text.value.trim()) { MES.setText(out, t('shift.noteEmpty')); return; }
    try {
      const note = await MES.post('/api/shifts/notes', { text: text.value });
      text.value = '';
      MES.setText(out, t('shift.noteAdded', { id: note.id }));
      renderToken();
      await renderNotes();
    } catch (err) {
      MES.setText(out, t('error', { message: err.message }));
    }
  });
  MES.onLang(() => { render(); renderToken(); renderNotes(); renderHistory(); });
  MES.start({
    async load() {
      fillShiftNames();
      try {
        const stations = await MES.api('/api/stations');
        for (const s of stations) stationNames[s.id] = s.name;
      } catch (e) { /* ids only */ }
      await load();
    },
    onError: showError,
    handlers: { kpi: refreshSoon },
    types: ['kpi'],
    onReconnect: () => load().catch(showError),
  });
})();
