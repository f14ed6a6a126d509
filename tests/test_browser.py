"""The demo's HTML report in a real headless browser: Chromium and chromedriver from Debian's
packages (`make setup` installs them when run as root), driven by selenium.  The demo is run once
on the default network; the page must load without console errors, show every figure (loaded and
not blank), hold the fitted models' numbers, sort its tables, fit a phone's width and print.
Screenshots of the page are kept as test artefacts in $SPARSEREML_ARTIFACTS, else
build/test-artifacts/ (`make screenshot` copies the desktop one to docs/report-screenshot.png)."""
from __future__ import annotations

import base64
import io
import os
import shutil
from pathlib import Path

import pytest

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip(f"headless Chromium not installed (chromium: {CHROMIUM}, chromedriver: {CHROMEDRIVER}); "
                "Debian: apt-get install chromium chromium-driver (make setup does it as root)",
                allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (pip install -e '.[test]')")
from PIL import Image, ImageStat  # noqa: E402  (matplotlib's dependency)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

from sparsereml.demo import run_demo  # noqa: E402
from sparsereml.report_content import format_value  # noqa: E402

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
DESKTOP, PHONE = (1200, 1000), (390, 844)

# The table after a heading (an <h3> of a section) as its header cells and rows of visible text.
TABLE_JS = """
var title = arguments[1];
var h = Array.from(document.querySelectorAll('#' + arguments[0] + ' h3'))
             .find(function (e) { return e.textContent.trim() === title; });
if (!h) return null;
for (var e = h.nextElementSibling; e && e.tagName !== 'H3'; e = e.nextElementSibling) {
  var t = e.querySelector('table');
  if (t) return {head: Array.from(t.tHead.rows[0].cells, function (c) { return c.innerText.trim(); }),
                 rows: Array.from(t.tBodies[0].rows, function (r) {
                   return Array.from(r.cells, function (c) { return c.innerText.trim(); }); })};
}
return null;
"""

# How many figures a section (by its <h3>) shows before the next heading.
FIGURES_JS = """
var title = arguments[1], n = 0;
var h = Array.from(document.querySelectorAll('#' + arguments[0] + ' h3'))
             .find(function (e) { return e.textContent.trim() === title; });
for (var e = h && h.nextElementSibling; e && e.tagName !== 'H3'; e = e.nextElementSibling)
  n += e.tagName === 'FIGURE' ? 1 : 0;
return n;
"""


def artifacts() -> Path:
    d = Path(os.environ.get("SPARSEREML_ARTIFACTS") or REPO / "build" / "test-artifacts")
    d.mkdir(parents=True, exist_ok=True)
    return d


def grey_std(png: bytes) -> float:
    return ImageStat.Stat(Image.open(io.BytesIO(png)).convert("L")).stddev[0]


@pytest.fixture(scope="module")
def demo(tmp_path_factory, backend):
    """The real demo, once: the report's file:// URL and the fits."""
    path = tmp_path_factory.mktemp("demo") / "demo.html"
    fits = run_demo(report=path, backend=backend, say=lambda *a: None, survival=False)  # the report is m2, m2b, m2c
    return path.as_uri(), fits


@pytest.fixture(scope="module")
def driver():
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--force-device-scale-factor=1"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    yield drv
    drv.quit()


def load(driver, url: str, size: tuple[int, int]) -> None:
    driver.set_window_size(*size)
    driver.get(url)
    assert driver.execute_script("return document.readyState") == "complete"


def table(driver, section: str, heading: str) -> dict:
    t = driver.execute_script(TABLE_JS, section, heading)
    assert t is not None, f"no table under {heading!r} in #{section}"
    return t


def column(t: dict, name: str) -> list[str]:
    k = t["head"].index(name)
    return [r[k] for r in t["rows"]]


def test_page_loads_without_console_errors(demo, driver):
    url, _ = demo
    driver.get_log("browser")  # drop anything logged before this page
    load(driver, url, DESKTOP)
    assert "sparsereml demo" in driver.title
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


def test_every_figure_is_loaded_and_not_blank(demo, driver):
    url, fits = demo
    load(driver, url, DESKTOP)
    # the sections that draw, all in the comparison: the data, each random term (its caterpillar
    # in every model that has it), the residuals and the iterations (every model's side by side)
    terms = dict.fromkeys(t for m in fits.values() for t in m.random_terms)
    expected = [["comparison", "Data"]] + [["comparison", f"Random effects: {t}"] for t in terms]
    expected += [["comparison", "Residuals"], ["comparison", "Iterations"]]
    empty = [where for where in expected if not driver.execute_script(FIGURES_JS, *where)]
    assert not empty, f"sections without a figure: {empty}"
    imgs = driver.find_elements(By.CSS_SELECTOR, "img")
    assert len(imgs) == len(driver.find_elements(By.CSS_SELECTOR, "figure")) >= len(expected)
    for img in imgs:
        alt = img.get_attribute("alt")
        assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 0, alt
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", img)
        assert grey_std(img.screenshot_as_png) > 5, f"blank figure: {alt}"


def test_tables_hold_the_fitted_numbers(demo, driver):
    url, fits = demo
    load(driver, url, DESKTOP)
    compared = table(driver, "comparison", "Models compared")
    loglik = dict(zip(column(compared, "model"), column(compared, "logLik")))
    assert loglik == {name: f"{m.loglik:.4f}" for name, m in fits.items()}
    vc = table(driver, "m-m2", "Variance components")
    shown = dict(zip(column(vc, "term"), column(vc, "component")))
    expected = {label: format_value(v) for label, v in fits["m2"].varcomp["component"].items()}
    assert shown == expected


def test_a_click_on_a_heading_sorts_the_table(demo, driver):
    url, _ = demo
    load(driver, url, DESKTOP)
    ranked = table(driver, "m-m2", "Random effects: Mother")
    pairs = sorted(zip(column(ranked, "Mother"), column(ranked, "BLUP")))
    th = driver.find_element(By.XPATH, "//section[@id='m-m2']//h3[.='Random effects: Mother']"
                                       "/following-sibling::div[@class='table-wrap'][1]//th[.='BLUP']")
    for order in ("ascending", "descending"):
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", th)
        th.click()
        assert th.get_attribute("aria-sort") == order
        now = table(driver, "m-m2", "Random effects: Mother")
        blup = [float(v) for v in column(now, "BLUP")]
        assert blup == sorted(blup, reverse=order == "descending"), order
        assert sorted(zip(column(now, "Mother"), column(now, "BLUP"))) == pairs  # whole rows moved


def test_phone_width_has_no_sideways_scroll(demo, driver):
    url, _ = demo
    load(driver, url, PHONE)
    assert driver.execute_script("return window.innerWidth") == PHONE[0]
    width = driver.execute_script("return document.documentElement.clientWidth")  # less a scroll bar
    assert driver.execute_script("return document.documentElement.scrollWidth") <= width + 1
    widths = driver.execute_script(
        "return Array.from(document.images, function (i) { return i.getBoundingClientRect().width; })")
    assert max(widths) <= width
    # the wide tables scroll inside their box instead
    assert driver.execute_script("return Array.from(document.querySelectorAll('.table-wrap'))"
                                 ".some(function (w) { return w.scrollWidth > w.clientWidth; })")


def test_print_hides_the_contents_and_shows_whole_tables(demo, driver):
    url, _ = demo
    load(driver, url, DESKTOP)
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        assert driver.execute_script("return getComputedStyle(document.querySelector('nav')).display") == "none"
        cut = driver.execute_script("return Array.from(document.querySelectorAll('.table-wrap'))"
                                    ".filter(function (w) { return w.scrollHeight > w.clientHeight + 1; }).length")
        assert cut == 0
    finally:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    # DevTools' printToPDF, not driver.print_page(): chromedriver gives that 10 s, which a busy
    # machine exceeds (the layout is the whole page's); two pages: the whole report is 167, 11 MB
    pdf = base64.b64decode(driver.execute_cdp_cmd("Page.printToPDF", {"pageRanges": "1-2"})["data"])
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000


def test_screenshots_are_kept(demo, driver):
    url, _ = demo
    out = artifacts()
    load(driver, url, (DESKTOP[0], 2400))
    shot = Image.open(io.BytesIO(driver.get_screenshot_as_png()))
    top = shot.crop((0, 0, min(shot.width, 1200), min(shot.height, 1600)))
    top.save(out / "report-desktop.png", optimize=True)
    load(driver, url, PHONE)
    driver.save_screenshot(str(out / "report-phone.png"))
    for name in ("report-desktop.png", "report-phone.png"):
        png = (out / name).read_bytes()
        assert grey_std(png) > 5 and len(png) < 600_000, name
