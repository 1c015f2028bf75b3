"""Pages follow the pipeline's clock in replay: a recording of another day replayed by mes-server shows
its data in the station page's charts (not "no data in window"), its stations as replayed (not
connecting), and its figures as current on the recording's clock."""
import os

import pytest
from selenium.webdriver.common.by import By

import mesbrowser
from mesbrowser import js, wait
from test_dashboards import wait_live

RECORDING = os.path.join(mesbrowser.REPO, "Stations", "scenarios", "golden", "normal-shift-3min.jsonl")
STATIONS = 8  # the default plant: seven on the route and UTIL-01


@pytest.fixture(scope="module")
def replay_server():
    # 3 recorded minutes at 5x: still running while the pages load, then the clock stops at its end
    srv = mesbrowser.MesServer(simulate=False, extra_args=["--replay", RECORDING, "--speed", "5"])
    srv.start()
    yield srv
    srv.cleanup()


def recording_span():
    first = last = None
    with open(RECORDING) as f:
        for line in f:
            t = line.split('"t":"', 1)[1].split('"', 1)[0]
            first = first or t
            last = t
    return first, last


def test_health_tells_mode_and_recording_clock(replay_server):
    first, last = recording_span()
    status, health = replay_server.get("/api/health")
    assert status == 200 and health["mode"] == "replay"
    # the server keeps replayed stations `connecting` (the golden events fix it); pages map it from `mode`
    assert health["stations"]["connecting"] == STATIONS and health["stations"]["online"] == 0
    wait(None, 30, lambda _: (replay_server.get("/api/health")[1] or {}).get("clock") is not None, "the replay never set the clock")
    clock = replay_server.get("/api/health")[1]["clock"]
    assert first <= clock <= last, (first, clock, last)
    status, meta = replay_server.get("/api/meta")
    assert status == 200 and meta["mode"] == "replay"
    assert [(s["name"], s["code"]) for s in meta["machineStates"] if s["name"] in ("idle", "running")] == [("running", 1), ("idle", 0)]


def test_overview_shows_stations_replayed_on_the_recordings_clock(replay_server, driver):
    first, last = recording_span()
    driver.get(replay_server.base + "/")
    wait(driver, 30, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".tile")) == STATIONS, "no tiles")
    wait_live(driver)
    wait(driver, 30, lambda d: js(d, "return Array.from(document.querySelectorAll('.tile')).every(t => t.dataset.connection === 'replayed')"),
         "not every tile shows its station as replayed")
    js(driver, "MES.setLang('en')")
    texts = js(driver, "return Array.from(document.querySelectorAll('.tile .conn-txt')).map(e => e.textContent)")
    assert texts == ["replayed"] * STATIONS, texts
    assert js(driver, "return document.querySelector('#live .txt').textContent") == "Replay"
    # the page's clock is the recording's, not the wall clock
    now = js(driver, "return new Date(MES.now()).toISOString()")
    assert first <= now <= last, (first, now, last)
    # a station that sends every poll is current on that clock: its tile is not greyed as stale
    wait(driver, 30, lambda d: js(d, "var t = document.getElementById('tile-WELD-01'); return t.dataset.at && !t.classList.contains('stale')"),
         "WELD-01's tile is stale on the recording's clock")
    assert "replay" in driver.find_element(By.ID, "clock").get_attribute("class")
    js(driver, "MES.setLang('zh')")
    wait(driver, 10, lambda d: js(d, "return document.querySelector('.tile .conn-txt').textContent") == "回放", "no Chinese for replayed")
    mesbrowser.screenshot(driver, "overview-replay-zh.png")
    js(driver, "MES.setLang('en')")
    assert mesbrowser.severe_logs(driver) == []


def test_station_charts_show_the_recording(replay_server, driver):
    driver.get(replay_server.base + "/station.html?id=WELD-01")
    wait(driver, 40, lambda d: js(d, """
        var c = document.querySelectorAll('#charts canvas.trend');
        return c.length === 4 && Array.from(c).every(x => Number(x.dataset.points) > 0)"""),
         "the station's charts show no data in their window during a replay")
    wait_live(driver)
    facts = driver.find_element(By.ID, "station-facts").text
    assert "replayed" in facts and "connecting" not in facts, facts
    # the state strip learned the recording's states (named from /api/meta and the signal's map)
    wait(driver, 20, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#state-table tbody tr")) > 0, "no state history")
    badges = js(driver, "return Array.from(document.querySelectorAll('#state-table .badge')).map(b => b.className)")
    assert all("st-unknown" not in b for b in badges), badges
    mesbrowser.screenshot(driver, "station-replay.png")
    assert mesbrowser.severe_logs(driver) == []
