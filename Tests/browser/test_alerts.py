"""Alerts from the running server to real receivers on loopback: an SMTP server (PyPI aiosmtpd)
gets the e-mail libcurl sends, a local HTTP server gets the Slack, Teams and signed-webhook
posts. A silent-site rule fires once while the site is silent, resolves when an event comes,
and the history says where each went."""
import email
import email.policy
import hashlib
import hmac
import http.server
import json
import os
import subprocess
import threading
import time

from aiosmtpd.controller import Controller

from test_dashboard import POLICIES, post_events
from test_pixel import BIN, Server, free_port

SECRET = "webhook-signing-secret-0123456789"


class Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content, policy=email.policy.default)))
        return "250 OK"


def receiver():
    posts = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            posts.append((self.path, dict(self.headers), body))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, posts


def wait(predicate, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_a_silent_site_alert_fires_once_and_resolves_by_mail_slack_teams_and_webhook(tmp_path):
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    httpd, posts = receiver()
    hook = f"http://127.0.0.1:{httpd.server_address[1]}"
    srv = Server(tmp_path, extra=["--smtp-url", f"smtp://127.0.0.1:{smtp.port}", "--smtp-from", "candor@example.org",
                                  "--smtp-starttls", "off", "--alerts-every", "1"])
    try:
        def cli(*args, env=None):
            return subprocess.run([BIN, "alerts", *args, "--data", srv.data, "--policies", POLICIES], check=True,
                                  capture_output=True, text=True, env={**os.environ, **(env or {})}).stdout.strip()
        cli("email", "--email", srv.admin[0], "--set", "on")
        for kind in ["slack", "teams"]:
            cli("channel-add", "--kind", kind, "--site", srv.site, "--url-env", "HOOK_URL", env={"HOOK_URL": f"{hook}/{kind}"})
        cli("channel-add", "--kind", "webhook", "--url-env", "HOOK_URL", "--secret-env", "HOOK_SECRET",
            env={"HOOK_URL": f"{hook}/webhook", "HOOK_SECRET": SECRET})
        post_events(srv, [{"site": srv.site, "url": "http://localhost/first"}])
        # Silent after 3 seconds (0.000833 hours), checked every second.
        rule = cli("add", "--kind", "silent", "--site", srv.site, "--threshold", "0.000833", "--cooldown", "0")
        assert wait(lambda: len(mailbox.messages) >= 1), srv.rows("SELECT * FROM alert_history")
        time.sleep(4)  # more checks while it keeps firing: no second message
        assert len(mailbox.messages) == 1, [m[1]["Subject"] for m in mailbox.messages]
        to, message = mailbox.messages[0]
        assert to == [srv.admin[0]]
        assert message["Subject"] == "[Candor] Alert: silent — Demo site", message["Subject"]
        assert message["From"] == "candor@example.org"
        text = message.get_content()
        assert "Demo site: no event for 0 hours" in text and f"({rule})" in text, text
        by_path = {p: (h, b) for p, h, b in posts}
        assert set(by_path) == {"/slack", "/teams", "/webhook"}, list(by_path)
        slack = json.loads(by_path["/slack"][1])
        assert slack["text"].startswith("*[Candor] Alert: silent*") and "Demo site: no event" in slack["text"]
        teams = json.loads(by_path["/teams"][1])
        assert teams["@type"] == "MessageCard" and teams["title"] == "[Candor] Alert: silent" and "Demo site: no event" in teams["text"]
        headers, body = by_path["/webhook"]
        signature = dict(p.split("=", 1) for p in headers["X-Candor-Signature"].split(","))
        expected = hmac.new(SECRET.encode(), f"{signature['t']}.".encode() + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(signature["v1"], expected)
        hooked = json.loads(body)
        assert hooked["event"] == "alert.fired" and hooked["rule"] == rule and hooked["site"] == srv.site

        # An event: the rule resolves, and says so everywhere.
        post_events(srv, [{"site": srv.site, "url": "http://localhost/second"}])
        assert wait(lambda: any("Resolved" in m[1]["Subject"] for m in mailbox.messages))
        resolved = [m for m in mailbox.messages if "Resolved" in m[1]["Subject"]][0][1]
        assert resolved["Subject"] == "[Candor] Resolved: silent — Demo site"
        assert wait(lambda: sum(1 for p, _, _ in posts if p == "/slack") == 2)
        history = cli("history").splitlines()
        assert [h.split("\t")[4] for h in history[:2]] == ["resolved", "fired"], history
        assert all(h.split("\t")[5] == "email:1 slack:ok teams:ok webhook:ok" for h in history[:2]), history
        # Nothing of the channels' URLs or secret is stored in clear.
        assert f"{hook}/slack".encode() not in srv.disk() and SECRET.encode() not in srv.disk()
    finally:
        srv.stop()
        smtp.stop()
        httpd.shutdown()
