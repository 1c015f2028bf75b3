/* Orders page: search by order, VIN or customer, filter by status and model; the build sequence
 * (released orders not started); plan against actual. Live: `order` events refresh it. */
(function () {
  'use strict';
  const { el, fmt } = MES;
  const STATUSES = ['planned', 'released', 'in_production', 'completed', 'hold', 'scrapped', 'cancelled'];
  let refreshTimer = null;
  let models = [];
  // A live page asks again while an answer is on its way (an `order` event, a new filter): only the
  // newest request of each list may render, or an older answer would undo a newer filter.
  let ordersAsked = 0;
  let sequenceAsked = 0;

  const search = document.getElementById('order-search');
  const statusSel = document.getElementById('order-status');
  const modelSel = document.getElementById('order-model');

  function fillSelects() {
    const keepStatus = statusSel.value;
    statusSel.replaceChildren(el('option', { value: '' }, MES.t('orders.all')),
      ...STATUSES.map((s) => el('option', { value: s }, MES.tOr('ostatus', s))));
    statusSel.value = keepStatus;
    const keepModel = modelSel.value;
    modelSel.replaceChildren(el('option', { value: '' }, MES.t('orders.all')), ...models.map((m) => el('option', { value: m }, m)));
    modelSel.value = keepModel;
  }

  const vinLink = (vin) => (vin ? el('a', { href: 'vehicle.html?id=' + encodeURIComponent(vin), className: 'vin' }, vin) : '—');
  const statusBadge = (s) => el('span', { className: 'badge os-' + s }, MES.tOr('ostatus', s));

  async function renderOrders() {
    const q = new URLSearchParams();
    if (search.value.trim()) q.set('q', search.value.trim());
    if (statusSel.value) q.set('status', statusSel.value);
    if (modelSel.value) q.set('model', modelSel.value);
    q.set('limit', '200');
    history.replaceState(null, '', 'orders.html' + (q.toString() === 'limit=200' ? '' : '?' + q.toString()));
    const body = document.getElementById('orders-body');
    const asked = ++ordersAsked;
    let rows;
    try {
      rows = await MES.api('/api/orders?' + q.toString());
    } catch (e) {
      if (asked !== ordersAsked) return;
      body.replaceChildren(el('tr', null, el('td', { colSpan: 9, className: 'error-text' }, MES.t('error', { message: e.message }))));
      return;
    }
    if (asked !== ordersAsked) return;
    for (const o of rows) if (!models.includes(o.model)) { models.push(o.model); models.sort(); fillSelects(); }
    body.replaceChildren(...(rows.length === 0 ? [el('tr', null, el('td', { colSpan: 9, className: 'muted', id: 'orders-none' }, MES.t('orders.none')))] :
      rows.map((o) => el('tr', { dataset: { order: o.orderId, status: o.status } },
        el('td', null, o.orderId, o.customer ? el('div', { className: 'muted' }, o.customer) : null),
        el('td', null, o.model), el('td', null, (o.options || []).join(', ') || '—'), el('td', null, statusBadge(o.status)),
        el('td', null, vinLink(o.vehicleId)),
        el('td', { className: 'num' }, (o.plannedDate || '—') + (o.plannedShift ? ' ' + o.plannedShift : '')),
        el('td', { className: 'num' }, o.sequence === null || o.sequence === undefined ? '—' : String(o.sequence)),
        el('td', { className: 'num' }, o.startedAt ? fmt.dateTime(o.startedAt) : '—'),
        el('td', { className: 'num' }, o.completedAt ? fmt.dateTime(o.completedAt) : '—')))));
  }

  async function renderSequence() {
    const host = document.getElementById('sequence');
    const asked = ++sequenceAsked;
    let rows;
    try {
      rows = await MES.api('/api/sequence?limit=20');
    } catch (e) {
      return;
    }
    if (asked !== sequenceAsked) return;
    host.replaceChildren(...(rows.length === 0 ? [el('span', { className: 'muted' }, MES.t('orders.sequenceNone'))] :
      rows.map((o, i) => el('a', { className: 'chip seq', href: 'vehicle.html?id=' + encodeURIComponent(o.vehicleId || ''), dataset: { order: o.orderId } },
        el('b', null, String(i + 1) + '. '), o.orderId + ' · ' + o.model + ' · ' + (o.vehicleId || '')))));
  }

  function refresh() {
    renderOrders();
    renderSequence();
    plan.refresh();
  }
  function refreshSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, 400);
  }

  MES.header();
  MES.applyI18n();
  const plan = MES.planWidget(document.getElementById('plan'));
  search.value = MES.query('q') || '';
  fillSelects();
  statusSel.value = MES.query('status') || '';
  document.getElementById('order-form').addEventListener('submit', (e) => { e.preventDefault(); renderOrders(); });
  statusSel.addEventListener('change', renderOrders);
  modelSel.addEventListener('change', renderOrders);
  MES.onLang(() => { fillSelects(); refresh(); });
  if (MES.query('model')) { models = [MES.query('model')]; fillSelects(); modelSel.value = MES.query('model'); }
  MES.start({
    async load() { await Promise.all([renderOrders(), renderSequence()]); },
    handlers: { order: refreshSoon }, onReconnect: refreshSoon,
  });
})();
