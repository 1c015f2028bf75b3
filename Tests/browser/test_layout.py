"""The 1080p overview: no element leaves its tile, and no tile its column or the screen, with 1, 2 and
4 stations in each process column, at 1920x900, 1920x937 (what `--window-size=1920,1080` leaves for the
page) and 1920x1080, in English and Chinese. Tiles are filled with their widest content first."""
import os
import time

import pytest

import mesbrowser
from mesbrowser import js, wait

FILL = open(os.path.join(os.path.dirname(__file__), "fill_tiles.js")).read()
VIEWPORTS = (900, 937, 1080)


@pytest.mark.parametrize("per_column", [1, 2, 4])
def test_overview_tiles_never_clip(per_column):
    server = mesbrowser.MesServer(simulate=False)
    server.config = mesbrowser.plant_per_column(server.workdir, per_column)
    server.start()
    driver = mesbrowser.make_driver()
    try:
        driver.get(server.base + "/")
        wait(driver, 30, lambda d: js(d, "return !!MES.current && document.querySelectorAll('.tile').length") == 5 * per_column,
             f"the overview never showed {5 * per_column} tiles")
        assert js(driver, "return document.body.dataset.rows") == str(per_column)
        driver.set_script_timeout(30)
        driver.execute_async_script(FILL)
        # every other station went offline: its age badge appears with the next freshness tick
        wait(driver, 10, lambda d: js(d, "return document.querySelectorAll('.tile .head > .age').length") >= 2 * per_column,
             "the offline tiles never showed their age")
        problems = []
        for lang in ("en", "zh"):
            js(driver, "MES.setLang(arguments[0])", lang)
            for height in VIEWPORTS:
                mesbrowser.set_viewport(driver, 1920, height)
                # the layout settles within a frame or two of the resize
                deadline = time.monotonic() + 5
                found = mesbrowser.overview_overflows(driver)
                while found and time.monotonic() < deadline:
                    time.sleep(0.2)
                    found = mesbrowser.overview_overflows(driver)
                if found:
                    mesbrowser.screenshot(driver, f"overflow-{per_column}-{lang}-{height}.png")
                    problems += [f"{per_column} a column, {lang}, 1920x{height}: {p}" for p in found[:5]]
                elif height in (937, 1080):
                    mesbrowser.screenshot(driver, f"overview-{per_column}-per-column-{lang}-{height}.png")
        assert problems == []
        assert mesbrowser.severe_logs(driver) == []
    finally:
        mesbrowser.quit_driver(driver)
        server.cleanup()
