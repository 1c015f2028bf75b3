"""Browser tests of owners and due times: the "my items" page (the signed-in user's alerts, defects
and andon calls, overdue first) and the owner / due column with reassign on the alerts page.

The plant is the default plant with every PLC unreachable (each station raises a `connection`
alert within seconds) plus `people` and `responsibility`: WELD-* belongs to li.wei (the
demo-quality-token), everything else to zhang.min.
"""
import datetime
import json
import os

import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

import mesbrowser
from mesbrowser import js, wait

QUALITY = "demo-quality-token"
# Chromium logs a failed fetch as a console error: /api/andon answers 404 until andon calls exist.
ANDON_404 = "/api/andon"


def click_in(driver, selector, timeout=15):
    """Clicks the first element matching `selector`, finding it again if a live update replaced it."""
    def attempt(d):
        try:
            d.find_element(By.CSS_SELECTOR, selector).click()
            return True
        except (StaleElementReferenceException, NoSuchElementException):
            return False
    wait(driver, timeout, attempt, f"could not click {selector}")


def text_of(driver, selector):
    """The text of the first element matching `selector` now ('' if none): read in the page, so a row
    a live update just replaced is never a stale element."""
    return js(driver, "var e = document.querySelector(arguments[0]); return e ? e.innerText : ''", selector)


def sign_in(driver, token):
    wait(driver, 10, lambda d: d.find_element(By.ID, "token-input").is_displayed(), "the token dialog did not open")
    driver.find_element(By.ID, "token-input").send_keys(token)
    driver.find_element(By.ID, "token-ok").click()


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.fixture(scope="module")
def owned_server():
    srv = mesbrowser.MesServer(simulate=False)
    path = mesbrowser.offline_plant_config(srv.workdir)
    with open(path) as f:
        plant = json.load(f)
    plant["people"] = [{"user": "li.wei", "name": "Li Wei"}, {"user": "zhang.min", "name": "张敏"}]
    plant["responsibility"] = [
        {"station": "WELD-*", "types": ["connection", "defect", "andon"], "owner": "li.wei", "escalation": ["zhang.min"]},
        {"owner": "zhang.min"},
    ]
    plant["due"] = {"critical": 30, "high": 60, "medium": 120, "low": 240}
    srv.config = os.path.join(srv.workdir, "plant-owned.json")
    with open(srv.config, "w") as f:
        json.dump(plant, f)
    srv.start()
    yield srv
    srv.cleanup()


def open_alerts(srv):
    status, alerts = mesbrowser.http_json(srv.base + "/api/alerts?state=open&limit=1000")
    assert status == 200, alerts
    return alerts


def wait_owned_alerts(srv, owner, count, timeout=60):
    found = []

    def enough(_):
        found[:] = [a for a in open_alerts(srv) if a.get("owner") == owner]
        return len(found) >= count
    WebDriverWait(None, timeout, poll_frequency=0.5).until(enough, f"{owner} never owned {count} open alerts")
    return found


def raise_defect(srv, station, code):
    status, defect = mesbrowser.http_json(srv.base + "/api/defects", "POST", {
        "vehicleId": "LSVMY" + code, "station": station, "code": code, "description": "raised by the my-items test",
        "severity": "medium"}, token=QUALITY)
    assert status == 201, (status, defect)
    return defect


def rows(driver):
    return js(driver, """return Array.from(document.querySelectorAll('#my-body tr[data-kind]'))
        .map(r => ({kind: r.dataset.kind, id: r.dataset.id, overdue: r.dataset.overdue === 'true'}))""")


def test_my_items_lists_what_the_user_owns_overdue_first_and_acts_on_it(owned_server, driver):
    srv = owned_server
    mine = wait_owned_alerts(srv, "li.wei", 2)  # WELD-01 and WELD-02 are offline
    others = [a for a in open_alerts(srv) if a.get("owner") == "zhang.min"]
    assert others, "the other stations' alerts belong to zhang.min"
    defect = raise_defect(srv, "WELD-01", "MY1")
    assert defect["owner"] == "li.wei" and defect["dueAt"], defect
    other_defect = raise_defect(srv, "PAINT-01", "MY2")
    assert other_defect["owner"] == "zhang.min"

    driver.get(srv.base + "/myitems.html")
    js(driver, "localStorage.setItem('mes.lang', 'en'); sessionStorage.clear()")
    driver.refresh()
    # No token in this browser session: the page asks once, and learns who it is from GET /api/me.
    sign_in(driver, QUALITY)
    wait(driver, 20, lambda d: d.find_element(By.ID, "who").get_attribute("data-user") == "li.wei", "the page did not learn who is signed in")
    assert "Li Wei" in driver.find_element(By.ID, "who").text
    expected = {("alert", str(a["id"])) for a in mine} | {("defect", str(defect["id"]))}
    wait(driver, 30, lambda d: {(r["kind"], r["id"]) for r in rows(d)} >= expected, f"my items never showed {expected}")
    shown = {(r["kind"], r["id"]) for r in rows(driver)}
    assert ("alert", str(others[0]["id"])) not in shown and ("defect", str(other_defect["id"])) not in shown, "another owner's items are not mine"
    assert js(driver, "return Array.from(document.querySelectorAll('#my-body tr[data-kind]')).every(r => r.dataset.owner === 'li.wei')")
    first = text_of(driver, f"#item-defect-{defect['id']} .due-rel")
    assert first.startswith("due in"), first

    # A due time in the past: the server marks the alert overdue, and the page puts it first with a badge.
    late = mine[0]
    past = iso(datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5))
    status, body = mesbrowser.http_json(srv.base + f"/api/alerts/{late['id']}/assign", "POST", {"owner": "li.wei", "dueAt": past}, token=QUALITY)
    assert status == 200, body
    wait(driver, 20, lambda d: rows(d) and rows(d)[0] == {"kind": "alert", "id": str(late["id"]), "overdue": True},
         "the overdue alert did not come first")
    assert text_of(driver, f"#item-alert-{late['id']} .overdue-badge") == "Overdue"
    assert "overdue by" in text_of(driver, f"#item-alert-{late['id']} .due-rel")
    wait(driver, 10, lambda d: "1 overdue" in text_of(d, "#count-overdue"), "the overdue count is not shown")

    # Reassign the defect to zhang.min through the page: it leaves my items.
    click_in(driver, f"#item-defect-{defect['id']} button.assign")
    wait(driver, 10, lambda d: d.find_element(By.ID, "assign-dialog").is_displayed(), "the reassign dialog did not open")
    wait(driver, 10, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#assign-owner option")) == 2, "the people were not offered")
    Select(driver.find_element(By.ID, "assign-owner")).select_by_value("zhang.min")
    driver.find_element(By.ID, "assign-ok").click()
    wait(driver, 20, lambda d: not d.find_elements(By.ID, f"item-defect-{defect['id']}"), "the reassigned defect stayed in my items")
    status, defects = srv.get("/api/defects?status=open&limit=1000")
    assert next(d for d in defects if d["id"] == defect["id"])["owner"] == "zhang.min"

    # Acknowledge the overdue alert from here (the token is known: no second prompt).
    click_in(driver, f"#item-alert-{late['id']} button.ack")
    wait(driver, 10, lambda d: d.find_element(By.ID, "action-dialog").is_displayed(), "the acknowledge dialog did not open")
    driver.find_element(By.ID, "action-comment").send_keys("on my way")
    driver.find_element(By.ID, "action-ok").click()
    wait(driver, 20, lambda d: not d.find_elements(By.CSS_SELECTOR, f"#item-alert-{late['id']} button.ack"), "the alert still offers acknowledge")
    status, alert = srv.get(f"/api/alerts/{late['id']}")
    assert alert["acknowledgedBy"] == "li.wei" and alert["comment"] == "on my way", alert

    # Andon calls: from GET /api/andon when the server has them, otherwise a note (never an error).
    andon_status, _ = srv.get("/api/andon")
    available = js(driver, "return MES.myItems().andonAvailable")
    assert available == (andon_status == 200), (available, andon_status)
    assert driver.find_element(By.ID, "andon-note").is_displayed() == (not available)
    if available:
        # A real call at WELD-01 (li.wei's by the andon rule): listed through its andon alert, answered and closed here.
        status, call = mesbrowser.http_json(srv.base + "/api/andon", "POST", {"station": "WELD-01", "kind": "maintenance",
                                            "comment": "press jams"}, token="demo-operator-token")
        assert status in (200, 201), (status, call)
        row = f"#item-andon-{call['id']}"
        wait(driver, 20, lambda d: d.find_elements(By.CSS_SELECTOR, f"{row} button.ack"), "the andon call is not in my items")
        assert "Maintenance" in text_of(driver, row)
        click_in(driver, f"{row} button.ack")
        wait(driver, 10, lambda d: d.find_element(By.ID, "action-dialog").is_displayed(), "the answer dialog did not open")
        driver.find_element(By.ID, "action-ok").click()
        wait(driver, 20, lambda d: not d.find_elements(By.CSS_SELECTOR, f"{row} button.ack"), "the call was not answered")
        status, calls = srv.get("/api/andon?limit=100")
        assert next(c for c in calls if c["id"] == call["id"])["state"] == "acknowledged"
        click_in(driver, f"{row} button.close")
        wait(driver, 10, lambda d: d.find_element(By.ID, "action-dialog").is_displayed(), "the close dialog did not open")
        driver.find_element(By.ID, "action-ok").click()
        wait(driver, 20, lambda d: not d.find_elements(By.CSS_SELECTOR, row), "the closed call stayed in my items")
    # A call of mine arriving on the stream is listed with its close action.
    opened = iso(datetime.datetime.now(datetime.timezone.utc))
    js(driver, """MES.current.feed('andon', {id: 990001, station: 'WELD-01', kind: 'material', source: 'api', state: 'open',
        openedAt: arguments[0], acknowledgedAt: null, acknowledgedBy: null, closedAt: null, responseS: null, owner: 'li.wei'})""", opened)
    wait(driver, 10, lambda d: d.find_elements(By.CSS_SELECTOR, "#item-andon-990001 button.close"), "the andon call is not listed")
    assert "Material" in text_of(driver, "#item-andon-990001")
    js(driver, "MES.current.feed('andon', {id: 990001, station: 'WELD-01', kind: 'material', state: 'closed', owner: 'li.wei'})")
    wait(driver, 10, lambda d: not d.find_elements(By.ID, "item-andon-990001"), "the closed andon call stayed")
    mesbrowser.screenshot(driver, "myitems.png")

    # Chinese, and the navigation of every page links here.
    driver.find_element(By.ID, "lang-toggle").click()
    wait(driver, 10, lambda d: d.find_element(By.CSS_SELECTOR, "#my-table th").text == "期限", "the page did not switch to Chinese")
    assert "逾期" in text_of(driver, f"#item-alert-{late['id']}")
    assert driver.find_element(By.CSS_SELECTOR, "nav a[href='myitems.html']").text == "我的事项"
    mesbrowser.screenshot(driver, "myitems-zh.png")
    driver.find_element(By.ID, "lang-toggle").click()
    for page in ["/", "/alerts.html", "/orders.html", "/vehicle.html"]:
        driver.get(srv.base + page)
        wait(driver, 10, lambda d: d.find_elements(By.CSS_SELECTOR, "nav a[href='myitems.html']"), f"{page} does not link to my items")
    # Back on the page in the same session: no second token prompt.
    driver.get(srv.base + "/myitems.html")
    wait(driver, 20, lambda d: d.find_element(By.ID, "who").get_attribute("data-user") == "li.wei", "the session's token was not reused")
    assert not driver.find_element(By.ID, "token-dialog").is_displayed() if driver.find_elements(By.ID, "token-dialog") else True
    assert mesbrowser.severe_logs(driver, allow=(ANDON_404,)) == []


def test_my_items_without_a_token_asks_once_then_offers_sign_in(owned_server, driver):
    driver.get(owned_server.base + "/myitems.html")
    wait(driver, 10, lambda d: d.find_element(By.ID, "token-input").is_displayed(), "the token dialog did not open")
    driver.find_element(By.ID, "token-cancel").click()
    wait(driver, 10, lambda d: d.find_elements(By.CSS_SELECTOR, "#my-body .empty-state"), "no sign-in hint")
    driver.refresh()
    # Asked once per session: after a cancel the page waits for the sign-in button.
    wait(driver, 10, lambda d: d.find_elements(By.CSS_SELECTOR, "#my-body .empty-state"), "no sign-in hint after reload")
    assert not (driver.find_elements(By.ID, "token-dialog") and driver.find_element(By.ID, "token-dialog").is_displayed())
    driver.find_element(By.ID, "token-button").click()
    sign_in(driver, "demo-viewer-token")
    wait(driver, 20, lambda d: d.find_element(By.ID, "who").get_attribute("data-user") == "screen.line1", "the viewer was not named")
    wait(driver, 10, lambda d: "not one of the plant config" in d.find_element(By.ID, "message").text, "no note for a user outside people")
    assert mesbrowser.severe_logs(driver, allow=(ANDON_404,)) == []


def test_alerts_page_shows_owner_due_and_escalation_and_reassigns(owned_server, driver):
    srv = owned_server
    mine = wait_owned_alerts(srv, "li.wei", 2)
    target = mine[-1]
    driver.get(srv.base + "/alerts.html#active")
    js(driver, "localStorage.setItem('mes.lang', 'en')")
    driver.refresh()
    wait(driver, 30, lambda d: d.find_elements(By.CSS_SELECTOR, f"#alert-{target['id']} td.owner-col.owned"), "no owner cell")
    assert driver.find_element(By.CSS_SELECTOR, "#alerts-table th.owner-col").is_displayed()
    assert text_of(driver, f"#alert-{target['id']} td.owner-col .owner") == target["owner"]
    assert text_of(driver, f"#alert-{target['id']} td.owner-col .due-at") not in ("", "—")

    # Reassign through the page: the token is asked for when the change is sent.
    click_in(driver, f"#alert-{target['id']} button.assign")
    wait(driver, 10, lambda d: d.find_element(By.ID, "assign-dialog").is_displayed(), "the reassign dialog did not open")
    Select(driver.find_element(By.ID, "assign-owner")).select_by_value("zhang.min")
    due = driver.find_element(By.ID, "assign-due")
    js(driver, "arguments[0].value = '2031-06-01T08:30'", due)
    driver.find_element(By.ID, "assign-ok").click()
    sign_in(driver, QUALITY)
    wait(driver, 20, lambda d: text_of(d, f"#alert-{target['id']} td.owner-col .owner") == "zhang.min", "the new owner is not shown")
    status, alert = srv.get(f"/api/alerts/{target['id']}")
    assert alert["owner"] == "zhang.min", alert
    assert alert["dueAt"].startswith("2031-06-01"), alert

    # Overdue and escalation, as an alert event carries them.
    escalated = dict(alert, id=990002, overdue=True, escalationLevel=1, escalatedTo=["zhang.min"], owner="li.wei",
                     state="active_unacknowledged", change="escalated")
    js(driver, "MES.current.feed('alert', arguments[0])", escalated)
    wait(driver, 10, lambda d: d.find_elements(By.CSS_SELECTOR, "#alert-990002 .overdue-badge"), "no overdue badge")
    text = text_of(driver, "#alert-990002 td.owner-col")
    assert "escalated to zhang.min" in text and "↑1" in text, text
    mesbrowser.screenshot(driver, "alerts-owners.png")

    # A viewer cannot reassign: the button goes once the page knows the role.
    driver.find_element(By.ID, "token-button").click()  # sign out
    driver.find_element(By.ID, "token-button").click()
    sign_in(driver, "demo-viewer-token")
    wait(driver, 20, lambda d: not d.find_elements(By.CSS_SELECTOR, "#alerts-body button.assign"), "a viewer is offered reassign")
    driver.find_element(By.ID, "lang-toggle").click()
    wait(driver, 10, lambda d: d.find_element(By.CSS_SELECTOR, "#alerts-table th.owner-col").text == "负责人 / 期限", "no Chinese header")
    driver.find_element(By.ID, "lang-toggle").click()
    assert mesbrowser.severe_logs(driver) == []
