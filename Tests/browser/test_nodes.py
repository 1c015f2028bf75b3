"""The page header shows the server's node and role (README "Two nodes") in both languages."""
import pytest
from selenium.webdriver.common.by import By

import mesbrowser
from mesbrowser import js, wait


@pytest.fixture(scope="module")
def named_server():
    """A server named with --node (on SQLite: always the active), its PLCs unreachable."""
    srv = mesbrowser.MesServer(simulate=False, extra_args=("--node", "line-a"))
    srv.config = mesbrowser.offline_plant_config(srv.workdir)
    srv.start()
    yield srv
    srv.cleanup()


def test_header_shows_node_and_role_in_both_languages(named_server, driver):
    status, health = named_server.get("/api/health")
    assert status == 200 and health["node"] == "line-a" and health["role"] == "active"
    driver.get(named_server.base + "/")
    js(driver, "localStorage.setItem('mes.lang', 'en')")
    driver.refresh()
    wait(driver, 20, lambda d: d.find_element(By.ID, "node").text == "line-a · active", "the header does not name the node")
    node = driver.find_element(By.ID, "node")
    assert node.get_attribute("data-role") == "active"
    assert "lease" in node.get_attribute("title")
    driver.find_element(By.ID, "lang-toggle").click()
    wait(driver, 10, lambda d: d.find_element(By.ID, "node").text == "line-a · 主用", "the role is not in Chinese")
    assert "租约" in driver.find_element(By.ID, "node").get_attribute("title")
    driver.find_element(By.ID, "lang-toggle").click()
    for page in ("alerts.html", "station.html?id=WELD-01"):
        driver.get(named_server.base + "/" + page)
        wait(driver, 20, lambda d: d.find_element(By.ID, "node").text == "line-a · active", f"{page}: no node in the header")
    assert mesbrowser.severe_logs(driver) == []
