"""Browser tests of orders: the orders page (search, status, sequence, plan), the plan figure on the
overview and the order on the vehicle page, against the default simulated plant (whose simulator
creates each shift's plan and releases orders to the VINs it builds)."""
import re

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import mesbrowser


def wait(driver, timeout, condition, message):
    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition, message)


def js(driver, script, *args):
    return driver.execute_script(script, *args)


def test_orders_page_search_status_sequence_and_plan(server, driver):
    driver.get(server.base + "/orders.html")
    js(driver, "localStorage.setItem('mes.lang', 'en')")
    driver.refresh()
    wait(driver, 40, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#orders-body tr[data-order]")) > 0, "no orders listed")
    wait(driver, 40, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#sequence a.chip.seq")) > 0, "no build sequence shown")
    sequence = [e.get_attribute("data-order") for e in driver.find_elements(By.CSS_SELECTOR, "#sequence a.chip.seq")]
    api_sequence = [o["orderId"] for o in server.get("/api/sequence?limit=20")[1]]
    assert sequence == api_sequence[: len(sequence)] or set(sequence) & set(api_sequence), (sequence, api_sequence)
    wait(driver, 40, lambda d: d.find_elements(By.ID, "plan-figure"), "no plan figure")
    planned = int(driver.find_element(By.ID, "plan-figure").get_attribute("data-planned"))
    assert planned > 0
    assert re.match(r"^\d+ / \d+$", driver.find_element(By.ID, "plan-value").text)

    # Search by order id: only matching rows.
    first = driver.find_element(By.CSS_SELECTOR, "#orders-body tr[data-order]").get_attribute("data-order")
    box = driver.find_element(By.ID, "order-search")
    box.clear()
    box.send_keys(first)
    driver.find_element(By.CSS_SELECTOR, "#order-form button[type=submit]").click()
    wait(driver, 20, lambda d: [e.get_attribute("data-order") for e in d.find_elements(By.CSS_SELECTOR, "#orders-body tr[data-order]")] == [first],
         f"search for {first} did not narrow the list")
    assert "q=" in driver.current_url

    # Status filter: released orders only.
    box.clear()
    driver.find_element(By.CSS_SELECTOR, "#order-status option[value=released]").click()
    wait(driver, 20, lambda d: (rows := d.find_elements(By.CSS_SELECTOR, "#orders-body tr[data-order]"))
         and all(r.get_attribute("data-status") == "released" for r in rows), "the status filter did not apply")
    mesbrowser.screenshot(driver, "orders.png")

    # Both languages.
    driver.find_element(By.ID, "lang-toggle").click()
    wait(driver, 10, lambda d: d.find_element(By.CSS_SELECTOR, "#orders-table th").text == "订单", "orders page did not switch to Chinese")
    assert "计划与实际" in driver.find_element(By.CSS_SELECTOR, "#plan-figure .label").text
    mesbrowser.screenshot(driver, "orders-zh.png")
    driver.find_element(By.ID, "lang-toggle").click()
    assert mesbrowser.severe_logs(driver) == []


def test_overview_shows_plan_against_actual(server, driver):
    driver.get(server.base + "/")
    wait(driver, 40, lambda d: d.find_elements(By.ID, "plan-figure"), "no plan figure on the overview")
    kpis = server.get("/api/kpis")[1]
    plan = kpis["line"]["plan"]
    figure = driver.find_element(By.ID, "plan-figure")
    assert int(figure.get_attribute("data-planned")) == plan["planned"]
    # Readable at 5 m: as large as the line's other figures (OEE), and large in itself.
    size = js(driver, "return parseFloat(getComputedStyle(document.getElementById('plan-value')).fontSize)")
    oee = js(driver, "return parseFloat(getComputedStyle(document.querySelector('#fig-oee .value')).fontSize)")
    assert size == oee and size >= 40, (size, oee)
    assert re.match(r"^\d+ / \d+$", driver.find_element(By.ID, "plan-value").text)
    models = [e.get_attribute("data-model") for e in driver.find_elements(By.CSS_SELECTOR, "#plan-models .plan-model")]
    day = server.get("/api/plan?date=" + plan["date"])[1]
    assert models == sorted(day["models"].keys()), (models, day)
    mesbrowser.screenshot(driver, "overview-plan.png")
    assert mesbrowser.severe_logs(driver) == []


def test_vehicle_page_shows_order_model_and_spec(server, driver):
    def started(_):
        rows = server.get("/api/orders?status=in_production&limit=5")[1] + server.get("/api/orders?status=completed&limit=5")[1]
        return rows[0] if rows else False
    order = WebDriverWait(driver, 90, poll_frequency=1).until(started, "no order started on the simulated line")
    vin = order["vehicleId"]
    driver.get(server.base + "/vehicle.html?id=" + vin)
    wait(driver, 30, lambda d: d.find_elements(By.ID, "vehicle-order"), "the vehicle page shows no order")
    panel = driver.find_element(By.ID, "vehicle-order")
    assert panel.get_attribute("data-order") == order["orderId"]
    assert order["model"] in panel.text
    assert driver.find_elements(By.CSS_SELECTOR, "#spec-ideal td")
    mesbrowser.screenshot(driver, "vehicle-order.png")
    assert mesbrowser.severe_logs(driver) == []
