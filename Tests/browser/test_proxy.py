"""First-party serving (issue 16): the README's nginx recipe in front of Candor, the client site's
pages and Candor's script, API and banner under one origin and path (/stats/), data-api set;
Candor trusts X-Forwarded-For from the proxy's address only."""
import os
import subprocess
import tempfile
import time

from selenium.webdriver.common.by import By

from test_consent import ClientSite, ctas, wait_rows
from test_pixel import ROOT, Server, banner_root, chromium, free_port, wait_subject

NGINX_CONF = """
daemon off;
worker_processes 1;
{user}
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy; fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location / {{ proxy_pass http://127.0.0.1:{pages}; }}
    # The README's recipe: Candor under /stats/ on the site's own domain.
    location /stats/ {{
      proxy_pass http://127.0.0.1:{candor}/;
      proxy_bind 127.0.0.3;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
    }}
  }}
}}
"""


def test_nginx_first_party_recipe(tmp_path):
    geo = os.path.join(ROOT, "Tests", "CandorTests", "Fixtures", "candor-city-test.mmdb")
    server = Server(tmp_path, extra=["--trusted-proxy", "127.0.0.3/32", "--geoip-city", geo])
    pages = ClientSite(tmp_path, server)
    conf_dir = tempfile.mkdtemp(prefix="candor-nginx-")
    port = free_port()
    with open(os.path.join(conf_dir, "nginx.conf"), "w") as f:
        f.write(NGINX_CONF.format(dir=conf_dir, port=port, pages=pages.httpd.server_address[1], candor=server.port,
                                  user="user root;" if os.geteuid() == 0 else ""))
    nginx = subprocess.Popen(["nginx", "-p", conf_dir, "-c", os.path.join(conf_dir, "nginx.conf")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proxied = f"http://127.0.0.1:{port}"
        (pages.dir / "fp.html").write_text(f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>fp</title>
<script defer src="/stats/pixel.js" data-site="{server.site}" data-api="/stats/api"></script>
<script defer src="/stats/consent.js" data-site="{server.site}" data-api="/stats/api"></script>
</head><body><button type="button" id="cta" data-candor-event="cta_click">Go</button></body></html>""")
        for _ in range(50):
            try:
                import urllib.request
                urllib.request.urlopen(proxied + "/stats/healthz").read()
                break
            except OSError:
                time.sleep(0.1)
        with chromium() as d:
            # A forged X-Forwarded-For from the browser must not become the client's address.
            d.execute_cdp_cmd("Network.enable", {})
            d.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"X-Forwarded-For": "89.160.20.112"}})
            d.get(proxied + "/fp.html")
            requested = d.execute_script("return performance.getEntriesByType('resource').map(function (e) { return e.name })")
            assert all(u.startswith(proxied + "/") for u in requested), requested
            banner_root(d).find_element(By.CSS_SELECTOR, "[data-choice=accept]").click()
            wait_subject(d)
            d.find_element(By.ID, "cta").click()
            wait_rows(server, "SELECT 1 FROM events WHERE name = 'cta_click'", lambda r: len(r) == 1)
            assert ctas(server) == [("identified", 1)]
            # Everything the browser fetched came from the site's own origin, the banner's style sheet included.
            requested = d.execute_script("return performance.getEntriesByType('resource').map(function (e) { return e.name })")
            assert any("/stats/assets/consent." in u for u in requested) and all(u.startswith(proxied + "/") for u in requested), requested
        # The address is nginx's view of the browser (127.0.0.1, no city), not the forged 89.160.20.112 (SE in the fixture).
        assert server.rows("SELECT DISTINCT country FROM events") == [(None,)]
        assert server.rows("SELECT count(*) FROM consent_records WHERE subject IS NOT NULL") == [(1,)]
    finally:
        nginx.terminate()
        nginx.wait(10)
        pages.stop()
        server.stop()
