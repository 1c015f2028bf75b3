"""Browser tests of orders: the orders page (search, status, sequence, plan), the plan figure on the
overview and the order on the vehicle page, against the default simulated plant (whose simulator
creates each shift's plan and releases orders to the VINs it builds)."""
import re

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import mesbrowser
from mesbrowser import attributes, js, wait


def plan_figure(driver):
    """The plan figure as one moment of the page (the widget re-renders on its own refresh): its
    planned count, value text and label, or None while there is none."""
    return js(driver, "const f = document.getElementById('plan-figure'); if (!f) return null; "
                      "const v = f.querySelector('#plan-value'), l = f.querySelector('.label'); "
                      "return {planned: f.dataset.planned, value: v ? v.textContent.trim() : '', label: l ? l.textContent : ''}")


def test_orders_page_search_status_sequence_and_plan(server, driver):
    driver.get(server.base + "/orders.html")
    js(driver, "localStorage.setItem('mes.lang', 'en')")
    driver.refresh()
    # The page re-renders on every `order` event of the simulated line: read each list in one script.
    wait(driver, 40, lambda d: attributes(d, "#orders-body tr[data-order]", "data-order"), "no orders listed")
    sequence = wait(driver, 40, lambda d: attributes(d, "#sequence a.chip.seq", "data-order"), "no build sequence shown")
    api_sequence = [o["orderId"] for o in server.get("/api/sequence?limit=20")[1]]
    assert sequence == api_sequence[: len(sequence)] or set(sequence) & set(api_sequence), (sequence, api_sequence)
    figure = wait(driver, 40, lambda d: plan_figure(d), "no plan figure")
    assert int(figure["planned"]) > 0, figure
    assert re.match(r"^\d+ / \d+$", figure["value"]), figure

    # Search by order id: only matching rows.
    first = attributes(driver, "#orders-body tr[data-order]", "data-order")[0]
    box = driver.find_element(By.ID, "order-search")
    box.clear()
    box.send_keys(first)
    driver.find_element(By.CSS_SELECTOR, "#order-form button[type=submit]").click()
    wait(driver, 20, lambda d: attributes(d, "#orders-body tr[data-order]", "data-order") == [first],
         f"search for {first} did not narrow the list")
    assert "q=" in driver.current_url

    # Status filter: released orders only.
    box.clear()
    # Chosen as a user does (the options are rebuilt when a new model shows up, so find it afresh).
    wait(driver, 10, lambda d: d.find_element(By.CSS_SELECTOR, "#order-status option[value=released]").click() or True,
         "the status filter could not be chosen")
    wait(driver, 20, lambda d: (statuses := attributes(d, "#orders-body tr[data-order]", "data-status"))
         and set(statuses) == {"released"}, "the status filter did not apply")
    mesbrowser.screenshot(driver, "orders.png")

    # Both languages.
    driver.find_element(By.ID, "lang-toggle").click()
    wait(driver, 10, lambda d: d.find_element(By.CSS_SELECTOR, "#orders-table th").text == "订单", "orders page did not switch to Chinese")
    wait(driver, 10, lambda d: "计划与实际" in (plan_figure(d) or {}).get("label", ""), "the plan figure did not switch to Chinese")
    mesbrowser.screenshot(driver, "orders-zh.png")
    driver.find_element(By.ID, "lang-toggle").click()
    assert mesbrowser.severe_logs(driver) == []


def test_overview_shows_plan_against_actual(server, driver):
    driver.get(server.base + "/")
    wait(driver, 40, plan_figure, "no plan figure on the overview")
    kpis = server.get("/api/kpis")[1]
    plan = kpis["line"]["plan"]
    figure = plan_figure(driver)
    assert int(figure["planned"]) == plan["planned"], (figure, plan)
    # Readable at 5 m: as large as the line's other figures (OEE), and large in itself.
    size = js(driver, "return parseFloat(getComputedStyle(document.getElementById('plan-value')).fontSize)")
    oee = js(driver, "return parseFloat(getComputedStyle(document.querySelector('#fig-oee .value')).fontSize)")
    assert size == oee and size >= 40, (size, oee)
    assert re.match(r"^\d+ / \d+$", figure["value"]), figure
    models = attributes(driver, "#plan-models .plan-model", "data-model")
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
