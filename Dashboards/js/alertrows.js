/* Alert rows and the action dialog, shared by the alerts page and the my-items page: the severity
 * badge, the station and vehicle links, the escalation line, an alert's buttons by its state
 * (acknowledge, shelve, reassign), and the one comment dialog both pages answer items through.
 * Loaded after common.js and owners.js.
 */
(function () {
  'use strict';
  const { el, t } = MES;
  const R = (MES.alertRows = {});

  R.SEVERITIES = ['critical', 'high', 'medium', 'low'];
  /** Alert states that still wait for an acknowledgement. */
  R.UNACK = new Set(['active_unacknowledged', 'cleared_unacknowledged']);
  /** The place of a severity, most severe first (unknown last). */
  R.rank = (severity) => { const i = R.SEVERITIES.indexOf(severity); return i < 0 ? 9 : i; };

  /** The severity badge, or null without a severity. */
  R.severity = (severity) => (severity ? el('span', { className: 'badge sev-' + severity }, MES.tOr('sev', severity)) : null);
  /** A link to the station's page, or a dash. */
  R.station = (station) => (station ? el('a', { href: 'station.html?id=' + encodeURIComponent(station) }, station) : '—');
  /** ` · ` and a link to the vehicle's page, or null. */
  R.vehicle = (vehicleId) => (vehicleId ? [' · ', el('a', { href: 'vehicle.html?id=' + encodeURIComponent(vehicleId) }, vehicleId)] : null);
  /** "Escalated to …" under an item that was escalated, or null. */
  R.escalation = (item) => (Array.isArray(item.escalatedTo) && item.escalatedTo.length
    ? el('div', { className: 'escalation muted' }, t('alerts.escalatedTo', { names: item.escalatedTo.join(', ') })) : null);

  /**
   * An alert's buttons by its state: acknowledge while unacknowledged, shelve while neither shelved
   * nor cleared, reassign while not cleared for a quality user or above (README "My items"). A
   * handler left out leaves its button out.
   */
  R.actions = function (a, on) {
    const out = [];
    const button = (cls, key, fn) => el('button', { type: 'button', className: cls, onclick: fn }, t(key));
    if (on.ack && R.UNACK.has(a.state)) out.push(button('ack primary', 'alerts.ack', on.ack));
    if (on.shelve && a.state !== 'shelved' && a.state !== 'cleared') out.push(button('shelve', 'alerts.shelve', on.shelve));
    if (on.assign && a.state !== 'cleared' && MES.owners.has('quality') !== false) out.push(button('assign', 'alerts.assign', on.assign));
    return out;
  };

  // ------------------------------------------------------------------ the action dialog
  let dialog = null;
  let current = null; // the open request: {submit, minutes}

  function dialogElement() {
    if (dialog) return dialog;
    dialog = el('dialog', { id: 'action-dialog' },
      el('form', { id: 'action-form', method: 'dialog' },
        el('h3', { id: 'action-title' }),
        el('p', { id: 'action-error', className: 'error-text' }),
        el('div', { id: 'minutes-row' },
          el('label', { htmlFor: 'action-minutes', dataset: { i18n: 'alerts.minutes' } }),
          el('input', { id: 'action-minutes', type: 'number', min: '1', max: '1440', value: '30' })),
        el('label', { htmlFor: 'action-comment', id: 'action-comment-label' }),
        el('textarea', { id: 'action-comment', rows: 3 }),
        el('div', { className: 'buttons' },
          el('button', { type: 'button', id: 'action-cancel', dataset: { i18n: 'cancel' } }),
          el('button', { type: 'submit', id: 'action-ok', className: 'primary', dataset: { i18n: 'ok' } }))));
    document.body.append(dialog);
    MES.applyI18n(dialog);
    dialog.querySelector('#action-cancel').addEventListener('click', () => { current = null; dialog.close(); });
    dialog.querySelector('#action-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      if (!current) return;
      const request = current;
      const ok = dialog.querySelector('#action-ok');
      ok.disabled = true;
      try {
        const minutes = request.minutes ? Number(dialog.querySelector('#action-minutes').value) || 30 : undefined;
        await request.submit(dialog.querySelector('#action-comment').value.trim(), minutes);
        if (current === request) current = null;
        dialog.close();
      } catch (err) {
        dialog.querySelector('#action-error').textContent = t('error', { message: err.message });
        ok.disabled = false;
      }
      if (request.after) request.after();
    });
    return dialog;
  }

  /**
   * Opens the dialog: `title`, the comment's `label` (default "comment"), a minutes field when
   * `minutes`; `submit(comment, minutes)` runs on OK (a rejection is shown and the dialog stays);
   * `after()` runs once the submit settled either way.
   */
  R.openDialog = function ({ title, label, minutes, submit, after }) {
    const d = dialogElement();
    current = { submit, minutes: !!minutes, after };
    MES.setText(d.querySelector('#action-title'), title);
    MES.setText(d.querySelector('#action-comment-label'), label || t('alerts.comment'));
    d.querySelector('#minutes-row').classList.toggle('hidden', !minutes);
    d.querySelector('#action-error').textContent = '';
    d.querySelector('#action-comment').value = '';
    d.querySelector('#action-minutes').value = '30';
    d.querySelector('#action-ok').disabled = false;
    d.showModal();
    d.querySelector('#action-comment').focus();
  };

  // Made at load, so the page's start-up translates it with the rest of the page.
  if (document.body) dialogElement();
  else document.addEventListener('DOMContentLoaded', dialogElement);
})();
