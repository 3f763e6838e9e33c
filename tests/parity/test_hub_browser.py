"""A red hub opened in a real headless Chromium (Debian's chromium + chromium-driver, through
Selenium): it loads without console errors, every image decodes, every in-page link lands.

Never skipped: without Chromium the test fails and says to run `make browser`.
"""

import shutil

import pytest

from .factories import red_hub

pytestmark = pytest.mark.browser

CHROMIUM = ("chromium", "chromium-browser")
WIDTH_PX = 1280


def chromium_driver():
    browser = next((path for path in map(shutil.which, CHROMIUM) if path), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.fail(
            f"no Chromium ({'chromium' if browser is None else 'chromedriver'} is not on PATH): "
            "run `make browser` (apt-get installs chromium and chromium-driver)",
            pytrace=False,
        )
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is not installed: run `make setup` (it is in pyproject.toml)", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = browser  # with both paths given, Selenium never tries to download one
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={WIDTH_PX},900",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


@pytest.fixture(scope="module")
def browser():
    driver = chromium_driver()
    yield driver
    driver.quit()


PAGE_FACTS = """
const images = Array.from(document.images);
const links = Array.from(document.querySelectorAll('a[href^="#"]')).map(a => a.getAttribute('href'));
return {
  complete: document.readyState === 'complete',
  images: images.map(img => [img.getAttribute('src'), img.complete && img.naturalWidth > 0]),
  links: links.map(href => [href, document.getElementById(decodeURIComponent(href.slice(1))) !== null]),
  failLinks: Array.from(document.querySelectorAll('td.fail a')).length,
  overflowPx: document.documentElement.scrollWidth - document.documentElement.clientWidth,
  wideBlocks: Array.from(document.querySelectorAll('pre, table.failures')).filter(
    e => e.scrollWidth > e.clientWidth + 1).length,
};
"""


def open_page(driver, page):
    driver.get(page.as_uri())
    facts = driver.execute_script(PAGE_FACTS)
    errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    return facts, errors


def test_red_hub_loads_clean_with_images_and_working_links(browser, tmp_path, tol):
    hub = red_hub(tmp_path / "reports", tol)
    facts, errors = open_page(browser, hub / "index.html")
    assert facts["complete"]
    assert errors == [], "console errors or JS exceptions:\n" + "\n".join(errors)
    assert facts["images"] and [src for src, ok in facts["images"] if not ok] == []
    assert facts["failLinks"] == 3  # gs1: config, forward, bundle
    assert [href for href, ok in facts["links"] if not ok] == []
    assert {"#fail-gs1-config", "#fail-gs1-forward"} <= {href for href, _ in facts["links"]}
    assert facts["overflowPx"] <= 0, "the page scrolls sideways: a long line does not wrap"
    assert facts["wideBlocks"] == 0, "a message or the failures table scrolls sideways: a long line does not wrap"
