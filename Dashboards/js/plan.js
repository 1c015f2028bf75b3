/* Plan against actual (README "Orders and build specs"): the current shift's planned and completed
 * orders, with a row per model and per shift of the plan's date. MES.planWidget(host) renders into
 * host and refreshes every 10 s; it returns {refresh}. A host with class `plan-compact` (the
 * overview) gets one figure as large as the line's others, the models on its last line. Hidden
 * while the plant has no orders (no line.plan in /api/kpis). */
(function () {
  'use strict';
  const { el } = MES;
  const REFRESH_MS = 10000;

  const pct = (x) => (x === null || x === undefined ? '—' : Math.round(x * 100) + ' %');
  const level = (x) => (x === null || x === undefined ? '' : x >= 0.95 ? 'good' : x >= 0.8 ? 'warn' : 'bad');

  MES.planWidget = function (host) {
    let last = null; // {current, day}
    let timer = null;

    function bar(done, planned) {
      const share = planned > 0 ? Math.min(1, done / planned) : 0;
      return el('div', { className: 'plan-bar' }, el('div', { className: 'plan-fill', style: 'width:' + (share * 100).toFixed(1) + '%' }));
    }
    function row(name, c, cls) {
      return el('div', { className: 'plan-row ' + (cls || ''), dataset: { key: name } },
        el('span', { className: 'plan-name' }, name),
        el('span', { className: 'plan-count num' }, MES.t('plan.of', { done: c.completed, planned: c.planned })),
        bar(c.completed, c.planned),
        el('span', { className: 'plan-pct num ' + level(c.attainment) }, pct(c.attainment)));
    }
    function render() {
      if (!last || !last.current) {
        host.classList.add('hidden');
        host.replaceChildren();
        return;
      }
      host.classList.remove('hidden');
      const c = last.current;
      const day = last.day || { shifts: [], models: {} };
      const models = Object.entries(day.models || {});
      if (host.classList.contains('plan-compact')) {
        const byModel = models.map(([m, v]) => el('span', { className: 'plan-model', dataset: { model: m } }, m + ' ' + v.completed + '/' + v.planned));
        host.replaceChildren(el('div', { className: 'figure ' + level(c.attainment), id: 'plan-figure', dataset: { planned: c.planned, completed: c.completed },
          title: models.map(([m, v]) => m + ': ' + v.completed + ' / ' + v.planned).join('\n') },
          el('div', { className: 'label' }, MES.t('plan.title') + ' · ' + MES.t('plan.shift', { name: c.shift })),
          el('div', { className: 'value num', id: 'plan-value' }, c.completed + ' / ' + c.planned),
          el('div', { className: 'sub', id: 'plan-models' }, el('span', { id: 'plan-attainment' }, pct(c.attainment)), ...byModel)));
        MES.stamp(host.querySelector('#plan-figure'), Date.now(), REFRESH_MS * 3);
        return;
      }
      host.replaceChildren(
        el('div', { className: 'plan-main figure ' + level(c.attainment), id: 'plan-figure', dataset: { planned: c.planned, completed: c.completed } },
          el('div', { className: 'label' }, MES.t('plan.title') + ' · ' + MES.t('plan.shift', { name: c.shift }) + ' · ' + c.date),
          el('div', { className: 'value num', id: 'plan-value' }, c.completed + ' / ' + c.planned),
          el('div', { className: 'sub', id: 'plan-attainment' }, MES.t('plan.attainment') + ' ' + pct(c.attainment)),
          bar(c.completed, c.planned)),
        el('div', { className: 'plan-detail', id: 'plan-models' }, el('h3', null, MES.t('plan.byModel')),
          models.length ? models.map(([m, v]) => row(m, { completed: v.completed, planned: v.planned, attainment: v.attainment })) :
            el('p', { className: 'muted' }, MES.t('plan.none'))),
        el('div', { className: 'plan-detail', id: 'plan-shifts' }, el('h3', null, MES.t('plan.byShift')),
          (day.shifts || []).filter((s) => s.planned > 0 || s.name === c.shift).map((s) =>
            row(MES.t('plan.shift', { name: s.name }), s, s.name === c.shift ? 'current' : ''))));
      MES.stamp(host.querySelector('#plan-figure'), Date.now(), REFRESH_MS * 3);
    }
    async function refresh() {
      clearTimeout(timer);
      try {
        const kpis = await MES.api('/api/kpis');
        const current = kpis && kpis.line && kpis.line.plan ? kpis.line.plan : null;
        const day = current ? await MES.api('/api/plan?date=' + encodeURIComponent(current.date)) : null;
        last = { current, day };
        render();
      } catch (e) {
        // keep the last figures; the stamp greys them out
      }
      timer = setTimeout(refresh, REFRESH_MS);
    }
    MES.onLang(render);
    refresh();
    return { refresh };
  };
  // Pages that only show it (the overview) mark its host with data-plan-auto.
  document.querySelectorAll('[data-plan-auto]').forEach((host) => MES.planWidget(host));
})();
