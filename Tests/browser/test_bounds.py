"""A big screen stays open for months: what each page keeps must stay bounded however many events arrive.

Synthetic events are handed to the page through MES.current.feed (the same path as a stream event);
MES.kept() reports the sizes of the page's collections.
"""
from mesbrowser import js, wait


def open_live(driver, url):
    driver.get(url)
    wait(driver, 30, lambda d: js(d, "var e = document.getElementById('live'); "
                                     "return !!(e && e.dataset.state === 'online' && window.MES && MES.current && MES.kept)"),
         f"{url} never connected its event stream")


def kept(driver):
    return js(driver, "return MES.kept()")


def test_overview_bounds_alerts_defects_wip_and_delay_rings(server, driver):
    open_live(driver, server.base + "/")
    n = 12000
    js(driver, """
        const n = arguments[0], base = 1e9, now = new Date().toISOString();
        // 100 active alerts first (the oldest), then more not-active ones than the page keeps
        for (let i = 0; i < 100; i++) MES.current.feed('alert', {id: base + i, state: 'active_unacknowledged', severity: 'low',
            type: 'quality', station: 'TEST', message: 'bound test', raisedAt: now, change: 'raised'});
        for (let i = 100; i < n; i++) MES.current.feed('alert', {id: base + i, state: 'cleared_unacknowledged', severity: 'low',
            type: 'quality', station: 'TEST', message: 'bound test', raisedAt: now, change: 'cleared'});
        for (let i = 0; i < n; i++) MES.current.feed('defect', {id: base + i, status: 'open', raisedAt: now});
        for (let i = 0; i < n; i++) MES.current.feed('vehicle', {vehicleId: 'BOUND' + i, status: 'in_process'});
        """, n)
    wait(driver, 30, lambda d: js(d, "return document.querySelector('#fig-defects .value').textContent") == "10000+",
         "the open-defects figure never showed the bound as a lower bound")
    k = kept(driver)
    assert k["openDefects"] == k["max"] == 10000, k
    assert k["inProcess"] == 10000 and k["alerts"] == 10000, k
    assert k["truncated"] == {"alerts": True, "defects": True, "wip": True}, k
    assert 20000 <= k["delays"] <= 25000 and k["e2e"] <= 25000, k  # 36,000 events went through the rings
    assert js(driver, "return document.querySelector('#fig-wip .value').textContent") == "10000+"
    # the active alerts were the oldest entries, yet they are kept: the not-active ones went first
    active = js(driver, "return document.querySelector('#fig-alerts .value').textContent")
    assert active.endswith("+") and int(active[:-1]) >= 100, active
    andon = js(driver, "return Number(document.querySelector('#andon .count[data-severity=low] .n').textContent)")
    assert andon >= 100, andon
    # resolving tracked defects still counts down
    js(driver, "for (let i = 11990; i < 12000; i++) MES.current.feed('defect', {id: 1e9 + i, status: 'resolved'});")
    wait(driver, 10, lambda d: kept(d)["openDefects"] == 9990, "resolved defects were not removed")


def test_alerts_page_bounds_alerts_and_event_counts(server, driver):
    open_live(driver, server.base + "/alerts.html")
    before = kept(driver)
    js(driver, """
        const now = new Date().toISOString();
        for (let i = 0; i < 5000; i++) MES.current.feed('alert', {id: 2e9 + i, state: 'cleared', severity: 'low',
            type: 'quality', station: 'TEST', message: 'bound test', raisedAt: now, change: 'acknowledged'});""")
    k = kept(driver)
    assert k["alerts"] <= max(k["maxKept"], before["alerts"]), k  # cleared ones beyond 3,000 forgotten
    assert k["eventsSeen"] <= k["maxKept"], k
    js(driver, """
        const now = new Date().toISOString();
        for (let i = 0; i < 12000; i++) MES.current.feed('alert', {id: 3e9 + i, state: 'cleared_unacknowledged', severity: 'low',
            type: 'quality', station: 'TEST', message: 'bound test', raisedAt: now, change: 'cleared'});""")
    wait(driver, 30, lambda d: kept(d)["changed"] == 0, "the alerts page never rendered the fed alerts")
    k = kept(driver)
    assert k["alerts"] == k["maxAlerts"] == 10000, k
    assert k["eventsSeen"] == k["maxKept"], k
    assert k["rows"] <= 500, k


def test_station_page_bounds_trend_points(server, driver):
    status, stations = server.get("/api/stations")
    assert status == 200 and stations, (status, stations)
    station = signal = None
    for s in stations:
        status, detail = server.get("/api/stations/" + s["id"])
        names = [g["name"] for g in (detail or {}).get("signals", []) if g.get("role") == "measurement"]
        if names:
            station, signal = s["id"], names[0]
            break
    assert station, "no station with a measurement signal"
    open_live(driver, server.base + "/station.html?id=" + station)
    wait(driver, 30, lambda d: signal in (kept(d)["points"] or {}), "the station page never made a chart for " + signal)
    # stamped an hour ahead (a PLC clock ahead of ours): age alone would never drop them
    js(driver, """
        const [station, signal] = arguments, t0 = Date.now() + 3600e3;
        for (let i = 0; i < 45000; i++) MES.current.feed('sample', {station, t: new Date(t0 + i).toISOString(), values: {[signal]: 1 + i % 7}, bad: []});
        """, station, signal)
    k = kept(driver)
    assert k["points"][signal] == k["maxPoints"], k
