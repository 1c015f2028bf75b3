/* Owners and due times of alerts and defects (README "My items"), shared by the alerts page and the
 * my-items page: who is signed in (GET /api/me), the owner / due cell with its overdue badge and
 * escalation, and the reassign dialog (POST /api/alerts|defects/{id}/assign, role quality).
 * Loaded after common.js.
 */
(function () {
  'use strict';
  const { el, t, fmt } = MES;
  const O = (MES.owners = {});
  const ROLES = ['viewer', 'operator', 'quality', 'engineer', 'admin'];

  // ------------------------------------------------------------------ who is signed in
  let me = null;
  let mePromise = null;
  /** The signed-in user ({user, role, name, person, ownership}) or null without a token or when it is refused. */
  O.me = function () {
    if (!MES.token()) { me = null; return Promise.resolve(null); }
    if (!mePromise) {
      mePromise = MES.api('/api/me').then((m) => (me = m), (e) => {
        mePromise = null;
        me = null;
        if (e.status === 401 || e.status === 403) return null;
        throw e;
      });
    }
    return mePromise;
  };
  /** The last answer of O.me() (null before it, or when nobody is signed in). */
  O.current = () => me;
  /** True when the signed-in user has at least `role`; null when nobody is known to be signed in. */
  O.has = (role) => (me ? ROLES.indexOf(me.role) >= ROLES.indexOf(role) : null);
  document.addEventListener('mes:token', () => { me = null; mePromise = null; });

  // ------------------------------------------------------------------ due times
  /** True when the item is overdue: the server's flag, or its due time passed (pipeline clock) while `open`. */
  O.isOverdue = (item, open) => !!item.overdue || (!!open && !!item.dueAt && MES.ms(item.dueAt) <= MES.now());
  /** Milliseconds to the due time (negative when past), or null without one. */
  O.dueIn = (item) => (item.dueAt ? MES.ms(item.dueAt) - MES.now() : null);

  const relative = (left) => (left < 0 ? t('due.late', { age: fmt.age(-left) }) : t('due.in', { age: fmt.age(left) }));
  /** Brings every "due in …" / "overdue by …" text under `root` up to the clock, in place. */
  O.refreshDue = function (root) {
    const now = MES.now();
    (root || document).querySelectorAll('.due-rel[data-due-ms]').forEach((e) => MES.setText(e, relative(Number(e.dataset.dueMs) - now)));
  };

  /** The due time of an item: overdue badge or "due in …", and the time itself. */
  O.dueCell = function (item, open) {
    if (!item.dueAt) return el('span', { className: 'muted due none' }, t('due.none'));
    const left = O.dueIn(item);
    const overdue = O.isOverdue(item, open);
    return el('span', { className: 'due' + (overdue ? ' overdue' : ''), dataset: { due: item.dueAt } },
      overdue ? el('span', { className: 'badge bad overdue-badge' }, t('due.overdue')) : null,
      open ? el('span', { className: 'due-rel', dataset: { dueMs: String(MES.ms(item.dueAt)) } }, relative(left)) : null,
      el('span', { className: 'muted due-at' }, fmt.dateTime(item.dueAt)));
  };

  /** The owner, due time and escalation of an alert or defect (for items that carry an `owner` key). */
  O.ownerCell = function (item, open) {
    const escalated = Array.isArray(item.escalatedTo) && item.escalatedTo.length ? item.escalatedTo : null;
    return [
      el('div', { className: 'owner' }, item.owner ? item.owner : el('span', { className: 'muted' }, t('alerts.noOwner'))),
      el('div', null, O.dueCell(item, open)),
      escalated || item.escalationLevel ? el('div', { className: 'escalation' },
        item.escalationLevel ? el('span', { className: 'badge bad' }, '↑' + item.escalationLevel) : null,
        escalated ? ' ' + t('alerts.escalatedTo', { names: escalated.join(', ') }) : null) : null,
    ];
  };

  // ------------------------------------------------------------------ reassign
  let people = null; // [{user, name}] from GET /api/people, once per page
  async function loadPeople() {
    if (people) return people;
    try {
      people = await MES.api('/api/people');
    } catch (e) {
      people = null;
    }
    return people || [];
  }

  /** A datetime-local value (local time) for an RFC 3339 time. */
  function localValue(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return '';
    const p = (n) => String(n).padStart(2, '0');
    return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + 'T' + p(d.getHours()) + ':' + p(d.getMinutes());
  }

  /**
   * Opens the reassign dialog for `item` of `kind` ('alert' or 'defect'); resolves with the updated
   * item from the server, or null when cancelled. Asks for a token first if none is set (MES.post).
   */
  O.reassign = function (kind, item) {
    return new Promise((resolve) => {
      let dlg = document.getElementById('assign-dialog');
      if (!dlg) {
        dlg = el('dialog', { id: 'assign-dialog' },
          el('form', { method: 'dialog', id: 'assign-form' },
            el('h3', { id: 'assign-title' }),
            el('p', { className: 'error-text', id: 'assign-error' }),
            el('label', { htmlFor: 'assign-owner', dataset: { i18n: 'assign.owner' } }),
            el('select', { id: 'assign-owner' }),
            el('label', { htmlFor: 'assign-due', dataset: { i18n: 'assign.due' } }),
            el('input', { id: 'assign-due', type: 'datetime-local' }),
            el('div', { className: 'buttons' },
              el('button', { type: 'button', id: 'assign-cancel', dataset: { i18n: 'cancel' } }),
              el('button', { type: 'submit', id: 'assign-ok', className: 'primary', dataset: { i18n: 'ok' } }))));
        document.body.append(dlg);
      }
      MES.applyI18n(dlg);
      const what = t(kind === 'alert' ? 'my.alertN' : 'my.defectN', { id: item.id });
      MES.setText(dlg.querySelector('#assign-title'), t('assign.title', { what }));
      dlg.querySelector('#assign-error').textContent = '';
      const select = dlg.querySelector('#assign-owner');
      const due = dlg.querySelector('#assign-due');
      due.value = item.dueAt ? localValue(item.dueAt) : '';
      const ok = dlg.querySelector('#assign-ok');
      ok.disabled = false;
      const fill = (list) => {
        const users = list.map((p) => p.user);
        if (item.owner && !users.includes(item.owner)) list = [{ user: item.owner, name: item.owner }].concat(list);
        select.replaceChildren(...list.map((p) => el('option', { value: p.user }, p.name && p.name !== p.user ? p.name + ' (' + p.user + ')' : p.user)));
        if (item.owner) select.value = item.owner;
      };
      fill([]);
      loadPeople().then(fill);
      let finished = false;
      const finish = (value) => {
        if (finished) return;
        finished = true;
        dlg.onclose = null;
        if (dlg.open) dlg.close();
        resolve(value);
      };
      dlg.querySelector('#assign-cancel').onclick = () => finish(null);
      dlg.onclose = () => finish(null);
      dlg.querySelector('form').onsubmit = async (e) => {
        e.preventDefault();
        ok.disabled = true;
        const body = { owner: select.value };
        if (due.value) {
          const d = new Date(due.value);
          if (!Number.isNaN(d.getTime())) body.dueAt = d.toISOString();
        }
        try {
          const updated = await MES.post('/api/' + (kind === 'alert' ? 'alerts' : 'defects') + '/' + encodeURIComponent(item.id) + '/assign', body);
          finish(updated);
        } catch (err) {
          dlg.querySelector('#assign-error').textContent = t('error', { message: err.message });
          ok.disabled = false;
          if (!dlg.open) dlg.showModal();
        }
      };
      dlg.showModal();
      if (!people) loadPeople().then(fill);
      select.focus();
    });
  };
})();
