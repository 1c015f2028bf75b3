"""The dashboards over HTTPS (mes-server --tls-cert/--tls-key, README "HTTPS"): Chromium trusting
nothing but told to ignore certificate errors for the test certificate; the same page checks as
over plain HTTP, with the live event stream over TLS. The whole suite runs over TLS with
MES_BROWSER_TLS=1 (tools/test does so in its second pass); these tests serve HTTPS in either pass."""
import urllib.error
import urllib.request

import pytest

import mesbrowser
from mesbrowser import js, wait
from test_dashboards import STATIONS, banner_visible, tile_values, wait_live, wait_tiles


@pytest.fixture(scope="module")
def https_server():
    srv = mesbrowser.MesServer(tls=True)
    # The session's plain server simulates the plant on its fixed ports: this one on free ones.
    srv.config = mesbrowser.moved_plant_config(srv.workdir)
    srv.start()
    yield srv
    srv.cleanup()


@pytest.fixture
def tls_driver():
    d = mesbrowser.make_driver(extra_args=("--ignore-certificate-errors",))
    yield d
    mesbrowser.quit_driver(d)


def test_overview_live_over_https(https_server, tls_driver):
    driver = tls_driver
    assert https_server.base.startswith("https://")
    driver.get(https_server.base + "/")
    wait_tiles(driver)
    wait_live(driver)
    assert js(driver, "return location.protocol") == "https:"
    wait(driver, 40, lambda d: js(d, "return Array.from(document.querySelectorAll('.tile')).every(t => t.dataset.connection === 'online')"),
         "not every station tile turned online")
    first = tile_values(driver)
    wait(driver, 15, lambda d: tile_values(d) != first, f"no tile measurement changed from {first} over the TLS event stream")
    wait(driver, 30, lambda d: js(d, "return MES.metrics.applied") > 0, "the page applied no live event over TLS")
    assert len(tile_values(driver)) == STATIONS
    mesbrowser.screenshot(driver, "overview-https.png")
    assert not banner_visible(driver)
    assert mesbrowser.severe_logs(driver) == []


def assert_plain_http_refused(srv):
    """A plain HTTP request on the server's TLS port: 400 https_required (urllib straight, no TLS)."""
    plain = srv.base.replace("https://", "http://")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(plain + "/api/health", timeout=5)
    assert refused.value.code == 400
    assert b"https_required" in refused.value.read()


def test_plain_http_on_the_https_port_is_refused(https_server):
    assert_plain_http_refused(https_server)


def test_the_session_server_follows_the_tls_switch(server):
    """MES_BROWSER_TLS decides whether the suite's servers serve HTTPS: the pass over TLS is over TLS."""
    status, health = server.get("/api/health")
    assert status == 200 and health["status"] == "ok", (status, health)
    if mesbrowser.TLS:
        assert server.base.startswith("https://") and server.tls_context is not None
        assert_plain_http_refused(server)
    else:
        assert server.base.startswith("http://") and server.tls_context is None
