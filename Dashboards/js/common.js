/* Line MES dashboards: what every page shares.
 *
 * MES.t / MES.setLang      English and Simplified Chinese (strings.js), remembered in localStorage ("mes.lang")
 * MES.api / MES.post       fetch helpers (JSON, the API's error shape, Bearer token from sessionStorage)
 * MES.start                a page's start-up: server facts (/api/meta, /api/health), the page's snapshot
 *                          (retried while it fails), then the event stream resumed after the snapshot
 * MES.stream               /api/events with reconnect + resume (Last-Event-ID / ?since=) and the
 *                          "disconnected since …" banner; nothing missed, duplicates dropped by id
 * MES.now / MES.mode       the pipeline's clock: the wall clock live, the recording's time in replay
 * MES.stateName, MES.cssVar  machine states from /api/meta, colours from the stylesheet's variables
 * MES.schedule             batches DOM work into one animation frame; measures event-to-DOM delay
 * MES.stamp                marks a figure with its time; a ticker greys it out (with its age) once
 *                          it is older than its freshness window
 * MES.fmt, MES.el          formatting and DOM building
 * MES.header               the top bar (navigation, live indicator, clock, language switch)
 */
(function () {
  'use strict';
  const MES = (window.MES = {});

  // ------------------------------------------------------------------ i18n
  // The strings live in strings.js (loaded first): every page's text in both languages.
  const STRINGS = window.MES_STRINGS;
  let lang = localStorage.getItem('mes.lang');
  if (!STRINGS[lang]) lang = (navigator.language || '').toLowerCase().startsWith('zh') ? 'zh' : 'en';
  const langListeners = [];

  /** The text for `key` in the current language, with `{name}` replaced from `vars`. */
  MES.t = function (key, vars) {
    let s = STRINGS[lang][key];
    if (s === undefined) s = STRINGS.en[key];
    if (s === undefined) s = key;
    if (vars) s = s.replace(/\{(\w+)\}/g, (_, k) => (vars[k] === undefined || vars[k] === null ? '' : String(vars[k])));
    return s;
  };
  /** The text for `prefix.value`, or the value itself when there is none (unknown states, processes). */
  MES.tOr = function (prefix, value) {
    const key = prefix + '.' + value;
    return STRINGS[lang][key] || STRINGS.en[key] || String(value);
  };
  MES.lang = () => lang;
  MES.applyI18n = function (root) {
    (root || document).querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = MES.t(el.dataset.i18n); });
    (root || document).querySelectorAll('[data-i18n-ph]').forEach((el) => { el.placeholder = MES.t(el.dataset.i18nPh); });
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  };
  MES.setLang = function (l) {
    if (!STRINGS[l]) return;
    lang = l;
    localStorage.setItem('mes.lang', l);
    MES.applyI18n();
    langListeners.forEach((fn) => fn());
  };
  /** Calls `fn` after each language switch (pages re-render their dynamic text). */
  MES.onLang = (fn) => langListeners.push(fn);

  // ------------------------------------------------------------------ formatting and DOM
  const fmt = (MES.fmt = {});
  fmt.num = function (v, digits) {
    if (v === null || v === undefined || Number.isNaN(Number(v))) return '—';
    const n = Number(v);
    const d = digits === undefined ? (Math.abs(n) >= 100 ? 0 : Math.abs(n) >= 10 ? 1 : 2) : digits;
    return n.toFixed(d);
  };
  /** A 0–1 ratio as "87.3 %"; a full 100 % without the decimal, so it fits where 99.9 % does. */
  fmt.pct = function (v, digits) {
    if (v === null || v === undefined || !Number.isFinite(Number(v))) return '—';
    const p = Number(v) * 100;
    if (digits === undefined && p >= 99.95) return '100 %';
    return p.toFixed(digits === undefined ? 1 : digits) + ' %';
  };
  fmt.time = function (t) {
    if (!t) return '—';
    const d = t instanceof Date ? t : new Date(t);
    if (Number.isNaN(d.getTime())) return '—';
    return d.toLocaleTimeString(lang === 'zh' ? 'zh-CN' : 'en-GB', { hour12: false });
  };
  fmt.dateTime = function (t) {
    if (!t) return '—';
    const d = new Date(t);
    if (Number.isNaN(d.getTime())) return '—';
    return d.toLocaleDateString(lang === 'zh' ? 'zh-CN' : 'en-GB') + ' ' + fmt.time(d);
  };
  /** A duration in milliseconds as "12 s", "4 min", "2.5 h". */
  fmt.age = function (ms) {
    if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
    const s = Math.max(0, ms / 1000);
    if (s < 90) return Math.round(s) + ' ' + MES.t('unit.s');
    if (s < 5400) return Math.round(s / 60) + ' ' + MES.t('unit.min');
    return (s / 3600).toFixed(1) + ' ' + MES.t('unit.h');
  };
  fmt.seconds = (s) => (s === null || s === undefined ? '—' : fmt.age(Number(s) * 1000));
  fmt.value = function (v) {
    if (v === null || v === undefined) return '—';
    if (typeof v === 'number') return Number.isInteger(v) ? String(v) : fmt.num(v);
    if (typeof v === 'boolean') return v ? '1' : '0';
    return String(v);
  };
  MES.ms = (t) => (t ? new Date(t).getTime() : NaN);

  // ------------------------------------------------------------------ the pipeline's clock
  // Live, the pipeline's clock is the wall clock. In replay (mes-server --replay) it is the newest
  // recording time the pipeline has handled: chart windows, "ago" times and stale marks follow it, or
  // a recording of last week would show nothing but "no data". It moves only as the recording does
  // (from /api/health's `clock` and each event's `t`), so a paused or finished replay stays current.
  let mode = 'live';
  let replayClock = NaN;
  /** 'live' or 'replay' (from /api/health). */
  MES.mode = () => mode;
  /**
   * The connection a page shows for the server's `connection`: in replay no PLC is connected and
   * the server keeps every station `connecting` (its events are fixed by the golden replay test),
   * so pages show such a station as `replayed`.
   */
  MES.shownConnection = (connection) => (mode === 'replay' && connection === 'connecting' ? 'replayed' : connection);
  /** Now on the pipeline's clock, in milliseconds. */
  MES.now = () => (mode === 'replay' ? (Number.isFinite(replayClock) ? replayClock : 0) : Date.now());
  /** Takes the mode and clock of an /api/health answer (MES.start does; tests may too). */
  MES.setClock = function (health) {
    if (!health) return;
    if (health.mode === 'replay' || health.mode === 'live') mode = health.mode;
    if (mode === 'replay') advanceClock(MES.ms(health.clock));
    document.body.dataset.mode = mode;
    if (typeof health.node === 'string' && (health.role === 'active' || health.role === 'standby')) {
      node = { name: health.node, role: health.role };
      showNode();
    }
    if (headerTick) headerTick();
  };
  // The server's node and role (README "Two nodes"): a standby serves the same pages from the shared
  // database; after a takeover the stream reconnects and the badge follows /api/health.
  let node = null;
  let nodeEl = null;
  function showNode() {
    if (!nodeEl || !node) return;
    nodeEl.dataset.role = node.role;
    nodeEl.classList.toggle('hidden', false);
    MES.setText(nodeEl, MES.t('node.badge', { node: node.name, role: MES.t('node.role.' + node.role) }));
    nodeEl.title = MES.t('node.title.' + node.role);
  }
  /** The node and role of the server last asked ({name, role}), or null before /api/health answered. */
  MES.node = () => node;
  let headerTick = null; // the top bar's clock, redrawn when the mode or clock is learned
  function advanceClock(ms) {
    if (mode === 'replay' && Number.isFinite(ms) && !(ms <= replayClock)) replayClock = ms;
  }

  // ------------------------------------------------------------------ server facts
  // The machine states and their conventional codes are named once on the server (PlantModel's
  // MachineState) and served by GET /api/meta; these stand in only until it has answered.
  let meta = { machineStates: [], connectionStates: ['connecting', 'online', 'offline', 'replayed'], eventTypes: [] };
  /** The /api/meta answer (after MES.start). */
  MES.meta = () => meta;
  /** The name of a state code: from the signal's own `states` map if given, else the conventional codes. */
  MES.stateName = function (code, states) {
    const key = String(code);
    if (states && states[key]) return states[key];
    const known = meta.machineStates.find((s) => String(s.code) === key);
    return known ? known.name : 'code ' + key;
  };
  /** True for a machine state the server names (for `st-NAME` colour classes). */
  MES.isState = (name) => meta.machineStates.some((s) => s.name === name);
  /** A CSS custom property of the page (colours live in mes.css only), e.g. MES.cssVar('--bad'). */
  MES.cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

  /** Builds an element: MES.el('td', {className: 'x', dataset: {id: 1}, onclick: fn}, 'text', child…). */
  MES.el = function (tag, props, ...children) {
    const el = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === undefined || v === null) continue;
        if (k === 'dataset') Object.assign(el.dataset, v);
        else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
        else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else if (k in el && k !== 'list') el[k] = v;
        else el.setAttribute(k, v);
      }
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  };
  /** Sets an element's text only when it changed (keeps the DOM quiet at 10 Hz). */
  MES.setText = function (el, text) {
    if (el && el.textContent !== text) el.textContent = text;
  };
  MES.query = (name) => new URLSearchParams(location.search).get(name);

  /** Bounds a Map or Set kept by a long-open page: while it holds more than `max` entries, removes the
   *  oldest inserted ones, first those `evictFirst(value, key)` accepts, then any. Returns how many went. */
  MES.bound = function (coll, max, evictFirst) {
    let removed = 0;
    if (coll.size <= max) return removed;
    const isMap = coll instanceof Map;
    if (evictFirst) {
      for (const [k, v] of coll.entries()) {
        if (coll.size <= max) break;
        if (evictFirst(isMap ? v : k, k)) { coll.delete(k); removed++; }
      }
    }
    for (const k of coll.keys()) {
      if (coll.size <= max) break;
      coll.delete(k);
      removed++;
    }
    return removed;
  };

  // ------------------------------------------------------------------ HTTP
  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }
  MES.ApiError = ApiError;

  async function request(method, path, body, token) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (token) headers.Authorization = 'Bearer ' + token;
    let res;
    try {
      res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
    } catch (e) {
      throw new ApiError(0, 'network', String(e && e.message ? e.message : e));
    }
    let json = null;
    const text = await res.text();
    if (text) {
      try { json = JSON.parse(text); } catch (e) { json = null; }
    }
    if (!res.ok) {
      const err = json && json.error ? json.error : {};
      throw new ApiError(res.status, err.code || 'http_' + res.status, err.message || res.statusText || 'HTTP ' + res.status);
    }
    return json;
  }
  /** GET a JSON document; throws MES.ApiError (status, code, message). Sends the token if there is one. */
  MES.api = (path) => request('GET', path, undefined, MES.token());

  MES.token = () => sessionStorage.getItem('mes.token') || '';
  MES.setToken = function (token) {
    if (token) sessionStorage.setItem('mes.token', token);
    else sessionStorage.removeItem('mes.token');
    document.dispatchEvent(new CustomEvent('mes:token'));
  };

  /** Asks for the token in a modal dialog; resolves with it (stored in sessionStorage) or null. */
  MES.askToken = function (message) {
    return new Promise((resolve) => {
      let dlg = document.getElementById('token-dialog');
      if (!dlg) {
        dlg = MES.el('dialog', { id: 'token-dialog' },
          MES.el('form', { method: 'dialog' },
            MES.el('h3', { dataset: { i18n: 'token.title' } }),
            MES.el('p', { className: 'error-text', id: 'token-message' }),
            MES.el('label', { htmlFor: 'token-input', dataset: { i18n: 'token.label' } }),
            MES.el('input', { id: 'token-input', type: 'password', autocomplete: 'off' }),
            MES.el('div', { className: 'buttons' },
              MES.el('button', { type: 'button', id: 'token-cancel', dataset: { i18n: 'cancel' } }),
              MES.el('button', { type: 'submit', id: 'token-ok', className: 'primary', dataset: { i18n: 'token.signin' } }))));
        document.body.append(dlg);
        MES.applyI18n(dlg);
      }
      const input = dlg.querySelector('#token-input');
      dlg.querySelector('#token-message').textContent = message || '';
      input.value = '';
      const finish = (value) => {
        dlg.onclose = null;
        if (dlg.open) dlg.close();
        if (value) MES.setToken(value);
        resolve(value || null);
      };
      dlg.querySelector('#token-cancel').onclick = () => finish(null);
      dlg.querySelector('form').onsubmit = (e) => { e.preventDefault(); finish(input.value.trim()); };
      dlg.onclose = () => finish(null);
      dlg.showModal();
      input.focus();
    });
  };

  /** POST with the session's Bearer token; asks for one first if none is set, and again once if refused (401). */
  MES.post = async function (path, body) {
    let token = MES.token() || (await MES.askToken());
    if (!token) throw new ApiError(401, 'no_token', MES.t('token.none'));
    try {
      return await request('POST', path, body, token);
    } catch (e) {
      if (e.status !== 401) throw e;
      MES.setToken('');
      token = await MES.askToken(MES.t('token.rejected'));
      if (!token) throw e;
      return request('POST', path, body, token);
    }
  };

  // ------------------------------------------------------------------ batched DOM updates + delay metrics
  const metrics = (MES.metrics = {
    received: 0, applied: 0, duplicates: 0, reconnects: 0,
    byType: {}, // events received per type
    gaps: 0, // ids skipped on an unfiltered stream (ids are consecutive, so this should stay 0)
    delays: [], // event receipt → DOM updated, milliseconds (the last 20,000 to 25,000)
    e2e: [], // event time (server: `t`, or a raised defect's / alert's `raisedAt`) → DOM updated, milliseconds
  });
  const RING = 20000;
  function record(list, v) {
    // trimmed in steps of RING / 4, so a full list costs one move per 5,000 events, not one per event
    if (list.length >= RING + RING / 4) list.splice(0, list.length - RING);
    list.push(v);
  }
  const pendingWork = new Set();
  let pendingStamps = [];
  let flushScheduled = false;
  function flush() {
    flushScheduled = false;
    const work = Array.from(pendingWork);
    pendingWork.clear();
    for (const fn of work) {
      try { fn(); } catch (e) { console.error(e); }
    }
    const stamps = pendingStamps;
    pendingStamps = [];
    const now = performance.now();
    const wall = Date.now();
    for (const s of stamps) {
      record(metrics.delays, now - s.at);
      if (s.t && mode === 'live') record(metrics.e2e, wall - s.t);
      metrics.applied++;
    }
  }
  /** Runs `fn` in the next animation frame; the same function queued twice runs once. */
  MES.schedule = function (fn) {
    pendingWork.add(fn);
    if (!flushScheduled) {
      flushScheduled = true;
      if (document.hidden) setTimeout(flush, 50);
      else requestAnimationFrame(flush);
    }
  };

  // ------------------------------------------------------------------ freshness
  /** Marks `el` as showing a value of time `at` (Date, ms or RFC 3339) that is fresh for `freshMs`
   *  (Infinity: never stale by age). Once stale it shows its age with the text `ageKey` ("{age} ago"). */
  /*  Times are on the pipeline's clock (MES.now). The age badge goes into the child `data-age-in`
   *  names (a selector) when the element has one, else at its end. */
  MES.stamp = function (el, at, freshMs, ageKey) {
    if (!el) return;
    const ms = typeof at === 'number' ? at : MES.ms(at);
    if (!Number.isFinite(ms)) { delete el.dataset.at; el.classList.remove('stale'); return; }
    el.dataset.at = String(ms);
    el.dataset.fresh = String(freshMs);
    if (ageKey) el.dataset.ageKey = ageKey;
    else delete el.dataset.ageKey;
    checkStale(el, MES.now());
  };
  function checkStale(el, now) {
    const age = now - Number(el.dataset.at);
    const stale = age > Number(el.dataset.fresh);
    el.classList.toggle('stale', stale);
    const host = (el.dataset.ageIn && el.querySelector(el.dataset.ageIn)) || el;
    let badge = host.querySelector(':scope > .age');
    if (stale) {
      if (!badge) { badge = MES.el('span', { className: 'age' }); host.append(badge); }
      const text = MES.t(el.dataset.ageKey || 'age.ago', { age: fmt.age(age) });
      MES.setText(badge, text);
      el.title = text;
    } else if (badge) {
      badge.remove();
      el.removeAttribute('title');
    }
  }
  setInterval(() => {
    const now = MES.now();
    document.querySelectorAll('[data-at][data-fresh]').forEach((el) => checkStale(el, now));
  }, 1000);

  // ------------------------------------------------------------------ event stream
  // Every event type the server sends: GET /api/meta's eventTypes; this list stands in until it has
  // answered. A page that handles fewer asks for its own with ?types= (an event of a type without a
  // listener would never reach the page, and its id would look like a gap).
  const KNOWN_TYPES = ['station', 'sample', 'operation', 'vehicle', 'defect', 'alert', 'kpi', 'anomaly', 'order', 'andon', 'part'];
  const serverTypes = () => (Array.isArray(meta.eventTypes) && meta.eventTypes.length ? meta.eventTypes : KNOWN_TYPES);
  let liveEl = null;
  let banner = null;

  function setLive(state) {
    if (!liveEl) return;
    liveEl.className = 'live ' + state;
    liveEl.dataset.state = state;
    document.body.dataset.live = state; // CSS greys live figures while the stream is down
    const key = state === 'online' ? (mode === 'replay' ? 'live.replay' : 'live.live') : state === 'offline' ? 'live.offline' : 'live.connecting';
    MES.setText(liveEl.querySelector('.txt'), MES.t(key));
  }

  /**
   * Follows /api/events. `handlers` maps event types to fn(data, id). Options:
   *   since: event id to resume after (e.g. /api/health's lastEventId read before the page's snapshot)
   *   types: only these types (?types=)
   *   onReconnect: called after the stream came back from a disconnection
   * Resumes after the last event id it saw: the browser's own reconnect sends Last-Event-ID; when the
   * EventSource gave up (CLOSED) or hangs in CONNECTING, a new one is made with ?since=<lastId>.
   */
  MES.stream = function (handlers, options) {
    const opts = options || {};
    const TYPES = serverTypes();
    const types = opts.types || Object.keys(handlers).filter((k) => TYPES.includes(k));
    let lastId = opts.since === undefined || opts.since === null ? null : Number(opts.since);
    let es = null;
    let disconnectedAt = null;
    let connectingSince = Date.now();
    let retryTimer = null;
    let retryDelay = 1000;
    let everOpen = false;
    let closed = false;
    const unfiltered = types.length === TYPES.length;

    function url() {
      const q = [];
      if (types.length && types.length < TYPES.length) q.push('types=' + types.join(','));
      if (lastId !== null) q.push('since=' + lastId);
      return '/api/events' + (q.length ? '?' + q.join('&') : '');
    }
    function onEvent(ev) {
      const at = performance.now();
      const id = Number(ev.lastEventId);
      if (Number.isFinite(id) && lastId !== null && id <= lastId) { metrics.duplicates++; return; }
      if (Number.isFinite(id) && lastId !== null && id > lastId + 1 && unfiltered) metrics.gaps += id - lastId - 1;
      if (Number.isFinite(id)) lastId = id;
      metrics.received++;
      metrics.byType[ev.type] = (metrics.byType[ev.type] || 0) + 1;
      let data;
      try { data = JSON.parse(ev.data); } catch (e) { console.warn('bad event data', ev.type, ev.data); return; }
      // the event's own time: `t`, or when a defect / alert was raised (for its `raised` event)
      const when = data && (typeof data.t === 'string' ? data.t
        : data.change === 'raised' || (data.change === undefined && !data.resolvedAt && !data.clearedAt) ? data.raisedAt : null);
      const t = typeof when === 'string' ? MES.ms(when) : 0;
      if (data && typeof data.t === 'string') advanceClock(t);
      pendingStamps.push({ at, t: Number.isFinite(t) ? t : 0 });
      if (pendingStamps.length > RING) pendingStamps.splice(0, pendingStamps.length - RING);
      const fn = handlers[ev.type];
      if (fn) {
        try { fn(data, id); } catch (e) { console.error(e); }
      }
      MES.schedule(noop);
    }
    function noop() {}
    function connect() {
      if (closed) return;
      clearTimeout(retryTimer);
      retryTimer = null;
      if (es) es.close();
      connectingSince = Date.now();
      es = new EventSource(url());
      for (const type of types) es.addEventListener(type, onEvent);
      es.onopen = opened;
      es.onerror = failed;
    }
    function opened() {
      retryDelay = 1000;
      setLive('online');
      if (disconnectedAt !== null) {
        disconnectedAt = null;
        metrics.reconnects++;
        hideBanner();
        // After a takeover the page may talk to another node, or to this one in another role.
        MES.api('/api/health').then(MES.setClock, () => {});
        if (opts.onReconnect) opts.onReconnect();
      }
      everOpen = true;
    }
    function failed() {
      if (closed) return;
      if (disconnectedAt === null) {
        disconnectedAt = Date.now();
        connectingSince = Date.now();
        showBanner(disconnectedAt);
      }
      setLive('offline');
      if (es && es.readyState === EventSource.CLOSED) scheduleRetry();
    }
    function scheduleRetry() {
      if (retryTimer) return;
      retryTimer = setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 8000);
    }
    // The browser's own retries can stall; take over when it has been connecting too long.
    const watchdog = setInterval(() => {
      if (!es || closed) return;
      if (es.readyState === EventSource.CONNECTING && Date.now() - connectingSince > 10000) connect();
      if (disconnectedAt !== null) showBanner(disconnectedAt);
      if (!everOpen && es.readyState === EventSource.CONNECTING && Date.now() - connectingSince > 3000 && disconnectedAt === null) {
        disconnectedAt = connectingSince;
        showBanner(disconnectedAt);
        setLive('offline');
      }
    }, 1000);
    // In replay a page that follows few event types still sees the recording's clock move.
    const clockTimer = mode === 'replay' ? setInterval(() => { MES.api('/api/health').then(MES.setClock, () => {}); }, 5000) : null;
    function close() {
      closed = true;
      clearTimeout(retryTimer);
      retryTimer = null;
      clearInterval(watchdog);
      clearInterval(clockTimer);
      if (es) es.close();
    }
    window.addEventListener('pagehide', close);
    setLive('connecting');
    connect();
    return (MES.current = {
      lastId: () => lastId,
      connected: () => disconnectedAt === null && es && es.readyState === EventSource.OPEN,
      /** Hands the page one event as if the stream had sent it, without an id (tests, the console). */
      feed: (type, data) => onEvent({ type, data: JSON.stringify(data), lastEventId: 'synthetic' }),
      /** Stops the stream for good: no reconnect timer, watchdog or clock poll is left running. */
      close,
    });
  };

  function showBanner(since) {
    if (!banner) return;
    banner.classList.remove('hidden');
    banner.dataset.since = String(since);
    MES.setText(banner, MES.t('banner.disconnected', { time: fmt.time(new Date(since)), age: fmt.age(Date.now() - since) }));
  }
  function hideBanner() {
    if (!banner) return;
    banner.classList.add('hidden');
    delete banner.dataset.since;
  }

  /** The id of the newest stored event (from /api/health, which also sets the clock), to resume after
   *  a snapshot; null if unknown. */
  MES.lastEventId = async function () {
    try {
      const h = await MES.api('/api/health');
      MES.setClock(h);
      return h && Number.isFinite(Number(h.lastEventId)) ? Number(h.lastEventId) : null;
    } catch (e) {
      return null;
    }
  };

  let metaLoaded = false;
  /**
   * A page's start-up, the same on every page:
   *   1. the server's facts: /api/meta (machine states, once) and /api/health (mode, clock, and the newest
   *      event id, read BEFORE the snapshot so nothing between the two is missed);
   *   2. `load()`: the page's snapshot (GET requests); when it throws, `onError(e)` shows why and it is
   *      tried again after 3 s, unless `retry(e)` says no (e.g. a 404 for an unknown station);
   *   3. MES.stream(handlers, {since, types, onReconnect}) resumes after that event id; its banner and the
   *      live indicator say when the page is not current.
   * Resolves with the stream (or null when it gave up).
   */
  MES.start = async function (opts) {
    if (!metaLoaded) {
      try {
        meta = await MES.api('/api/meta');
        metaLoaded = true;
      } catch (e) {
        console.warn('/api/meta: ' + e.message);
      }
    }
    const since = await MES.lastEventId();
    try {
      if (opts.load) await opts.load();
    } catch (e) {
      if (opts.onError) opts.onError(e);
      else console.warn(e.message);
      if (opts.retry && !opts.retry(e)) return null;
      await new Promise((resolve) => setTimeout(resolve, 3000));
      return MES.start(opts);
    }
    return MES.stream(opts.handlers || {}, { since, types: opts.types, onReconnect: opts.onReconnect });
  };

  // ------------------------------------------------------------------ page frame
  const PAGES = [
    ['index.html', 'nav.overview'], ['alerts.html', 'nav.alerts'], ['vehicle.html', 'nav.vehicles'], ['station.html', 'nav.stations'],
    ['orders.html', 'nav.orders'],
    ['shift.html', 'nav.shift'],
    ['recall.html', 'nav.recall'],
    ['myitems.html', 'nav.myitems'],
    ['equipment.html', 'nav.equipment'],
  ];
  /** Fills <header id="top"> with the top bar and puts the disconnection banner under it. */
  MES.header = function () {
    const host = document.getElementById('top');
    const page = location.pathname.split('/').pop() || 'index.html';
    const nav = MES.el('nav', null, PAGES.map(([href, key]) =>
      MES.el('a', { href, className: href === page ? 'current' : '', dataset: { i18n: key } })));
    liveEl = MES.el('span', { className: 'live connecting', id: 'live' }, MES.el('span', { className: 'dot' }), MES.el('span', { className: 'txt' }));
    const clock = MES.el('span', { className: 'clock', id: 'clock' });
    nodeEl = MES.el('span', { className: 'node hidden', id: 'node' });
    const langBtn = MES.el('button', { id: 'lang-toggle', type: 'button', dataset: { i18n: 'lang.switch' },
      onclick: () => MES.setLang(lang === 'en' ? 'zh' : 'en') });
    host.className = 'topbar';
    host.replaceChildren(MES.el('span', { className: 'brand', dataset: { i18n: 'app.title' } }), nav,
      MES.el('span', { className: 'spacer' }), nodeEl, liveEl, clock, langBtn);
    showNode();
    banner = MES.el('div', { id: 'conn-banner', className: 'banner hidden', role: 'alert' });
    host.after(banner);
    // live: the wall clock; replay: the recording's time, marked as such
    const tick = () => {
      const replay = mode === 'replay';
      clock.classList.toggle('replay', replay);
      const now = MES.now();
      MES.setText(clock, replay && !now ? MES.t('clock.replayWaiting') : (replay ? fmt.dateTime(now) : fmt.time(new Date(now))));
    };
    headerTick = tick;
    tick();
    setInterval(tick, 1000);
    MES.applyI18n();
    setLive('connecting');
    MES.onLang(() => {
      setLive(liveEl.dataset.state || 'connecting');
      showNode();
      if (banner && banner.dataset.since) showBanner(Number(banner.dataset.since));
    });
  };
})();
