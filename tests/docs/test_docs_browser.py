"""The site as a reader meets it: ``make docs``'s output opened in headless Chromium. Screenshots of the
home page, the tutorial and the settings reference; no console error, no request that failed, nothing
loaded from outside the site, and the flow diagram drawn by Mermaid."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.docs.site import build_site, serve

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (scripts/install-system-deps.sh installs them)",
)
PAGES = {"home": "/", "tutorial": "/tutorial/first-handler/", "settings": "/reference/settings/"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[tuple[str, int]]]]:
    with serve(build_site(tmp_path_factory.mktemp("site"))) as served:
        yield served


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,1600")
    options.binary_location = str(CHROMIUM)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def screenshots_dir(tmp_path: Path) -> Path:
    """Where the screenshots go: ``SALESFLOW_DOCS_SCREENSHOTS`` when set (to keep them), else a temp dir."""
    target = Path(os.environ.get("SALESFLOW_DOCS_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


def open_page(browser: Any, url: str) -> list[dict[str, Any]]:
    """Load a page and wait until it has settled; returns the browser console's entries."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get_log("browser")  # drop what an earlier page left
    browser.get(url)
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")
    return list(browser.get_log("browser"))


@pytest.mark.parametrize("name", PAGES)
def test_page_renders_without_console_errors_or_missing_assets(
    name: str, site: tuple[str, list[tuple[str, int]]], browser: Any, tmp_path: Path
) -> None:
    base, statuses = site
    statuses.clear()
    console = open_page(browser, base + PAGES[name])
    shot = screenshots_dir(tmp_path) / f"{name}.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000, "a blank screenshot"
    assert [e for e in console if e["level"] == "SEVERE"] == [], "console errors"
    assert [(path, code) for path, code in statuses if code >= 400] == [], "requests that failed"
    outside = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(n => !n.startsWith(location.origin) && !n.startsWith('data:') && !n.startsWith('blob:'))"
    )
    assert outside == [], "the site loads nothing from outside"
    assert browser.find_element("css selector", "h1").text, "the page has its title"


def test_the_flow_diagram_is_drawn(site: tuple[str, list[tuple[str, int]]], browser: Any) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    base, _ = site
    open_page(browser, base + PAGES["home"])
    # Material draws the diagram into a closed shadow root: what shows from outside is its size.
    drawn = "const m = document.querySelector('div.mermaid'); return !!m && m.getBoundingClientRect().height > 150;"
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(drawn))


def test_the_settings_reference_lists_the_settings(site: tuple[str, list[tuple[str, int]]], browser: Any) -> None:
    base, _ = site
    open_page(browser, base + PAGES["settings"])
    text = browser.find_element("css selector", "article").text
    assert "SALESFLOW_KAFKA_BOOTSTRAP_SERVERS" in text and "SALESFLOW_OUTBOX_BATCH_SIZE" in text
