"""Fixtures: one mes-server on the default simulated plant for the session, a fresh headless Chromium per test.
With MES_BROWSER_TLS=1 every server serves HTTPS and every Chromium ignores the test certificate's errors
(mesbrowser.py): tools/test runs the suite so a second time."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import mesbrowser  # noqa: E402


@pytest.fixture(scope="session")
def server():
    srv = mesbrowser.MesServer()
    srv.start()
    yield srv
    srv.cleanup()


@pytest.fixture(scope="module")
def offline_server():
    """A server whose every PLC is unreachable: each station raises a `connection` alert within seconds."""
    srv = mesbrowser.MesServer(simulate=False)
    srv.config = mesbrowser.offline_plant_config(srv.workdir)
    srv.start()
    yield srv
    srv.cleanup()


@pytest.fixture
def driver():
    d = mesbrowser.make_driver()
    yield d
    mesbrowser.quit_driver(d)
