"""Drives the Django Channels chat (testdata/apps/asgi_real/channels_chat) in
headless Chromium (Debian's chromium and chromium-driver, python3-selenium),
for e2e/asgi_apps_test.go TestRealChannelsChromium.

    python3 channels_chat_check.py ROOM_URL

opens ROOM_URL (http://127.0.0.1:PORT/chat/ROOM/) in two tabs of one
browser, waits until each page's WebSocket is open, types a message in tab 1
and waits for it in tab 2's log, then one in tab 2 and waits for it in tab
1's. Prints one JSON line, {"status": [tab1, tab2], "logs": [tab1, tab2],
"extensions": [tab1, tab2]} (each socket's negotiated extensions);
exits non-zero (with what it saw) when a step does not happen in time.
"""
import json
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

TIMEOUT = 30  # seconds, for each step


def browser():
    opts = Options()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1024,768",
              "--disable-background-networking", "--no-first-run",
              # both tabs run their timers and sockets at full speed
              "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
              "--disable-backgrounding-occluded-windows"):
        opts.add_argument(a)
    opts.binary_location = "/usr/bin/chromium"
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def read(driver, handle):
    driver.switch_to.window(handle)
    return driver.execute_script(
        "return [document.getElementById('status').textContent, document.getElementById('chat-log').value]")


def wait(driver, handle, what, cond):
    deadline = time.time() + TIMEOUT
    while True:
        status, log = read(driver, handle)
        if cond(status, log):
            return
        if time.time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}: status {status!r}, log {log!r}")
        time.sleep(0.1)


def send(driver, handle, text):
    driver.switch_to.window(handle)
    box = driver.find_element(By.ID, "chat-message-input")
    box.click()
    box.send_keys(text)
    box.send_keys(Keys.ENTER)  # the page's keyup handler clicks Send


def main():
    url = sys.argv[1]
    driver = browser()
    tabs = []
    try:
        driver.set_page_load_timeout(TIMEOUT)
        driver.get(url)
        tabs.append(driver.current_window_handle)
        driver.switch_to.new_window("tab")
        driver.get(url)
        tabs.append(driver.current_window_handle)
        for i, h in enumerate(tabs):
            wait(driver, h, f"tab {i + 1}'s socket to open", lambda s, _: s == "connected")

        send(driver, tabs[0], "typed in tab 1")
        wait(driver, tabs[1], "tab 1's message in tab 2", lambda _, log: "typed in tab 1\n" in log)
        wait(driver, tabs[0], "tab 1's message in tab 1", lambda _, log: "typed in tab 1\n" in log)
        send(driver, tabs[1], "typed in tab 2")
        wait(driver, tabs[0], "tab 2's message in tab 1", lambda _, log: "typed in tab 2\n" in log)
        wait(driver, tabs[1], "tab 2's message in tab 2", lambda _, log: "typed in tab 2\n" in log)
        seen = [read(driver, h) for h in tabs]
        extensions = []
        for h in tabs:  # what the page's socket negotiated (permessage-deflate: Chromium offers it)
            driver.switch_to.window(h)
            extensions.append(driver.execute_script("return chatSocket.extensions"))
        print(json.dumps({"status": [s for s, _ in seen], "logs": [log for _, log in seen], "extensions": extensions}))
    except Exception as e:  # report what the tabs show, then fail
        seen = []
        for h in tabs:
            try:
                seen.append(read(driver, h))
            except Exception as e2:  # noqa: BLE001
                seen.append(["unreadable: %s" % e2, ""])
        print(json.dumps({"error": "%s: %s" % (type(e).__name__, e), "tabs": seen}))
        sys.exit(1)
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
