/* Equipment health (equipment.html): each condition unit against its own baseline and its group
 * (README "Energy and equipment health"), from GET /api/equipment; groups side by side, then every
 * unit worst first. Refreshed on maintenance alerts and every 10 s. */
(function () {
  'use strict';
  const { el, t, fmt } = MES;
  const BELOW = 0.5; // alerts.maintenance.below (default); the server raises the alerts itself
  let units = [];
  let refreshTimer = null;

  const level = (h) => (h >= 0.8 ? 'good' : h >= BELOW ? 'warn' : 'bad');
  const num = (x, d) => (x === null || x === undefined ? '—' : fmt.num(x, d));
  const key = (u) => u.station + '.' + u.signal;

  function healthBar(u) {
    const pct = Math.round(Math.max(0, Math.min(1, u.health)) * 100);
    return el('span', { className: 'health ' + level(u.health), title: String(u.health) },
      el('span', { className: 'bar' }, el('span', { className: 'fill', style: 'width:' + pct + '%' })),
      el('span', { className: 'num' }, fmt.num(u.health, 2)));
  }

  function trendText(u) {
    if (u.trend === null || u.trend === undefined) return '—';
    return (u.trend > 0 ? '↗ +' : u.trend < 0 ? '↘ ' : '→ ') + fmt.num(u.trend, 3) + (u.unit ? ' ' + u.unit : '') + t('unit.perHour');
  }

  function baselineText(u) {
    const b = u.baseline || {};
    if (b.mean === null || b.mean === undefined) return t('equip.learning', { n: b.n || 0 });
    return fmt.num(b.mean, 2) + ' ± ' + fmt.num(b.sigma, 3);
  }

  function renderGroups() {
    const groups = new Map();
    for (const u of units) {
      const g = u.group || '';
      if (!groups.has(g)) groups.set(g, []);
      groups.get(g).push(u);
    }
    // the group with the worst unit first; inside a group, its units side by side, worst first
    const ordered = Array.from(groups.entries()).sort((a, b) => Math.min(...a[1].map((u) => u.health)) - Math.min(...b[1].map((u) => u.health)));
    const host = document.getElementById('groups');
    if (ordered.length === 0) {
      host.replaceChildren(el('span', { className: 'muted' }, t('equip.none')));
      return;
    }
    host.replaceChildren(...ordered.map(([name, list]) =>
      el('section', { className: 'equip-group', dataset: { group: name } },
        el('h3', null, name || t('equip.noGroup')),
        el('div', { className: 'units' }, list.map((u) =>
          el('a', { className: 'unit ' + level(u.health), href: 'station.html?id=' + encodeURIComponent(u.station), dataset: { unit: key(u), health: String(u.health) } },
            el('div', { className: 'uhead' }, el('b', null, u.station), ' ', el('span', { className: 'muted' }, u.signal)),
            healthBar(u),
            el('div', { className: 'muted' }, t('equip.col.level') + ' ' + num(u.level, 2) + (u.unit ? ' ' + u.unit : '')),
            el('div', { className: 'trend' }, trendText(u)),
            u.hoursToLimit !== null && u.hoursToLimit !== undefined
              ? el('div', { className: 'to-limit' }, t('equip.col.toLimit') + ' ' + t('equip.hours', { h: fmt.num(u.hoursToLimit, 1) })) : null))))));
  }

  function renderTable() {
    const body = document.getElementById('equip-body');
    body.replaceChildren(...units.map((u) =>
      el('tr', { dataset: { unit: key(u), health: String(u.health) }, className: level(u.health) },
        el('td', null, healthBar(u)), el('td', null, el('a', { href: 'station.html?id=' + encodeURIComponent(u.station) }, u.station)),
        el('td', null, u.signal), el('td', null, u.group || '—'), el('td', { className: 'num' }, fmt.num(u.score, 2)),
        el('td', null, u.peers ? t('equip.peersOf', { n: u.peers.n }) + ' · ' + fmt.num(u.peers.score, 2) : '—'),
        el('td', { className: 'num' }, baselineText(u)), el('td', { className: 'num' }, num(u.level, 2)),
        el('td', { className: 'num' }, trendText(u)),
        el('td', { className: 'num' }, u.hoursToLimit === null || u.hoursToLimit === undefined ? '—' : t('equip.hours', { h: fmt.num(u.hoursToLimit, 1) })))));
    const risky = units.filter((u) => u.health < BELOW).length;
    MES.setText(document.getElementById('equip-summary'), units.length ? t('equip.atRisk', { n: risky, below: BELOW }) : '');
  }

  async function refresh() {
    units = await MES.api('/api/equipment');
    renderGroups();
    renderTable();
  }
  function refreshSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => refresh().catch((e) => console.warn(e.message)), 400);
  }

  MES.header();
  MES.applyI18n();
  MES.onLang(() => { renderGroups(); renderTable(); });
  setInterval(refreshSoon, 10000);
  MES.start({
    load: refresh,
    handlers: { alert(a) { if (a.type === 'maintenance') refreshSoon(); } },
    types: ['alert'],
    onReconnect: refreshSoon,
  });
})();
