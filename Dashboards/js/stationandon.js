/* Andon on the station page (station.html?id=…): call andon for the station (POST /api/andon), and
 * answer or close its calls (POST /api/andon/{id}/ack, /close); the operator token is asked once per
 * browser session (MES.post). README "Andon and downtime". station.js calls load() and event(). */
(function () {
  'use strict';
  const { el, t, fmt } = MES;
  const id = MES.query('id');
  const KINDS = ['help', 'quality', 'material', 'maintenance'];
  const calls = new Map(); // this station's calls not closed

  const status = (text, bad) => {
    const s = document.getElementById('andon-status');
    s.className = bad ? 'error-text' : 'muted';
    MES.setText(s, text);
  };
  const waited = (c) => fmt.seconds(Math.max(0, (MES.now() - MES.ms(c.openedAt)) / 1000));

  async function act(path, body, done) {
    try {
      const c = await MES.post(path, body);
      event(c);
      status(done(c), false);
    } catch (e) {
      status(t('error', { message: e.message }), true);
    }
  }

  function buttons() {
    const comment = document.getElementById('andon-comment');
    document.getElementById('andon-kinds').replaceChildren(...KINDS.map((k) =>
      el('button', { type: 'button', className: 'andon-kind', dataset: { kind: k },
        onclick: () => act('/api/andon', { station: id, kind: k, comment: comment.value.trim() || null }, (c) => {
          comment.value = '';
          return t('andon.called', { id: c.id, kind: MES.tOr('andon.kind', c.kind) });
        }) }, MES.tOr('andon.kind', k))));
  }

  function render() {
    const body = document.querySelector('#andon-table tbody');
    if (!body) return;
    const list = Array.from(calls.values()).sort((a, b) => MES.ms(a.openedAt) - MES.ms(b.openedAt));
    body.replaceChildren(...(list.length ? list.map((c) => el('tr', { id: 'andon-' + c.id, dataset: { id: c.id, state: c.state, kind: c.kind } },
      el('td', null, el('span', { className: 'andon-chip', dataset: { kind: KINDS.includes(c.kind) ? c.kind : 'other' } }, MES.tOr('andon.kind', c.kind))),
      el('td', { className: 'num' }, fmt.dateTime(c.openedAt)),
      el('td', { className: 'num andon-waited' }, waited(c)),
      el('td', null, c.state === 'open' ? t('andon.cstate.open') : t('andon.cstate.acknowledged', { user: c.acknowledgedBy || '' })),
      el('td', null, c.comment || ''),
      el('td', { className: 'actions' },
        c.state === 'open' ? el('button', { type: 'button', className: 'andon-ack primary',
          onclick: () => act('/api/andon/' + c.id + '/ack', {}, () => t('andon.acked', { id: c.id })) }, t('alerts.ack')) : null,
        el('button', { type: 'button', className: 'andon-close',
          onclick: () => act('/api/andon/' + c.id + '/close', {}, () => t('andon.closed', { id: c.id })) }, t('andon.close')))))
      : [el('tr', null, el('td', { colSpan: 6 }, el('div', { className: 'empty-state good' }, t('andon.none'))))]));
  }

  function event(c) {
    if (!c || c.station !== id) return;
    if (c.state === 'closed') calls.delete(c.id);
    else calls.set(c.id, c);
    MES.schedule(render);
  }

  setInterval(() => {
    for (const c of calls.values()) {
      const cell = document.querySelector('#andon-' + c.id + ' .andon-waited');
      if (cell) MES.setText(cell, waited(c));
    }
  }, 1000);

  MES.stationAndon = {
    async load() {
      const q = '/api/andon?station=' + encodeURIComponent(id) + '&limit=1000&state=';
      const [open, answered] = await Promise.all([MES.api(q + 'open').catch(() => []), MES.api(q + 'acknowledged').catch(() => [])]);
      calls.clear();
      for (const c of open.concat(answered)) calls.set(c.id, c);
      buttons();
      render();
    },
    event,
    render: () => { buttons(); render(); },
  };
})();
