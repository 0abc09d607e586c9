"""Real headless-Chromium tests of pixel.js and the consent banner against the real server.

Run by `make test` (after the Swift tests): Debian's chromium + chromium-driver, selenium from PyPI.
Each test starts `candor serve` on its own data directory and checks the SQLite rows it stored.
"""
import http.server
import json
import os
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("CANDOR_BIN", os.path.join(ROOT, ".build", "debug", "candor"))
ARTIFACTS = os.path.join(ROOT, "test-artifacts")
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    def __init__(self, tmp_path, policies=None, extra=(), two_factor=False):
        """two_factor: keep a new install's rule that owners and admins sign in with a second
        factor (test_two_factor.py); the other tests sign in with the password alone."""
        self.data = str(tmp_path / "data")
        self.port = free_port()
        policies = policies or os.path.join(ROOT, "policies")
        out = subprocess.run([BIN, "init", "--data", self.data, "--policies", policies]
                             + ([] if two_factor else ["--two-factor-roles", "none"]),
                             check=True, capture_output=True, text=True).stdout
        self.site = [l.split(": ")[1].split(" ")[0] for l in out.splitlines() if l.startswith("Demo site id")][0]
        login = [l for l in out.splitlines() if l.startswith("Admin login: ")][0].split(": ", 1)[1].split()
        self.admin = (login[0], login[2])
        self.log = open(tmp_path / "server.log", "w")
        self.proc = subprocess.Popen([BIN, "serve", "--data", self.data, "--port", str(self.port),
                                      "--policies", policies, "--public", os.path.join(ROOT, "Public"), *extra],
                                     stdout=self.log, stderr=self.log)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        self.url = f"http://127.0.0.1:{self.port}"

    def rows(self, sql, *args):
        db = sqlite3.connect(os.path.join(self.data, "candor.sqlite"))
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def disk(self):
        """The bytes of the database file and its WAL."""
        out = b""
        for f in ["candor.sqlite", "candor.sqlite-wal"]:
            path = os.path.join(self.data, f)
            if os.path.exists(path):
                with open(path, "rb") as h:
                    out += h.read()
        return out

    def events(self):
        return self.rows("SELECT name, path, decision, subject, props, engaged_ms, scroll FROM events ORDER BY id")

    def wait_for(self, predicate, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            rows = self.events()
            if predicate(rows):
                return rows
            time.sleep(0.2)
        raise AssertionError(f"condition not met; events: {self.events()}")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path)
    yield s
    s.stop()


@contextmanager
def chromium(dnt=False, gpc=False, downloads=None):
    """A headless Chromium session, always closed."""
    d = new_browser(dnt, gpc, downloads)
    try:
        yield d
    finally:
        d.quit()


def new_browser(dnt=False, gpc=False, downloads=None):
    opts = webdriver.ChromeOptions()
    if downloads:
        opts.add_experimental_option("prefs", {"download.default_directory": downloads, "download.prompt_for_download": False})
    opts.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--user-agent={UA}", "--window-size=1280,900"]:
        opts.add_argument(a)
    if dnt:
        opts.add_experimental_option("prefs", {"enable_do_not_track": True})
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    if gpc:
        # As a browser with GPC on: the navigator property for the pixel, the Sec-GPC header for the server.
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                               {"source": "Object.defineProperty(navigator,'globalPrivacyControl',{get:()=>true})"})
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Sec-GPC": "1"}})
    return driver


def banner_root(driver, timeout=10):
    """The banner's shadow root (host CSS cannot reach inside), once consent.js has its config and style sheet."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        hosts = driver.find_elements(By.CSS_SELECTOR, "candor-consent")
        if hosts and any(e.is_displayed() for e in hosts[0].shadow_root.find_elements(By.CSS_SELECTOR, ".banner, .settings")):
            return hosts[0].shadow_root
        time.sleep(0.05)
    raise AssertionError("the consent banner did not appear")


def choose(driver, choice):
    root = banner_root(driver)
    deadline = time.time() + 10
    while time.time() < deadline and not root.find_elements(By.CSS_SELECTOR, f"[data-choice={choice}]"):
        time.sleep(0.05)
    root.find_element(By.CSS_SELECTOR, f"[data-choice={choice}]").click()


def focused(driver):
    """The focused element inside the banner's shadow root."""
    return driver.execute_script("const h = document.querySelector('candor-consent'); return h && h.shadowRoot.activeElement")


def wait_subject(driver, timeout=5):
    """The subject id once the pixel derived it from the privacy key (SHA-256, asynchronous), or None."""
    deadline = time.time() + timeout
    while time.time() < deadline and not driver.execute_script("return candor('subject')"):
        time.sleep(0.05)
    return driver.execute_script("return candor('subject')")


def keyboard_choose_analytics_only(driver):
    """From the banner's first choice, by keyboard alone: the focus trap both ways, Customize,
    tick analytics, Save. Returns the banner's shadow root."""
    root = banner_root(driver)
    active = lambda: focused(driver).get_attribute("data-choice")
    assert active() == "accept"
    for expected in ["reject", "customize", "accept"]:  # the last Tab wraps to the first button
        focused(driver).send_keys(Keys.TAB)
        assert active() == expected
    focused(driver).send_keys(Keys.SHIFT, Keys.TAB)
    assert active() == "customize"
    focused(driver).send_keys(Keys.ENTER)  # open the categories
    assert focused(driver).get_attribute("name") == "analytics"
    focused(driver).send_keys(Keys.SPACE)  # tick analytics
    for _ in range(4):
        focused(driver).send_keys(Keys.TAB)
    assert active() == "customize"
    focused(driver).send_keys(Keys.ENTER)  # save
    assert not root.find_elements(By.CSS_SELECTOR, ".banner")
    return root


def storage(driver):
    return driver.execute_script("return [document.cookie, Object.keys(localStorage), Object.keys(sessionStorage)]")


def wire_sizes(server, path):
    """Bytes on the wire for path, per Content-Encoding, as a browser asks; and the 304 on a repeat."""
    sizes = {}
    for accept in ["br, gzip", "gzip"]:
        req = urllib.request.Request(server.url + path, headers={"Accept-Encoding": accept})
        with urllib.request.urlopen(req) as r:
            sizes[r.headers.get("Content-Encoding")] = len(r.read())
            etag = r.headers.get("ETag")
        again = urllib.request.Request(server.url + path, headers={"Accept-Encoding": accept, "If-None-Match": etag})
        try:
            urllib.request.urlopen(again)
            raise AssertionError(f"{path}: no 304 for {etag}")
        except urllib.error.HTTPError as e:
            assert e.code == 304, e.code
    return sizes


def test_served_sizes_are_within_budget(server):
    # Measured on what the server sends (the build of `make assets`, compressed once at start).
    pixel, lite = wire_sizes(server, "/pixel.js"), wire_sizes(server, "/pixel-lite.js")
    banner, css = wire_sizes(server, "/consent.js"), wire_sizes(server, "/consent.css")
    print(f"\npixel.js {pixel}, pixel-lite.js {lite}, consent.js {banner} + consent.css {css} bytes on the wire")
    assert set(pixel) == {"br", "gzip"}
    assert pixel["br"] <= 2560, pixel
    assert lite["br"] <= 1200 and lite["gzip"] <= 1200, lite
    assert banner["br"] + css["br"] <= 3072 and banner["gzip"] + css["gzip"] <= 3072, (banner, css)


def test_opt_in_without_choice_is_anonymous_and_stores_nothing_on_the_device(server):
    with chromium() as d:
        d.get(server.url + "/demo")
        rows = server.wait_for(lambda r: any(x[0] == "pageview" for x in r))
        assert all(x[2] == "anonymous" and x[3] is None for x in rows)
        assert banner_root(d).find_element(By.CSS_SELECTOR, ".banner").is_displayed()
        assert storage(d) == ["", [], []]


def test_accept_identifies_across_pages_reject_does_not_and_withdraw_clears(server):
    with chromium() as d:
        d.get(server.url + "/demo")
        choose(d, "accept")
        d.find_element(By.ID, "nav-link").click()
        d.find_element(By.ID, "cta").click()
        rows = server.wait_for(lambda r: any(x[0] == "cta_click" for x in r))
        identified = [x for x in rows if x[2] == "identified"]
        assert {x[1] for x in identified} >= {"/demo/second"}
        assert len({x[3] for x in identified}) == 1 and identified[0][3] is not None
        assert "candor_subject" in storage(d)[1]
        assert server.rows("SELECT analytics, marketing, subject IS NOT NULL FROM consent_records") == [(1, 1, 1)]
        # Withdraw: reopen from the persistent link and reject.
        banner_root(d).find_element(By.CSS_SELECTOR, ".settings").click()
        choose(d, "reject")
        d.find_element(By.ID, "cta").click()
        rows = server.wait_for(lambda r: sum(1 for x in r if x[0] == "cta_click") == 2)
        assert [x for x in rows if x[0] == "cta_click"][-1][2] == "anonymous"
        assert "candor_subject" not in storage(d)[1]
        assert storage(d)[0] == ""
    with chromium() as d:
        d.get(server.url + "/demo")
        choose(d, "reject")
        d.find_element(By.ID, "nav-link").click()
        server.wait_for(lambda r: sum(1 for x in r if x[1] == "/demo/second") >= 2)
        later = [x for x in server.events() if x[1] == "/demo/second"][-1]
        assert later[2] == "anonymous" and later[3] is None


@pytest.mark.parametrize("signal", ["dnt", "gpc"])
def test_dnt_and_gpc_are_never_identified(server, signal):
    with chromium(dnt=signal == "dnt", gpc=signal == "gpc") as d:
        d.get(server.url + "/demo")
        choose(d, "accept")
        d.find_element(By.ID, "nav-link").click()
        d.find_element(By.ID, "cta").click()
        rows = server.wait_for(lambda r: any(x[0] == "cta_click" for x in r))
        assert rows and all(x[2] == "anonymous" and x[3] is None for x in rows)
        assert "candor_subject" not in storage(d)[1]


def test_spa_scroll_engagement_clicks_and_forms(server):
    with chromium() as d:
        d.get(server.url + "/demo")
        choose(d, "reject")
        # Keep the demo page in place: bubble-phase listeners cancel navigation after the pixel saw the event.
        d.execute_script("document.addEventListener('click', e => { if (!e.target.closest('[data-spa],#nav-link,#contact')) e.preventDefault() });"
                         "document.addEventListener('submit', e => e.preventDefault());")
        for el in ["download-link", "outbound-link", "call-link", "cta"]:
            d.find_element(By.ID, el).click()
        d.find_element(By.NAME, "email").send_keys("someone@example.com")
        d.find_element(By.NAME, "password").send_keys("hunter2")
        d.find_element(By.CSS_SELECTOR, "#contact button").click()
        d.find_element(By.ID, "spa-link").click()
        d.execute_script("window.scrollTo(0, document.body.scrollHeight)")
        time.sleep(1.5)
        d.get(server.url + "/demo/second")  # pagehide: engagement via sendBeacon
        rows = server.wait_for(lambda r: any(x[0] == "engagement" and (x[6] or 0) >= 90 for x in r))
        names = [x[0] for x in rows]
        for n in ["download", "outbound", "call", "cta_click", "form_submit"]:
            assert n in names, n
        assert any(x[0] == "pageview" and x[1] == "/demo/spa-view" for x in rows)
        form = [json.loads(x[4]) for x in rows if x[0] == "form_submit"][0]
        assert form["form"] == "contact" and "email" in form["fields"]
        dump = json.dumps(rows)
        assert "someone@example.com" not in dump and "hunter2" not in dump
        eng = [x for x in rows if x[0] == "engagement" and (x[6] or 0) >= 90][0]
        assert eng[5] >= 1000


def test_offline_events_queue_and_arrive_exactly_once(server):
    with chromium() as d:
        d.get(server.url + "/demo")
        choose(d, "accept")
        server.wait_for(lambda r: any(x[0] == "pageview" for x in r))
        d.set_network_conditions(offline=True, latency=0, download_throughput=-1, upload_throughput=-1)
        d.execute_script("window.dispatchEvent(new Event('offline'))")
        clicked = time.time() * 1000
        for _ in range(3):
            d.find_element(By.ID, "cta").click()
        time.sleep(6.5)
        assert not any(x[0] == "cta_click" for x in server.events())
        d.set_network_conditions(offline=False, latency=0, download_throughput=-1, upload_throughput=-1)
        d.execute_script("window.dispatchEvent(new Event('online'))")
        rows = server.wait_for(lambda r: sum(1 for x in r if x[0] == "cta_click") >= 3)
        arrived = time.time() * 1000
        time.sleep(2)
        assert sum(1 for x in server.events() if x[0] == "cta_click") == 3
        # Held back for more than 5 s, they carry their own time (ts) and are dated when clicked.
        times = [r[0] for r in server.rows("SELECT ts FROM events WHERE name = 'cta_click'")]
        assert all(clicked - 1000 <= t <= clicked + 2000 for t in times), (clicked, times, arrived)
        assert all(arrived - t > 5000 for t in times), (times, arrived)


def test_banner_keyboard_only(server):
    os.makedirs(ARTIFACTS, exist_ok=True)
    with chromium() as d:
        d.set_window_size(320, 640)
        d.get(server.url + "/demo")
        root = banner_root(d)
        banner = root.find_element(By.CSS_SELECTOR, ".banner")
        assert banner.get_attribute("role") == "dialog" and banner.get_attribute("aria-modal") == "true"
        d.save_screenshot(os.path.join(ARTIFACTS, "banner-320px.png"))
        keyboard_choose_analytics_only(d)
        assert server.rows("SELECT analytics, marketing FROM consent_records") == [(1, 0)]


def test_unregistered_origin_is_refused_with_a_console_reason(server, tmp_path):
    page = tmp_path / "site"
    page.mkdir()
    (page / "index.html").write_text(
        f'<!doctype html><title>other</title><script src="{server.url}/pixel.js" data-site="{server.site}"></script>')
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(page), **k)
    other = http.server.ThreadingHTTPServer(("127.0.0.2", 0), handler)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        with chromium() as d:
            d.get(f"http://127.0.0.2:{other.server_address[1]}/index.html")
            deadline = time.time() + 10
            logs = []
            while time.time() < deadline and not any("not registered" in l["message"] for l in logs):
                logs += d.get_log("browser")
                time.sleep(0.3)
            assert any("not registered for site" in l["message"] for l in logs), logs
            assert server.events() == []
    finally:
        other.shutdown()


def test_visitor_downloads_own_data_then_is_forgotten(server):
    with chromium() as d:
        d.get(server.url + "/demo")
        choose(d, "accept")
        d.find_element(By.ID, "nav-link").click()
        server.wait_for(lambda r: any(x[:3] == ("pageview", "/demo/second", "identified") for x in r))
        d.find_element(By.ID, "export-data").click()
        result = lambda: d.find_element(By.ID, "privacy-result").text
        deadline = time.time() + 10
        while time.time() < deadline and not result().startswith("Export:"):
            time.sleep(0.2)
        assert result().startswith("Export: ") and "1 consent records" in result(), result()
        assert int(result().split()[1]) >= 1
        d.find_element(By.ID, "forget-me").click()
        deadline = time.time() + 10
        while time.time() < deadline and "dsr_" not in result():
            time.sleep(0.2)
        assert "Deletion request dsr_" in result(), result()
        # The device no longer holds the subject id.
        assert "candor_subject" not in storage(d)[1]
    assert server.rows("SELECT status, filed_by FROM privacy_requests") == [("received", "self-service")]
    # The officer runs the queue now instead of waiting for the scheduler.
    out = subprocess.run([BIN, "requests", "run", "--data", server.data, "--policies", os.path.join(ROOT, "policies")],
                         check=True, capture_output=True, text=True).stdout
    assert "1 request(s) done" in out
    assert server.rows("SELECT count(*) FROM events WHERE decision = 'identified'") == [(0,)]
    assert server.rows("SELECT status, subject_hash FROM privacy_requests") == [("done", None)]
    verify = subprocess.run([BIN, "audit", "verify", "--data", server.data], capture_output=True, text=True)
    assert verify.returncode == 0 and verify.stdout.startswith("ok: "), verify.stdout


def test_webhook_conversion_is_attributed_to_the_consented_visit(server):
    import hashlib
    import hmac
    secret = "browser-test-secret-0123456789"
    subprocess.run([BIN, "hooks", "set", "--data", server.data, "--policies", os.path.join(ROOT, "policies"),
                    "--site", server.site, "--provider", "generic", "--secret", secret], check=True, capture_output=True)
    with chromium() as d:
        d.get(server.url + "/demo?utm_source=newsletter&utm_medium=email&utm_campaign=launch")
        assert d.execute_script("return candor('subject')") is None  # nothing before consent
        choose(d, "accept")
        # The subject id is derived from the browser's privacy key (SHA-256, asynchronous).
        subject = wait_subject(d)
        key = d.execute_script("return JSON.parse(localStorage.getItem('candor_key'))")
        assert subject and subject == d.execute_script("return JSON.parse(localStorage.getItem('candor_subject'))")
        import hashlib
        assert subject == hashlib.sha256(key.encode()).hexdigest()[:32]
        server.wait_for(lambda r: any(x[2] == "identified" for x in r))
    body = json.dumps({"type": "sale", "id": "order-1", "value": 49, "currency": "EUR", "subject": subject}).encode()
    t = str(int(time.time()))
    sig = hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
    req = urllib.request.Request(f"{server.url}/hooks/generic/{server.site}", data=body, method="POST", headers={
        "Content-Type": "application/json", "X-Candor-Timestamp": t, "X-Candor-Signature": "sha256=" + sig})
    with urllib.request.urlopen(req) as r:
        assert json.loads(r.read())["attributed_via"] == "subject"
    assert server.rows("SELECT kind, value, attributed_via, last_source_type, last_utm_campaign FROM conversions") == [
        ("sale", 49.0, "subject", "email", "launch")]
