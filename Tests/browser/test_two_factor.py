"""Two-factor sign-in in headless Chromium against the real server, as a new install has it
(owners and admins must use a second factor): enrolment from the QR code (decoded by zbarimg)
with an independent TOTP implementation (PyPI pyotp), sign-in with a code, a recovery code that
works once, a replayed code refused, another browser signed out from the session list, and the
operator's reset; the key and the codes are not on disk in clear."""
import base64
import os
import subprocess
import time
import urllib.parse

import pyotp
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from test_pixel import ARTIFACTS, BIN, Server, chromium
from test_dashboard import POLICIES


def replaced(page):
    """A wait condition: true once `page` (the old document's root) has left the browser. Chromium
    reports an element of a document already navigated away from either as stale or as "Node with
    given id does not belong to the document", which selenium's staleness_of does not catch."""
    def gone(_):
        try:
            page.is_enabled()
            return False
        except StaleElementReferenceException:
            return True
        except WebDriverException as e:
            if "does not belong to the document" in (e.msg or ""):
                return True
            raise
    return gone


def submit_password(d, srv, email, password):
    d.get(srv.url + "/login")
    d.find_element(By.NAME, "email").send_keys(email)
    d.find_element(By.NAME, "password").send_keys(password)
    page = d.find_element(By.TAG_NAME, "html")
    d.find_element(By.CSS_SELECTOR, "form.login button").click()
    WebDriverWait(d, 10).until(replaced(page))


def submit_code(d, code):
    field = d.find_element(By.NAME, "code")
    field.clear()
    field.send_keys(code)
    page = d.find_element(By.TAG_NAME, "html")
    field.submit()
    WebDriverWait(d, 10).until(replaced(page))  # the answer page has replaced the form


def alert(d):
    found = d.find_elements(By.CSS_SELECTOR, '[role="alert"]')
    return found[0].text if found else ""


def settled(d, predicate, timeout=10):
    """Waits for a form's answer page (a click may return before the browser has it)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def next_step(totp, after):
    """Waits (at most 31 s) for a code of a later 30-second step than `after`'s."""
    deadline = time.time() + 31
    while time.time() < deadline and int(time.time()) // 30 <= after:
        time.sleep(0.5)
    return totp.now(), int(time.time()) // 30


def test_enrol_sign_in_with_codes_and_revoke_sessions(tmp_path):
    srv = Server(tmp_path, two_factor=True)
    try:
        email, password = srv.admin
        with chromium() as d, chromium() as other:
            # The first sign-in of a new install's owner leads to enrolment, and every page back to it.
            submit_password(d, srv, email, password)
            assert d.current_url.endswith("/account/two-factor"), d.current_url
            assert "Your role must sign in with a second factor" in d.page_source
            d.get(srv.url + "/users")
            assert d.current_url.endswith("/account/two-factor")
            # The QR code holds the key shown for typing, in the otpauth form apps read.
            secret = d.find_element(By.ID, "totp-secret").text.replace(" ", "")
            png = os.path.join(ARTIFACTS, "two-factor-qr.png")
            os.makedirs(ARTIFACTS, exist_ok=True)
            with open(png, "wb") as h:
                h.write(d.find_element(By.ID, "totp-qr").screenshot_as_png)
            uri = subprocess.run(["zbarimg", "--raw", "-q", png], check=True, capture_output=True, text=True).stdout.strip()
            assert uri == (f"otpauth://totp/Candor:{urllib.parse.quote(email, safe='@')}?secret={secret}&issuer=Candor"
                           "&algorithm=SHA1&digits=6&period=30"), uri
            totp = pyotp.TOTP(secret)
            step = int(time.time()) // 30
            submit_code(d, totp.now())
            codes = [c.text for c in d.find_elements(By.CSS_SELECTOR, "#recovery-codes code")]
            assert len(codes) == 10 and len(set(codes)) == 10, codes
            d.get(srv.url + "/")
            assert "Demo site" in d.page_source

            # Neither the key nor a recovery code is on disk in clear.
            disk = srv.disk()
            assert secret.encode() not in disk and base64.b32decode(secret) not in disk
            assert not any(c.encode() in disk or c.replace("-", "").encode() in disk for c in codes)

            # Another browser: the password leads to the code step; a recovery code signs in once.
            submit_password(other, srv, email, password)
            assert other.current_url.endswith("/login/code"), other.current_url
            submit_code(other, "000000" if totp.now() != "000000" else "111111")
            assert "not right" in alert(other)
            submit_code(other, codes[0].upper())
            assert "Demo site" in other.page_source, other.page_source[:500]
            other.find_element(By.CSS_SELECTOR, "form.logout button").click()
            submit_password(other, srv, email, password)
            submit_code(other, codes[0])
            assert "not right" in alert(other)
            # A code of a later step signs in; the same code again is a replay.
            code, step = next_step(totp, step)
            submit_code(other, code)
            assert "Demo site" in other.page_source
            with chromium() as third:
                submit_password(third, srv, email, password)
                submit_code(third, code)
                assert "not right" in alert(third)
                submit_code(third, codes[1])
                assert "Demo site" in third.page_source

            # The session list names this browser and the others; signing one out ends it there.
            d.get(srv.url + "/account")
            rows = d.find_elements(By.CSS_SELECTOR, "#sessions tbody tr")
            assert len(rows) == 3 and sum("(this one)" in r.text for r in rows) == 1, [r.text for r in rows]
            assert all("Chrome on Linux" in r.text for r in rows), [r.text for r in rows]
            assert "8 of 10 recovery codes unused" in d.page_source
            d.find_element(By.CSS_SELECTOR, "#sessions form[action='/account/sessions/revoke'] input[value='others']").find_element(
                By.XPATH, "..").find_element(By.TAG_NAME, "button").click()
            assert settled(d, lambda: "2 sessions ended" in d.page_source), d.page_source[:600]
            other.get(srv.url + "/")
            assert other.current_url.endswith("/login")
            d.get(srv.url + "/")
            assert "Demo site" in d.page_source

            actions = [a for (a,) in srv.rows("SELECT action FROM audit_log ORDER BY seq")]
            assert actions.count("two_factor_enabled") == 1 and actions.count("recovery_code_used") == 2, actions
            assert "sessions_revoked" in actions

            # The operator resets the second factor: the session ends; the password leads to enrolment again.
            out = subprocess.run([BIN, "users", "reset-2fa", "--data", srv.data, "--policies", POLICIES, "--email", email],
                                 check=True, capture_output=True, text=True).stdout
            assert "second factor removed" in out
            d.get(srv.url + "/")
            assert d.current_url.endswith("/login")
            submit_password(d, srv, email, password)
            assert d.current_url.endswith("/account/two-factor")
            assert srv.rows("SELECT count(*) FROM recovery_codes") == [(0,)]
        verify = subprocess.run([BIN, "audit", "verify", "--data", srv.data, "--policies", POLICIES], capture_output=True, text=True)
        assert verify.returncode == 0 and verify.stdout.startswith("ok:"), verify.stdout + verify.stderr
    finally:
        srv.stop()
