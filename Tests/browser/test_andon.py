"""The andon board on the overview and the downtime reason picker on the station page
(README "Andon and downtime"), in both languages, against a real mes-server."""
import json
import os
import re

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

import mesbrowser
from mesbrowser import js, wait
from test_dashboards import wait_live

OPERATOR = "demo-operator-token"


def post(server, path, body):
    return mesbrowser.http_json(server.base + path, method="POST", body=body, token=OPERATOR)


def card(driver, call_id):
    return js(driver, """
        var c = document.querySelector('#andon-board .andon-call[data-call="' + arguments[0] + '"]');
        if (!c) return null;
        var st = getComputedStyle(c), station = c.querySelector('.call-station');
        return {state: c.dataset.state, kind: c.querySelector('.call-kind').textContent, time: c.querySelector('.call-time').textContent,
                who: c.querySelector('.call-state').textContent, animation: st.animationName,
                stationPx: parseFloat(getComputedStyle(station).fontSize), station: station.textContent,
                top: c.getBoundingClientRect().top, bottom: c.getBoundingClientRect().bottom};""", str(call_id))


def test_andon_board_shows_open_calls_large_flashing_and_timed(server, driver):
    mesbrowser.set_viewport(driver, 1920, 1080)
    driver.get(server.base + "/")
    wait_live(driver)
    js(driver, "MES.setLang('en')")
    assert js(driver, "return document.getElementById('andon-board').classList.contains('hidden')"), "no calls: no board"
    status, call = post(server, "/api/andon", {"station": "WELD-02", "kind": "maintenance", "comment": "browser test"})
    assert status == 201, call
    cid = call["id"]
    try:
        wait(driver, 15, lambda d: card(d, cid) is not None, "the call never reached the andon board")
        c = card(driver, cid)
        assert c["station"] == "WELD-02" and c["state"] == "open" and c["kind"] == "Maintenance", c
        assert js(driver, "return document.getElementById('andon-board').textContent").count("WELD-02") == 1
        assert "null" not in js(driver, "return document.getElementById('andon-board').textContent")
        assert c["stationPx"] >= 40, f"the station is read from 5 m: {c['stationPx']}px"
        assert c["animation"] == "andon-flash", "an unanswered call flashes"
        assert re.fullmatch(r"\d\d:\d\d", c["time"]), c
        # the waiting time runs on the page's clock
        first = c["time"]
        wait(driver, 10, lambda d: card(d, cid)["time"] != first, "the waiting time does not move")
        assert js(driver, "return document.getElementById('tile-WELD-02').dataset.andon") == "open"
        assert js(driver, "return document.getElementById('tile-WELD-02').dataset.andonKind") == "maintenance"
        # the board sits above the stations and the page still fits the screen
        assert c["bottom"] <= js(driver, "return document.getElementById('route').getBoundingClientRect().top") + 0.5
        assert mesbrowser.overview_overflows(driver) == []
        mesbrowser.screenshot(driver, "andon-board-open-en.png")

        js(driver, "MES.setLang('zh')")
        wait(driver, 10, lambda d: card(d, cid)["kind"] == "维修", "no Chinese kind on the board")
        assert "等待响应" in card(driver, cid)["who"]
        mesbrowser.screenshot(driver, "andon-board-open-zh.png")
        js(driver, "MES.setLang('en')")

        status, acked = post(server, f"/api/andon/{cid}/ack", {})
        assert status == 200, acked
        wait(driver, 15, lambda d: card(d, cid)["state"] == "acknowledged", "the response never reached the board")
        c = card(driver, cid)
        assert c["animation"] == "none", "an answered call is steady"
        assert "wang.fang" in c["who"], c
        assert js(driver, "return document.getElementById('tile-WELD-02').dataset.andon") == "acknowledged"
    finally:
        post(server, f"/api/andon/{cid}/close", {"comment": "browser test done"})
    wait(driver, 15, lambda d: card(d, cid) is None, "the closed call stayed on the board")
    assert js(driver, "return document.getElementById('andon-board').classList.contains('hidden')")
    assert js(driver, "return document.getElementById('tile-WELD-02').dataset.andon") is None
    assert mesbrowser.severe_logs(driver) == []


# A short recording: WELD-02 runs, is in fault 217 for 30 s, runs, then is blocked until the end.
T0 = 1795300000  # 2026-11-22T06:06:40Z


def sample(t, station, signal, value):
    from datetime import datetime, timezone
    stamp = datetime.fromtimestamp(T0 + t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return json.dumps({"t": stamp, "station": station, "signal": signal, "value": value}, separators=(",", ":"))


@pytest.fixture(scope="module")
def downtime_server():
    srv = mesbrowser.MesServer(simulate=False)
    lines = []
    for t in range(0, 80):
        state, code = (2, 217) if 10 <= t < 40 else (3, 0) if t >= 50 else (1, 0)
        lines.append(sample(t, "WELD-02", "state", state))
        lines.append(sample(t, "WELD-02", "faultCode", code))
    recording = os.path.join(srv.workdir, "downtime.jsonl")
    with open(recording, "w") as f:
        f.write("\n".join(lines) + "\n")
    srv.extra_args = ["--replay", recording, "--speed", "max"]
    srv.start()
    wait(None, 30, lambda _: len(srv.get("/api/downtime?station=WELD-02")[1] or []) == 2, "the replay made no downtime stretches")
    yield srv
    srv.cleanup()


def rows(driver):
    return js(driver, """return Array.from(document.querySelectorAll('#dt-table tbody tr[data-id]')).map(r => ({
        id: r.dataset.id, state: r.dataset.state, reason: r.dataset.reason, going: r.classList.contains('going'),
        text: r.querySelector('td.reason').textContent, by: r.children[5].textContent}));""")


def choose(driver, stretch_id, code, comment=None):
    row = driver.find_element(By.ID, f"dt-{stretch_id}")
    Select(row.find_element(By.CSS_SELECTOR, "select.dt-select")).select_by_value(code)
    if comment:
        row.find_element(By.CSS_SELECTOR, "input.dt-comment").send_keys(comment)
    row.find_element(By.CSS_SELECTOR, "button.dt-save").click()


def test_reason_picker_sets_and_corrects_reasons_asking_the_token_once(downtime_server, driver):
    driver.get(downtime_server.base + "/station.html?id=WELD-02")
    wait_live(driver)
    js(driver, "MES.setLang('en')")
    wait(driver, 20, lambda d: len(rows(d)) == 2, "the station page never listed the two downtime stretches")
    blocked, fault = rows(driver)
    assert fault["state"] == "fault" and fault["reason"] == "217" and "Electrode tip dresser fault" in fault["text"], fault
    assert fault["by"] == "automatic" and not fault["going"], fault
    assert blocked["state"] == "blocked" and blocked["reason"] == "blocked" and blocked["going"], blocked
    options = js(driver, "return Array.from(document.querySelectorAll('#dt-%s select option')).map(o => o.value)" % fault["id"])
    assert "ops-break" in options and "217" in options, options
    js(driver, "document.getElementById('downtime-panel').scrollIntoView()")
    mesbrowser.screenshot(driver, "downtime-picker-en.png")

    # The first save asks for the operator's token ...
    choose(driver, fault["id"], "ops-break", "tip dresser was fine")
    wait(driver, 10, lambda d: js(d, "var g = document.getElementById('token-dialog'); return !!(g && g.open)"), "no token dialog")
    driver.find_element(By.ID, "token-input").send_keys(OPERATOR)
    driver.find_element(By.ID, "token-ok").click()
    wait(driver, 15, lambda d: next(r for r in rows(d) if r["id"] == fault["id"])["reason"] == "ops-break", "the reason was not saved")
    saved = next(r for r in rows(driver) if r["id"] == fault["id"])
    assert saved["by"] == "wang.fang" and "Operator away" in saved["text"] and "tip dresser was fine" in saved["text"], saved
    assert "Reason saved" in driver.find_element(By.ID, "dt-status").text
    # ... and not again in this session: the next one goes straight through.
    choose(driver, blocked["id"], "quality-hold")
    wait(driver, 15, lambda d: next(r for r in rows(d) if r["id"] == blocked["id"])["reason"] == "quality-hold", "the correction was not saved")
    assert not js(driver, "var g = document.getElementById('token-dialog'); return !!(g && g.open)")
    status, stored = downtime_server.get("/api/downtime?station=WELD-02")
    assert status == 200 and sorted(d["reason"]["code"] for d in stored) == ["ops-break", "quality-hold"], stored
    assert all(d["reasonBy"] == "wang.fang" for d in stored), stored

    js(driver, "MES.setLang('zh')")
    wait(driver, 10, lambda d: "操作员离岗" in next(r for r in rows(d) if r["id"] == fault["id"])["text"], "no Chinese reason text")
    assert driver.find_element(By.CSS_SELECTOR, "#downtime-panel h2").text == "停机与原因"
    js(driver, "document.getElementById('downtime-panel').scrollIntoView()")
    mesbrowser.screenshot(driver, "downtime-picker-zh.png")
    js(driver, "MES.setLang('en')")
    assert mesbrowser.severe_logs(driver) == []


def andon_rows(driver):
    return js(driver, """return Array.from(document.querySelectorAll('#andon-table tbody tr[data-id]')).map(r => ({
        id: r.dataset.id, state: r.dataset.state, kind: r.dataset.kind, text: r.textContent}));""")


def test_station_page_calls_answers_and_closes_andon(server, driver):
    driver.get(server.base + "/station.html?id=ASSY-01")
    wait_live(driver)
    js(driver, "MES.setLang('en')")
    wait(driver, 20, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#andon-kinds button")) == 4, "no andon buttons")
    assert andon_rows(driver) == []
    driver.find_element(By.ID, "andon-comment").send_keys("out of bolts")
    driver.find_element(By.CSS_SELECTOR, "#andon-kinds button[data-kind='material']").click()
    wait(driver, 10, lambda d: js(d, "var g = document.getElementById('token-dialog'); return !!(g && g.open)"), "no token dialog")
    driver.find_element(By.ID, "token-input").send_keys(OPERATOR)
    driver.find_element(By.ID, "token-ok").click()
    wait(driver, 15, lambda d: len(andon_rows(d)) == 1, "the call never showed on the station page")
    row = andon_rows(driver)[0]
    try:
        assert row["state"] == "open" and row["kind"] == "material" and "out of bolts" in row["text"], row
        status, listed = server.get("/api/andon?station=ASSY-01&state=open")
        assert status == 200 and [c["id"] for c in listed] == [int(row["id"])] and listed[0]["openedBy"] == "wang.fang", listed
        js(driver, "MES.setLang('zh')")
        wait(driver, 10, lambda d: "物料" in andon_rows(d)[0]["text"], "no Chinese on the station's andon panel")
        js(driver, "MES.setLang('en')")
        driver.find_element(By.CSS_SELECTOR, f"#andon-{row['id']} button.andon-ack").click()
        wait(driver, 15, lambda d: andon_rows(d)[0]["state"] == "acknowledged", "the answer never showed")
        assert "wang.fang" in andon_rows(driver)[0]["text"]
        assert not js(driver, "var g = document.getElementById('token-dialog'); return !!(g && g.open)"), "the token is asked once"
        driver.find_element(By.CSS_SELECTOR, f"#andon-{row['id']} button.andon-close").click()
        wait(driver, 15, lambda d: andon_rows(d) == [], "the closed call stayed")
        status, call = server.get("/api/andon?station=ASSY-01&state=closed")
        assert call[0]["id"] == int(row["id"]) and call[0]["closedBy"] == "wang.fang" and call[0]["responseS"] is not None, call
    finally:
        post(server, f"/api/andon/{row['id']}/close", {})
    assert mesbrowser.severe_logs(driver) == []
