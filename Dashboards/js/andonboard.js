/* Andon board on the line overview (index.html): every andon call not closed, large enough to read
 * from 5 m: station, kind and the time since the call, flashing while nobody has answered, steady
 * once somebody responds; the called station's tile gets a frame in the call's colour.
 * README "Andon and downtime". overview.js feeds it (snapshot and `andon` events). */
(function () {
  'use strict';
  const { el, t } = MES;
  const KINDS = ['help', 'quality', 'material', 'maintenance'];
  // A big screen stays open for months: the calls kept are bounded like the overview's other lists.
  const MAX_TRACKED = 10000;
  // Cards shown at once; the rest are counted on a last card.
  const SHOWN = 6;
  const calls = new Map(); // id → call (open or acknowledged)

  const two = (n) => String(n).padStart(2, '0');
  /** mm:ss, or h:mm:ss from an hour on. */
  function elapsed(ms) {
    const s = Math.max(0, Math.floor((Number.isFinite(ms) ? ms : 0) / 1000));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    return (h ? h + ':' + two(m) : two(m)) + ':' + two(s % 60);
  }
  const kind = (k) => (KINDS.includes(k) ? k : 'other');
  // Waiting calls first, the longest waiting first; then the ones being answered.
  const ordered = () => Array.from(calls.values()).sort((a, b) =>
    (a.state === 'open' ? 0 : 1) - (b.state === 'open' ? 0 : 1) || MES.ms(a.openedAt) - MES.ms(b.openedAt) || a.id - b.id);

  function card(c) {
    return el('div', { className: 'andon-call ' + (c.state === 'open' ? 'open' : 'acknowledged'),
      dataset: { call: c.id, station: c.station, state: c.state, kind: kind(c.kind) } },
    el('span', { className: 'call-station' }, c.station),
    el('span', { className: 'call-time num', dataset: { opened: c.openedAt } }, elapsed(MES.now() - MES.ms(c.openedAt))),
    el('span', { className: 'call-kind' }, MES.tOr('andon.kind', c.kind)),
    el('span', { className: 'call-state' }, c.state === 'open' ? t('andon.cstate.open') : t('andon.cstate.acknowledged', { user: c.acknowledgedBy || '' })));
  }

  function render() {
    const board = document.getElementById('andon-board');
    if (!board) return;
    const list = ordered();
    board.classList.toggle('hidden', list.length === 0);
    board.dataset.count = String(list.length);
    const cards = list.slice(0, SHOWN).map(card);
    if (list.length > SHOWN) cards.push(el('div', { className: 'andon-call more' }, t('andon.more', { n: list.length - SHOWN })));
    board.replaceChildren(
      el('div', { className: 'andon-title' }, el('span', { className: 'andon-n num' }, String(list.length)), el('span', null, t('andon.board'))),
      ...cards);
    // The called stations' tiles: the first call of each station gives the frame.
    const byStation = new Map();
    for (const c of list) if (!byStation.has(c.station)) byStation.set(c.station, c);
    document.querySelectorAll('.tile[data-andon]').forEach((tile) => {
      if (!byStation.has(tile.dataset.station)) { delete tile.dataset.andon; delete tile.dataset.andonKind; }
    });
    for (const [station, c] of byStation) {
      const tile = document.getElementById('tile-' + station);
      if (!tile) continue;
      tile.dataset.andon = c.state;
      tile.dataset.andonKind = kind(c.kind);
    }
  }

  // The elapsed times move every second, on the pipeline's clock (the recording's in replay).
  setInterval(() => {
    const now = MES.now();
    document.querySelectorAll('#andon-board .call-time').forEach((e) => MES.setText(e, elapsed(now - MES.ms(e.dataset.opened))));
  }, 1000);

  MES.andonBoard = {
    /** The snapshot: calls open or acknowledged. */
    async load() {
      const [open, answered] = await Promise.all([
        MES.api('/api/andon?state=open&limit=10000'), MES.api('/api/andon?state=acknowledged&limit=10000')]);
      calls.clear();
      for (const c of (open || []).concat(answered || [])) calls.set(c.id, c);
      MES.schedule(render);
    },
    /** An `andon` event. */
    event(c) {
      if (c.state === 'closed') calls.delete(c.id);
      else calls.set(c.id, c);
      MES.bound(calls, MAX_TRACKED, (old) => old.state !== 'open');
      MES.schedule(render);
    },
    render,
    /** How many calls are kept (tests and the console). */
    size: () => calls.size,
  };
})();
