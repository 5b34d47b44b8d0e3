"""Drives wisp's dashboard in headless Chromium (Debian's chromium and
chromium-driver, python3-selenium). Prints a JSON line with what it saw;
exits non-zero when the page does not get that far.

    python3 dashboard_check.py URL POOL [SCREENSHOT.png]

loads the page, reads the worker pids, presses recycle for the pool, and
waits until the pids change with no page reload.

    python3 dashboard_check.py --layout URL POOL,POOL... OUTDIR

measures the page as a person sees it, at 390x844 (a phone) and 1280x800: where
each pool's buttons are (scrolled to vertically, as a person would), whether
the page or a table scrolls sideways, the pools' rate, p50, p99 and error
cells, whether a button stays the same element across refreshes; then, on the
phone, presses stop once (it must only ask), twice (it stops the first pool),
and start. Screenshots go to OUTDIR (dashboard-390.png, dashboard-1280.png).
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


def worker_states(driver, pool):
    # each worker's state, as its row (or card) shows it
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('span.pid')).filter(e => e.dataset.pool === arguments[0])"
        ".map(e => (e.closest('tr').querySelector('[class*=state-]') || {}).textContent || '')", pool)


def wait(what, cond, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.2)
    raise SystemExit("timed out waiting for " + what)


def browser():
    opts = Options()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900",
              "--disable-background-networking", "--no-first-run", "--hide-scrollbars"):
        opts.add_argument(a)
    opts.binary_location = "/usr/bin/chromium"
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def viewport(driver, w, h):
    """Sizes the window so that the page's viewport (innerWidth x innerHeight)
    is w x h: a window's frame is not the page's."""
    driver.set_window_size(w, h)
    for _ in range(3):
        iw, ih = driver.execute_script("return [window.innerWidth, window.innerHeight]")
        if (iw, ih) == (w, h):
            break
        size = driver.get_window_size()
        driver.set_window_size(size["width"] + w - iw, size["height"] + h - ih)
    time.sleep(0.3)


# Where every pool button is once scrolled to, vertically only, as a person
# scrolls a page: its rect in the viewport, and whether a click at its
# centre lands on it (nothing covers it, no container clips it).
BUTTONS_JS = """
const out = [];
for (const b of document.querySelectorAll('button[data-pool][data-verb]')) {
  let r = b.getBoundingClientRect();
  window.scrollTo(window.scrollX, window.scrollY + r.top - window.innerHeight / 2);
  r = b.getBoundingClientRect();
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  out.push({pool: b.dataset.pool, verb: b.dataset.verb, left: r.left, right: r.right, top: r.top, bottom: r.bottom,
            width: r.width, height: r.height, hit: hit === b || b.contains(hit)});
}
window.scrollTo(0, 0);
return out;
"""

# Whether a table is clipped: wider than its box, or than its container.
TABLES_JS = """
return Array.from(document.querySelectorAll('table')).map(t => {
  const p = t.parentElement, r = t.getBoundingClientRect(), pr = p.getBoundingClientRect();
  return {id: t.id, heads: t.tHead ? Array.from(t.tHead.rows[0].cells).map(c => c.textContent.trim()) : [],
          rows: t.tBodies[0] ? t.tBodies[0].rows.length : 0, scroll_width: t.scrollWidth, client_width: t.clientWidth,
          parent_scroll_width: p.scrollWidth, parent_client_width: p.clientWidth, right: r.right, parent_right: pr.right};
});
"""

# A pool's rate, p50, p99 and errors as shown: the cells of its row (or card)
# in the pools table, by their column's header.
POOL_CELLS_JS = """
const t = document.getElementById('pools'), out = {};
if (!t) return out;
const heads = Array.from(t.tHead.rows[0].cells).map(c => c.textContent.trim().toLowerCase());
const col = (re) => heads.findIndex(h => re.test(h));
const cols = {rate: col(/request/), p50: col(/p50/), p99: col(/p99/), errors: col(/error/)};
for (const tr of t.tBodies[0].rows) {
  const name = tr.cells[0].textContent.trim(), v = {};
  for (const [k, i] of Object.entries(cols)) v[k] = i >= 0 && tr.cells[i] ? tr.cells[i].textContent.trim() : '';
  out[name] = v;
}
return out;
"""


def pool_state(driver, pool):
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const t = new URLSearchParams(location.hash.slice(1)).get('token');"
        "fetch('/api/status', {headers: t ? {Authorization: 'Bearer ' + t} : {}}).then(r => r.json())"
        ".then(s => done(((s.pools || []).find(p => p.name === arguments[0]) || {}).state || ''), e => done('error: ' + e));", pool)


def filled(cells, pools):
    """All pools' four values shown, none a placeholder."""
    for p in pools:
        v = cells.get(p)
        if not v or any(not v.get(k) or v[k] in ("-", "\u2013") for k in ("rate", "p50", "p99", "errors")):
            return None
    return cells


def layout(url, pools, outdir):
    driver = browser()
    res = {"sizes": {}}
    try:
        driver.set_script_timeout(20)
        driver.get(url)
        for w, h in ((390, 844), (1280, 800)):
            viewport(driver, w, h)
            m = dict(zip(("inner_width", "inner_height"), driver.execute_script("return [window.innerWidth, window.innerHeight]")))
            try:
                m["cells"] = wait("the pools' rate, p50, p99 and errors", lambda: filled(driver.execute_script(POOL_CELLS_JS), pools), 20)
            except SystemExit:
                m["cells"] = driver.execute_script(POOL_CELLS_JS)
            m["scroll_width"] = driver.execute_script("return document.documentElement.scrollWidth")
            m["buttons"] = driver.execute_script(BUTTONS_JS)
            m["tables"] = driver.execute_script(TABLES_JS)
            # the same element across refreshes (the page polls every second)
            driver.execute_script("window.__kept = document.querySelector('button[data-verb=recycle]')")
            time.sleep(2.5)
            m["kept_connected"] = driver.execute_script("return !!(window.__kept && window.__kept.isConnected)")
            m["refreshed"] = driver.execute_script("return document.getElementById('meta').textContent")
            shot = "%s/dashboard-%d.png" % (outdir, w)
            driver.save_screenshot(shot)
            m["screenshot"] = shot
            res["sizes"][str(w)] = m
        # Stop, on the phone: a first click only asks.
        viewport(driver, 390, 844)
        pool = pools[0]
        sel = "button[data-verb=stop][data-pool='%s']" % pool
        res["state_before"] = pool_state(driver, pool)
        driver.find_element(By.CSS_SELECTOR, sel).click()
        res["stop_asks"] = driver.execute_script("return document.querySelector(arguments[0]).textContent", sel)
        time.sleep(2)
        res["state_after_one_click"] = pool_state(driver, pool)
        driver.find_element(By.CSS_SELECTOR, sel).click()
        res["state_after_two_clicks"] = wait("the pool stopped", lambda: (lambda s: s if s == "stopped" else None)(pool_state(driver, pool)), 30)
        start = "button[data-verb=start][data-pool='%s']" % pool
        wait("the start button enabled", lambda: driver.execute_script("return !document.querySelector(arguments[0]).disabled", start), 10)
        driver.find_element(By.CSS_SELECTOR, start).click()
        res["state_after_start"] = wait("the pool started", lambda: (lambda s: s if s in ("running", "idle") else None)(pool_state(driver, pool)), 60)
        # the phone again, now with exited workers and recycles listed
        time.sleep(1.5)
        res["after"] = {"inner_width": driver.execute_script("return window.innerWidth"),
                        "scroll_width": driver.execute_script("return document.documentElement.scrollWidth"),
                        "tables": driver.execute_script(TABLES_JS),
                        "error": driver.execute_script("return document.getElementById('error').textContent")}
        driver.save_screenshot("%s/dashboard-390-after-stop.png" % outdir)
        print(json.dumps(res))
    except BaseException:
        print(json.dumps(res))
        raise
    finally:
        driver.quit()


def main():
    if sys.argv[1] == "--layout":
        layout(sys.argv[2], sys.argv[3].split(","), sys.argv[4])
        return
    url, pool = sys.argv[1], sys.argv[2]
    shot = sys.argv[3] if len(sys.argv) > 3 else None
    driver = browser()
    try:
        driver.get(url)
        loaded = driver.execute_script("return window.wispLoadedAt")
        before = wait("the worker pids", lambda: pids(driver, pool))
        wait("the rate chart's first interval", lambda: driver.execute_script("return document.getElementById('rateNow').textContent"))
        clicked = driver.execute_script(
            "const b = document.querySelector(`button.act-recycle[data-pool='${arguments[0]}']`);"
            "if (!b) return false; window.__pressed = b; b.click(); return true;", pool)
        if not clicked:
            raise SystemExit("no recycle button for pool " + pool)
        after = wait("new pids", lambda: (lambda p: p if p and not set(p) & set(before) else None)(pids(driver, pool)), 60)
        if driver.execute_script("return window.wispLoadedAt") != loaded:
            raise SystemExit("the page reloaded")
        # the button pressed is still the page's (rows are updated in place),
        # and each new worker's state is shown in its row
        kept = driver.execute_script("return !!(window.__pressed && window.__pressed.isConnected)")
        states = wait("the new workers ready", lambda: (lambda st: st if len(st) == 2 and set(st) == {"ready"} else None)(
            worker_states(driver, pool)), 30)
        trace = wait("the live trace", lambda: driver.execute_script("return document.getElementById('trace').textContent"))
        events = wait("the recycles", lambda: (lambda t: t if "recycled" in t else None)(
            driver.execute_script("return document.getElementById('events').textContent")))
        if shot:
            time.sleep(1.5)  # a few points on the charts
            driver.save_screenshot(shot)
        driver.set_window_size(390, 844)  # a phone
        narrow = driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        print(json.dumps({"before": before, "after": after, "kept": kept, "states": states, "trace": trace[:200], "events": events, "phone_fits": narrow}))
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
