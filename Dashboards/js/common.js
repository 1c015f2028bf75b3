/* Line MES dashboards: what every page shares.
 *
 * MES.t / MES.setLang      English and Simplified Chinese, remembered in localStorage ("mes.lang")
 * MES.api / MES.post       fetch helpers (JSON, contract error shape, Bearer token from sessionStorage)
 * MES.stream               /api/events with reconnect + resume (Last-Event-ID / ?since=) and the
 *                          "disconnected since …" banner; nothing missed, duplicates dropped by id
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
  const STRINGS = {
    en: {
      'app.title': 'Line MES', 'nav.overview': 'Line overview', 'nav.alerts': 'Alerts', 'nav.vehicles': 'Vehicles',
      'nav.stations': 'Stations', 'lang.switch': '中文',
      'live.live': 'Live', 'live.connecting': 'Connecting…', 'live.offline': 'Disconnected',
      'banner.disconnected': 'Disconnected from the server since {time} ({age}) — reconnecting; figures are not live',
      'age.ago': '{age} ago', 'age.offlineFor': 'offline for {age}', 'age.noData': 'no data for {age}', 'unit.s': 's', 'unit.min': 'min', 'unit.h': 'h', 'unit.perHour': '/h',
      'fig.throughput': 'Throughput / h', 'fig.plan': 'plan {plan}/h', 'fig.oee': 'OEE', 'fig.fpy': 'FPY',
      'fig.wip': 'WIP', 'fig.wipSub': 'vehicles on the line', 'fig.defects': 'Open defects', 'fig.alerts': 'Active alerts',
      'fig.unack': '{n} unacknowledged', 'fig.shift': 'shift {name}', 'fig.rty': 'RTY {rty}',
      'tile.vehicle': 'Vehicle', 'tile.cycle': 'Cycle / ideal', 'tile.oee': 'OEE', 'tile.anomaly': 'Anomaly',
      'tile.lastSample': 'Last sample', 'tile.none': '—',
      'state.running': 'Running', 'state.idle': 'Idle', 'state.fault': 'Fault', 'state.blocked': 'Blocked',
      'state.starved': 'Starved', 'state.setup': 'Setup', 'state.maintenance': 'Maintenance', 'state.unknown': 'Unknown',
      'conn.online': 'online', 'conn.offline': 'offline', 'conn.connecting': 'connecting',
      'process.stamping': 'Stamping', 'process.welding': 'Welding', 'process.paint': 'Paint',
      'process.assembly': 'Assembly', 'process.inspection': 'Inspection',
      'andon.clear': 'No active alerts', 'sev.critical': 'Critical', 'sev.high': 'High', 'sev.medium': 'Medium', 'sev.low': 'Low',
      'alerts.title': 'Alerts', 'alerts.tab.active': 'Active', 'alerts.tab.unack': 'Unacknowledged',
      'alerts.tab.shelved': 'Shelved', 'alerts.tab.recent': 'Recent', 'alerts.col.severity': 'Severity',
      'alerts.col.state': 'State', 'alerts.col.type': 'Type', 'alerts.col.station': 'Station', 'alerts.col.message': 'Message',
      'alerts.col.raised': 'Raised', 'alerts.col.handled': 'Acknowledged / shelved', 'alerts.col.actions': 'Actions',
      'alerts.ack': 'Acknowledge', 'alerts.shelve': 'Shelve', 'alerts.none': 'No alerts in this view',
      'alerts.comment': 'Comment', 'alerts.reason': 'Reason', 'alerts.minutes': 'Shelve for (minutes)',
      'alerts.ackTitle': 'Acknowledge alert #{id}', 'alerts.shelveTitle': 'Shelve alert #{id}',
      'alerts.until': 'until {time}', 'alerts.by': 'by {user}', 'alerts.done': 'Alert #{id}: {state}',
      'astate.active_unacknowledged': 'Active, unacknowledged', 'astate.active_acknowledged': 'Active, acknowledged',
      'astate.cleared_unacknowledged': 'Cleared, unacknowledged', 'astate.cleared': 'Cleared', 'astate.shelved': 'Shelved',
      'token.title': 'Sign in', 'token.label': 'Access token (kept for this browser session only)',
      'token.signin': 'Sign in', 'token.signout': 'Sign out', 'token.signedIn': 'Token set', 'token.none': 'Not signed in',
      'token.rejected': 'The token was refused: enter it again',
      'ok': 'OK', 'cancel': 'Cancel', 'search': 'Search', 'error': 'Error: {message}', 'loading': 'Loading…',
      'vehicle.title': 'Vehicle genealogy', 'vehicle.id': 'Vehicle ID', 'vehicle.lot': 'Material lot',
      'vehicle.searchLot': 'Find vehicles', 'vehicle.recent': 'Recent vehicles', 'vehicle.status': 'Status',
      'vehicle.current': 'Current station', 'vehicle.operations': 'Route', 'vehicle.noOps': 'No operations yet',
      'vehicle.started': 'Started', 'vehicle.completed': 'Completed', 'vehicle.duration': 'Duration',
      'vehicle.measurement': 'Measurement', 'vehicle.value': 'Value', 'vehicle.limits': 'Limits', 'vehicle.lots': 'Lots',
      'vehicle.defects': 'Defects', 'vehicle.alerts': 'Alerts', 'vehicle.noDefects': 'No defects', 'vehicle.noAlerts': 'No alerts',
      'vehicle.inProgress': 'in progress', 'vehicle.hint': 'Enter a vehicle ID (VIN) or a material lot, or pick a recent vehicle.',
      'vehicle.noRecent': 'No vehicle seen yet', 'vehicle.notFound': 'No vehicle "{id}"', 'vehicle.lotVehicles': 'Vehicles with lot {lot}',
      'vehicle.lotStations': 'Consumed at', 'vehicle.lotNone': 'No vehicle received this lot', 'vehicle.firstSeen': 'First seen',
      'vstatus.in_process': 'In process', 'vstatus.completed': 'Completed', 'vstatus.hold': 'On hold', 'vstatus.scrapped': 'Scrapped',
      'result.ok': 'OK', 'result.nok': 'NOK', 'result.none': 'no result',
      'defect.code': 'Code', 'defect.description': 'Description', 'defect.status': 'Status',
      'station.title': 'Station', 'station.pick': 'Choose a station', 'station.trends': 'Measurements, last {min} min',
      'station.window': 'Window', 'station.stateHistory': 'State history', 'station.faults': 'Fault codes',
      'station.faultCode': 'Fault code', 'station.downtime': 'Downtime this shift', 'station.currentFault': 'Current fault code',
      'station.lastFaults': 'Recent faults', 'station.noFaults': 'No faults this shift',
      'station.spec': 'spec limits', 'station.control': 'control limits (x̄ ± 3σ of window)', 'station.anomaly': 'anomaly',
      'station.noData': 'no data in window', 'station.score': 'score {score}', 'station.protocol': 'Protocol',
      'station.connection': 'Connection', 'station.state': 'State', 'station.vehicle': 'Vehicle', 'station.latency': 'Poll latency',
      'kpi.oee': 'OEE', 'kpi.availability': 'Availability', 'kpi.performance': 'Performance', 'kpi.quality': 'Quality',
      'kpi.fpy': 'FPY', 'kpi.throughput': 'Throughput / h', 'kpi.cycle': 'Cycle p50 / p95', 'kpi.mtbf': 'MTBF', 'kpi.mttr': 'MTTR',
      'kpi.count': 'Good / total',
      'col.time': 'Time', 'col.state': 'State', 'col.duration': 'Duration',
    },
    zh: {
      'app.title': '产线 MES', 'nav.overview': '产线总览', 'nav.alerts': '报警', 'nav.vehicles': '车辆', 'nav.stations': '工位',
      'lang.switch': 'English',
      'live.live': '实时', 'live.connecting': '连接中…', 'live.offline': '已断开',
      'banner.disconnected': '自 {time} 起与服务器断开连接（{age}）— 正在重连；数据不是实时的',
      'age.ago': '{age}前', 'age.offlineFor': '已离线 {age}', 'age.noData': '{age}无数据', 'unit.s': '秒', 'unit.min': '分钟', 'unit.h': '小时', 'unit.perHour': '/小时',
      'fig.throughput': '每小时产量', 'fig.plan': '计划 {plan}/小时', 'fig.oee': 'OEE', 'fig.fpy': '一次合格率',
      'fig.wip': '在制品', 'fig.wipSub': '线上车辆', 'fig.defects': '未关闭缺陷', 'fig.alerts': '活动报警',
      'fig.unack': '{n} 条未确认', 'fig.shift': '{name} 班', 'fig.rty': '直通率 {rty}',
      'tile.vehicle': '车辆', 'tile.cycle': '节拍 / 理想', 'tile.oee': 'OEE', 'tile.anomaly': '异常分数',
      'tile.lastSample': '最近采样', 'tile.none': '—',
      'state.running': '运行', 'state.idle': '空闲', 'state.fault': '故障', 'state.blocked': '堵料',
      'state.starved': '缺料', 'state.setup': '换型', 'state.maintenance': '维护', 'state.unknown': '未知',
      'conn.online': '在线', 'conn.offline': '离线', 'conn.connecting': '连接中',
      'process.stamping': '冲压', 'process.welding': '焊装', 'process.paint': '涂装', 'process.assembly': '总装', 'process.inspection': '检测',
      'andon.clear': '无活动报警', 'sev.critical': '紧急', 'sev.high': '高', 'sev.medium': '中', 'sev.low': '低',
      'alerts.title': '报警', 'alerts.tab.active': '活动', 'alerts.tab.unack': '未确认', 'alerts.tab.shelved': '已搁置',
      'alerts.tab.recent': '最近', 'alerts.col.severity': '级别', 'alerts.col.state': '状态', 'alerts.col.type': '类型',
      'alerts.col.station': '工位', 'alerts.col.message': '内容', 'alerts.col.raised': '发生时间',
      'alerts.col.handled': '确认 / 搁置', 'alerts.col.actions': '操作', 'alerts.ack': '确认', 'alerts.shelve': '搁置',
      'alerts.none': '此视图中没有报警', 'alerts.comment': '备注', 'alerts.reason': '原因', 'alerts.minutes': '搁置时长（分钟）',
      'alerts.ackTitle': '确认报警 #{id}', 'alerts.shelveTitle': '搁置报警 #{id}', 'alerts.until': '至 {time}',
      'alerts.by': '由 {user}', 'alerts.done': '报警 #{id}：{state}',
      'astate.active_unacknowledged': '活动，未确认', 'astate.active_acknowledged': '活动，已确认',
      'astate.cleared_unacknowledged': '已消除，未确认', 'astate.cleared': '已消除', 'astate.shelved': '已搁置',
      'token.title': '登录', 'token.label': '访问令牌（仅保存在本次浏览器会话中）', 'token.signin': '登录', 'token.signout': '退出',
      'token.signedIn': '已设置令牌', 'token.none': '未登录', 'token.rejected': '令牌被拒绝：请重新输入',
      'ok': '确定', 'cancel': '取消', 'search': '查询', 'error': '错误：{message}', 'loading': '加载中…',
      'vehicle.title': '车辆追溯', 'vehicle.id': '车辆编号', 'vehicle.lot': '物料批次', 'vehicle.searchLot': '查找车辆',
      'vehicle.recent': '最近车辆', 'vehicle.status': '状态', 'vehicle.current': '当前工位', 'vehicle.operations': '工艺路线',
      'vehicle.noOps': '尚无工序', 'vehicle.started': '开始', 'vehicle.completed': '完成', 'vehicle.duration': '用时',
      'vehicle.measurement': '测量项', 'vehicle.value': '数值', 'vehicle.limits': '规格限', 'vehicle.lots': '批次',
      'vehicle.defects': '缺陷', 'vehicle.alerts': '报警', 'vehicle.noDefects': '无缺陷', 'vehicle.noAlerts': '无报警',
      'vehicle.inProgress': '进行中', 'vehicle.hint': '输入车辆编号（VIN）或物料批次，或选择最近的车辆。', 'vehicle.noRecent': '尚无车辆', 'vehicle.notFound': '没有车辆 "{id}"', 'vehicle.lotVehicles': '使用批次 {lot} 的车辆',
      'vehicle.lotStations': '使用工位', 'vehicle.lotNone': '没有车辆使用此批次', 'vehicle.firstSeen': '首次出现',
      'vstatus.in_process': '生产中', 'vstatus.completed': '已完成', 'vstatus.hold': '扣留', 'vstatus.scrapped': '报废',
      'result.ok': '合格', 'result.nok': '不合格', 'result.none': '无结果',
      'defect.code': '代码', 'defect.description': '描述', 'defect.status': '状态',
      'station.title': '工位', 'station.pick': '选择工位', 'station.trends': '测量趋势，最近 {min} 分钟', 'station.window': '时间窗',
      'station.stateHistory': '状态历史', 'station.faults': '故障代码', 'station.faultCode': '故障代码',
      'station.downtime': '本班停机时间', 'station.currentFault': '当前故障代码', 'station.lastFaults': '最近故障',
      'station.noFaults': '本班无故障', 'station.spec': '规格限', 'station.control': '控制限（窗口 x̄ ± 3σ）',
      'station.anomaly': '异常', 'station.noData': '时间窗内无数据', 'station.score': '分数 {score}', 'station.protocol': '协议',
      'station.connection': '连接', 'station.state': '状态', 'station.vehicle': '车辆', 'station.latency': '轮询延迟',
      'kpi.oee': 'OEE', 'kpi.availability': '时间开动率', 'kpi.performance': '性能开动率', 'kpi.quality': '合格品率',
      'kpi.fpy': '一次合格率', 'kpi.throughput': '每小时产量', 'kpi.cycle': '节拍 p50 / p95', 'kpi.mtbf': '平均故障间隔',
      'kpi.mttr': '平均修复时间', 'kpi.count': '合格 / 总数',
      'col.time': '时间', 'col.state': '状态', 'col.duration': '时长',
    },
  };
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
      if (s.t) record(metrics.e2e, wall - s.t);
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
  MES.stamp = function (el, at, freshMs, ageKey) {
    if (!el) return;
    const ms = typeof at === 'number' ? at : MES.ms(at);
    if (!Number.isFinite(ms)) { delete el.dataset.at; el.classList.remove('stale'); return; }
    el.dataset.at = String(ms);
    el.dataset.fresh = String(freshMs);
    if (ageKey) el.dataset.ageKey = ageKey;
    else delete el.dataset.ageKey;
    checkStale(el, Date.now());
  };
  function checkStale(el, now) {
    const age = now - Number(el.dataset.at);
    const stale = age > Number(el.dataset.fresh);
    el.classList.toggle('stale', stale);
    let badge = el.querySelector(':scope > .age');
    if (stale) {
      if (!badge) { badge = MES.el('span', { className: 'age' }); el.append(badge); }
      const text = MES.t(el.dataset.ageKey || 'age.ago', { age: fmt.age(age) });
      MES.setText(badge, text);
      el.title = text;
    } else if (badge) {
      badge.remove();
      el.removeAttribute('title');
    }
  }
  setInterval(() => {
    const now = Date.now();
    document.querySelectorAll('[data-at][data-fresh]').forEach((el) => checkStale(el, now));
  }, 1000);

  // ------------------------------------------------------------------ event stream
  const TYPES = ['station', 'sample', 'operation', 'vehicle', 'defect', 'alert', 'kpi', 'anomaly'];
  let liveEl = null;
  let banner = null;

  function setLive(state) {
    if (!liveEl) return;
    liveEl.className = 'live ' + state;
    liveEl.dataset.state = state;
    document.body.dataset.live = state; // CSS greys live figures while the stream is down
    MES.setText(liveEl.querySelector('.txt'), MES.t(state === 'online' ? 'live.live' : state === 'offline' ? 'live.offline' : 'live.connecting'));
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
    const types = opts.types || Object.keys(handlers).filter((k) => TYPES.includes(k));
    let lastId = opts.since === undefined || opts.since === null ? null : Number(opts.since);
    let es = null;
    let disconnectedAt = null;
    let connectingSince = Date.now();
    let retryTimer = null;
    let retryDelay = 1000;
    let everOpen = false;
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
        if (opts.onReconnect) opts.onReconnect();
      }
      everOpen = true;
    }
    function failed() {
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
    setInterval(() => {
      if (!es) return;
      if (es.readyState === EventSource.CONNECTING && Date.now() - connectingSince > 10000) connect();
      if (disconnectedAt !== null) showBanner(disconnectedAt);
      if (!everOpen && es.readyState === EventSource.CONNECTING && Date.now() - connectingSince > 3000 && disconnectedAt === null) {
        disconnectedAt = connectingSince;
        showBanner(disconnectedAt);
        setLive('offline');
      }
    }, 1000);
    window.addEventListener('pagehide', () => es && es.close());
    setLive('connecting');
    connect();
    return (MES.current = {
      lastId: () => lastId,
      connected: () => disconnectedAt === null && es && es.readyState === EventSource.OPEN,
      /** Hands the page one event as if the stream had sent it, without an id (tests, the console). */
      feed: (type, data) => onEvent({ type, data: JSON.stringify(data), lastEventId: 'synthetic' }),
      close: () => { clearTimeout(retryTimer); if (es) es.close(); },
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

  /** The id of the newest stored event (from /api/health), to resume after a snapshot; null if unknown. */
  MES.lastEventId = async function () {
    try {
      const h = await MES.api('/api/health');
      return h && Number.isFinite(Number(h.lastEventId)) ? Number(h.lastEventId) : null;
    } catch (e) {
      return null;
    }
  };

  // ------------------------------------------------------------------ page frame
  const PAGES = [
    ['index.html', 'nav.overview'], ['alerts.html', 'nav.alerts'], ['vehicle.html', 'nav.vehicles'], ['station.html', 'nav.stations'],
  ];
  /** Fills <header id="top"> with the top bar and puts the disconnection banner under it. */
  MES.header = function () {
    const host = document.getElementById('top');
    const page = location.pathname.split('/').pop() || 'index.html';
    const nav = MES.el('nav', null, PAGES.map(([href, key]) =>
      MES.el('a', { href, className: href === page ? 'current' : '', dataset: { i18n: key } })));
    liveEl = MES.el('span', { className: 'live connecting', id: 'live' }, MES.el('span', { className: 'dot' }), MES.el('span', { className: 'txt' }));
    const clock = MES.el('span', { className: 'clock', id: 'clock' });
    const langBtn = MES.el('button', { id: 'lang-toggle', type: 'button', dataset: { i18n: 'lang.switch' },
      onclick: () => MES.setLang(lang === 'en' ? 'zh' : 'en') });
    host.className = 'topbar';
    host.replaceChildren(MES.el('span', { className: 'brand', dataset: { i18n: 'app.title' } }), nav,
      MES.el('span', { className: 'spacer' }), liveEl, clock, langBtn);
    banner = MES.el('div', { id: 'conn-banner', className: 'banner hidden', role: 'alert' });
    host.after(banner);
    const tick = () => MES.setText(clock, fmt.time(new Date()));
    tick();
    setInterval(tick, 1000);
    MES.applyI18n();
    setLive('connecting');
    MES.onLang(() => {
      setLive(liveEl.dataset.state || 'connecting');
      if (banner && banner.dataset.since) showBanner(Number(banner.dataset.since));
    });
  };
})();
