"""Dashboard benchmark (not a pytest test): headless Chromium on the line overview of a real mes-server.

Prints one line per figure:
  - event-to-DOM delay p50/p99 with the default simulated plant (10 Hz polls), in milliseconds: from the
    moment the browser's EventSource hands the event to the page until the DOM has been updated
    (MES.metrics.delays, measured in the page);
  - the same during a burst of ~1,000 events/s (defects raised through POST /api/defects);
  - JS heap (after a forced GC) and DOM node count at the start and end of a soak, and the heap's slope.

  python Tests/browser/bench_dashboard.py [--seconds 20] [--burst-seconds 5] [--rate 1000] [--soak 60] [--url URL]
Uses MES_SERVER_BIN (or .build/debug/mes-server) unless --url points at a running server.
"""
import argparse
import http.client
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import mesbrowser  # noqa: E402

from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def pct(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))]


def take_delays(driver):
    """(receipt → DOM delays, event time `t` → DOM delays) in ms since the last call; clears both."""
    return driver.execute_script(
        "var m = MES.metrics; var d = [m.delays.slice(), m.e2e.slice()]; m.delays.length = 0; m.e2e.length = 0; return d;")


def memory(driver):
    return driver.execute_script("""
        if (window.gc) { window.gc(); }
        return {heap: performance.memory ? performance.memory.usedJSHeapSize : null,
                nodes: document.getElementsByTagName('*').length, received: MES.metrics.received};""")


def burst(host, port, rate, seconds, vehicle, station):
    """POST defects at `rate` per second for `seconds` from 4 keep-alive connections; returns (sent, ok)."""
    threads = 4
    per_thread = rate / threads
    counts = {"sent": 0, "ok": 0}
    lock = threading.Lock()
    body = json.dumps({"vehicleId": vehicle, "station": station, "code": "BENCH",
                       "description": "dashboard benchmark burst", "severity": "low"})
    headers = {"Content-Type": "application/json", "Authorization": "Bearer demo-quality-token"}

    def run():
        conn = http.client.HTTPConnection(host, port, timeout=5)
        start = time.monotonic()
        n = 0
        sent = ok = 0
        while True:
            now = time.monotonic()
            if now - start >= seconds:
                break
            due = start + n / per_thread
            if now < due:
                time.sleep(due - now)
            try:
                conn.request("POST", "/api/defects", body=body, headers=headers)
                res = conn.getresponse()
                res.read()
                sent += 1
                ok += 1 if res.status == 201 else 0
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=5)
            n += 1
        conn.close()
        with lock:
            counts["sent"] += sent
            counts["ok"] += ok

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return counts["sent"], counts["ok"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--burst-seconds", type=float, default=5)
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--soak", type=float, default=60)
    ap.add_argument("--url")
    args = ap.parse_args()

    server = None
    if args.url:
        base = args.url.rstrip("/")
    else:
        server = mesbrowser.MesServer().start()
        base = server.base
    host, port = base.split("//", 1)[1].split(":")
    driver = mesbrowser.make_driver(extra_args=["--js-flags=--expose-gc", "--enable-precise-memory-info"])
    try:
        driver.get(base + "/")
        WebDriverWait(driver, 60, 0.2).until(
            lambda d: d.execute_script("var e = document.getElementById('live'); return e && e.dataset.state === 'online' && MES.metrics.applied > 0"))
        take_delays(driver)
        m0 = memory(driver)
        t0 = time.monotonic()
        time.sleep(args.seconds)  # measuring window, not an assertion
        d, e2e = take_delays(driver)
        m1 = memory(driver)
        rate = (m1["received"] - m0["received"]) / (time.monotonic() - t0)
        print(f"dashboard events/s at the default plant: {rate:.0f}")
        print(f"dashboard event-to-DOM p50 (default plant): {pct(d, 50):.1f} ms")
        print(f"dashboard event-to-DOM p99 (default plant): {pct(d, 99):.1f} ms (target <= 100 ms, n={len(d)})")
        print(f"dashboard poll-time-to-DOM p99 (sample t -> DOM, includes server pipeline): {pct(e2e, 99):.1f} ms (n={len(e2e)})")

        status, vehicles = mesbrowser.http_json(base + "/api/vehicles?limit=1")
        vehicle = vehicles[0]["vehicleId"] if status == 200 and vehicles else "BENCH0000000000001"
        station = vehicles[0].get("currentStation") or "INSP-01" if status == 200 and vehicles else "INSP-01"
        before = memory(driver)["received"]
        sent, ok = burst(host, int(port), args.rate, args.burst_seconds, vehicle, station)
        WebDriverWait(driver, 30, 0.2).until(lambda drv: drv.execute_script("return MES.metrics.received") - before >= ok)
        d, _ = take_delays(driver)
        if ok == 0:
            print("dashboard burst: POST /api/defects accepted nothing, so no burst was measured")
        print(f"dashboard burst: {sent} POST /api/defects in {args.burst_seconds:.0f} s, {ok} accepted "
              f"({ok / args.burst_seconds:.0f} events/s on top of the plant)")
        print(f"dashboard event-to-DOM p50 (burst): {pct(d, 50):.1f} ms")
        print(f"dashboard event-to-DOM p99 (burst): {pct(d, 99):.1f} ms (target <= 100 ms, n={len(d)})")

        start = memory(driver)
        samples = [start]
        end_at = time.monotonic() + args.soak
        while time.monotonic() < end_at:
            time.sleep(min(10, max(0.1, end_at - time.monotonic())))
            samples.append(memory(driver))
        end = samples[-1]
        mb = lambda b: (b or 0) / 1e6
        slope = (mb(end["heap"]) - mb(start["heap"])) / (args.soak / 60) if args.soak else 0
        print(f"dashboard JS heap over {args.soak:.0f} s soak: {mb(start['heap']):.1f} MB -> {mb(end['heap']):.1f} MB "
              f"({slope:+.2f} MB/min; flat target)")
        print(f"dashboard DOM nodes over soak: {start['nodes']} -> {end['nodes']}")
    finally:
        mesbrowser.quit_driver(driver)
        if server:
            server.cleanup()


if __name__ == "__main__":
    main()
