"""The report in a real headless browser: Debian's chromium driven by selenium through chromium-driver
(both installed by `.ci/run`). The page must render from a file:// URL with no console error (a
blocked fetch or a broken image is one), every image decoded, every section laid out. A full-page
screenshot and the navigation timing are kept as artifacts in ``$REPCURATE_ARTIFACTS`` (default
``test-artifacts/`` at the repository root)."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
#: Tallest full-page screenshot taken (pixels).
MAX_SCREENSHOT_HEIGHT = 16000


def artifacts_dir() -> Path:
    directory = Path(os.environ.get("REPCURATE_ARTIFACTS") or Path(__file__).resolve().parents[2] / "test-artifacts")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; .ci/run installs it (apt-get install chromium chromium-driver, pip install '.[test]')")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("selenium is not installed")
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        _unavailable(f"{CHROMIUM} or {CHROMEDRIVER} is missing")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--hide-scrollbars", "--window-size=1280,1000", "--force-device-scale-factor=1"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _open(driver, page: Path) -> list[dict]:
    driver.get_log("browser")  # drop anything left from a previous page
    driver.get(page.resolve().as_uri())
    assert driver.execute_script("return document.readyState") == "complete"
    return driver.get_log("browser")


def _errors(logs: list[dict]) -> list[dict]:
    return [entry for entry in logs if entry["level"] in ("SEVERE", "ERROR")]


def test_report_renders_without_errors(browser, report_project, tmp_path, capsys, record_property):
    page = tmp_path / "report.html"
    report_project.full_report(page)
    logs = _open(browser, page)
    assert _errors(logs) == [], logs

    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight]);")
    assert len(images) > 100
    broken = [i for i in images if not (i[1] and i[2] > 0 and i[3] > 0)]
    assert broken == []
    for section in ("provenance", "set", "coverage", "checks", "confirm", "doctor"):
        height = browser.execute_script(f"return document.getElementById('{section}').getBoundingClientRect().height;")
        assert height > 50, section
    cards = browser.execute_script(
        "return Array.from(document.querySelectorAll('.card')).map(c => [c.id, getComputedStyle(c).borderLeftColor]);")
    colours = dict(cards)
    assert colours["check-preprocessing_parity"] == "rgb(198, 40, 40)"  # --fail
    assert colours["check-set_size"] == "rgb(26, 127, 55)"  # --pass
    timing = browser.execute_script(
        "const n = performance.getEntriesByType('navigation')[0];"
        "return {dom_content_loaded_ms: n.domContentLoadedEventEnd, load_ms: n.loadEventEnd, bytes: n.decodedBodySize};")

    height = min(int(browser.execute_script("return document.documentElement.scrollHeight;")), MAX_SCREENSHOT_HEIGHT)
    browser.set_window_size(1280, height)
    shot = tmp_path / "report-screenshot.png"
    assert browser.save_screenshot(str(shot))
    browser.set_window_size(1280, 1000)
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("L"))
    assert pixels.shape[0] > 2000 and pixels.std() > 20  # a long, non-blank page
    kept = artifacts_dir()
    shutil.copyfile(shot, kept / "report-screenshot.png")
    shutil.copyfile(page, kept / "report.html")
    (kept / "report-timing.json").write_text(json.dumps(timing, indent=2) + "\n")
    record_property("screenshot", str(kept / "report-screenshot.png"))
    with capsys.disabled():  # shown even when pytest captures output
        print(f"\nreport rendered in {timing['load_ms']:.0f} ms ({timing['bytes'] / 1e6:.2f} MB); "
              f"screenshot: {kept / 'report-screenshot.png'}")


def test_the_console_check_catches_a_blocked_fetch(browser, report_project, tmp_path):
    """Control: the same page with one external image gets a console error (the page's CSP refuses
    the fetch, so nothing leaves the machine) — the test above is not vacuous."""
    page = tmp_path / "report.html"
    html = report_project.full_report(page)
    leaky = tmp_path / "leaky.html"
    leaky.write_text(html.replace("</footer>", '<img src="https://example.invalid/x.png" alt="x"></footer>'))
    errors = _errors(_open(browser, leaky))
    assert errors and any("example.invalid" in e["message"] for e in errors), errors
