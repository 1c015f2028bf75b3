/* My items: the alerts, defects and andon calls the signed-in user owns, overdue first, with their
 * due times; acknowledge, resolve, close and reassign from here (README "My items").
 *
 * Who is signed in comes from GET /api/me (the session's token, asked once per browser session).
 * Alerts and defects carry `owner` (the config's responsibility rules, or a reassignment). Andon
 * calls (GET /api/andon) carry no owner of their own: a call is the user's when it names an
 * `owner`, or when its `andon` alert (`alertId`; else the one at its station raised within 10 s of
 * it) is owned by the user. A server without andon calls (404) shows a note instead of failing.
 */
(function () {
  'use strict';
  const { el, t, fmt } = MES;
  const O = MES.owners;
  const R = MES.alertRows;
  const OPEN_ALERT = new Set(['active_unacknowledged', 'active_acknowledged', 'cleared_unacknowledged', 'shelved']);
  const UNACK = R.UNACK;
  const ASKED = 'mes.myitems.asked'; // sessionStorage: the token was asked for once in this session
  const alerts = new Map();
  const defects = new Map();
  const calls = new Map();
  let me = null;
  let andonAvailable = null; // null: not known yet; false: the server has no /api/andon

  // ------------------------------------------------------------------ which items are mine
  /** The andon alert of a call: its own `alertId`, else an `andon` alert at its station raised within 10 s of it. */
  function alertOfCall(call) {
    if (call.alertId !== undefined && call.alertId !== null) return alerts.get(call.alertId) || null;
    const opened = MES.ms(call.openedAt);
    let best = null;
    for (const a of alerts.values()) {
      if (a.type !== 'andon' || a.station !== call.station) continue;
      const d = Math.abs(MES.ms(a.raisedAt) - opened);
      if (d <= 10000 && (!best || d < best.d)) best = { a, d };
    }
    return best ? best.a : null;
  }
  function callOwner(call) {
    if (call.owner !== undefined) return call.owner;
    const a = alertOfCall(call);
    return a ? a.owner : null;
  }

  /** Every item of mine as {kind, id, item, open, overdue, due, raised}, overdue first, then by due time. */
  function myItems() {
    if (!me) return [];
    const out = [];
    const linked = new Set();
    for (const c of calls.values()) {
      if (c.state === 'closed' || callOwner(c) !== me.user) continue;
      const a = alertOfCall(c);
      if (a) linked.add(a.id);
      const open = c.state === 'open';
      const item = a ? Object.assign({}, c, { dueAt: c.dueAt || a.dueAt, overdue: c.overdue || a.overdue, severity: a.severity }) : c;
      out.push({ kind: 'andon', id: c.id, item, alert: a, open, raised: MES.ms(c.openedAt) });
    }
    for (const a of alerts.values()) {
      if (a.owner !== me.user || !OPEN_ALERT.has(a.state) || linked.has(a.id)) continue;
      out.push({ kind: 'alert', id: a.id, item: a, open: UNACK.has(a.state), raised: MES.ms(a.raisedAt) });
    }
    for (const d of defects.values()) {
      if (d.owner !== me.user || d.status !== 'open') continue;
      out.push({ kind: 'defect', id: d.id, item: d, open: true, raised: MES.ms(d.raisedAt) });
    }
    for (const x of out) {
      x.overdue = O.isOverdue(x.item, x.open);
      x.due = x.item.dueAt ? MES.ms(x.item.dueAt) : Infinity;
    }
    const rank = R.rank;
    out.sort((a, b) => (b.overdue - a.overdue) || (a.due - b.due) || (rank(a.item.severity) - rank(b.item.severity)) || (b.raised - a.raised));
    return out;
  }

  // ------------------------------------------------------------------ rendering
  function what(x) {
    return t(x.kind === 'alert' ? 'my.alertN' : x.kind === 'defect' ? 'my.defectN' : 'my.andonN', { id: x.id });
  }

  function itemCell(x) {
    const i = x.item;
    const kindBadge = el('span', { className: 'badge kind kind-' + x.kind }, t(x.kind === 'alert' ? 'my.alerts' : x.kind === 'defect' ? 'my.defects' : 'my.andon'));
    const sev = R.severity(i.severity);
    let text;
    if (x.kind === 'alert') text = [el('a', { href: 'alerts.html#recent' }, '#' + i.id), ' ', i.message || '', i.type ? el('span', { className: 'muted' }, ' · ' + i.type) : null];
    else if (x.kind === 'defect') text = ['#' + i.id + ' ', el('b', null, i.code || ''), ' ', i.description || ''];
    else text = ['#' + i.id + ' ', MES.tOr('my.andonKind', i.kind), i.comment ? el('span', { className: 'muted comment' }, ' “' + i.comment + '”') : null];
    return el('td', { className: 'msg' }, kindBadge, ' ', sev, ' ', text, R.escalation(i));
  }

  function whereCell(x) {
    const i = x.item;
    return el('td', null, R.station(i.station), R.vehicle(i.vehicleId));
  }

  function stateText(x) {
    const i = x.item;
    if (x.kind === 'alert') return MES.tOr('astate', i.state);
    if (x.kind === 'defect') return MES.tOr('my.dstatus', i.status);
    return MES.tOr('my.andonState', i.state);
  }

  function actions(x) {
    // An alert: the buttons of the alerts page by its state (no shelving from here).
    if (x.kind === 'alert') return R.actions(x.item, { ack: () => openAction(x, 'ack'), assign: () => reassign(x) });
    const out = [];
    const button = (cls, key, fn) => el('button', { type: 'button', className: cls, onclick: fn }, t(key));
    if (x.kind === 'andon' && x.item.state === 'open') out.push(button('ack primary', 'alerts.ack', () => openAction(x, 'ack')));
    if (x.kind === 'andon') out.push(button('close', 'my.close', () => openAction(x, 'close')));
    if (x.kind === 'defect') out.push(button('resolve', 'my.resolve', () => openAction(x, 'resolve')));
    const canAssign = O.has('quality') !== false;
    if (canAssign && x.kind === 'defect') out.push(button('assign', 'alerts.assign', () => reassign(x)));
    if (canAssign && x.kind === 'andon' && x.alert) out.push(button('assign', 'alerts.assign', () => reassign({ kind: 'alert', item: x.alert })));
    return out;
  }

  function row(x) {
    const started = x.item.raisedAt || x.item.openedAt;
    return el('tr', { id: 'item-' + x.kind + '-' + x.id, className: x.overdue ? 'overdue' : '',
      dataset: { kind: x.kind, id: x.id, overdue: String(x.overdue), owner: me ? me.user : '' } },
      el('td', { className: 'due-cell' }, O.dueCell(x.item, x.open), el('div', { className: 'muted' }, fmt.dateTime(started))),
      itemCell(x), whereCell(x),
      el('td', { className: 'state' }, stateText(x)),
      el('td', { className: 'actions' }, actions(x)));
  }

  // Rows of unchanged items are kept (not rebuilt), so a button under the user's finger stays the
  // same element while other items come and go; the "due in" texts are brought up to date in place.
  const rowCache = new Map(); // kind-id → {sig, tr}
  function render() {
    const list = myItems();
    const body = document.getElementById('my-body');
    const keep = new Map();
    const rows = list.slice(0, 500).map((x) => {
      const key = x.kind + '-' + x.id;
      const sig = JSON.stringify([x.item, x.alert && x.alert.state, x.overdue, MES.lang(), me && me.role]);
      const old = rowCache.get(key);
      const tr = old && old.sig === sig ? old.tr : row(x);
      keep.set(key, { sig, tr });
      return tr;
    });
    rowCache.clear();
    for (const [k, v] of keep) rowCache.set(k, v);
    if (!rows.length) {
      rows.push(el('tr', { className: 'empty' }, el('td', { colSpan: 5 },
        el('div', { className: 'empty-state' + (me ? ' good' : '') }, me ? t('my.none') : t('my.signin')))));
    }
    if (rows.length !== body.children.length || rows.some((r, i) => body.children[i] !== r)) body.replaceChildren(...rows);
    O.refreshDue(body);
    const counts = { alert: 0, defect: 0, andon: 0 };
    let overdue = 0;
    for (const x of list) { counts[x.kind]++; if (x.overdue) overdue++; }
    const chip = (id, text, cls) => el('span', { id, className: 'chip' + (cls ? ' ' + cls : '') }, text);
    document.getElementById('my-counts').replaceChildren(...(me ? [
      chip('count-overdue', t('my.overdueCount', { n: overdue }), overdue ? 'bad' : ''),
      chip('count-alert', t('my.alerts') + ' ' + counts.alert),
      chip('count-defect', t('my.defects') + ' ' + counts.defect),
      andonAvailable === false ? null : chip('count-andon', t('my.andon') + ' ' + counts.andon),
    ].filter(Boolean) : []));
    document.getElementById('andon-note').classList.toggle('hidden', andonAvailable !== false || !me);
    document.body.dataset.items = String(list.length);
  }

  function renderWho() {
    const who = document.getElementById('who');
    const msg = document.getElementById('message');
    if (!me) {
      MES.setText(who, '');
      who.dataset.user = '';
    } else {
      MES.setText(who, t('my.who', { name: me.name || me.user, user: me.user, role: MES.tOr('role', me.role) }));
      who.dataset.user = me.user;
      if (!me.ownership) MES.setText(msg, t('my.noOwnership'));
      else if (!me.person) MES.setText(msg, t('my.notPerson', { user: me.user }));
    }
    const has = !!MES.token();
    MES.setText(document.getElementById('token-state'), t(has ? 'token.signedIn' : 'token.none'));
    MES.setText(document.getElementById('token-button'), t(has ? 'token.signout' : 'token.signin'));
  }

  // ------------------------------------------------------------------ actions
  function openAction(x, action) {
    const key = action === 'ack' ? (x.kind === 'andon' ? 'my.andonAckTitle' : 'alerts.ackTitle') : action === 'resolve' ? 'my.resolveTitle' : 'my.closeTitle';
    R.openDialog({
      title: t(key, { id: x.id }),
      submit: async (comment) => {
        let path;
        // An andon call is answered through POST /api/andon/{id}/ack (operator), which acknowledges its alert too.
        if (action === 'ack') path = (x.kind === 'andon' ? '/api/andon/' : '/api/alerts/') + encodeURIComponent(x.id) + '/ack';
        else if (action === 'resolve') path = '/api/defects/' + encodeURIComponent(x.id) + '/resolve';
        else path = '/api/andon/' + encodeURIComponent(x.id) + '/close';
        const updated = await MES.post(path, { comment });
        if (updated && updated.id !== undefined) {
          if (x.kind === 'andon') calls.set(updated.id, Object.assign({}, calls.get(updated.id), updated));
          else if (action === 'ack') alerts.set(updated.id, Object.assign({}, alerts.get(updated.id), updated));
          else defects.set(updated.id, updated);
        }
        MES.setText(document.getElementById('message'), t('my.done', { what: what(x) }));
        MES.schedule(render);
      },
    });
  }

  async function reassign(x) {
    const updated = await O.reassign(x.kind, x.item);
    if (!updated) return;
    if (x.kind === 'alert') alerts.set(updated.id, updated);
    else defects.set(updated.id, updated);
    MES.setText(document.getElementById('message'), t('assign.done', { what: what(x), owner: updated.owner }));
    MES.schedule(render);
  }

  // ------------------------------------------------------------------ data
  async function loadAndon() {
    try {
      const list = await MES.api('/api/andon?limit=1000');
      andonAvailable = true;
      calls.clear();
      for (const c of Array.isArray(list) ? list : []) calls.set(c.id, c);
    } catch (e) {
      if (e.status === 404 || e.status === 405) { andonAvailable = false; return; }
      throw e;
    }
  }

  async function load() {
    me = await O.me();
    renderWho();
    if (!me) { render(); return; }
    const [alertList, defectList] = await Promise.all([
      MES.api('/api/alerts?state=open&limit=1000'), MES.api('/api/defects?status=open&limit=1000'), loadAndon()]);
    alerts.clear();
    defects.clear();
    for (const a of alertList) alerts.set(a.id, a);
    for (const d of defectList) defects.set(d.id, d);
    const msg = document.getElementById('message');
    if (me.ownership && me.person) MES.setText(msg, '');
    render();
  }

  // Items kept beyond what the page shows are bounded like the alerts page's.
  const MAX = 5000;
  function upsert(map, x, done) {
    if (x === null || typeof x !== 'object' || x.id === undefined) return;
    if (done) map.delete(x.id);
    else map.set(x.id, Object.assign({}, map.get(x.id), x));
    MES.bound(map, MAX);
    MES.schedule(render);
  }
  const handlers = {
    alert: (a) => upsert(alerts, a, false), // cleared ones stay: a call's andon alert may be one
    defect: (d) => upsert(defects, d, d.status === 'resolved'),
    andon: (c) => upsert(calls, c, c.state === 'closed'),
  };

  async function signIn() {
    if (MES.token()) return;
    sessionStorage.setItem(ASKED, '1');
    await MES.askToken(t('my.signin'));
  }
  document.getElementById('token-button').addEventListener('click', async () => {
    if (MES.token()) MES.setToken('');
    else await MES.askToken(t('my.signin'));
  });

  /** What the page holds (tests and the console). */
  MES.myItems = () => ({ me, andonAvailable, items: myItems().map((x) => ({ kind: x.kind, id: x.id, overdue: x.overdue })) });

  MES.header();
  renderWho();
  render();
  MES.onLang(() => { renderWho(); render(); });
  // Due times move with the clock: "due in …" counts down and a passed due time turns overdue.
  setInterval(() => { if (me) render(); }, 15000);
  (async () => {
    if (!MES.token() && !sessionStorage.getItem(ASKED)) await signIn();
    // A new token (or signing out) names someone else: read everything again for them.
    document.addEventListener('mes:token', () => {
      me = null;
      renderWho();
      render();
      load().catch((e) => MES.setText(document.getElementById('message'), t('error', { message: e.message })));
    });
    MES.start({
      load,
      onError: (e) => MES.setText(document.getElementById('message'), t('error', { message: e.message })),
      handlers,
    });
  })();
})();
