"""Browser test of the equipment page (README "Energy and equipment health"): a replayed recording
in which one fan of a group of three runs rough; the page shows the group's units side by side,
health, trend and the worst first, in both languages, and is linked from the navigation."""
import json
import os
import random

import pytest
from selenium.webdriver.common.by import By

import mesbrowser
from mesbrowser import wait


def fans_config(workdir):
    def station(sid, port):
        return {"id": sid, "process": "utilities", "protocol": "modbus", "endpoint": f"modbus://127.0.0.1:{port}?unit=1",
                "signals": [{"name": "state", "role": "state", "address": "hr:31", "type": "uint16"},
                            {"name": "vibration", "role": "condition", "group": "fans", "address": "hr:60", "type": "float32",
                             "unit": "mm/s", "limits": {"high": 7.1}},
                            {"name": "power", "role": "power", "address": "hr:20", "type": "float32", "unit": "kW"}]}
    config = {"plant": "Fans", "timezone": "UTC", "route": ["body"],
              "stations": [station("FAN-01", 15601), station("FAN-02", 15602), station("FAN-03", 15603)]}
    path = os.path.join(workdir, "fans.json")
    with open(path, "w") as f:
        json.dump(config, f)
    return path


def fans_recording(workdir):
    """50 minutes at 10 s: FAN-03's vibration rises from 2.5 to 6.5 mm/s after 40 minutes."""
    rnd = random.Random(5)
    lines = []
    for step in range(301):
        t = step * 10
        stamp = "2026-11-23T00:%02d:%02d.000Z" % (t // 60, t % 60)
        for sid in ("FAN-01", "FAN-02", "FAN-03"):
            value = 2.5 + rnd.uniform(-0.05, 0.05)
            if sid == "FAN-03" and t >= 2400:
                value += 4 * min(1, (t - 2400) / 600)
            if step == 0:
                lines.append({"t": stamp, "station": sid, "signal": "state", "value": 1})
                lines.append({"t": stamp, "station": sid, "signal": "power", "value": 7.5})
            lines.append({"t": stamp, "station": sid, "signal": "vibration", "value": round(value, 4)})
    lines.append({"t": "2026-11-23T00:50:05.000Z", "station": "FAN-01", "signal": "state", "value": 1})
    path = os.path.join(workdir, "fans.jsonl")
    with open(path, "w") as f:
        f.write("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


@pytest.fixture(scope="module")
def fans_server():
    srv = mesbrowser.MesServer(simulate=False)
    srv.config = fans_config(srv.workdir)
    srv.extra_args = ["--replay", fans_recording(srv.workdir), "--speed", "max"]
    srv.start()
    yield srv
    srv.cleanup()


def test_equipment_page_groups_health_trend_worst_first(fans_server, driver):
    server = fans_server
    wait(driver, 60, lambda d: (server.get("/api/health")[1] or {}).get("replay", {}).get("finished"), "the replay did not finish")
    driver.get(server.base + "/equipment.html")
    driver.execute_script("localStorage.setItem('mes.lang', 'en')")
    driver.refresh()
    wait(driver, 30, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#equip-body tr[data-unit]")) == 3, "three units listed")
    rows = driver.find_elements(By.CSS_SELECTOR, "#equip-body tr[data-unit]")
    api = server.get("/api/equipment")[1]
    assert [r.get_attribute("data-unit") for r in rows] == [u["station"] + "." + u["signal"] for u in api], "worst first, as the API"
    assert rows[0].get_attribute("data-unit") == "FAN-03.vibration"
    healths = [float(r.get_attribute("data-health")) for r in rows]
    assert healths == sorted(healths)
    assert healths[0] < 0.5 <= healths[1]
    assert "bad" in rows[0].get_attribute("class")
    assert "↗" in rows[0].text, "the rough fan's trend points up"
    # The group: its three units side by side, the rough one first.
    units = driver.find_elements(By.CSS_SELECTOR, ".equip-group[data-group=fans] .unit")
    assert [u.get_attribute("data-unit") for u in units][0] == "FAN-03.vibration"
    assert len(units) == 3
    tops = {round(u.location["y"]) for u in units}
    assert len(tops) == 1, "the units of a group sit side by side"
    # Linked from the navigation of every page.
    nav = driver.find_element(By.CSS_SELECTOR, "header nav a[href='equipment.html']")
    assert "current" in nav.get_attribute("class")
    assert nav.text == "Equipment"
    assert driver.find_element(By.ID, "report-csv").get_attribute("href").endswith("/api/reports/equipment?format=csv")
    mesbrowser.screenshot(driver, "equipment.png")

    driver.find_element(By.ID, "lang-toggle").click()
    wait(driver, 10, lambda d: d.find_element(By.CSS_SELECTOR, "#equip-table th").text == "健康度", "did not switch to Chinese")
    assert driver.find_element(By.CSS_SELECTOR, "header nav a[href='equipment.html']").text == "设备"
    mesbrowser.screenshot(driver, "equipment-zh.png")
    driver.find_element(By.ID, "lang-toggle").click()

    driver.get(server.base + "/index.html")
    wait(driver, 20, lambda d: d.find_elements(By.CSS_SELECTOR, "header nav a[href='equipment.html']"), "no link on the overview")
    wait(driver, 20, lambda d: d.find_element(By.CSS_SELECTOR, "#fig-energy .sub").text.startswith("idle"), "no energy figure")
    assert mesbrowser.severe_logs(driver) == []
