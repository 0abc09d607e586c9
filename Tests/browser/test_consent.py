"""Issue 16 in headless Chromium against the real server: consent from the CMPs sites already run
(stub CMPs implementing the documented IAB TCF v2.2 `__tcfapi` and Google Consent Mode v2
`gtag('consent', ...)` interfaces), the banner under hostile host CSS, and the cnil-exempt mode.

Client pages are served by a second local HTTP server (another origin, as a client's site is).
"""
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
from selenium.webdriver.common.by import By

from test_pixel import ARTIFACTS, BIN, ROOT, UA, Server, banner_root, chromium, keyboard_choose_analytics_only, storage, wait_subject

TCF_STUB = """<script>
(function () {
  // A CMP as IAB TCF v2.2 describes it: __tcfapi('addEventListener', 2, cb) calls cb(tcData, success)
  // now and on every change. Legitimate interest is "granted" for 7, 8 and 9 from the start.
  var listeners = [], state = { eventStatus: 'tcloaded', gdprApplies: true, cmpId: 300, cmpVersion: 2, tcfPolicyVersion: 5,
    purpose: { consents: {}, legitimateInterests: { 7: true, 8: true, 9: true } }, vendor: { consents: {} } };
  window.__tcfapi = function (cmd, version, cb) {
    if (cmd == 'addEventListener' && version == 2) { listeners.push(cb); cb(state, true); }
  };
  window.tcfAct = function (consents) {
    state = Object.assign({}, state, { eventStatus: 'useractioncomplete',
      purpose: { consents: consents, legitimateInterests: state.purpose.legitimateInterests } });
    listeners.forEach(function (cb) { cb(state, true); });
  };
})();
</script>"""

GCM_STUB = """<script>
window.dataLayer = window.dataLayer || [];
function gtag() { dataLayer.push(arguments); }
gtag('consent', 'default', { analytics_storage: 'denied', ad_storage: 'denied', ad_user_data: 'denied', ad_personalization: 'denied' });
// A default for other regions is not this visitor's, and a default never grants.
gtag('consent', 'default', { analytics_storage: 'granted', ad_storage: 'granted', ad_user_data: 'granted', region: ['US'] });
</script>"""

HOSTILE_CSS = """<style>
* { all: unset !important; }
html, body { display: block !important; margin: 0 !important; }
head, script, style { display: none !important; }
input, label, button, div, fieldset, p, h2, legend { display: inline !important; font: 40px/1 serif !important;
  color: red !important; background: yellow !important; position: static !important; border: 9px dotted lime !important;
  letter-spacing: 12px !important; text-transform: uppercase !important; width: 3px !important; }
candor-consent { display: none !important; }
</style>"""


class ClientSite:
    """Pages of a client site on another origin (127.0.0.1, another port): the site's domain."""

    def __init__(self, tmp_path, server):
        self.dir = tmp_path / "client"
        self.dir.mkdir()
        self.server = server
        handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(self.dir), **k)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def page(self, name, site, head="", body="", banner=True, mode=None, lang="en"):
        attrs = f' data-mode="{mode}"' if mode else ""
        consent = f'<script defer src="{self.server.url}/consent.js" data-site="{site}"></script>' if banner else ""
        (self.dir / name).write_text(f"""<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>{name}</title>
{head}
<script defer src="{self.server.url}/pixel.js" data-site="{site}"{attrs}></script>
{consent}
</head><body><h1>Client page</h1><p><button type="button" id="cta" data-candor-event="cta_click">Go</button></p>
<form id="f"><label>Name <input name="n"></label></form>{body}</body></html>""")
        return f"{self.url}/{name}"

    def stop(self):
        self.httpd.shutdown()


@pytest.fixture
def setup(tmp_path):
    s = Server(tmp_path)
    c = ClientSite(tmp_path, s)
    yield s, c
    c.stop()
    s.stop()


def wait_rows(server, sql, predicate, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        rows = server.rows(sql)
        if predicate(rows):
            return rows
        time.sleep(0.2)
    raise AssertionError(f"condition not met: {server.rows(sql)}")


def ctas(server):
    return server.rows("SELECT decision, subject IS NOT NULL FROM events WHERE name = 'cta_click' ORDER BY id")


def open_under_cmp(d, server, client, name, stub):
    """Opens a client page that runs a CMP: its pageview arrives, and Candor's banner is not shown."""
    d.get(client.page(name, server.site, head=stub))
    server.wait_for(lambda r: any(x[0] == "pageview" for x in r))
    time.sleep(1)
    assert d.find_elements(By.CSS_SELECTOR, "candor-consent") == []


def test_tcf_cmp_default_denied_then_granted_then_withdrawn(setup):
    server, client = setup
    with chromium() as d:
        # Legitimate interest alone identifies nobody.
        open_under_cmp(d, server, client, "tcf.html", TCF_STUB)
        d.find_element(By.ID, "cta").click()
        wait_rows(server, "SELECT 1 FROM events WHERE name = 'cta_click'", lambda r: len(r) == 1)
        assert ctas(server) == [("anonymous", 0)]
        assert storage(d) == ["", [], []]
        # The visitor agrees in the CMP: identified, with marketing (purposes 1-4, 7, 8).
        d.execute_script("tcfAct({1: true, 2: true, 3: true, 4: true, 7: true, 8: true})")
        wait_subject(d)
        d.find_element(By.ID, "cta").click()
        wait_rows(server, "SELECT 1 FROM events WHERE name = 'cta_click'", lambda r: len(r) == 2)
        assert ctas(server)[-1] == ("identified", 1)
        assert {"candor_subject", "candor_key"} <= set(storage(d)[1])
        records = wait_rows(server, "SELECT source, cmp_id, cmp_version, tcf_policy_version, purposes, analytics, marketing, "
                                    "subject IS NOT NULL FROM consent_records", lambda r: len(r) == 1)
        assert records == [("tcf", 300, 2, 5, "1,2,3,4,7,8", 1, 1, 1)]
        # Only purposes 1 and 8: analytics without marketing.
        d.execute_script("tcfAct({1: true, 8: true})")
        wait_rows(server, "SELECT 1 FROM consent_records", lambda r: len(r) == 2)
        assert server.rows("SELECT purposes, analytics, marketing FROM consent_records ORDER BY id")[-1] == ("1,8", 1, 0)
        # Withdrawn in the CMP: device storage cleared, events anonymous again.
        d.execute_script("tcfAct({})")
        wait_rows(server, "SELECT 1 FROM consent_records", lambda r: len(r) == 3)
        assert not {"candor_subject", "candor_key", "candor_queue"} & set(storage(d)[1]), storage(d)
        d.find_element(By.ID, "cta").click()
        wait_rows(server, "SELECT 1 FROM events WHERE name = 'cta_click'", lambda r: len(r) == 3)
        assert ctas(server)[-1] == ("anonymous", 0)
        assert server.rows("SELECT analytics, marketing, subject FROM consent_records ORDER BY id")[-1] == (0, 0, None)
    # The TC string is never sent, so never stored.
    assert b"tcString" not in server.disk()


def test_google_consent_mode_default_denied_then_update(setup):
    server, client = setup
    with chromium() as d:
        open_under_cmp(d, server, client, "gcm.html", GCM_STUB)
        assert server.events()[0][2] == "anonymous"
        d.execute_script("gtag('consent', 'update', {analytics_storage: 'granted', ad_storage: 'granted', "
                         "ad_user_data: 'granted', ad_personalization: 'denied'})")
        wait_subject(d)
        d.find_element(By.ID, "cta").click()
        wait_rows(server, "SELECT 1 FROM events WHERE name = 'cta_click'", lambda r: len(r) == 1)
        assert ctas(server) == [("identified", 1)]
        records = wait_rows(server, "SELECT source, signals, analytics, marketing FROM consent_records", lambda r: len(r) == 1)
        assert records == [("gcm", "ad_personalization=denied,ad_storage=granted,ad_user_data=granted,analytics_storage=granted", 1, 1)]
        # ad_user_data denied: no marketing; analytics_storage denied: nothing identified, storage cleared.
        d.execute_script("gtag('consent', 'update', {analytics_storage: 'denied'})")
        wait_rows(server, "SELECT 1 FROM consent_records", lambda r: len(r) == 2)
        assert not {"candor_subject", "candor_key"} & set(storage(d)[1]), storage(d)
        d.find_element(By.ID, "cta").click()
        wait_rows(server, "SELECT 1 FROM events WHERE name = 'cta_click'", lambda r: len(r) == 2)
        assert ctas(server)[-1] == ("anonymous", 0)


def test_a_source_the_policy_does_not_trust_is_not_read_and_not_believed(tmp_path):
    policies = tmp_path / "policies"
    shutil.copytree(os.path.join(ROOT, "policies"), policies)
    (policies / "banner-only.toml").write_text('[consent]\nsources = ["candor"]\n')
    server = Server(tmp_path, policies=str(policies))
    client = ClientSite(tmp_path, server)
    try:
        site = subprocess.run([BIN, "sites", "add", "--data", server.data, "--policies", str(policies), "--name", "Strict",
                               "--domain", "127.0.0.1", "--policy", "banner-only"], check=True, capture_output=True, text=True).stdout.strip()
        time.sleep(2.5)
        with chromium() as d:
            d.get(client.page("strict.html", site, head=TCF_STUB))
            # The CMP is on the page but not trusted: Candor's banner asks instead.
            assert banner_root(d).find_element(By.CSS_SELECTOR, ".banner").is_displayed()
            d.execute_script("tcfAct({1: true, 2: true, 3: true, 4: true, 7: true, 8: true})")
            d.find_element(By.ID, "cta").click()
            wait_rows(server, "SELECT 1 FROM events WHERE name = 'cta_click'", lambda r: len(r) == 1)
            assert ctas(server) == [("anonymous", 0)] and "candor_subject" not in storage(d)[1]
        # A grant claimed from TCF by hand is not believed either, and a TCF record is refused.
        body = json.dumps({"events": [{"site": site, "url": "http://127.0.0.1/x", "id": "claimed-1", "subject": "0123456789abcdef0123456789abcdef",
                                       "consent": {"analytics": True, "marketing": True, "src": "tcf"}}]}).encode()
        req = urllib.request.Request(server.url + "/api/event", data=body,
                                     headers={"Content-Type": "text/plain", "Origin": client.url, "User-Agent": UA})
        with urllib.request.urlopen(req) as r:
            assert r.status == 202 and json.loads(r.read())["accepted"] == 1
        assert wait_rows(server, "SELECT decision, subject FROM events WHERE client_id = 'claimed-1'", lambda r: len(r) == 1) == [("anonymous", None)]
        req = urllib.request.Request(server.url + "/api/consent", data=json.dumps({"site": site, "analytics": True, "marketing": True,
                                     "source": "tcf", "cmp_id": 300}).encode(), headers={"Content-Type": "text/plain", "Origin": client.url})
        try:
            urllib.request.urlopen(req)
            raise AssertionError("an untrusted source's record was stored")
        except urllib.error.HTTPError as e:
            assert e.code == 409 and "consent.sources" in json.loads(e.read())["error"]
    finally:
        client.stop()
        server.stop()


def test_banner_survives_hostile_host_css_and_works_by_keyboard(setup):
    server, client = setup
    os.makedirs(ARTIFACTS, exist_ok=True)
    with chromium() as d:
        d.get(client.page("hostile.html", server.site, head=HOSTILE_CSS, lang="fr"))
        root = banner_root(d)
        d.save_screenshot(os.path.join(ARTIFACTS, "banner-hostile-css.png"))
        style = lambda css, prop: d.execute_script(
            "return getComputedStyle(document.querySelector('candor-consent').shadowRoot.querySelector(arguments[0]))[arguments[1]]", css, prop)
        assert style(".banner", "position") == "fixed" and style(".banner", "fontSize") == "15px"
        assert style("[data-choice=accept]", "color") == "rgb(26, 26, 26)"
        assert style("[data-choice=accept]", "letterSpacing") == "normal" and style("[data-choice=accept]", "textTransform") == "none"
        accept = root.find_element(By.CSS_SELECTOR, "[data-choice=accept]")
        reject = root.find_element(By.CSS_SELECTOR, "[data-choice=reject]")
        # The page's language picks the built-in French texts; both choices have the same weight.
        assert accept.text == "Tout accepter" and reject.text == "Tout refuser"
        assert accept.size["height"] == reject.size["height"] and abs(accept.size["width"] - reject.size["width"]) <= 2
        # Keyboard only: focus starts on the first choice, stays in the dialog, customizes and saves.
        keyboard_choose_analytics_only(d)
        assert wait_rows(server, "SELECT source, analytics, marketing FROM consent_records", lambda r: len(r) == 1) == [("candor", 1, 0)]
        # The way back is as easy: the settings button reopens it.
        root.find_element(By.CSS_SELECTOR, ".settings").click()
        assert root.find_element(By.CSS_SELECTOR, ".banner").is_displayed()


def test_forget_withdraws_consent_and_the_banner_asks_again(setup):
    server, client = setup
    with chromium() as d:
        d.get(client.page("forget.html", server.site))
        banner_root(d).find_element(By.CSS_SELECTOR, "[data-choice=accept]").click()
        wait_subject(d)
        result = d.execute_async_script("var done = arguments[0]; candor('forget').then(function (r) { done(r.request) }, function (e) { done('refused: ' + e.message) })")
        assert result.startswith("dsr_"), result
        assert d.execute_script("return candor('subject')") is None
        assert not {"candor_subject", "candor_key", "candor_consent"} & set(storage(d)[1]), storage(d)
        assert banner_root(d).find_element(By.CSS_SELECTOR, ".banner").is_displayed()
        d.get(client.url + "/forget.html")
        # The next page asks again instead of recognising the browser under a new id.
        assert banner_root(d).find_element(By.CSS_SELECTOR, ".banner").is_displayed()
        d.find_element(By.ID, "cta").click()
        wait_rows(server, "SELECT 1 FROM events WHERE name = 'cta_click'", lambda r: len(r) == 1)
        assert ctas(server) == [("anonymous", 0)]


def test_cnil_exempt_site_stores_audience_only_and_the_opt_out_stops_everything(setup):
    server, client = setup
    site = subprocess.run([BIN, "sites", "add", "--data", server.data, "--policies", os.path.join(ROOT, "policies"), "--name", "Exempt",
                           "--domain", "127.0.0.1", "--policy", "cnil-exempt"], check=True, capture_output=True, text=True).stdout.strip()
    time.sleep(2.5)
    page = client.page("exempt.html", site, banner=False, mode="cnil-exempt")
    with chromium() as d:
        d.get(page + "?utm_source=news&utm_campaign=exemptcamp&gclid=EXEMPTCLICK&fbclid=EXEMPTFB")
        d.execute_script("candor('consent', {analytics: true, marketing: true})")  # a grant changes nothing here
        d.find_element(By.ID, "cta").click()
        rows = wait_rows(server, f"SELECT name, decision, subject, utm_source, utm_campaign, click_id, click_id_kind, referrer_path "
                                 f"FROM events WHERE site_id = '{site}' ORDER BY id", lambda r: len(r) >= 2)
        assert all(r[1:] == ("anonymous", None, None, None, None, None, None) for r in rows), rows
        assert storage(d) == ["", [], []]
        d.execute_script("candor('optout')")
        assert storage(d)[1] == ["candor_optout"]
        d.find_element(By.ID, "cta").click()
        d.get(page)
        d.find_element(By.ID, "cta").click()
        time.sleep(2.5)
        assert len(server.rows(f"SELECT 1 FROM events WHERE site_id = '{site}'")) == len(rows)
        assert storage(d)[1] == ["candor_optout"] and storage(d)[2] == []
    data = server.disk()
    for needle in [b"exemptcamp", b"EXEMPTCLICK", b"EXEMPTFB"]:
        assert needle not in data
