"""The built site in a real browser: Debian's Chromium, headless, driven by Selenium.

The site is served on 127.0.0.1 (a free port, in a thread); Chromium gets a fresh profile and
no network features. Every page must load with no console error, navigation must work, plots
must be decoded images, and no page may scroll sideways on a phone.

Run as a script to refresh the README's screenshot of the portfolio, from this checkout's
committed results and a lab (default: the default lab):

    uv run python tests/test_site_browser.py docs/portfolio.png [--lab PATH]
"""

from __future__ import annotations

import base64
import importlib.util
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
_MISSING = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        bool(_MISSING),
        reason=f"no {' or '.join(_MISSING)}: `apt-get install chromium chromium-driver` runs these tests",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("selenium") is None,
        reason="selenium is not installed (it is in the dev dependency group): `uv sync` runs these tests",
    ),
]


@contextmanager
def serving(folder: Path) -> Iterator[str]:
    """The site at `folder` on http://127.0.0.1:<free port>/ while the block runs."""
    from inferlab.site import make_server

    server = make_server(folder, 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def chromium(profile: Path, width: int = 1280, height: int = 900):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console messages, read per page
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver) -> list[str]:
    """Console messages at error level since the last call (failed loads are among them)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def screenshot(driver, url: str, path: Path, width: int = 1100) -> None:
    """The whole page as a PNG, not only the first screenful."""

    def viewport(height: int) -> None:
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)

    viewport(800)  # lay the page out at `width` first: its height depends on it
    driver.get(url)
    viewport(driver.execute_script("return document.documentElement.scrollHeight"))
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    from inferlab.site import build_site
    from test_site_support import make_lab

    lab = make_lab(tmp_path_factory.mktemp("browser") / "lab")
    return build_site(lab, repo_results=None).out


@pytest.fixture(scope="module")
def base_url(site) -> Iterator[str]:
    with serving(site) as url:
        yield url


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as d:
        yield d


def test_every_page_loads_with_no_console_error(site, base_url, driver):
    console_errors(driver)  # start clean
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))
    assert len(pages) > 10
    for page in pages:
        driver.get(base_url + page)
        assert driver.execute_script("return document.readyState") == "complete"
        assert driver.title.endswith("· inferlab"), page
        assert console_errors(driver) == [], page


def test_navigation_from_the_index_to_a_lesson_and_back(base_url, driver):
    from selenium.webdriver.common.by import By

    driver.get(base_url + "index.html")
    driver.find_element(By.PARTIAL_LINK_TEXT, "Thread → Block → Grid").click()
    assert driver.current_url.endswith("lessons/0001-thread-block-grid/index.html")
    assert driver.find_element(By.TAG_NAME, "h1").text.startswith("Lesson 1:")
    diagram = driver.find_element(By.CSS_SELECTOR, "figure img")
    assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", diagram) > 0
    driver.back()
    assert driver.current_url == base_url + "index.html"
    driver.find_element(By.LINK_TEXT, "Portfolio").click()
    assert driver.find_element(By.TAG_NAME, "h1").text == "Portfolio"
    assert console_errors(driver) == []


def test_plots_are_visible_images(base_url, driver):
    from selenium.webdriver.common.by import By

    for page in ("benchmarks/lab-20260101T000000Z-bench.html", "portfolio.html"):
        driver.get(base_url + page)
        plots = driver.find_elements(By.CSS_SELECTOR, "figure.plot img")
        assert plots, page
        for img in plots:
            driver.execute_script("arguments[0].scrollIntoView()", img)  # lazy images load once near
            assert img.is_displayed()
            width = driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img)
            assert width > 0, (page, img.get_attribute("src"))


def test_learner_script_never_runs(base_url, driver):
    driver.get(base_url + "records/0002.html")
    assert driver.execute_script("return document.scripts.length") == 0
    body = driver.find_element("tag name", "main").text
    assert "<script>alert(1)</script>" in body and "<img src=x onerror=alert(2)>" in body


def test_no_page_scrolls_sideways_on_a_phone(site, base_url, tmp_path):
    with chromium(tmp_path / "profile", width=390, height=844) as phone:
        for page in (
            "index.html",
            "records/index.html",
            "lessons/0001-thread-block-grid/index.html",
            "benchmarks/lab-20260101T000000Z-bench.html",
            "portfolio.html",
        ):
            phone.get(base_url + page)
            overflow = phone.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{page} is {overflow}px wider than a phone"


def test_portfolio_screenshot(base_url, driver, tmp_path):
    path = tmp_path / "portfolio.png"
    screenshot(driver, base_url + "portfolio.html", path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def main(argv: list[str]) -> None:
    """`test_site_browser.py OUT.png [--lab PATH]`: build, serve and photograph the portfolio."""
    from inferlab.lab import Lab
    from inferlab.site import build_site

    out = Path(argv[0])
    lab = Lab.open(Path(argv[argv.index("--lab") + 1]) if "--lab" in argv else None)
    with tempfile.TemporaryDirectory() as tmp:
        report = build_site(lab, Path(tmp) / "site")
        with serving(report.out) as url, chromium(Path(tmp) / "profile") as driver:
            screenshot(driver, url + "portfolio.html", out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
