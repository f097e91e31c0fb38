"""The HTML report of a full run, opened in a real browser: Debian's headless Chromium,
driven by Selenium through Debian's chromium-driver (never a downloaded browser). Every
plot must have rendered (an SVG of real size whose axes have extent, tick labels and a
label naming the unit), no image may be broken, the console must hold no error, and a
screenshot is kept in the test's output folder (``pytest --basetemp=DIR`` keeps it
where you choose)."""

from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path

import pytest

from conftest import cli
from recorded import AMD, imported

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None)

pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="no browser: apt install chromium chromium-driver")

PLOTS = """
const out = [];
for (const svg of document.querySelectorAll('svg.plot')) {
  const r = svg.getBoundingClientRect();
  const axes = [...svg.querySelectorAll('g')].filter(g => /-axes_\\d+$/.test(g.id));
  const axisInfo = [...svg.querySelectorAll('g')].filter(g => /matplotlib\\.axis_\\d+$/.test(g.id)).map(g => ({
    ticks: [...g.querySelectorAll('g')].filter(t => /tick_\\d+$/.test(t.id))
             .map(t => t.textContent.trim()).filter(Boolean).length,
    label: [...g.children].filter(c => /-text_\\d+$/.test(c.id)).map(c => c.textContent.trim()).join(' '),
  }));
  out.push({id: svg.closest('section') ? svg.closest('section').id : '', width: r.width, height: r.height,
            axes: axes.map(g => { const b = g.getBBox(); return [b.width, b.height]; }),
            axis: axisInfo, marks: svg.querySelectorAll('path, use').length});
}
return out;
"""

IMAGES = """
return [...document.images].map(i => ({src: i.src.slice(0, 60), ok: i.complete && i.naturalWidth > 0}))
  .concat([...document.querySelectorAll('svg image')].map(i => ({src: 'svg image', ok: false})));
"""


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1600", "--hide-scrollbars"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_a_full_run_renders_in_chromium(browser, tmp_path):
    db = tmp_path / "perflab.db"
    run = imported(db, AMD)  # the AMD machine's full default run, 33 claims
    page = tmp_path / "report.html"
    p = cli("report", run, "-o", str(page), "--db", str(db))
    assert p.returncode == 0, p.stderr
    svgs_in_file = page.read_text().count("<svg ")

    browser.get(page.as_uri())
    assert browser.title.startswith("perflab report")
    plots = browser.execute_script(PLOTS)
    assert len(plots) == svgs_in_file > 50
    for plot in plots:
        where = plot["id"]
        assert plot["width"] > 300 and plot["height"] > 60, plot
        assert plot["axes"] and all(w > 100 and h > 20 for w, h in plot["axes"]), plot
        assert plot["marks"] > 5, plot  # lines, markers, regions: something was drawn
        for axis in plot["axis"]:
            if axis["ticks"]:  # a shown axis: ticked, and labelled with its unit in parentheses
                assert re.search(r"\(.+\)", axis["label"], re.S), (where, axis)
        assert sum(1 for a in plot["axis"] if a["ticks"]) >= 1, plot
    assert all(img["ok"] for img in browser.execute_script(IMAGES))
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert not errors, errors

    # screenshots: the top of the page, and the fork claim's section (THP and 4 KiB side by side)
    browser.save_screenshot(str(tmp_path / "report-top.png"))
    section = browser.find_element("id", "c0-fork.cost-grows-with-memory")
    section.screenshot(str(tmp_path / "report-fork.png"))
    height = browser.execute_script("return document.documentElement.scrollHeight")
    shot = browser.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": 1280, "height": min(height, 16000), "scale": 0.5}})
    (tmp_path / "report-page.png").write_bytes(base64.b64decode(shot["data"]))
    for name in ("report-top.png", "report-fork.png", "report-page.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, name
    print(f"screenshots in {tmp_path}")
