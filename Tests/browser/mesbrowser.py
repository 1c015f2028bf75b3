"""Helpers shared by the browser tests and bench_dashboard.py: run mes-server, drive headless Chromium.

`MES_BROWSER_TLS=1` runs the suite over TLS (README "Testing"): every MesServer then serves HTTPS with
a test certificate, every Chromium from make_driver ignores certificate errors, and urlopen /
http_json / MesServer.get reach an https:// server through that server's TLS context (which trusts
its test certificate and nothing else)."""
import json
import re
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PLANT = os.path.join(REPO, "Stations", "plant.json")

# The suite over TLS: MesServer() serves HTTPS unless a test asks for plain HTTP (tls=False).
TLS = os.environ.get("MES_BROWSER_TLS", "") not in ("", "0")

# origin ("https://127.0.0.1:PORT") -> the TLS context of the server listening there
_tls_contexts = {}


def js(driver, script, *args):
    return driver.execute_script(script, *args)


def wait(driver, timeout, condition, message):
    """Wait until `condition(driver)` is truthy. A live page re-renders while a condition reads it, so
    an element found a moment before may be gone: such a read counts as "not yet" (and is tried again),
    never as a failure."""
    return WebDriverWait(driver, timeout, poll_frequency=0.2,
                         ignored_exceptions=(StaleElementReferenceException,)).until(condition, message)


def attributes(driver, selector, name):
    """The attribute `name` of every element matching `selector`, read in one script (one moment of the
    page, so a re-render between finding and reading can't make an element stale)."""
    return js(driver, "return Array.from(document.querySelectorAll(arguments[0]), e => e.getAttribute(arguments[1]))",
              selector, name)


def tls_context_for(url):
    """The TLS context for `url` (a string or a urllib Request): that of the MesServer at its
    origin; None for http:// or an origin no MesServer of this process serves."""
    parts = urllib.parse.urlsplit(url.full_url if isinstance(url, urllib.request.Request) else url)
    if parts.scheme != "https":
        return None
    return _tls_contexts.get(f"https://{parts.netloc}")


def urlopen(url, timeout=5, context=None):
    """urllib.request.urlopen, over TLS through the context of the MesServer the URL names (links
    read from a page are absolute: https:// when the suite runs over TLS)."""
    return urllib.request.urlopen(url, timeout=timeout, context=context or tls_context_for(url))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_binary():
    path = os.environ.get("MES_SERVER_BIN") or os.path.join(REPO, ".build", "debug", "mes-server")
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise RuntimeError(f"mes-server binary not found at {path} (set MES_SERVER_BIN)")
    return path


def artifacts_dir():
    path = os.environ.get("MES_ARTIFACTS") or os.path.join(REPO, "test-artifacts")
    os.makedirs(path, exist_ok=True)
    return path


def http_json(url, method="GET", body=None, token=None, timeout=5, context=None):
    """(status, parsed JSON or None) of one request; never raises for an HTTP status. `context`: the
    TLS context for an https:// URL; by default that of the MesServer at the URL's origin."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urlopen(req, timeout=timeout, context=context) as res:
            raw = res.read()
            return res.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw) if raw else None
        except ValueError:
            return e.code, None


def make_test_certificate(workdir):
    """A self-signed certificate for localhost and 127.0.0.1 made by `openssl req`: (cert, key)."""
    cert, key = os.path.join(workdir, "cert.pem"), os.path.join(workdir, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
                    "-keyout", key, "-out", cert, "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


class MesServer:
    """One mes-server process on a fixed port and database; can be stopped and started again.
    With `tls` it serves HTTPS (a test certificate made in its workdir; `base` is https://); `tls`
    None (the default) follows MES_BROWSER_TLS, False keeps plain HTTP whatever the switch says."""

    def __init__(self, config=PLANT, simulate=True, workdir=None, extra_args=(), tls=None):
        if tls is None:
            tls = TLS
        self.config = config
        self.simulate = simulate
        self.workdir = workdir or tempfile.mkdtemp(prefix="mes-browser-")
        self.db = os.path.join(self.workdir, "mes.sqlite")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.extra_args = list(extra_args)
        self.tls_args = []  # apart from extra_args, which tests replace between starts
        self.tls_context = None
        if tls:
            self.cert, key = make_test_certificate(self.workdir)
            self.tls_args = ["--tls-cert", self.cert, "--tls-key", key]
            self.base = f"https://127.0.0.1:{self.port}"
            self.tls_context = ssl.create_default_context(cafile=self.cert)
            _tls_contexts[self.base] = self.tls_context
        self.proc = None
        self.log_path = os.path.join(self.workdir, "server.log")
        self.starts = 0

    def start(self, timeout=60):
        args = [server_binary(), "--config", self.config, "--db", self.db, "--listen", f"127.0.0.1:{self.port}"]
        if self.simulate:
            args.append("--simulate")
        args += self.extra_args + self.tls_args
        self.starts += 1
        log = open(self.log_path, "a")
        log.write(f"--- start {self.starts}: {' '.join(args)}\n")
        log.flush()
        self.proc = subprocess.Popen(args, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mes-server exited with {self.proc.returncode}:\n{self.tail()}")
            # The whole log of this start: offline stations' warnings can push the line out of a tail.
            if "listening on" in self.tail(chars=1 << 24).rsplit("--- start ", 1)[-1]:
                try:
                    status, body = http_json(self.base + "/api/health", timeout=2, context=self.tls_context)
                    if status == 200 and body and body.get("status") == "ok":
                        return self
                except OSError:
                    pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"mes-server did not become healthy within {timeout}s:\n{self.tail()}")

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def tail(self, chars=4000):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-chars:]
        except OSError:
            return ""

    def get(self, path):
        return http_json(self.base + path, context=self.tls_context)

    def cleanup(self):
        self.stop()
        if self.tls_context is not None and _tls_contexts.get(self.base) is self.tls_context:
            del _tls_contexts[self.base]
        shutil.rmtree(self.workdir, ignore_errors=True)


def offline_plant_config(workdir):
    """A copy of the default plant whose PLC endpoints are loopback ports nobody listens on, so every
    station goes offline and raises a `connection` alert (the tokens file is copied beside it)."""
    with open(PLANT) as f:
        plant = json.load(f)
    for station in plant["stations"]:
        port = free_port()
        if station["protocol"] == "modbus":
            station["endpoint"] = f"modbus://127.0.0.1:{port}?unit=1"
        else:
            station["endpoint"] = f"opc.tcp://127.0.0.1:{port}"
        station["offlineAlertAfterS"] = 1
    path = os.path.join(workdir, "plant-offline.json")
    with open(path, "w") as f:
        json.dump(plant, f)
    shutil.copy(os.path.join(REPO, "Stations", "tokens.json"), os.path.join(workdir, "tokens.json"))
    return path


def moved_plant_config(workdir):
    """A copy of the default plant whose simulated PLCs listen on free ports instead of the fixed ones
    (15010 …), for a second simulated server while the session's server holds those (the tokens file
    is copied beside it). Stations that shared a port still share its replacement."""
    with open(PLANT) as f:
        plant = json.load(f)
    moved = {}
    for station in plant["stations"]:
        match = re.match(r"^([a-z.]+://127\.0\.0\.1:)(\d+)(.*)$", station["endpoint"])
        if match:
            port = moved.setdefault(match.group(2), str(free_port()))
            station["endpoint"] = match.group(1) + port + match.group(3)
    path = os.path.join(workdir, "plant-moved.json")
    with open(path, "w") as f:
        json.dump(plant, f)
    shutil.copy(os.path.join(REPO, "Stations", "tokens.json"), os.path.join(workdir, "tokens.json"))
    return path


def make_driver(width=1920, height=1080, extra_args=()):
    """Headless Debian Chromium with the browser log on and a width × height viewport; over TLS
    (MES_BROWSER_TLS) it ignores certificate errors: the servers' test certificates are self-signed."""
    options = webdriver.ChromeOptions()
    profile = tempfile.mkdtemp(prefix="mes-chromium-")
    tls_args = ["--ignore-certificate-errors"] if TLS and "--ignore-certificate-errors" not in extra_args else []
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", f"--user-data-dir={profile}", *tls_args, *extra_args]:
        options.add_argument(arg)
    options.binary_location = "/usr/bin/chromium"
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver._mes_profile = profile
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    return driver


def quit_driver(driver):
    try:
        driver.quit()
    finally:
        shutil.rmtree(getattr(driver, "_mes_profile", ""), ignore_errors=True)


def severe_logs(driver, allow=()):
    """SEVERE browser-console entries, except those containing one of `allow`."""
    return [e for e in driver.get_log("browser")
            if e.get("level") == "SEVERE" and not any(a in e.get("message", "") for a in allow)]


def screenshot(driver, name):
    path = os.path.join(artifacts_dir(), name)
    driver.save_screenshot(path)
    return path


def plant_per_column(workdir, per_column):
    """A plant of the default plant's five processes with `per_column` stations each (copies of the
    default plant's station of that process), every PLC endpoint a loopback port nobody listens on;
    returns the config's path. The overview lays it out as five columns of `per_column` tiles."""
    with open(PLANT) as f:
        plant = json.load(f)
    templates = {}
    for station in plant["stations"]:
        templates.setdefault(station["process"], station)
    stations = []
    for process in plant["route"]:
        for i in range(per_column):
            station = json.loads(json.dumps(templates[process]))
            station["id"] = f"{station['id'].split('-')[0]}-{i + 1:02d}"
            station["name"] = f"{station['name']} {i + 1}"
            port = free_port()
            if station["protocol"] == "modbus":
                station["endpoint"] = f"modbus://127.0.0.1:{port}?unit=1"
            else:
                station["endpoint"] = f"opc.tcp://127.0.0.1:{port}"
            stations.append(station)
    plant["stations"] = stations
    path = os.path.join(workdir, f"plant-{per_column}-per-column.json")
    with open(path, "w") as f:
        json.dump(plant, f)
    shutil.copy(os.path.join(REPO, "Stations", "tokens.json"), os.path.join(workdir, "tokens.json"))
    return path


def set_viewport(driver, width, height):
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})


# Every element of the overview that leaves its box: a tile's descendants outside the tile, a tile
# outside its process column, anything outside the viewport, or a box whose content is cut
# (scrollHeight beyond clientHeight: text below its bottom edge). Text cut at the side with an
# ellipsis (a long name) is allowed: it is meant to be.
OVERFLOWS_JS = """
const out = [];
const vw = document.documentElement.clientWidth, vh = document.documentElement.clientHeight;
const r = (e) => e.getBoundingClientRect();
const name = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && typeof e.className === 'string' ? '.' + e.className.trim().split(/\\s+/).join('.') : '');
const outside = (a, b) => a.top < b.top - 0.5 || a.bottom > b.bottom + 0.5 || a.left < b.left - 0.5 || a.right > b.right + 0.5;
for (const sec of document.querySelectorAll('.topbar, #figures, #route, #andon, .figure, .process')) {
  const b = r(sec);
  if (b.bottom > vh + 0.5 || b.right > vw + 0.5) out.push(name(sec) + ' leaves the viewport: bottom ' + b.bottom + ' > ' + vh);
}
for (const tile of document.querySelectorAll('.tile')) {
  const tb = r(tile);
  const column = tile.closest('.process');
  if (column && outside(tb, r(column))) out.push(tile.id + ' leaves its process column');
  if (tile.scrollHeight > tile.clientHeight + 1) out.push(tile.id + ' content is cut: ' + tile.scrollHeight + ' > ' + tile.clientHeight);
  for (const e of tile.querySelectorAll('*')) {
    const b = r(e);
    if (b.width === 0 && b.height === 0) continue;
    if (outside(b, tb)) out.push(tile.id + ' ' + name(e) + ' outside the tile: ' + JSON.stringify([b.top, b.bottom, tb.top, tb.bottom]));
    else if (e.scrollHeight > e.clientHeight + 1 && getComputedStyle(e).overflowY !== 'visible') out.push(tile.id + ' ' + name(e) + ' content cut vertically');
  }
}
for (const f of document.querySelectorAll('.figure, .andon .count')) {
  if (f.scrollHeight > f.clientHeight + 1) out.push(name(f) + ' content is cut: ' + f.scrollHeight + ' > ' + f.clientHeight);
}
return out;
"""


def overview_overflows(driver):
    return driver.execute_script(OVERFLOWS_JS)
