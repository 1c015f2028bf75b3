"""Browser tests of the dashboards against a real mes-server (default plant, simulated stations).

Every wait is an explicit WebDriverWait with a generous timeout; nothing asserts after a fixed sleep.
"""
import time

import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By

import mesbrowser
from mesbrowser import js, wait

STATIONS = 8  # seven on the route and the utilities station UTIL-01
UNACK = ("active_unacknowledged", "cleared_unacknowledged")


def wait_live(driver, timeout=30):
    wait(driver, timeout, lambda d: js(d, "var e = document.getElementById('live'); return e && e.dataset.state") == "online",
         "the live indicator never showed the event stream as connected")


def tile_values(driver):
    return js(driver, "return Array.from(document.querySelectorAll('.tile dd.meas-value')).map(e => e.textContent)")


def wait_tiles(driver, timeout=30):
    wait(driver, timeout, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".tile")) == STATIONS,
         f"the overview never showed {STATIONS} station tiles")


def click_row_button(driver, row_selector, button_selector, timeout=15):
    """Clicks `button_selector` inside the first row matching `row_selector`; returns the row's
    (data-id, data-state). Retries when a live update replaced the row between finding and clicking."""
    def attempt(d):
        try:
            row = d.find_element(By.CSS_SELECTOR, row_selector)
            found = (row.get_attribute("data-id"), row.get_attribute("data-state"))
            row.find_element(By.CSS_SELECTOR, button_selector).click()
            return found
        except (StaleElementReferenceException, NoSuchElementException):
            return False
    return wait(driver, timeout, attempt, f"could not click {button_selector} in {row_selector}")


def click(driver, element_id, timeout=10):
    """Clicks the element with `element_id`, finding it again if a live update replaced it."""
    def attempt(d):
        try:
            d.find_element(By.ID, element_id).click()
            return True
        except StaleElementReferenceException:
            return False
    wait(driver, timeout, attempt, f"could not click #{element_id}")


def raise_defect(server, code="BROWSER-TEST"):
    """Raises a defect on the newest vehicle through the API (as li.wei, role quality); returns it."""
    deadline = time.monotonic() + 90  # the simulated line releases its first vehicle at start
    status, vehicles = server.get("/api/vehicles?limit=1")
    while not (status == 200 and vehicles) and time.monotonic() < deadline:
        time.sleep(1)
        status, vehicles = server.get("/api/vehicles?limit=1")
    assert status == 200 and vehicles, (status, vehicles)
    v = vehicles[0]
    status, defect = mesbrowser.http_json(server.base + "/api/defects", "POST", {
        "vehicleId": v["vehicleId"], "station": v.get("currentStation") or "WELD-01", "code": code,
        "description": "raised by the browser tests", "severity": "low"}, token="demo-quality-token")
    assert status == 201, (status, defect)
    return defect


def banner_visible(driver):
    return js(driver, "var b = document.getElementById('conn-banner'); return !!b && !b.classList.contains('hidden') && b.offsetHeight > 0")


PAGES = [
    ("overview", "/", lambda d: len(d.find_elements(By.CSS_SELECTOR, ".tile")) == STATIONS
     and len(d.find_elements(By.CSS_SELECTOR, ".process")) == 6),  # the route's five and utilities
    ("alerts", "/alerts.html", lambda d: len(d.find_elements(By.CSS_SELECTOR, "#alerts-body tr")) > 0
     and len(d.find_elements(By.CSS_SELECTOR, "#tabs button")) == 4),
    ("vehicle", "/vehicle.html", lambda d: d.find_element(By.ID, "vehicle-input").is_displayed()),
    ("station", "/station.html?id=WELD-01", lambda d: js(d, """
        var c = document.querySelectorAll('#charts canvas.trend');
        return c.length === 4 && Array.from(c).some(x => Number(x.dataset.points) > 0)""")),  # 3 measurements and robotMotorTemp
    ("station-list", "/station.html", lambda d: len(d.find_elements(By.CSS_SELECTOR, "#station-list a.chip")) == STATIONS),
    # no shift has ended on a fresh simulated plant: the shift report page shows the current one
    ("shift", "/shift.html", lambda d: d.find_element(By.ID, "shift-title").get_attribute("data-shift")
     and len(d.find_elements(By.CSS_SELECTOR, "#shift-stations-body tr[data-station]")) == STATIONS),
]


@pytest.mark.parametrize("name,path,ready", PAGES, ids=[p[0] for p in PAGES])
def test_page_loads_live_without_console_errors(server, driver, name, path, ready):
    driver.get(server.base + path)
    wait(driver, 40, ready, f"{name} page never became ready")
    wait_live(driver)
    # The station list follows only station events and the alerts page only alert events; on a
    # healthy plant neither may come within a minute. The alerts page's live path is asserted in
    # test_alert_acknowledged_and_shelved_through_page (the ack's own event must reach the page).
    if name == "vehicle":
        # vehicle events come once a takt (~60 s); a defect raised now is a vehicle-page event at once
        raise_defect(server)
    if name not in ("station-list", "alerts"):
        wait(driver, 30, lambda d: js(d, "return MES.metrics.applied") > 0, f"{name} page applied no live event")
    mesbrowser.screenshot(driver, f"{name}.png")
    assert not banner_visible(driver)
    assert mesbrowser.severe_logs(driver) == []


def test_language_switch_is_remembered(server, driver):
    driver.get(server.base + "/")
    wait_tiles(driver)
    js(driver, "localStorage.setItem('mes.lang', 'en')")
    driver.refresh()
    wait_tiles(driver)
    assert driver.find_element(By.CSS_SELECTOR, ".topbar nav a").text == "Line overview"
    driver.find_element(By.ID, "lang-toggle").click()
    wait(driver, 10, lambda d: d.find_element(By.CSS_SELECTOR, ".topbar nav a").text == "产线总览", "nav did not switch to Chinese")
    wait(driver, 10, lambda d: d.find_element(By.CSS_SELECTOR, "#fig-oee .label").text == "OEE"
         and d.find_element(By.CSS_SELECTOR, "#fig-wip .label").text == "在制品", "figures did not switch to Chinese")
    assert driver.find_element(By.CSS_SELECTOR, '.process[data-process="welding"] h2').text == "焊装"
    driver.refresh()  # remembered per browser
    wait_tiles(driver)
    wait(driver, 10, lambda d: d.find_element(By.CSS_SELECTOR, ".topbar nav a").text == "产线总览", "Chinese not remembered after reload")
    assert js(driver, "return document.documentElement.lang") == "zh-CN"
    wait_live(driver)
    mesbrowser.screenshot(driver, "overview-zh.png")
    driver.find_element(By.ID, "lang-toggle").click()
    wait(driver, 10, lambda d: d.find_element(By.CSS_SELECTOR, ".topbar nav a").text == "Line overview", "did not switch back")
    assert mesbrowser.severe_logs(driver) == []


def test_overview_tiles_update_live(server, driver):
    driver.get(server.base + "/")
    wait_tiles(driver)
    wait_live(driver)
    wait(driver, 40, lambda d: js(d, "return Array.from(document.querySelectorAll('.tile')).every(t => t.dataset.connection === 'online')"),
         "not every station tile turned online")
    first = tile_values(driver)
    wait(driver, 15, lambda d: tile_values(d) != first, f"no tile measurement changed from {first}")
    # every tile shows a state colour and a measurement with its unit
    bands = js(driver, "return Array.from(document.querySelectorAll('.tile .state-band')).map(b => b.className)")
    assert all("st-" in b for b in bands), bands
    assert all(v.strip() not in ("", "—") for v in tile_values(driver)), tile_values(driver)
    # line figures are filled in from the API
    assert driver.find_element(By.CSS_SELECTOR, "#fig-wip .value").text.isdigit()
    assert driver.find_element(By.CSS_SELECTOR, "#fig-alerts .value").text.isdigit()
    assert mesbrowser.severe_logs(driver) == []


def chart_points(driver, signal):
    return int(js(driver, "var c = document.querySelector('canvas[data-signal=\"' + arguments[0] + '\"]'); return c ? Number(c.dataset.points || 0) : -1", signal))


def test_station_trend_grows_live(server, driver):
    # PAINT-01 (OPC UA, subscription): history and spec limits; its values change only at cycle ends.
    driver.get(server.base + "/station.html?id=PAINT-01")
    wait(driver, 40, lambda d: chart_points(d, "filmThickness") > 0, "the filmThickness trend never got points")
    wait_live(driver)
    assert driver.find_element(By.CSS_SELECTOR, "#chart-filmThickness h3").text.startswith("filmThickness [90")
    assert len(driver.find_elements(By.CSS_SELECTOR, "#state-table tbody tr")) >= 1
    assert mesbrowser.severe_logs(driver) == []
    # ASSY-01 (OPC UA, polled every 100 ms): every poll's sample adds a point to the torque trend.
    driver.get(server.base + "/station.html?id=ASSY-01")
    wait(driver, 40, lambda d: chart_points(d, "torque") > 0, "the torque trend never got points")
    wait_live(driver)
    before = chart_points(driver, "torque")
    wait(driver, 20, lambda d: chart_points(d, "torque") >= before + 10, "the torque trend did not grow with live samples")
    assert driver.find_element(By.CSS_SELECTOR, "#chart-torque h3").text.startswith("torque [")
    mesbrowser.screenshot(driver, "station-assy.png")
    assert mesbrowser.severe_logs(driver) == []


def test_alert_acknowledged_and_shelved_through_page(offline_server, driver):
    """Every PLC of this plant is unreachable, so each station raises a `connection` alert within seconds."""
    srv = offline_server
    driver.get(srv.base + "/alerts.html#unack")
    wait_live(driver)
    wait(driver, 60, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#alerts-body tr button.ack")) >= 2,
         "no two unacknowledged alerts appeared")
    alert_id, state = click_row_button(driver, "#alerts-body tr[data-id]", "button.ack")
    assert state in UNACK
    events_before = js(driver, "return MES.alertEvents(arguments[0])", alert_id)
    wait(driver, 10, lambda d: d.find_element(By.ID, "action-dialog").is_displayed(), "the acknowledge dialog did not open")
    driver.find_element(By.ID, "action-comment").send_keys("checked the PLC cable")
    driver.find_element(By.ID, "action-ok").click()
    # no token yet in this browser session: the page asks once
    wait(driver, 10, lambda d: d.find_element(By.ID, "token-input").is_displayed(), "the token dialog did not open")
    driver.find_element(By.ID, "token-input").send_keys("demo-quality-token")
    driver.find_element(By.ID, "token-ok").click()
    # the alert leaves the unacknowledged view; in the recent view it shows who acknowledged it
    wait(driver, 20, lambda d: not d.find_elements(By.CSS_SELECTOR, f"#alert-{alert_id}"), "the acknowledged alert stayed in the unacknowledged view")
    # the server's `acknowledged` event reached the page over the live stream (not only the POST answer)
    wait(driver, 20, lambda d: js(d, "return MES.alertEvents(arguments[0])", alert_id) > events_before,
         "no live event of the acknowledged alert reached the page")
    click(driver, "tab-recent")
    wait(driver, 10, lambda d: d.find_element(By.ID, f"alert-{alert_id}").get_attribute("data-state") not in UNACK,
         "the alert's new state did not appear")
    handled = driver.find_element(By.CSS_SELECTOR, f"#alert-{alert_id} td.handled").text
    assert "li.wei" in handled and "checked the PLC cable" in handled, handled
    assert js(driver, "return sessionStorage.getItem('mes.token')") == "demo-quality-token"
    status, alerts = srv.get("/api/alerts?state=all&limit=1000")
    server_alert = next(a for a in alerts if str(a["id"]) == alert_id)
    assert server_alert["acknowledgedBy"] == "li.wei" and server_alert["comment"] == "checked the PLC cable"

    # shelve another one: the token is already known, no second prompt
    click(driver, "tab-unack")
    wait(driver, 10, lambda d: d.find_elements(By.CSS_SELECTOR, "#alerts-body tr button.shelve"), "no alert left to shelve")
    shelve_id, _ = click_row_button(driver, "#alerts-body tr[data-id]", "button.shelve")
    wait(driver, 10, lambda d: d.find_element(By.ID, "action-minutes").is_displayed(), "the shelve dialog did not open")
    driver.find_element(By.ID, "action-comment").send_keys("maintenance on the cell")
    driver.find_element(By.ID, "action-ok").click()
    wait(driver, 10, lambda d: not d.find_element(By.ID, "action-dialog").is_displayed(), "the shelve dialog did not close")
    click(driver, "tab-shelved")
    wait(driver, 20, lambda d: d.find_elements(By.CSS_SELECTOR, f'#alert-{shelve_id}[data-state="shelved"]'),
         "the shelved alert did not appear in the shelved view")
    mesbrowser.screenshot(driver, "alerts-after-ack.png")
    assert mesbrowser.severe_logs(driver) == []

    # the big screen of this plant: offline tiles and the andon band
    driver.get(srv.base + "/")
    wait_tiles(driver)
    wait(driver, 20, lambda d: js(d, "return document.querySelectorAll('.tile.conn-offline').length") == STATIONS, "tiles not shown offline")
    wait(driver, 20, lambda d: d.find_elements(By.CSS_SELECTOR, "#andon-list .item"), "the andon band shows no active alert")
    wait(driver, 20, lambda d: js(d, "return document.querySelectorAll('.tile.stale').length") == STATIONS, "offline tiles not shown stale")
    mesbrowser.screenshot(driver, "overview-offline-plant.png")
    assert mesbrowser.severe_logs(driver) == []


def find_vehicle_with_operations(server, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, vehicles = server.get("/api/vehicles?limit=50")
        for v in (vehicles or []) if status == 200 else []:
            s, detail = server.get("/api/vehicles/" + v["vehicleId"])
            if s == 200 and [op for op in detail.get("operations", []) if op.get("completedAt")]:
                return detail
        time.sleep(2)
    raise AssertionError("no vehicle completed an operation in time")


def test_vehicle_search_shows_timeline(server, driver):
    vehicle = find_vehicle_with_operations(server)
    vid = vehicle["vehicleId"]
    driver.get(server.base + "/vehicle.html")
    wait_live(driver)
    wait(driver, 20, lambda d: d.find_elements(By.CSS_SELECTOR, "#recent a.chip"), "no recent vehicle listed")
    box = driver.find_element(By.ID, "vehicle-input")
    box.clear()
    box.send_keys(vid)
    driver.find_element(By.CSS_SELECTOR, "#vehicle-form button[type=submit]").click()
    wait(driver, 20, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#timeline li.op")) >= len(vehicle["operations"]),
         "the timeline did not show the vehicle's operations")
    assert driver.find_element(By.CSS_SELECTOR, "#vehicle-view").get_attribute("data-vehicle") == vid
    first = vehicle["operations"][0]
    stations = [e.get_attribute("data-station") for e in driver.find_elements(By.CSS_SELECTOR, "#timeline li.op")]
    assert first["station"] in stations
    if any(op.get("measurements") for op in vehicle["operations"]):
        assert driver.find_elements(By.CSS_SELECTOR, "#timeline table.measurements td")
    assert "id=" in driver.current_url
    mesbrowser.screenshot(driver, "vehicle-timeline.png")
    lots = [lot for op in vehicle["operations"] for lot in op.get("lots", [])]
    if lots:
        driver.find_element(By.CSS_SELECTOR, "#timeline a.chip.lot").click()
        wait(driver, 20, lambda d: d.find_elements(By.CSS_SELECTOR, f'#lot-vehicles a.chip'), "lot search showed no vehicles")
        chips = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#lot-vehicles a.chip")]
        assert vid in chips, chips
    assert mesbrowser.severe_logs(driver) == []


def test_recovers_after_server_restart(server, driver):
    """Runs last (it restarts the session's server): banner while down, then resume with nothing missed."""
    driver.get(server.base + "/")
    wait_tiles(driver)
    wait_live(driver)
    wait(driver, 30, lambda d: js(d, "return MES.metrics.applied") > 10, "no live events before the restart")
    js(driver, "window.__sameDocument = 42")
    server.stop()
    wait(driver, 20, banner_visible, "no disconnected banner while the server was down")
    assert "since" in driver.find_element(By.ID, "conn-banner").text
    wait(driver, 20, lambda d: js(d, "return document.getElementById('live').dataset.state") == "offline", "live indicator not offline")
    last_before = js(driver, "return MES.current.lastId()")
    mesbrowser.screenshot(driver, "overview-disconnected.png")
    server.start()
    wait(driver, 60, lambda d: not banner_visible(d), "the banner did not go away after the server came back")
    wait_live(driver)
    assert js(driver, "return window.__sameDocument") == 42, "the page was reloaded"
    assert js(driver, "return MES.metrics.reconnects") >= 1
    values = tile_values(driver)
    wait(driver, 40, lambda d: tile_values(d) != values, "tile values did not move again after the reconnect")
    wait(driver, 20, lambda d: js(d, "return MES.current.lastId()") > last_before, "no event after the restart")
    assert js(driver, "return MES.metrics.gaps") == 0, "event ids were skipped across the reconnect"
    # Connection refusals while the server was down are expected console errors; nothing else is.
    errors = mesbrowser.severe_logs(driver, allow=("/api/events", "ERR_CONNECTION_REFUSED", "/api/"))
    assert errors == []
