"""End to end: the example project, run as a real server, signs in the demo user.

The server is ``example_project/manage.py demo`` exactly as the README's quick
start runs it, on a free 127.0.0.1 port and with a database file of its own
(the example project always uses SQLite, whatever IDTOKEN_TEST_DB says). The
tests drive it over HTTP the way the demo page's script and an admin do, so
the development issuer, the key fetch over loopback HTTP, verification, the
session and the admin all run for real. No pytest-django database is used.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
MANAGE = ROOT / "example_project" / "manage.py"
DEMO_SUB = "100000000000000000001"
DEMO_EMAIL = "demo@example.com"
#: Bounds on waiting for the server, not expectations of its speed.
STARTUP_LIMIT = 120
SHUTDOWN_LIMIT = 15
REQUEST_TIMEOUT = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Browser:
    """urllib with a cookie jar: keeps the session and CSRF cookies, follows redirects."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.cookies = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def cookie(self, name: str) -> str:
        return next(cookie.value or "" for cookie in self.cookies if cookie.name == name)

    def request(
        self,
        method: str,
        path: str,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, str]:
        """(status, body) of one request; error statuses are answers too."""
        data = urllib.parse.urlencode(form or {}).encode() if method == "POST" else None
        request = urllib.request.Request(
            self.base_url + path, data=data, headers=dict(headers or {}), method=method
        )
        try:
            with self.opener.open(request, timeout=REQUEST_TIMEOUT) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            with err:
                return err.code, err.read().decode()

    def get(self, path: str) -> tuple[int, str]:
        return self.request("GET", path)

    def post(
        self,
        path: str,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, str]:
        return self.request("POST", path, form, headers)

    def csrf_header(self) -> dict[str, str]:
        """The header the demo page's script sends with its POSTs."""
        return {"X-CSRFToken": self.cookie("csrftoken")}


def token_claims(token: str) -> dict[str, Any]:
    """The payload of a compact JWS (unverified: only to see what was minted)."""
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def demo_sign_in(browser: Browser) -> dict[str, Any]:
    """What the page's "Sign in as a demo user" button does; the sign-in answer."""
    # A token from the development issuer, with the page's CSRF token...
    status, body = browser.post("/demo/token/", headers=browser.csrf_header())
    assert status == 200, body
    token = json.loads(body)["id_token"]
    # ...posted as Google's client examples do, from the page's own origin.
    status, body = browser.post(
        "/auth/google/signin/", {"idToken": token}, {"Origin": browser.base_url}
    )
    assert status == 200, body
    return dict(json.loads(body))


def wait_until_serving(server: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_LIMIT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the example project exited ({server.returncode}):\n{log.read_text()}")
        try:
            with urllib.request.urlopen(base_url + "/", timeout=5):
                return
        except urllib.error.HTTPError as err:
            err.close()
            pytest.fail(f"the example project answered {err.code}:\n{log.read_text()}")
        except OSError:  # connection refused while it starts (URLError is an OSError)
            pass
        time.sleep(0.2)
    pytest.fail(f"the example project did not answer within {STARTUP_LIMIT}s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def example_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The example project's ``demo`` command serving on a free loopback port."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    workdir = tmp_path_factory.mktemp("example_project")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "example.settings",  # not the suite's tests.settings
        "EXAMPLE_PORT": str(port),
        "EXAMPLE_DB": str(workdir / "db.sqlite3"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("GOOGLE_CLIENT_ID", None)  # the development issuer, not Google
    log = workdir / "server.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, str(MANAGE), "demo"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_serving(server, base_url, log)
            yield base_url
        finally:
            server.terminate()
            try:
                server.wait(timeout=SHUTDOWN_LIMIT)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=SHUTDOWN_LIMIT)


def test_demo_sign_in_and_admin(example_server: str) -> None:
    browser = Browser(example_server)
    status, page = browser.get("/")
    assert status == 200
    assert "Nobody is signed in" in page
    assert "Sign in as a demo user" in page

    answer = demo_sign_in(browser)
    assert answer["created"] is True
    assert answer["account"]["provider"] == "google"
    assert answer["account"]["sub"] == DEMO_SUB
    assert answer["account"]["email"] == DEMO_EMAIL
    assert answer["user"]["email"] == DEMO_EMAIL

    status, body = browser.get("/auth/google/me/")
    assert status == 200, body
    assert json.loads(body) == answer["user"]

    status, page = browser.get("/")
    assert status == 200
    username = answer["user"]["username"]
    assert f"Signed in as <strong>{username}</strong> ({DEMO_EMAIL})" in page
    assert f"<code>{DEMO_SUB}</code>" in page

    # Signing in again finds the same user through the linked account.
    again = demo_sign_in(browser)
    assert again["created"] is False
    assert again["user"]["id"] == answer["user"]["id"]

    # The demo superuser logs in through the admin's form and sees the account.
    admin = Browser(example_server)
    status, page = admin.get("/admin/login/?next=/admin/")
    assert status == 200
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert match, page
    form = {
        "csrfmiddlewaretoken": match.group(1),
        "username": "admin",
        "password": "admin",
        "next": "/admin/",
    }
    status, page = admin.post("/admin/login/?next=/admin/", form)
    assert status == 200
    assert "Site administration" in page, page
    status, page = admin.get("/admin/django_google_idtoken/linkedaccount/")
    assert status == 200
    assert f'class="field-email">{DEMO_EMAIL}<' in page, page


def test_dev_issuer_mints_only_for_the_demo_account(example_server: str) -> None:
    # No successful sign-in here, so the test above sees a fresh user whatever the order.
    browser = Browser(example_server)
    assert browser.get("/")[0] == 200

    # POST only, and only with the page's CSRF token.
    assert browser.get("/demo/token/")[0] == 405
    assert browser.post("/demo/token/")[0] == 403

    # Whatever the request asks for, the token is the demo account's.
    status, body = browser.post(
        "/demo/token/", {"sub": "1", "email": "admin@example.com"}, browser.csrf_header()
    )
    assert status == 200, body
    token = json.loads(body)["id_token"]
    claims = token_claims(token)
    assert claims["sub"] == DEMO_SUB
    assert claims["email"] == DEMO_EMAIL

    # A page of another site cannot post it to sign a visitor in (login CSRF).
    status, body = browser.post(
        "/auth/google/signin/", {"idToken": token}, {"Origin": "http://evil.example"}
    )
    assert status == 403
    assert json.loads(body)["code"] == "csrf_failed"
