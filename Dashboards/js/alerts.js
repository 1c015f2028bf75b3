/* Alerts page: active, unacknowledged, shelved and recent alerts; acknowledge and shelve with a comment. */
(function () {
  'use strict';
  const { el, t, fmt } = MES;
  const R = MES.alertRows;
  const TABS = {
    active: (a) => a.state === 'active_unacknowledged' || a.state === 'active_acknowledged',
    unack: (a) => a.state === 'active_unacknowledged' || a.state === 'cleared_unacknowledged',
    shelved: (a) => a.state === 'shelved',
    recent: () => true,
  };
  const UNACK = R.UNACK;
  const alerts = new Map();
  const changed = new Set();
  let tab = TABS[location.hash.slice(1)] ? location.hash.slice(1) : 'active';

  function renderTabs() {
    const counts = {};
    for (const name of Object.keys(TABS)) counts[name] = 0;
    for (const a of alerts.values()) for (const [name, f] of Object.entries(TABS)) if (f(a)) counts[name]++;
    const host = document.getElementById('tabs');
    for (const name of Object.keys(TABS)) {
      let b = document.getElementById('tab-' + name);
      if (!b) {
        b = el('button', { type: 'button', id: 'tab-' + name, role: 'tab',
          onclick: () => { tab = name; history.replaceState(null, '', '#' + name); render(); } });
        host.append(b);
      }
      b.classList.toggle('current', name === tab);
      b.setAttribute('aria-selected', String(name === tab));
      MES.setText(b, t('alerts.tab.' + name) + ' (' + counts[name] + ')');
    }
  }

  function row(a) {
    const handled = [];
    if (a.acknowledgedBy) handled.push(el('div', null, t('alerts.by', { user: a.acknowledgedBy }) + ' · ' + fmt.time(a.acknowledgedAt)));
    if (a.state === 'shelved' && a.shelvedUntil) handled.push(el('div', null, t('alerts.until', { time: fmt.dateTime(a.shelvedUntil) })));
    if (a.comment) handled.push(el('div', { className: 'muted comment' }, '“' + a.comment + '”'));
    // Owner and due time (README "My items"): only alerts of a plant with responsibility rules carry `owner`.
    const owned = 'owner' in a;
    const actions = R.actions(a, { ack: () => openAction(a.id, 'ack'), shelve: () => openAction(a.id, 'shelve'),
      assign: owned ? () => reassign(a) : null });
    const tr = el('tr', { id: 'alert-' + a.id, className: (UNACK.has(a.state) ? 'unack' : '') + (a.overdue ? ' overdue' : ''),
      dataset: { id: a.id, state: a.state, owner: a.owner || '', overdue: String(!!a.overdue) } },
      el('td', null, R.severity(a.severity)),
      el('td', { className: 'state' }, MES.tOr('astate', a.state)),
      el('td', { className: 'atype' }, a.type ? MES.tOr('atype', a.type) : ''),
      el('td', null, R.station(a.station)),
      el('td', { className: 'msg' }, a.message || '', R.vehicle(a.vehicleId),
        a.escalationLevel ? el('span', { className: 'badge bad' }, '↑' + a.escalationLevel) : null),
      el('td', { className: 'num' }, fmt.dateTime(a.raisedAt)),
      el('td', { className: 'handled' }, handled),
      el('td', { className: 'owner-col' + (owned ? ' owned' : '') }, owned ? MES.owners.ownerCell(a, false) : null),
      el('td', { className: 'actions' }, actions));
    if (changed.has(a.id)) tr.classList.add('flash');
    return tr;
  }

  function render() {
    renderTabs();
    const rank = R.rank;
    let list = Array.from(alerts.values()).filter(TABS[tab]);
    if (tab === 'recent') list.sort((a, b) => MES.ms(b.raisedAt) - MES.ms(a.raisedAt) || b.id - a.id);
    else list.sort((a, b) => rank(a.severity) - rank(b.severity) || MES.ms(b.raisedAt) - MES.ms(a.raisedAt));
    list = list.slice(0, 500);
    const body = document.getElementById('alerts-body');
    // Rows of unchanged alerts are kept (not rebuilt), so a button under the operator's finger
    // stays the same element while other alerts come and go.
    const keep = new Map();
    const rows = list.map((a) => {
      const old = rowCache.get(a.id);
      const tr = old && old.alert === a && old.lang === MES.lang() ? old.tr : row(a);
      keep.set(a.id, { alert: a, tr, lang: MES.lang() });
      return tr;
    });
    rowCache.clear();
    for (const [k, v] of keep) rowCache.set(k, v);
    // The owner column shows once any alert carries an owner (the config has responsibility rules).
    document.getElementById('alerts-table').classList.toggle('no-owners', !Array.from(alerts.values()).some((a) => 'owner' in a));
    const empty = el('tr', { className: 'empty' }, el('td', { colSpan: 9 },
      el('div', { className: 'empty-state' + (tab === 'active' || tab === 'unack' ? ' good' : '') }, t('alerts.none'))));
    const wanted = rows.length ? rows : [empty];
    if (wanted.length !== body.children.length || wanted.some((r, i) => body.children[i] !== r)) body.replaceChildren(...wanted);
    changed.clear();
  }
  const rowCache = new Map(); // alert id → {alert, tr, lang}: the row shown for that alert object

  /** Reassigns an alert (owner, due time) through the shared dialog; the answer replaces the row. */
  async function reassign(a) {
    const seenBefore = eventsSeen.get(a.id) || 0;
    try {
      const updated = await MES.owners.reassign('alert', a);
      if (!updated) return;
      if (updated.id !== undefined && (eventsSeen.get(a.id) || 0) === seenBefore) upsert(updated);
      MES.setText(document.getElementById('message'), t('assign.done', { what: t('my.alertN', { id: a.id }), owner: updated.owner }));
    } finally {
      renderToken();
    }
  }

  function renderToken() {
    const has = !!MES.token();
    // Learn the role once per token, so the reassign button shows only to quality staff.
    if (has && !MES.owners.current()) MES.owners.me().then((m) => { if (m) { rowCache.clear(); render(); } }, () => {});
    MES.setText(document.getElementById('token-state'), t(has ? 'token.signedIn' : 'token.none'));
    MES.setText(document.getElementById('token-button'), t(has ? 'token.signout' : 'token.signin'));
  }

  // ---------------------------------------------------------------- acknowledge / shelve
  function openAction(id, action) {
    R.openDialog({
      title: t(action === 'ack' ? 'alerts.ackTitle' : 'alerts.shelveTitle', { id }),
      label: t(action === 'ack' ? 'alerts.comment' : 'alerts.reason'),
      minutes: action === 'shelve',
      submit: async (text, minutes) => {
        const seenBefore = eventsSeen.get(id) || 0;
        const body = action === 'ack' ? { comment: text } : { minutes, reason: text };
        const updated = await MES.post('/api/alerts/' + encodeURIComponent(id) + '/' + action, body);
        if (updated && updated.id !== undefined && (eventsSeen.get(id) || 0) === seenBefore) upsert(updated);
        MES.setText(document.getElementById('message'), t('alerts.done', { id, state: MES.tOr('astate', updated ? updated.state : '') }));
      },
      after: renderToken,
    });
  }
  document.getElementById('token-button').addEventListener('click', async () => {
    if (MES.token()) MES.setToken('');
    else await MES.askToken();
    renderToken();
  });
  document.addEventListener('mes:token', renderToken);

  const eventsSeen = new Map(); // alert id → alert events received, so a late POST answer never overwrites a newer event
  /** How many events of alert `id` this page has received (for tests and the console). */
  MES.alertEvents = (id) => eventsSeen.get(Number(id)) || eventsSeen.get(String(id)) || 0;
  function onAlertEvent(a) {
    const n = (eventsSeen.get(a.id) || 0) + 1;
    eventsSeen.delete(a.id); // re-inserted: the map's order is last event first out
    eventsSeen.set(a.id, n);
    MES.bound(eventsSeen, MAX_KEPT);
    upsert(a);
  }
  // A long-open page forgets the oldest cleared alerts beyond MAX_KEPT, and keeps at most MAX_ALERTS
  // in all (the server's longest list): then the oldest not active go first, then the oldest.
  const MAX_KEPT = 3000;
  const MAX_ALERTS = 10000;
  const ACTIVE = new Set(['active_unacknowledged', 'active_acknowledged']);
  function upsert(a) {
    alerts.set(a.id, a);
    if (alerts.size > MAX_KEPT) {
      for (const [key, old] of alerts) {
        if (alerts.size <= MAX_KEPT) break;
        if (old.state === 'cleared') alerts.delete(key);
      }
      MES.bound(alerts, MAX_ALERTS, (old) => !ACTIVE.has(old.state));
    }
    changed.add(a.id);
    MES.schedule(render);
  }
  /** Sizes of what the page keeps (tests and the console). */
  MES.kept = () => ({ alerts: alerts.size, eventsSeen: eventsSeen.size, rows: rowCache.size, changed: changed.size,
    maxKept: MAX_KEPT, maxAlerts: MAX_ALERTS, delays: MES.metrics.delays.length, e2e: MES.metrics.e2e.length });

  function start() {
    return MES.start({
      async load() {
        const list = await MES.api('/api/alerts?state=all&limit=1000');
        for (const a of list) alerts.set(a.id, a);
        MES.setText(document.getElementById('message'), '');
        render();
      },
      onError: (e) => MES.setText(document.getElementById('message'), t('error', { message: e.message })),
      handlers: { alert: onAlertEvent },
    });
  }

  MES.header();
  renderToken();
  render();
  MES.onLang(() => { render(); renderToken(); });
  start();
})();
