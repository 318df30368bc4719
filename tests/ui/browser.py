"""A real headless Chromium driven by Selenium, for the dashboard tests.

    driver = start_browser()              # skips the test (with the reason) when impossible
    page = Page(driver, base_url)
    page.open("#/cluster", "#members tr[data-role]")   # load, wait for the selector
    page.console_errors()                 # SEVERE console entries since the last call
    page.screenshot("cluster")            # docs/ui-cluster.png, only with FSM_UI_SCREENSHOTS=1

Chromium and its driver come from Debian (`chromium`, `chromium-driver`), which
./scripts/test installs when missing. Every wait is bounded.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
WAIT = 20.0  # seconds: generous, the two cores are shared with other suites


def start_browser() -> Any:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip("no chromium/chromedriver on PATH: ./scripts/test installs them "
                    "(apt-get install chromium chromium-driver, as root)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed: pip install -e '.[test]'")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1360,1000", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(driver_path))


class Page:
    def __init__(self, driver: Any, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url.rstrip("/")

    def open(self, fragment: str, ready_css: str) -> Any:
        self.driver.get(f"{self.base_url}/ui/{fragment}")
        return self.wait_css(ready_css)

    def wait_css(self, css: str, timeout: float = WAIT) -> Any:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout).until(
            lambda d: d.find_element(By.CSS_SELECTOR, css) if d.find_elements(By.CSS_SELECTOR, css) else False,
            f"no element matches {css!r} within {timeout} s",
        )

    def wait_text(self, css: str, text: str, timeout: float = WAIT) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(self.driver, timeout).until(
            lambda d: text in self.text(css), f"{css!r} never showed {text!r}"
        )

    def text(self, css: str) -> str:
        from selenium.webdriver.common.by import By

        found = self.driver.find_elements(By.CSS_SELECTOR, css)
        return found[0].text if found else ""

    def all(self, css: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def click(self, css: str, timeout: float = WAIT) -> None:
        """Finds the element and clicks it; if the view re-rendered between the two (the old
        element is stale: e.g. once when a token is set, again when its data arrives), finds
        it again, as a user clicks the button on the screen, within the same bounded wait."""
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        def clicked(driver: Any) -> bool:
            found = driver.find_elements(By.CSS_SELECTOR, css)
            if not found:
                return False
            found[0].click()
            return True

        WebDriverWait(self.driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(
            clicked, f"no element matches {css!r} (or it kept going stale) within {timeout} s")

    def console_errors(self, allow: tuple[str, ...] = ()) -> list[str]:
        entries = self.driver.get_log("browser")
        return [e["message"] for e in entries
                if e["level"] == "SEVERE" and not any(a in e["message"] for a in allow)]

    def screenshot(self, name: str) -> None:
        """docs/ui-NAME.png, rewritten only when FSM_UI_SCREENSHOTS=1 (so CI leaves the tree clean)."""
        if os.environ.get("FSM_UI_SCREENSHOTS") != "1":
            return
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1360, min(max(int(height) + 120, 700), 2200))
        (ROOT / "docs").mkdir(exist_ok=True)
        self.driver.save_screenshot(str(ROOT / "docs" / f"ui-{name}.png"))
        self.driver.set_window_size(1360, 1000)
