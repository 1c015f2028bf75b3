/* Downtime reason picker on the station page (station.html?id=…): the station's downtime stretches
 * (GET /api/downtime) with their reasons; an operator sets or corrects a reason from the catalogue
 * (GET /api/downtime/reasons) with POST /api/downtime/{id}/reason; the token is asked once per
 * browser session (MES.post). README "Andon and downtime". station.js calls load() and changed(). */
(function () {
  'use strict';
  const { el, t, fmt } = MES;
  const id = MES.query('id');
  const LIMIT = 50;
  let catalogue = [];
  const rows = new Map(); // stretch id → {data, json, tr}
  let order = [];
  let refreshTimer = null;

  const reasonText = (r) => (r ? (MES.lang() === 'zh' ? r.textZh || r.text : r.text) : '');
  const duration = (d) => (d.end ? Number(d.durationS) : Math.max(0, (MES.now() - MES.ms(d.start)) / 1000));
  const status = (text, bad) => {
    const s = document.getElementById('dt-status');
    s.className = bad ? 'error-text' : 'muted';
    MES.setText(s, text);
  };

  function picker(d) {
    const select = el('select', { className: 'dt-select', 'aria-label': t('dt.reason') },
      el('option', { value: '' }, t('dt.pick')),
      catalogue.map((r) => el('option', { value: r.code, selected: !!(d.reason && d.reason.code === r.code) },
        r.code + ' — ' + reasonText(r) + (r.planned ? ' (' + t('dt.planned') + ')' : ''))));
    const comment = el('input', { type: 'text', className: 'dt-comment', maxLength: 2000, placeholder: t('dt.comment'), value: d.comment || '' });
    const save = el('button', { type: 'button', className: 'dt-save primary', onclick: () => submit(d.id, select, comment, save) }, t('dt.set'));
    return el('div', { className: 'pick' }, select, comment, save);
  }

  function row(d) {
    const reason = d.reason
      ? [el('span', null, reasonText(d.reason)), ' ', el('span', { className: 'muted' }, '· ' + d.reason.category + (d.reason.planned ? ' · ' + t('dt.planned') : ''))]
      : el('span', null, t('dt.unassigned'));
    return el('tr', { id: 'dt-' + d.id, className: (d.end ? '' : 'going ') + (d.reason ? '' : 'unassigned'),
      dataset: { id: d.id, state: d.state, reason: d.reason ? d.reason.code : '' } },
    el('td', { className: 'num' }, fmt.dateTime(d.start)),
    el('td', null, el('span', { className: 'badge st-' + (MES.isState(d.state) ? d.state : 'unknown') }, MES.tOr('state', d.state))),
    el('td', null, d.faultCode || '—'),
    el('td', { className: 'num dt-duration' }, fmt.seconds(duration(d)) + (d.end ? '' : ' · ' + t('dt.going'))),
    el('td', { className: 'reason' }, reason, d.comment ? el('div', { className: 'muted' }, '“' + d.comment + '”') : null),
    el('td', null, d.reasonBy ? (d.reasonBy === 'system' ? t('dt.system') : d.reasonBy) : '—'),
    el('td', null, catalogue.length ? picker(d) : null));
  }

  /** Puts the list in the table; a row whose picker is in use is left alone until it is not. */
  function render(force) {
    const body = document.querySelector('#dt-table tbody');
    if (!body) return;
    const busy = (tr) => tr && tr.contains(document.activeElement) && document.activeElement !== document.body;
    const trs = order.map((sid) => {
      const r = rows.get(sid);
      if (!r.tr || ((r.dirty || force) && !busy(r.tr))) { r.tr = row(r.data); r.dirty = false; }
      return r.tr;
    });
    const wanted = trs.length ? trs : [el('tr', null, el('td', { colSpan: 7 }, el('div', { className: 'empty-state good' }, t('dt.none'))))];
    if (wanted.length !== body.children.length || wanted.some((r, i) => body.children[i] !== r)) body.replaceChildren(...wanted);
    document.getElementById('dt-no-catalogue').classList.toggle('hidden', catalogue.length > 0);
  }

  function take(list) {
    order = list.map((d) => d.id);
    const seen = new Set(order);
    for (const key of Array.from(rows.keys())) if (!seen.has(key)) rows.delete(key);
    for (const d of list) {
      // durationS of a stretch that goes on moves with the clock: the row shows its own time
      const json = JSON.stringify(Object.assign({}, d, { durationS: d.end ? d.durationS : null }));
      const old = rows.get(d.id);
      if (old && old.json === json) { old.data = d; continue; }
      rows.set(d.id, { data: d, json, tr: old ? old.tr : null, dirty: true });
    }
    render(false);
  }

  async function refresh() {
    if (!id) return;
    try {
      take(await MES.api('/api/downtime?station=' + encodeURIComponent(id) + '&limit=' + LIMIT));
    } catch (e) {
      status(t('error', { message: e.message }), true);
    }
  }

  async function submit(stretchId, select, comment, button) {
    if (!select.value) { select.focus(); return; }
    button.disabled = true;
    try {
      const d = await MES.post('/api/downtime/' + stretchId + '/reason', { code: select.value, comment: comment.value.trim() || null });
      document.activeElement.blur();
      const r = rows.get(d.id);
      if (r) { r.data = d; r.json = ''; r.dirty = true; }
      status(t('dt.saved', { id: d.id }), false);
      take(order.map((sid) => (sid === d.id ? d : rows.get(sid).data)));
      render(true);
    } catch (e) {
      status(t('error', { message: e.message }), true);
    } finally {
      button.disabled = false;
    }
  }

  // Durations of stretches that go on move every second.
  setInterval(() => {
    for (const sid of order) {
      const r = rows.get(sid);
      if (!r || !r.tr || r.data.end) continue;
      MES.setText(r.tr.querySelector('.dt-duration'), fmt.seconds(duration(r.data)) + ' · ' + t('dt.going'));
    }
  }, 1000);

  MES.downtimePicker = {
    /** The catalogue and the station's stretches (part of the station page's snapshot). */
    async load() {
      catalogue = await MES.api('/api/downtime/reasons').catch(() => []);
      await refresh();
    },
    /** The station's state changed: a stretch began or ended (fetched once things settle). */
    changed() {
      clearTimeout(refreshTimer);
      refreshTimer = setTimeout(refresh, 300);
    },
    render: () => render(true),
    size: () => rows.size,
  };
})();
