"""Browser tests of the shift report page (README "Shift calendar and shift history"): a server
replays the default plant across the end of shift A (14:00 Asia/Shanghai) in two parts, with a
handover note written in shift A between them; the page shows shift A (the previous shift) per
station and for the line, its note, takes a new note with an operator token asked once, switches
language, prints black on white, and links CSV/JSON and the printable page."""
import base64
import json
import os
import re

import pytest
from selenium.webdriver.common.by import By

import mesbrowser
from mesbrowser import js, wait

# Every station of the default plant has a row (the utilities station UTIL-01 too).
with open(mesbrowser.PLANT) as _f:
    STATIONS = len(json.load(_f)["stations"])
NOTE_A = "Clamp 3 sticks now and then · 夹具 3 偶尔卡滞"


def write_recording(path, lines):
    with open(path, "w") as f:
        for t, state in lines:
            for signal, value in (("state", state), ("faultCode", 0)):
                f.write(json.dumps({"t": t, "station": "WELD-01", "signal": signal, "value": value}) + "\n")
    return path


def wait_replayed(srv, last):
    def done(_):
        status, health = srv.get("/api/health")
        return status == 200 and (health.get("replay") or {}).get("finished") and health.get("clock", "").startswith(last)
    wait(None, 60, done, f"the replay never reached {last}")


@pytest.fixture(scope="module")
def shift_server():
    srv = mesbrowser.MesServer(simulate=False)
    # Shift A of 2026-11-23 runs 06:00–14:00 local = 2026-11-22T22:00Z–2026-11-23T06:00Z.
    first = write_recording(os.path.join(srv.workdir, "part1.jsonl"), [
        ("2026-11-23T05:50:00Z", 1), ("2026-11-23T05:55:00Z", 0), ("2026-11-23T05:56:00Z", 1)])
    second = write_recording(os.path.join(srv.workdir, "part2.jsonl"), [
        ("2026-11-23T05:58:00Z", 1), ("2026-11-23T06:00:05Z", 1), ("2026-11-23T06:00:06Z", 1)])
    srv.extra_args = ["--replay", first, "--speed", "max"]
    srv.start()
    wait_replayed(srv, "2026-11-23T05:56:00")
    status, note = mesbrowser.http_json(srv.base + "/api/shifts/notes", "POST", {"text": NOTE_A}, token="demo-operator-token")
    assert status == 201 and note["shift"] == "A", (status, note)
    srv.stop()
    srv.extra_args = ["--replay", second, "--speed", "max"]
    srv.start()
    wait_replayed(srv, "2026-11-23T06:00:06")
    yield srv
    srv.cleanup()


def test_shift_page_shows_previous_shift_notes_and_takes_a_note(shift_server, driver):
    srv = shift_server
    status, previous = srv.get("/api/kpis?shift=previous")
    assert status == 200 and previous["shift"]["name"] == "A"

    driver.get(srv.base + "/shift.html")
    js(driver, "localStorage.setItem('mes.lang', 'en'); sessionStorage.clear()")
    driver.refresh()
    wait(driver, 30, lambda d: d.find_element(By.ID, "shift-title").get_attribute("data-shift") == "A", "shift A is not shown")
    assert driver.find_element(By.ID, "shift-title").get_attribute("data-date") == "2026-11-23"
    assert driver.find_element(By.ID, "shift-title").text == "Shift A · 2026-11-23"
    sub = driver.find_element(By.ID, "shift-sub").text
    # plant times (Asia/Shanghai), whatever the browser's zone: 06:00–14:00, break 10:00–10:20
    assert "06:00" in sub and "14:00" in sub and "planned breaks 10:00–10:20" in sub and "Asia/Shanghai" in sub, sub
    rows = driver.find_elements(By.CSS_SELECTOR, "#shift-stations-body tr[data-station]")
    assert [r.get_attribute("data-station") for r in rows] == [s["id"] for s in previous["stations"]]
    assert len(rows) == STATIONS
    # The figures are those stored: WELD-01's availability as the API has it.
    weld = next(s for s in previous["stations"] if s["id"] == "WELD-01")
    shown = driver.find_element(By.CSS_SELECTOR, "#shift-stations-body tr[data-station='WELD-01'] td[data-figure='availability']").text
    assert shown == f"{weld['availability'] * 100:.1f} %", (shown, weld["availability"])
    line = driver.find_element(By.CSS_SELECTOR, "#shift-line td[data-figure='availability']").text
    assert line.endswith("%"), line

    # The previous shift's handover note; this shift's list is empty.
    wait(driver, 20, lambda d: NOTE_A in d.find_element(By.ID, "notes-previous").text, "the previous shift's note is not shown")
    assert "(A · 2026-11-23)" in driver.find_element(By.ID, "notes-previous-title").text
    assert "(B · 2026-11-23)" in driver.find_element(By.ID, "notes-current-title").text

    # A note for the next shift: the operator token is asked once for the session.
    driver.find_element(By.ID, "note-text").send_keys("Robot 2 serviced")
    driver.find_element(By.ID, "note-add").click()
    wait(driver, 10, lambda d: d.find_element(By.ID, "token-dialog").is_displayed(), "no token dialog")
    driver.find_element(By.ID, "token-input").send_keys("demo-operator-token")
    driver.find_element(By.ID, "token-ok").click()
    wait(driver, 20, lambda d: "Robot 2 serviced" in d.find_element(By.ID, "notes-current").text, "the new note is not shown")
    driver.find_element(By.ID, "note-text").send_keys("Second note")
    driver.find_element(By.ID, "note-add").click()
    wait(driver, 20, lambda d: "Second note" in d.find_element(By.ID, "notes-current").text, "the second note is not shown")
    assert not driver.find_element(By.ID, "token-dialog").is_displayed(), "the token was asked again"
    status, notes = srv.get("/api/shifts/notes?shift=current")
    assert [n["text"] for n in notes] == ["Second note", "Robot 2 serviced"] and {n["user"] for n in notes} == {"wang.fang"}

    # The current shift so far, then back to A by date and name.
    driver.find_element(By.ID, "shift-current").click()
    wait(driver, 20, lambda d: d.find_element(By.ID, "shift-title").get_attribute("data-shift") == "B", "the current shift is not shown")
    assert "in progress" in driver.find_element(By.ID, "shift-sub").text
    js(driver, "document.getElementById('shift-date').value = '2026-11-23'; document.getElementById('shift-name').value = 'A'")
    driver.find_element(By.CSS_SELECTOR, "#shift-form button[type=submit]").click()
    wait(driver, 20, lambda d: d.find_element(By.ID, "shift-title").get_attribute("data-shift") == "A", "shift A by date is not shown")
    assert "date=2026-11-23&shift=A" in driver.current_url
    history = driver.find_elements(By.CSS_SELECTOR, "#shift-history-body tr[data-shift]")
    assert [(r.get_attribute("data-date"), r.get_attribute("data-shift")) for r in history] == [("2026-11-23", "A")]

    # CSV and JSON links of the shown shift.
    csv_href = driver.find_element(By.ID, "shift-csv").get_attribute("href")
    assert "date=2026-11-23&shift=A&format=csv" in csv_href
    with mesbrowser.urlopen(csv_href) as res:
        assert res.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert len(res.read().decode().strip().splitlines()) == 2 + STATIONS
    json_href = driver.find_element(By.ID, "shift-json").get_attribute("href")
    with mesbrowser.urlopen(json_href) as res:
        report = json.loads(res.read())
    assert [n["text"] for n in report["notes"]] == [NOTE_A]

    # Printed: one black-on-white page without the top bar and the forms.
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    assert js(driver, "return getComputedStyle(document.getElementById('top')).display") == "none"
    assert js(driver, "return getComputedStyle(document.getElementById('note-form')).display") == "none"
    assert js(driver, "return getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"
    mesbrowser.screenshot(driver, "shift-print.png")
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    mesbrowser.screenshot(driver, "shift.png")

    # Both languages.
    driver.find_element(By.ID, "lang-toggle").click()
    wait(driver, 10, lambda d: d.find_element(By.ID, "shift-title").text == "A 班 · 2026-11-23", "the page did not switch to Chinese")
    assert driver.find_element(By.CSS_SELECTOR, "#shift-stations th").text == "工位"
    assert "交接班记录" in driver.find_element(By.CSS_SELECTOR, ".handover h2").text
    mesbrowser.screenshot(driver, "shift-zh.png")
    driver.find_element(By.ID, "lang-toggle").click()
    assert mesbrowser.severe_logs(driver) == []


def test_printable_report_page_and_navigation(shift_server, driver):
    srv = shift_server
    driver.get(srv.base + "/")
    wait(driver, 20, lambda d: d.find_elements(By.CSS_SELECTOR, "#top nav a[href='shift.html']"), "no link to the shift report")
    driver.get(srv.base + "/api/reports/shift?date=2026-11-23&shift=A&format=html")
    wait(driver, 10, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#report-stations tr[data-station]")) == STATIONS, "no station rows")
    # Its stylesheet and print script load under the page's security policy.
    assert js(driver, "return getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"
    assert "Shift report" in driver.find_element(By.TAG_NAME, "h1").text and "班次报告" in driver.find_element(By.TAG_NAME, "h1").text
    assert driver.find_element(By.ID, "report-date").text == "2026-11-23"
    assert NOTE_A in driver.find_element(By.ID, "report-notes").text
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    assert js(driver, "return getComputedStyle(document.querySelector('nav.no-print')).display") == "none"
    mesbrowser.screenshot(driver, "shift-report-print.png")
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    # Printed as the page's own @page asks (A4): one page.
    pdf = base64.b64decode(driver.execute_cdp_cmd("Page.printToPDF", {"preferCSSPageSize": True, "printBackground": True})["data"])
    with open(os.path.join(mesbrowser.artifacts_dir(), "shift-report.pdf"), "wb") as f:
        f.write(pdf)
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 1, "the shift report prints on more than one page"
    assert mesbrowser.severe_logs(driver) == []
