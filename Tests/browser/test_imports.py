"""Imports against the real binary: Plausible's export, written here from its documented columns,
goes in with `candor import plausible` while the server runs, then through Chromium's own file
upload on the settings page; the site page, the stats API and a CSV export show the
hand-counted figures, marked as imported."""
import datetime
import json
import os
import subprocess
import time
import urllib.request

from selenium.webdriver.common.by import By

from test_dashboard import sign_in
from test_pixel import BIN, ROOT, chromium, server  # noqa: F401  (server is a fixture)

POLICIES = os.path.join(ROOT, "policies")


def write_export(directory, days):
    """Three days of Plausible's export: 10 + 8 + 5 = 23 visitors, 25 + 16 + 7 = 48 pageviews;
    / has 7 + 6 + 5 = 18 visitors and 12 + 10 + 7 = 29 pageviews."""
    a, b, c = days
    span = f"_{a.replace('-', '')}_{c.replace('-', '')}.csv"
    files = {
        "visitors": ["date,visitors,pageviews,bounces,visits,visit_duration",
                     f"{a},10,25,4,12,600", f"{b},8,16,2,9,450", f"{c},5,7,1,5,100"],
        "pages": ["date,hostname,page,visits,visitors,pageviews,total_scroll_depth,total_scroll_depth_visits",
                  f"{a},example.com,/,8,7,12,,", f"{a},example.com,/pricing,5,4,13,,", f"{b},example.com,/,6,6,10,,",
                  f"{b},example.com,/blog/hello,4,3,6,,", f"{c},example.com,/,5,5,7,,"],
        "sources": ["date,source,referrer,utm_source,utm_medium,utm_campaign,utm_content,utm_term,pageviews,visitors,visits,visit_duration,bounces",
                    f"{a},,,,,,,,25,10,12,600,4", f"{b},,,newsletter,email,october,,,16,8,9,450,2", f"{c},,,,,,,,7,5,5,100,1"],
    }
    paths = []
    for table, lines in files.items():
        path = os.path.join(directory, f"imported_{table}{span}")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        paths.append(path)
    return paths


def cli(srv, *args):
    return subprocess.run([BIN, *args, "--data", srv.data, "--policies", POLICIES], check=True, capture_output=True, text=True).stdout


def test_plausible_export_imported_by_command_and_by_upload(server, tmp_path):
    today = datetime.datetime.now(datetime.timezone.utc).date()
    days = [(today - datetime.timedelta(days=n)).isoformat() for n in (10, 9, 8)]
    export = tmp_path / "export"
    export.mkdir()
    paths = write_export(str(export), days)

    out = cli(server, "import", "plausible", "--site", server.site, str(export))
    assert out.startswith("import 1: 3 day(s) from " + days[0]), out
    # Again: the same days are replaced, not added.
    cli(server, "import", "plausible", "--site", server.site, str(export))
    listed = cli(server, "import", "list", "--site", server.site).splitlines()
    assert len(listed) == 1 and listed[0].startswith(f"2\tplausible\t{days[0]}\t{days[2]}\t3\t"), listed

    key = cli(server, "keys", "add", "--site", server.site).strip()
    req = urllib.request.Request(f"{server.url}/api/v1/sites/{server.site}/stats?from={days[0]}&to={days[2]}",
                                 headers={"Authorization": "Bearer " + key})
    stats = json.loads(urllib.request.urlopen(req).read())
    assert stats["results"]["visitors"] == 23 and stats["results"]["pageviews"] == 48, stats
    assert stats["imported"] == {"days": 3, "sources": ["plausible"]}

    cli(server, "import", "remove", "--site", server.site, "2")
    assert cli(server, "import", "list", "--site", server.site) == ""

    with chromium() as d:
        sign_in(d, server, *server.admin)
        d.get(f"{server.url}/sites/{server.site}/settings#imports")
        form = d.find_element(By.CSS_SELECTOR, "#imports form[enctype='multipart/form-data']")
        form.find_element(By.NAME, "files").send_keys("\n".join(paths))
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        deadline = time.time() + 10
        while time.time() < deadline and "done=imported" not in d.current_url:
            time.sleep(0.1)
        assert "done=imported" in d.current_url, d.page_source[:1500]
        assert f"{days[0]} – {days[2]}" in d.find_element(By.ID, "imports").text

        d.get(f"{server.url}/sites/{server.site}?range=custom&from={days[0]}&to={days[2]}")
        cards = {c.find_element(By.TAG_NAME, "span").text: c.find_element(By.TAG_NAME, "strong").text
                 for c in d.find_elements(By.CSS_SELECTOR, ".cards .card")}
        assert cards["Visitors"] == "23" and cards["Pageviews"] == "48", cards
        assert "3 days of this period are imported from Plausible" in d.find_element(By.ID, "imported-note").text
        assert len(d.find_elements(By.CSS_SELECTOR, ".chart rect.imported")) == 3

    # The pages table through the stats API (read as a client viewer, k = 5).
    path_req = urllib.request.Request(f"{server.url}/api/v1/sites/{server.site}/stats?from={days[0]}&to={days[2]}&dimension=path",
                                        headers={"Authorization": "Bearer " + key})
    rows = json.loads(urllib.request.urlopen(path_req).read())["results"]
    # /pricing (4) and /blog/hello (3) are under k; folded alone they would not certainly hold k
    # visitors, so / (18) is folded with them: 18 + 4 + 3 = 25 visitors, 29 + 13 + 6 = 48 pageviews.
    assert rows == [{"value": "Other (suppressed)", "visitors": 25, "pageviews": 48}], rows
    actions = [r[0] for r in server.rows("SELECT action FROM audit_log WHERE action IN ('data_imported', 'import_removed') ORDER BY seq")]
    assert actions == ["data_imported", "data_imported", "import_removed", "data_imported"], actions
