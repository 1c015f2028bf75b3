/* Fills every overview tile with its widest content (a full VIN, long figures, an anomaly, the longest
 * state name; every other station offline with its age badge) through MES.current.feed. For
 * test_layout.py; run with execute_async_script. */
const done = arguments[arguments.length - 1];
(async () => {
  const tiles = Array.from(document.querySelectorAll('.tile'));
  let i = 0;
  for (const tile of tiles) {
    const id = tile.dataset.station;
    const d = await MES.api('/api/stations/' + encodeURIComponent(id));
    const values = {};
    let firstMeasurement = null;
    for (const s of d.signals) {
      if (s.role === 'vehicleId') values[s.name] = 'WVWZZZ1JZ3W' + String(100000 + i);
      else if (s.role === 'measurement') { values[s.name] = 12345.678; firstMeasurement = firstMeasurement || s.name; }
      else if (s.role === 'state') values[s.name] = 6;
    }
    const now = MES.now();
    const iso = (ms) => new Date(ms).toISOString();
    MES.current.feed('sample', { station: id, t: iso(now), values, bad: [] });
    MES.current.feed('operation', { station: id, startedAt: iso(now - 123400), completedAt: iso(now) });
    MES.current.feed('kpi', { id, scope: 'station', oee: 0.873, t: iso(now) });
    MES.current.feed('anomaly', { station: id, signal: firstMeasurement || 'signal', score: 0.93 });
    MES.current.feed('station', { station: id, connection: i % 2 ? 'offline' : 'online', state: 'maintenance', t: iso(now) });
    i++;
  }
  done(true);
})();
