"""Headless-Chromium tests of the staff dashboard against the real server: sign-in, filters, CSV
download, the live event stream, and a battery of XSS payloads rendered as every role."""
import csv
import io
import json
import os
import subprocess
import time
import urllib.request

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from test_pixel import ARTIFACTS, BIN, ROOT, UA, Server, chromium, server  # noqa: F401  (server is a fixture)

POLICIES = os.path.join(ROOT, "policies")


def post_events(srv, events, ua=UA):
    body = json.dumps({"events": events}).encode()
    req = urllib.request.Request(f"{srv.url}/api/event", data=body, method="POST",
                                 headers={"Content-Type": "text/plain", "User-Agent": ua})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def sign_in(d, srv, email, password):
    d.get(srv.url + "/login")
    d.find_element(By.NAME, "email").send_keys(email)
    d.find_element(By.NAME, "password").send_keys(password)
    d.find_element(By.CSS_SELECTOR, "form.login button").click()
    deadline = time.time() + 10
    while time.time() < deadline and d.current_url.endswith("/login") and "role=\"alert\"" not in d.page_source:
        time.sleep(0.1)
    assert not d.current_url.endswith("/login"), d.page_source[:800]


def add_user(srv, role, *sites):
    out = subprocess.run([BIN, "users", "add", "--data", srv.data, "--policies", POLICIES, "--email", f"{role}@example.org",
                          "--role", role] + [a for s in sites for a in ("--site", s)], check=True, capture_output=True, text=True).stdout
    return out.split(" / ")[1].split()[0]


def test_sign_in_filter_and_download_csv(server, tmp_path):
    for i, path in enumerate(["/pricing", "/pricing", "/blog", "/pricing", "/blog", "/about"]):
        post_events(server, [{"site": server.site, "url": f"http://localhost{path}",
                              "referrer": "https://www.google.com/" if i % 2 else ""}], ua=f"{UA} v{i}")
    downloads = str(tmp_path / "downloads")
    os.makedirs(downloads)
    with chromium(downloads=downloads) as d:
        d.get(server.url + "/")
        assert d.current_url.endswith("/login")
        sign_in(d, server, *server.admin)
        assert "Demo site" in d.page_source
        d.find_element(By.LINK_TEXT, "Demo site").click()
        d.find_element(By.LINK_TEXT, "Today").click()
        assert "<strong>6</strong>" in d.page_source  # visitors
        d.find_element(By.LINK_TEXT, "/pricing").click()  # a row is a filter
        assert "f.path=%2Fpricing" in d.current_url
        chip = d.find_element(By.CSS_SELECTOR, ".chip").text
        assert "Pages = /pricing" in chip
        cards = {c.find_element(By.TAG_NAME, "span").text: c.find_element(By.TAG_NAME, "strong").text
                 for c in d.find_elements(By.CSS_SELECTOR, ".card")}
        assert cards["Visitors"] == "3" and cards["Pageviews"] == "3", cards
        # Tables come in groups shown as tabs: one table per group at a time, named by its tab.
        group = d.find_element(By.CSS_SELECTOR, '[data-tabs="Acquisition"]')
        tabs = group.find_elements(By.CSS_SELECTOR, '[role="tab"]')
        assert [t.text for t in tabs[:4]] == ["Channels", "Source names", "Sources", "Referrers"], [t.text for t in tabs]
        shown = [s.get_attribute("id") for s in group.find_elements(By.CSS_SELECTOR, "section.breakdown") if s.is_displayed()]
        assert shown == ["t-channel"], shown
        tabs[1].click()
        tabs[1].send_keys(Keys.ARROW_RIGHT)  # the keyboard moves to the next tab
        assert tabs[2].get_attribute("aria-selected") == "true" and tabs[1].get_attribute("aria-selected") == "false"
        assert d.switch_to.active_element == tabs[2]
        section = d.find_element(By.ID, "t-source_type")
        assert section.is_displayed() and not d.find_element(By.ID, "t-channel").is_displayed()
        # Proportion bars: organic is 2 of the 3 visitors of the view (a bar over 66 % of the cell), direct 1 (34 %).
        widths = {r.find_element(By.TAG_NAME, "td").text: d.execute_script("return getComputedStyle(arguments[0]).backgroundSize",
                                                                           r.find_element(By.TAG_NAME, "td"))
                  for r in section.find_elements(By.CSS_SELECTOR, "tbody tr")}
        assert widths == {"organic": "66% 100%", "direct": "34% 100%"}, widths
        # The Sources table's CSV export under the same filter.
        section.find_element(By.LINK_TEXT, "CSV").click()
        deadline = time.time() + 10
        files = []
        while time.time() < deadline and not [f for f in files if f.endswith(".csv")]:
            files = os.listdir(downloads)
            time.sleep(0.2)
        name = [f for f in files if f.endswith(".csv")][0]
        rows = list(csv.reader(open(os.path.join(downloads, name), newline="")))
        assert rows[0] == ["source_type", "visitors", "pageviews"]
        assert sorted(rows[1:]) == [["direct", "1", "1"], ["organic", "2", "2"]], rows
        # The tab chosen is remembered: the next site page opens on it.
        d.get(d.current_url.split("?")[0] + "?range=today")
        group = d.find_element(By.CSS_SELECTOR, '[data-tabs="Acquisition"]')
        shown = [s.get_attribute("id") for s in group.find_elements(By.CSS_SELECTOR, "section.breakdown") if s.is_displayed()]
        assert shown == ["t-source_type"], shown


def test_live_stream_shows_new_events_and_pauses(server):
    with chromium() as d:
        sign_in(d, server, *server.admin)
        d.get(f"{server.url}/sites/{server.site}/realtime")
        status = d.find_element(By.ID, "live-status")
        deadline = time.time() + 10
        while time.time() < deadline and status.text != "Live":
            time.sleep(0.2)
        assert status.text == "Live"
        post_events(server, [{"site": server.site, "name": "<img src=x onerror=alert(1)>", "url": "http://localhost/live-one"}])
        deadline = time.time() + 10
        body = d.find_element(By.ID, "live-events")
        while time.time() < deadline and "/live-one" not in body.text:
            time.sleep(0.2)
        assert "/live-one" in body.text and "<img src=x onerror=alert(1)>" in body.text  # shown as text, not markup
        assert not d.find_elements(By.CSS_SELECTOR, "#live-events img")
        d.find_element(By.ID, "live-filter").send_keys("nothing-matches")
        assert all(not r.is_displayed() for r in body.find_elements(By.TAG_NAME, "tr"))
        d.find_element(By.ID, "live-filter").clear()
        d.find_element(By.ID, "live-pause").click()
        assert status.text == "Paused"
        post_events(server, [{"site": server.site, "url": "http://localhost/while-paused"}])
        time.sleep(2.5)
        assert "/while-paused" not in body.text


def test_real_time_counts_and_pages_refresh_without_a_reload(server):
    """Issue 15: the counts and the pages table follow new visits (every 10 s), for every role
    allowed on the site, under its k rule: a viewer sees "< 5" until five visitors are there."""
    viewer = ("viewer@example.org", add_user(server, "viewer", server.site))
    for who in [server.admin, viewer]:
        with chromium() as d:
            sign_in(d, server, *who)
            d.get(f"{server.url}/sites/{server.site}/realtime")
            first = d.find_element(By.ID, "rt-thirty").text
            if who == server.admin:
                assert first == "0" and d.find_element(By.ID, "rt-empty").is_displayed()
                # Six visitors (six user agents) arrive on one page while the page stays open.
                for v in range(6):
                    post_events(server, [{"site": server.site, "url": "http://localhost/right-now"}], ua=f"{UA} rt{v}")
                want = "6"
            else:
                assert first == "6"
                # One more visitor, alone on a page: the viewer's count follows, the page stays hidden under k = 5.
                post_events(server, [{"site": server.site, "url": "http://localhost/alone"}], ua=f"{UA} alone")
                want = "7"
            deadline = time.time() + 25
            while time.time() < deadline and d.find_element(By.ID, "rt-thirty").text != want:
                time.sleep(0.5)
            assert d.find_element(By.ID, "rt-thirty").text == want
            rows = [r.text for r in d.find_elements(By.CSS_SELECTOR, "#rt-pages tr")]
            if who == server.admin:
                assert any("/right-now" in r and r.endswith("6") for r in rows), rows
            else:
                # The lone visitor's page is not shown, nor any row that would give it away by
                # difference with the total (here the whole table folds).
                assert rows and not any("/alone" in r or "/right-now" in r for r in rows), rows
            assert not d.find_element(By.ID, "rt-empty").is_displayed()


PAYLOADS = [
    "<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>", "javascript:alert(1)", "'><svg onload=alert(1)>",
    "=HYPERLINK(\"http://evil\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(1)", "{{constructor.constructor('alert(1)')()}}",
]


def test_xss_battery_as_every_role(server):
    # Six distinct visitors (user agents) per payload, so rows pass k = 5 for every role.
    for n, p in enumerate(PAYLOADS):
        from urllib.parse import quote
        for v in range(6):
            answer = post_events(server, [{"site": server.site, "name": p[:60], "url": f"http://localhost/x/{quote(p, safe='')}?utm_campaign={quote(p)}&utm_source={quote(p)}",
                                  "referrer": f"https://{quote(p, safe='')}.example/", "props": {"p": p}}], ua=f"{UA} p{n} v{v}")
            assert answer["accepted"] == 1, (p, answer)
    passwords = {"owner": server.admin, "manager": ("manager@example.org", add_user(server, "manager", server.site)),
                 "viewer": ("viewer@example.org", add_user(server, "viewer", server.site))}
    pages = ["/", f"/sites/{server.site}", f"/sites/{server.site}?range=today", f"/sites/{server.site}/realtime",
             f"/sites/{server.site}/settings", "/privacy", "/clients", "/health/pipeline", "/account",
             "/consent", f"/consent?site={server.site}", f"/sites/{server.site}/destinations",
             f"/sites/{server.site}/details?range=today&dimension=utm_campaign&sort=value",
             f"/sites/{server.site}/details?range=today&dimension=path&q=%3Cscript%3E"]
    for role, (email, password) in passwords.items():
        with chromium() as d:
            d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source":
                "window.__xss = 0; window.alert = function () { window.__xss++; }; window.confirm = window.prompt = window.alert;"})
            sign_in(d, server, email, password)
            for page in pages:
                d.get(server.url + page)
                time.sleep(0.3)
                assert d.execute_script("return window.__xss") == 0, f"{role} {page}"
                assert not d.find_elements(By.CSS_SELECTOR, "main img, main svg[onload], main script:not([src])"), f"{role} {page}"
                for a in d.find_elements(By.CSS_SELECTOR, "main a[href]"):
                    assert not a.get_attribute("href").lower().startswith("javascript:"), f"{role} {page}"
            errors = [l["message"] for l in d.get_log("browser") if "Refused to execute" in l["message"]]
            assert errors == [], f"{role}: {errors}"
            # CSV exports: no cell can start a formula.
            cookie = d.get_cookie("candor_session")["value"]
            for dim in ["path", "utm_campaign", "utm_source", "referrer_host", "name"]:
                req = urllib.request.Request(f"{server.url}/sites/{server.site}/export?range=today&dimension={dim}",
                                             headers={"Cookie": f"candor_session={cookie}"})
                with urllib.request.urlopen(req) as r:
                    cells = [c for row in csv.reader(io.StringIO(r.read().decode())) for c in row]
                assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")], f"{role} {dim}: {cells}"


def test_every_staff_page_fits_a_phone_and_a_laptop(server):
    """Issue 15: no page is wider than the window at 390x844 (a phone) or 1366x900 (a laptop):
    wide tables scroll inside themselves, long names wrap between words, nothing pushes the page
    sideways. Hostile long values (a 300-character path, an unbroken referrer) are in the data."""
    long_path = "/" + "a" * 300
    post_events(server, [{"site": server.site, "url": f"http://localhost{long_path}",
                          "referrer": "https://" + "b" * 60 + ".example.org/" + "c" * 120}])
    post_events(server, [{"site": server.site, "url": "http://localhost/pricing", "name": "signup"}])
    # A destination with an unbroken 80-character label and a long URL (issue 17's page).
    subprocess.run([BIN, "destinations", "add", "--data", server.data, "--policies", POLICIES, "--site", server.site,
                    "--kind", "webhook", "--label", "d" * 80, "--setting", "url=https://" + "e" * 60 + ".example/" + "f" * 200,
                    "--credential-env", "CANDOR_BROWSER_TEST_SECRET"], check=True, capture_output=True,
                   env={**os.environ, "CANDOR_BROWSER_TEST_SECRET": "browser-test-secret"})
    pages = ["/", f"/sites/{server.site}", f"/sites/{server.site}?range=today&f.path=%2Fpricing", f"/sites/{server.site}/destinations",
             f"/sites/{server.site}/settings", f"/sites/{server.site}/realtime", "/privacy", "/health/pipeline",
             "/clients", "/users", "/account", "/account/two-factor", "/consent", f"/consent?site={server.site}",
             f"/sites/{server.site}/details?dimension=path", f"/sites/{server.site}/details?dimension=referrer_host&q=b"]
    with chromium() as d:
        sign_in(d, server, *server.admin)
        # A shared link, made from the site page's "Share this view" (issue 18), is one of the pages.
        d.get(server.url + f"/sites/{server.site}?f.path=%2Fpricing")
        d.find_element(By.LINK_TEXT, "Share this view").click()
        form = d.find_element(By.CSS_SELECTOR, "form[action$='/settings/share']")
        assert form.find_element(By.NAME, "filters").get_attribute("value") == "f.path=%2Fpricing"
        form.find_element(By.NAME, "label").send_keys("Pricing for the client")
        form.find_element(By.CSS_SELECTOR, "button").click()
        link = d.find_element(By.ID, "new-link").text
        assert link.startswith(server.url + "/share/"), link
        pages.append(link[len(server.url):])
        for width, height in [(390, 844), (1366, 900)]:
            d.set_window_size(width, height)
            for page in pages:
                d.get(server.url + page)
                inner, scroll = d.execute_script(
                    "return [window.innerWidth, document.documentElement.scrollWidth]")
                assert scroll <= inner, f"{page} at {width}px: the page is {scroll}px wide in a {inner}px window"
                # Saved for a person to look at (test-artifacts/pages-390/…, pages-1366/…).
                folder = os.path.join(ARTIFACTS, f"pages-{width}")
                os.makedirs(folder, exist_ok=True)
                name = "".join(c if c.isalnum() else "-" for c in page.replace(server.site, "site")).strip("-") or "overview"
                name = "share" if page.startswith("/share/") else name
                d.save_screenshot(os.path.join(folder, name[:80] + ".png"))
        # The site page's tables stay readable on the phone: a row's name is not broken letter by letter.
        d.set_window_size(390, 844)
        d.get(server.url + "/")
        link = d.find_element(By.LINK_TEXT, "Demo site")
        assert link.size["width"] > 40 and link.size["height"] < 60, link.size


def test_world_map_draws_the_countries_table(tmp_path):
    """Issue 15: the Locations group's map (shapes from pygal_maps_world, served as /world.svg)
    shades each shown country; it renders under the CSP, with no console error."""
    geo = os.path.join(ROOT, "Tests", "CandorTests", "Fixtures", "candor-city-test.mmdb")
    srv = Server(tmp_path, extra=["--trusted-proxy", "127.0.0.1/32", "--geoip-city", geo])
    try:
        for i, ip in enumerate(["175.16.199.10", "175.16.199.11", "175.16.199.12", "89.160.20.112"]):
            body = json.dumps({"events": [{"site": srv.site, "url": "http://localhost/"}]}).encode()
            req = urllib.request.Request(f"{srv.url}/api/event", data=body, method="POST",
                                         headers={"Content-Type": "text/plain", "User-Agent": f"{UA} m{i}", "X-Forwarded-For": ip})
            urllib.request.urlopen(req).read()
        with chromium() as d:
            sign_in(d, srv, *srv.admin)
            d.get(f"{srv.url}/sites/{srv.site}?range=today")
            cn = d.find_element(By.CSS_SELECTOR, 'svg.map use[href="/world.svg#cn"]')
            se = d.find_element(By.CSS_SELECTOR, 'svg.map use[href="/world.svg#se"]')
            assert cn.get_attribute("class") == "m5" and se.get_attribute("class") == "m2", (cn.get_attribute("class"), se.get_attribute("class"))
            # The shapes were fetched and drawn: each has a size on the page, in its shade.
            box = d.execute_script("var b = arguments[0].getBBox(); return [b.width, b.height]", cn)
            assert box[0] > 5 and box[1] > 5, box
            assert d.execute_script("return getComputedStyle(arguments[0]).fill", cn) == "rgb(8, 81, 156)"
            errors = [e for e in d.get_log("browser") if e["level"] == "SEVERE" and "favicon.ico" not in e["message"]]
            assert not errors, errors
            os.makedirs(ARTIFACTS, exist_ok=True)
            d.find_element(By.CSS_SELECTOR, "svg.map").screenshot(os.path.join(ARTIFACTS, "dashboard-world-map.png"))
    finally:
        srv.stop()
