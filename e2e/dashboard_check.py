"""Drives wisp's dashboard in headless Chromium (Debian's chromium and
chromium-driver, python3-selenium): it loads the page, reads the worker
pids, presses recycle for the pool, and waits until the pids change with no
page reload. Prints a JSON line with what it saw; exits non-zero on failure.

    python3 dashboard_check.py URL POOL [SCREENSHOT.png]
"""
import json
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By


def pids(driver, pool):
    # read in one script: the table is drawn again every second
    return sorted(driver.execute_script(
        "return Array.from(document.querySelectorAll('span.pid'))"
        ".filter(e => e.dataset.pool === arguments[0]).map(e => e.textContent)", pool))


def wait(what, cond, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.2)
    raise SystemExit("timed out waiting for " + what)


def main():
    url, pool = sys.argv[1], sys.argv[2]
    shot = sys.argv[3] if len(sys.argv) > 3 else None
    opts = Options()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"):
        opts.add_argument(a)
    opts.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        driver.get(url)
        loaded = driver.execute_script("return window.wispLoadedAt")
        before = wait("the worker pids", lambda: pids(driver, pool))
        wait("the rate chart's first interval", lambda: driver.execute_script("return document.getElementById('rateNow').textContent"))
        clicked = driver.execute_script(
            "const b = document.querySelector(`button.act-recycle[data-pool='${arguments[0]}']`);"
            "if (!b) return false; b.click(); return true;", pool)
        if not clicked:
            raise SystemExit("no recycle button for pool " + pool)
        after = wait("new pids", lambda: (lambda p: p if p and not set(p) & set(before) else None)(pids(driver, pool)), 60)
        if driver.execute_script("return window.wispLoadedAt") != loaded:
            raise SystemExit("the page reloaded")
        trace = wait("the live trace", lambda: driver.execute_script("return document.getElementById('trace').textContent"))
        events = wait("the recycles", lambda: (lambda t: t if "recycled" in t else None)(
            driver.execute_script("return document.getElementById('events').textContent")))
        if shot:
            time.sleep(1.5)  # a few points on the charts
            driver.save_screenshot(shot)
        driver.set_window_size(390, 844)  # a phone
        narrow = driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        print(json.dumps({"before": before, "after": after, "trace": trace[:200], "events": events, "phone_fits": narrow}))
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
