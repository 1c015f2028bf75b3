"""Dashboard benchmark (not a pytest test): headless Chromium on the line overview of a real mes-server.

Prints one line per figure:
  - event-to-DOM delay p50/p99 with the default simulated plant (10 Hz polls), in milliseconds: from the
    moment the browser's EventSource hands the event to the page until the DOM has been updated
    (MES.metrics.delays, measured in the page);
  - the same during a burst of ~1,000 events/s (defects raised through POST /api/defects);
  - a soak after the burst: every 10 s a forced garbage collection (CDP HeapProfiler.collectGarbage),
    then the retained JS heap (Runtime.getHeapUsage) and Memory.getDOMCounters (documents, nodes,
    JS event listeners); the retained heap's least-squares slope over the second half of the soak
    decides "flat" (below FLAT_MB_PER_MIN).

Every read of the page goes through CDP Runtime.evaluate (returnByValue), not WebDriver's execute_script:
chromedriver's execute_script keeps each call's JSON result string alive in the page's heap, held by a
DevTools global handle for the whole session (about 1.4 MB per 100 calls returning 1,000 numbers), so a
benchmark that drains the delay rings through it measures its own readings as a leak.

With --heap-diff, a heap snapshot at the start and at the end of the soak (through a second CDP client,
websocket-client) and the 25 largest growths by constructor: what accumulates, if anything does.

  python Tests/browser/bench_dashboard.py [--seconds 20] [--burst-seconds 5] [--rate 1000] [--threads 8] [--soak 60]
                                          [--heap-diff] [--url URL]
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

FLAT_MB_PER_MIN = 0.01  # "flat": retained heap slope over the second half of the soak below this


def pct(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))]


def js(driver, expression):
    """The value of a JS expression in the page, through CDP (nothing of it stays referenced)."""
    res = driver.execute_cdp_cmd("Runtime.evaluate", {"expression": expression, "returnByValue": True})
    if "exceptionDetails" in res:
        raise RuntimeError(f"page script failed: {res['exceptionDetails']}")
    return res.get("result", {}).get("value")


def wait_until(driver, expression, timeout):
    deadline = time.monotonic() + timeout
    while not js(driver, expression):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {expression}")
        time.sleep(0.2)


def take_delays(driver):
    """(receipt → DOM delays, event time `t` → DOM delays) in ms since the last call; clears both."""
    return js(driver, "(() => { const m = MES.metrics; const d = [m.delays.slice(), m.e2e.slice()]; "
                      "m.delays.length = 0; m.e2e.length = 0; return d; })()")


def memory(driver):
    """Retained JS heap after a forced full GC, DOM counters, and the page's event counters."""
    driver.execute_cdp_cmd("HeapProfiler.collectGarbage", {})
    heap = driver.execute_cdp_cmd("Runtime.getHeapUsage", {})
    counters = driver.execute_cdp_cmd("Memory.getDOMCounters", {})
    page = js(driver, "({received: MES.metrics.received, defects: MES.metrics.byType.defect || 0})")
    return {"heap": heap.get("usedSize"), "embedder": heap.get("embedderHeapUsedSize"),
            "nodes": counters.get("nodes"), "documents": counters.get("documents"),
            "listeners": counters.get("jsEventListeners"), **page}


def heap_snapshot_summary(driver):
    """{(node type, constructor or name): [count, self bytes]} of a fresh heap snapshot (after a GC)."""
    import urllib.request
    import websocket  # websocket-client, a dependency of selenium
    addr = driver.capabilities["goog:chromeOptions"]["debuggerAddress"]
    with urllib.request.urlopen(f"http://{addr}/json") as res:
        target = next(t for t in json.load(res) if t["type"] == "page")
    ws = websocket.create_connection(target["webSocketDebuggerUrl"], suppress_origin=True, timeout=300)
    chunks = []
    try:
        ws.send(json.dumps({"id": 1, "method": "HeapProfiler.collectGarbage"}))
        ws.send(json.dumps({"id": 2, "method": "HeapProfiler.takeHeapSnapshot", "params": {"reportProgress": False}}))
        while True:
            msg = json.loads(ws.recv())
            if msg.get("method") == "HeapProfiler.addHeapSnapshotChunk":
                chunks.append(msg["params"]["chunk"])
            elif msg.get("id") == 2:
                break
    finally:
        ws.close()
    snap = json.loads("".join(chunks))
    fields = snap["snapshot"]["meta"]["node_fields"]
    types = snap["snapshot"]["meta"]["node_types"][0]
    strings, nodes, width = snap["strings"], snap["nodes"], len(fields)
    it, iname, isize = fields.index("type"), fields.index("name"), fields.index("self_size")
    out = {}
    for i in range(0, len(nodes), width):
        kind = types[nodes[i + it]]
        name = strings[nodes[i + iname]][:60] if kind not in ("string", "number", "concatenated string", "sliced string") else ""
        entry = out.setdefault((kind, name), [0, 0])
        entry[0] += 1
        entry[1] += nodes[i + isize]
    return out


def print_heap_diff(a, b, top=25):
    keys = sorted(set(a) | set(b), key=lambda k: -(b.get(k, [0, 0])[1] - a.get(k, [0, 0])[1]))
    print(f"dashboard heap snapshot diff over the soak (largest {top} growths, after GC):")
    for k in keys[:top]:
        (ca, sa), (cb, sb) = a.get(k, [0, 0]), b.get(k, [0, 0])
        print(f"  {sb - sa:+9d} B {cb - ca:+7d} objects  {k[0]} {k[1]!r}  (now {cb} objects, {sb} B)")


def slope_per_min(samples):
    """Least-squares slope (MB/min) of [(seconds, bytes)]."""
    pts = [(t / 60, b / 1e6) for t, b in samples if b is not None]
    if len(pts) < 2:
        return float("nan")
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx else float("nan")


def burst(host, port, rate, seconds, vehicle, station, threads=8):
    """POST defects at `rate` per second for `seconds` from `threads` keep-alive connections; returns (sent, ok)."""
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
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--heap-diff", action="store_true", help="heap snapshots at the soak's start and end, diffed")
    ap.add_argument("--url")
    args = ap.parse_args()

    server = None
    if args.url:
        base = args.url.rstrip("/")
    else:
        server = mesbrowser.MesServer(tls=False).start()  # plain HTTP: the bench reads it with http.client
        base = server.base
    host, port = base.split("//", 1)[1].split(":")
    driver = mesbrowser.make_driver()
    try:
        driver.get(base + "/")
        wait_until(driver, "(() => { const e = document.getElementById('live'); "
                           "return !!e && e.dataset.state === 'online' && MES.metrics.applied > 0; })()", 60)
        take_delays(driver)
        r0 = js(driver, "MES.metrics.received")
        t0 = time.monotonic()
        time.sleep(args.seconds)  # measuring window, not an assertion
        d, e2e = take_delays(driver)
        rate = (js(driver, "MES.metrics.received") - r0) / (time.monotonic() - t0)
        print(f"dashboard events/s at the default plant: {rate:.0f}")
        print(f"dashboard event-to-DOM p50 (default plant): {pct(d, 50):.1f} ms")
        print(f"dashboard event-to-DOM p99 (default plant): {pct(d, 99):.1f} ms (target <= 100 ms, n={len(d)})")
        print(f"dashboard poll-time-to-DOM p99 (sample t -> DOM, includes server pipeline): {pct(e2e, 99):.1f} ms (n={len(e2e)})")

        status, vehicles = mesbrowser.http_json(base + "/api/vehicles?limit=1")
        vehicle = vehicles[0]["vehicleId"] if status == 200 and vehicles else "BENCH0000000000001"
        station = vehicles[0].get("currentStation") or "INSP-01" if status == 200 and vehicles else "INSP-01"
        pre_burst = memory(driver)
        take_delays(driver)
        before = pre_burst["defects"]
        t_burst = time.monotonic()
        sent, ok = burst(host, int(port), args.rate, args.burst_seconds, vehicle, station, args.threads)
        burst_s = time.monotonic() - t_burst
        t_end = time.monotonic()
        wait_until(driver, f"(MES.metrics.byType.defect || 0) - {before} >= {ok}", 60)
        drain = time.monotonic() - t_end
        d, e2e = take_delays(driver)
        if ok == 0:
            print("dashboard burst: POST /api/defects accepted nothing, so no burst was measured")
        print(f"dashboard burst: {sent} POST /api/defects in {burst_s:.1f} s, {ok} accepted "
              f"({ok / burst_s:.0f} events/s on top of the plant); every defect event in the page "
              f"{drain:.2f} s after the last POST answer")
        print(f"dashboard event-to-DOM p50 (burst): {pct(d, 50):.1f} ms")
        print(f"dashboard event-to-DOM p99 (burst): {pct(d, 99):.1f} ms (target <= 100 ms, n={len(d)})")
        print(f"dashboard server-time-to-DOM p50/p99 (burst, sample t or defect raisedAt -> DOM): "
              f"{pct(e2e, 50):.1f} / {pct(e2e, 99):.1f} ms (n={len(e2e)})")

        # The page's delay rings are drained before every reading, so the trend is the dashboard's
        # own state, not the benchmark's measurement buffers.
        soak_delays = []
        take_delays(driver)
        snap_start = heap_snapshot_summary(driver) if args.heap_diff else None
        start = memory(driver)
        t_soak = time.monotonic()
        samples = [(0.0, start)]
        end_at = t_soak + args.soak
        while time.monotonic() < end_at:
            time.sleep(min(10, max(0.1, end_at - time.monotonic())))
            soak_delays += take_delays(driver)[0]
            samples.append((time.monotonic() - t_soak, memory(driver)))
        end = samples[-1][1]
        if args.heap_diff:
            print_heap_diff(snap_start, heap_snapshot_summary(driver))
        elapsed = samples[-1][0]
        mb = lambda b: (b or 0) / 1e6
        second_half = [(t, m["heap"]) for t, m in samples if t >= elapsed / 2]
        slope_all = slope_per_min([(t, m["heap"]) for t, m in samples])
        slope_half = slope_per_min(second_half)
        judged = len(second_half) >= 3  # a short soak (tools/bench SHORT=1) cannot say
        verdict = ("met" if slope_half < FLAT_MB_PER_MIN else "NOT met") if judged else "not judged, soak too short"
        print(f"dashboard JS heap before the burst (after forced GC): {mb(pre_burst['heap']):.3f} MB")
        print(f"dashboard JS heap over {elapsed:.0f} s soak after the burst (retained, after forced GC, every 10 s): "
              + " ".join(f"{mb(m['heap']):.3f}" for _, m in samples) + " MB")
        print(f"dashboard JS heap start -> end: {mb(start['heap']):.3f} -> {mb(end['heap']):.3f} MB; "
              f"min/max {min(mb(m['heap']) for _, m in samples):.3f} / {max(mb(m['heap']) for _, m in samples):.3f} MB")
        print(f"dashboard JS heap slope, whole soak: {slope_all:+.4f} MB/min; second half "
              f"({len(second_half)} samples): {slope_half:+.4f} MB/min "
              f"(flat target < {FLAT_MB_PER_MIN} MB/min: {verdict}); "
              f"{(end['received'] - start['received']) / max(1e-9, elapsed):.0f} events/s during the soak")
        if start.get("embedder") is not None:
            print(f"dashboard DOM (Oilpan) heap start -> end: {mb(start['embedder']):.3f} -> {mb(end['embedder']):.3f} MB")
        nodes = [m["nodes"] for _, m in samples]
        print(f"dashboard DOM counters start -> end: nodes {start['nodes']} -> {end['nodes']} (min/max {min(nodes)} / {max(nodes)}), "
              f"JS event listeners {start['listeners']} -> {end['listeners']}, "
              f"documents {start['documents']} -> {end['documents']}")
        print(f"dashboard event-to-DOM p99 over the soak: {pct(soak_delays, 99):.1f} ms (target <= 100 ms, n={len(soak_delays)})")
    finally:
        mesbrowser.quit_driver(driver)
        if server:
            server.cleanup()


if __name__ == "__main__":
    main()
