"""The provisioning API against the real binary: every request this test sends and every answer
it gets (errors included) is validated against openapi/candor-v1.yaml with openapi-core (PyPI);
what the API does is checked where it shows: a stats key it issues reads the stats API, an
account it adds signs in to the dashboard, and the audit log names the key for each change."""
import json
import os
import subprocess
import urllib.error
import urllib.request

import yaml
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from test_pixel import BIN, ROOT, Server

SPEC = os.path.join(ROOT, "openapi", "candor-v1.yaml")


class Client:
    def __init__(self, srv):
        with open(SPEC) as f:
            spec = yaml.safe_load(f)
        spec["servers"] = [{"url": srv.url}]
        self.api = OpenAPI.from_dict(spec)
        self.srv = srv
        self.calls = 0

    def call(self, method, path, body=None, key=None, content_type="application/json", raw=None, validate_request=True):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"Content-Type": content_type} if data is not None else {}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(self.srv.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req) as r:
                status, answer, got = r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            status, answer, got = e.code, e.read(), dict(e.headers)
        path_only = path.split("?")[0]
        request = MockRequest(self.srv.url, method.lower(), path_only, headers=headers, data=data,
                              content_type=content_type if data is not None else "application/json")
        if validate_request:
            self.api.validate_request(request)
        response = MockResponse(answer, status_code=status, headers=got, content_type=got.get("Content-Type", "application/json"))
        self.api.validate_response(request, response)
        self.calls += 1
        return status, (json.loads(answer) if answer else None), got


def cli(srv, *args):
    return subprocess.run([BIN, *args, "--data", srv.data, "--policies", os.path.join(ROOT, "policies")],
                          check=True, capture_output=True, text=True).stdout


def test_the_provisioning_api_does_what_its_openapi_file_says(tmp_path):
    srv = Server(tmp_path)
    try:
        c = Client(srv)
        key = cli(srv, "keys", "add", "--scope", "admin:provision", "--label", "agency").strip()
        key_id = key.split("_")[1]
        stats_key = cli(srv, "keys", "add", "--site", srv.site).strip()
        assert f"{key_id}\tagency\tadmin:provision\tcli" in cli(srv, "keys", "list")

        # Who may call: no key, an unknown key, a key of another scope.
        status, body, headers = c.call("GET", "/api/v1/sites", validate_request=False)
        assert status == 401 and headers.get("WWW-Authenticate") == "Bearer"
        assert c.call("GET", "/api/v1/sites", key="ck_nosuch_key")[0] == 401
        status, body, _ = c.call("GET", "/api/v1/sites", key=stats_key)
        assert status == 403 and "admin:provision" in body["error"]

        status, body, _ = c.call("GET", "/api/v1/sites", key=key)
        assert status == 200 and [s["id"] for s in body["sites"]] == [srv.site]

        # Sites: added with a URL reduced to its host, refused twice by name, bodies that are not JSON or too large.
        status, site, _ = c.call("POST", "/api/v1/sites", {"name": "Client A", "domains": ["https://client-a.example/"],
                                                             "timezone": "Europe/Berlin"}, key=key)
        assert status == 201 and site["domains"] == ["client-a.example"] and site["timezone"] == "Europe/Berlin" and site["archived_at"] is None
        sid = site["id"]
        status, body, _ = c.call("POST", "/api/v1/sites", {"name": "client a", "domains": ["other.example"]}, key=key)
        assert status == 400 and "already named" in body["error"]
        status, body, _ = c.call("POST", "/api/v1/sites", {"name": "B"}, key=key, validate_request=False)
        assert status == 400 and body["error"] == "domains is missing"
        status, body, _ = c.call("POST", "/api/v1/sites", raw=b"name=B", content_type="application/x-www-form-urlencoded", key=key,
                                 validate_request=False)
        assert status == 415
        status, body, _ = c.call("POST", "/api/v1/sites", raw=b"{" + b" " * 70_000 + b"}", key=key, validate_request=False)
        assert status == 413
        status, body, _ = c.call("POST", "/api/v1/sites", raw=b"{\"name\": ", key=key, validate_request=False)
        assert status == 400
        status, body, _ = c.call("PATCH", "/api/v1/sites/" + sid, {"name": "Client A GmbH", "archived": True}, key=key)
        assert status == 200 and body["name"] == "Client A GmbH" and body["archived_at"] is not None
        status, body, _ = c.call("PATCH", "/api/v1/sites/" + sid, {"archived": False}, key=key)
        assert status == 200 and body["archived_at"] is None
        assert c.call("GET", "/api/v1/sites/nosuchsite", key=key)[0] == 404
        status, body, _ = c.call("PATCH", "/api/v1/sites/" + sid, {"policy": "no-such-policy"}, key=key)
        assert status == 400 and "No policy named" in body["error"]
        other = [p[:-5] for p in os.listdir(os.path.join(ROOT, "policies")) if p.endswith(".toml") and p != "default.toml"][0]
        status, body, _ = c.call("PATCH", "/api/v1/sites/" + sid, {"policy": other}, key=key)
        assert status == 403, "a site's policy is for owners and admins"

        # Goals.
        status, goal, _ = c.call("POST", f"/api/v1/sites/{sid}/goals", {"name": "Signup", "kind": "page", "match": "/signup"}, key=key)
        assert status == 201 and goal["kind"] == "page" and goal["match"] == "/signup"
        status, body, _ = c.call("POST", f"/api/v1/sites/{sid}/goals", {"name": "Sale", "kind": "conversion", "match": "purchase"}, key=key)
        assert status == 400 and "sale, lead or call" in body["error"]
        status, body, _ = c.call("GET", f"/api/v1/sites/{sid}/goals", key=key)
        assert status == 200 and [g["name"] for g in body["goals"]] == ["Signup"]
        assert c.call("DELETE", f"/api/v1/sites/{sid}/goals/{goal['id']}", key=key)[0] == 204
        assert c.call("DELETE", f"/api/v1/sites/{sid}/goals/{goal['id']}", key=key)[0] == 404

        # Keys: one issued here reads the stats API until it is revoked; no provisioning key from here.
        status, issued, _ = c.call("POST", f"/api/v1/sites/{sid}/keys", {"label": "client dashboard", "scope": "stats:read"}, key=key)
        assert status == 201 and issued["token"].startswith("ck_") and issued["issued_by"] == f"api-key:{key_id}"
        stats = urllib.request.Request(f"{srv.url}/api/v1/sites/{sid}/stats", headers={"Authorization": "Bearer " + issued["token"]})
        assert urllib.request.urlopen(stats).status == 200
        status, body, _ = c.call("GET", f"/api/v1/sites/{sid}/keys", key=key)
        assert [k["id"] for k in body["keys"]] == [issued["id"]] and "token" not in body["keys"][0]
        status, body, _ = c.call("POST", f"/api/v1/sites/{sid}/keys", {"scope": "admin:provision"}, key=key, validate_request=False)
        assert status == 400
        status, body, _ = c.call("POST", f"/api/v1/sites/{sid}/keys", {"scope": "privacy:officer"}, key=key, validate_request=False)
        assert status == 403, "no key that reaches personal data"
        assert c.call("DELETE", f"/api/v1/keys/{issued['id']}", key=key)[0] == 204
        try:
            urllib.request.urlopen(stats)
            assert False, "a revoked key still reads"
        except urllib.error.HTTPError as e:
            assert e.code == 401
        assert c.call("DELETE", f"/api/v1/keys/{key_id}", key=key)[0] == 404

        # Accounts: the password answered signs in; an admin key makes no owner.
        status, user, _ = c.call("POST", "/api/v1/users", {"email": "client@a.example", "role": "viewer", "sites": [sid]}, key=key)
        assert status == 201 and user["sites"] == [sid] and user["two_factor"] is False
        login = urllib.request.Request(f"{srv.url}/login", data=f"email=client@a.example&password={user['password']}".encode(),
                                       headers={"Content-Type": "application/x-www-form-urlencoded"}, method="POST")

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **k):
                return None
        try:
            urllib.request.build_opener(NoRedirect).open(login)
            assert False, "no redirect after sign-in"
        except urllib.error.HTTPError as e:
            assert e.code == 303 and "candor_session=" in e.headers.get("Set-Cookie", "")
        for role in ["owner", "admin"]:
            status, body, _ = c.call("POST", "/api/v1/users", {"email": "boss@a.example", "role": role}, key=key, validate_request=False)
            assert status == 403, role
        # The install's admin (made by candor init) is out of the key's reach.
        assert c.call("DELETE", f"/api/v1/users/{srv.admin[0]}", key=key)[0] == 403
        status, body, _ = c.call("PATCH", f"/api/v1/users/{srv.admin[0]}", {"role": "viewer"}, key=key)
        assert status == 403
        status, body, _ = c.call("PATCH", "/api/v1/users/client@a.example", {"role": "manager"}, key=key)
        assert status == 200 and body["role"] == "manager" and body["sites"] == [sid]
        status, body, _ = c.call("GET", "/api/v1/users", key=key)
        assert {u["email"]: u["role"] for u in body["users"]}["client@a.example"] == "manager"
        assert c.call("DELETE", "/api/v1/users/client@a.example", key=key)[0] == 204
        assert c.call("DELETE", "/api/v1/users/client@a.example", key=key)[0] == 404

        # Every change is in the audit log under the key, and the chain holds.
        audit = cli(srv, "audit", "list", "--limit", "100")
        for action in ["site_added", "site_changed", "site_archived", "goal_added", "goal_removed", "api_key_issued", "api_key_revoked",
                       "user_added", "user_role_changed", "user_removed"]:
            assert any(action in line and f"api-key:{key_id}" in line for line in audit.splitlines()), (action, audit)
        assert cli(srv, "audit", "verify").startswith("ok: ")
        assert c.calls == 35
    finally:
        srv.stop()
