"""Reports by e-mail from the real binary to a real SMTP server (PyPI aiosmtpd): the PDF's text
(pdftotext, Debian poppler-utils) holds the hand-counted figures of yesterday, as an owner may
read them and, for an address that is no account, k-anonymised; the chart is a PNG and the CSV
the top pages. A scheduled report goes out from candor serve once for its period."""
import json
import os
import sqlite3
import subprocess
import time
import urllib.request

from aiosmtpd.controller import Controller

from test_alerts import Mailbox, wait
from test_dashboard import POLICIES
from test_pixel import BIN, UA, Server, free_port


def yesterday_noon_ms():
    now = int(time.time() * 1000)
    return (now // 86_400_000 - 1) * 86_400_000 + 12 * 3_600_000


def seed(srv):
    """Yesterday (UTC, the demo site's zone): 3 visitors, 5 pageviews: /a 3, /b 2."""
    ts = yesterday_noon_ms()
    for i, paths in enumerate([["/a", "/b"], ["/a", "/b"], ["/a"]]):
        events = [{"site": srv.site, "url": f"http://localhost{p}", "ts": ts + i * 60_000 + n * 1000} for n, p in enumerate(paths)]
        req = urllib.request.Request(f"{srv.url}/api/event", data=json.dumps({"events": events}).encode(), method="POST",
                                     headers={"Content-Type": "text/plain", "User-Agent": f"{UA} r{i}"})
        assert urllib.request.urlopen(req).status == 202


def pdf_text(message, tmp_path, name):
    pdf = [p for p in message.iter_attachments() if p.get_content_type() == "application/pdf"][0]
    path = tmp_path / name
    path.write_bytes(pdf.get_content())
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout


def test_send_now_and_a_scheduled_report(tmp_path):
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    mail = ["--smtp-url", f"smtp://127.0.0.1:{smtp.port}", "--smtp-from", "reports@example.org", "--smtp-starttls", "off"]
    srv = Server(tmp_path, extra=[*mail, "--reports-every", "1", "--rollups-every", "1"])
    try:
        seed(srv)
        time.sleep(2)  # the rollup job folds yesterday's events

        def send(to, *extra):
            return subprocess.run([BIN, "reports", "send-now", "--data", srv.data, "--policies", POLICIES, "--site", srv.site, "--to", to,
                                   "--period", "day", *mail, *extra], check=True, capture_output=True, text=True).stdout
        # A funnel /a then /b: 3 visits reach /a, 2 of them /b after it.
        db = sqlite3.connect(os.path.join(srv.data, "candor.sqlite"))
        a = db.execute("INSERT INTO goals (site_id, name, kind, match) VALUES (?, 'Saw A', 'page', '/a')", (srv.site,)).lastrowid
        b = db.execute("INSERT INTO goals (site_id, name, kind, match) VALUES (?, 'Saw B', 'page', '/b')", (srv.site,)).lastrowid
        db.execute("INSERT INTO funnels (site_id, name, steps) VALUES (?, 'A then B', ?)", (srv.site, f"{a},{b}"))
        db.commit()
        db.close()
        out = send(srv.admin[0], "--csv")
        assert out.startswith(f"sent\t{srv.admin[0]}\t"), out
        assert wait(lambda: len(mailbox.messages) == 1)
        to, message = mailbox.messages[0]
        day = time.strftime("%Y-%m-%d", time.gmtime(yesterday_noon_ms() / 1000))
        assert to == [srv.admin[0]] and message["Subject"] == f"[Candor] Demo site: daily report, {day}", message["Subject"]
        body = message.get_body(("plain",)).get_content()
        assert "Visitors: 3" in body and "Pageviews: 5" in body and "/a: 3 visitors" in body, body
        text = pdf_text(message, tmp_path, "owner.pdf")
        assert "Demo site: daily report" in text and day in text, text
        lines = {" ".join(l.split()) for l in text.splitlines()}
        assert any(l.startswith("Visitors 3") for l in lines) and any("Pageviews 5" in l for l in lines), text
        assert any(l.startswith("/a 3 3") for l in lines) and any(l.startswith("/b 2 2") for l in lines), text
        assert "Funnel: A then B" in text and "Saw A 3 100.0 % –" in lines and "Saw B 2 66.7 % 33.3 %" in lines, text
        kinds = {p.get_content_type(): p for p in message.iter_attachments()}
        assert kinds["image/png"].get_content()[:8] == b"\x89PNG\r\n\x1a\n"
        assert kinds["text/csv"].get_content().replace("\r\n", "\n") == "page,visitors,pageviews\n/a,3,3\n/b,2,2\n"

        # An address that is no account reads as a client viewer: 3 visitors are under k = 5.
        send("client@example.org")
        assert wait(lambda: len(mailbox.messages) == 2)
        restricted = pdf_text(mailbox.messages[1][1], tmp_path, "client.pdf")
        lines = {" ".join(l.split()) for l in restricted.splitlines()}
        assert any(l.replace("\u00a0", " ").replace(" ", "").startswith("Visitors<5") for l in lines), restricted
        assert "/a" not in restricted and "fewer than 5 visitors" in " ".join(restricted.split()), restricted

        # A daily report scheduled for the owner goes out once (the site backdated: it existed yesterday).
        db = sqlite3.connect(os.path.join(srv.data, "candor.sqlite"))
        db.execute("UPDATE sites SET created_at = created_at - 3 * 86400000 WHERE id = ?", (srv.site,))
        db.commit()
        db.close()
        subprocess.run([BIN, "reports", "subscribe", "--data", srv.data, "--policies", POLICIES, "--email", srv.admin[0],
                        "--site", srv.site, "--period", "day"], check=True, capture_output=True)
        assert wait(lambda: len(mailbox.messages) == 3)
        time.sleep(3)
        assert len(mailbox.messages) == 3, [m[1]["Subject"] for m in mailbox.messages]
        assert mailbox.messages[2][1]["Subject"] == f"[Candor] Demo site: daily report, {day}"

        # The consolidated report of every site the account may read (one here), to accounts only.
        out = subprocess.run([BIN, "reports", "send-now", "--data", srv.data, "--policies", POLICIES, "--all-sites", "--to", srv.admin[0],
                              "--period", "day", *mail], check=True, capture_output=True, text=True).stdout
        assert out.startswith(f"sent\t{srv.admin[0]}\t"), out
        assert wait(lambda: len(mailbox.messages) == 4)
        consolidated = mailbox.messages[3][1]
        assert consolidated["Subject"] == f"[Candor] All sites: daily report, {day}", consolidated["Subject"]
        assert "Demo site: 3 visitors" in consolidated.get_body(("plain",)).get_content()
        text = pdf_text(consolidated, tmp_path, "all.pdf")
        lines = {" ".join(l.split()) for l in text.splitlines()}
        assert any(l.startswith("Demo site 3 new 5 0") for l in lines) and any(l.startswith("All sites (1) 3 new 5 0") for l in lines), text
        refused = subprocess.run([BIN, "reports", "send-now", "--data", srv.data, "--policies", POLICIES, "--all-sites", "--to", "client@example.org",
                                  "--period", "day", *mail], capture_output=True, text=True)
        assert refused.returncode != 0 and "goes to an account" in refused.stderr, refused.stderr
    finally:
        srv.stop()
        smtp.stop()
