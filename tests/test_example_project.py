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
import html
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from http.cookiejar import Cookie, CookieJar
from typing import Any

import pytest

from .example_server import serve_example_project

DEMO_SUB = "100000000000000000001"
DEMO_EMAIL = "demo@example.com"
REQUEST_TIMEOUT = 30


class Browser:
    """urllib with a cookie jar: keeps the session and CSRF cookies, follows redirects."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.cookies = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        #: Where the last request ended, after redirects.
        self.url = ""

    def cookie(self, name: str) -> str:
        return next(cookie.value or "" for cookie in self.cookies if cookie.name == name)

    def set_cookie(self, name: str, value: str) -> None:
        """A cookie set by the page's script (as Google's library sets g_csrf_token)."""
        host = urllib.parse.urlsplit(self.base_url).hostname or ""
        cookie = Cookie(
            version=0,
            name=name,
            value=value,
            port=None,
            port_specified=False,
            domain=host,
            domain_specified=False,
            domain_initial_dot=False,
            path="/",
            path_specified=True,
            secure=False,
            expires=None,
            discard=True,
            comment=None,
            comment_url=None,
            rest={},
        )
        self.cookies.set_cookie(cookie)

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
                self.url = response.url
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            with err:
                self.url = err.url
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


def page_attribute(page: str, name: str) -> str:
    """An attribute {% google_sign_in %} rendered on the page (HTML-unescaped)."""
    match = re.search(rf'{name}="([^"]*)"', page)
    assert match, f"{name} not on the page:\n{page}"
    return html.unescape(match.group(1))


def token_claims(token: str) -> dict[str, Any]:
    """The payload of a compact JWS (unverified: only to see what was minted)."""
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def mint_demo_token(browser: Browser) -> str:
    """A token from the development issuer, with the page's CSRF token."""
    status, body = browser.post("/demo/token/", headers=browser.csrf_header())
    assert status == 200, body
    return str(json.loads(body)["id_token"])


def demo_sign_in(browser: Browser) -> dict[str, Any]:
    """What the popup-mode page does with the demo button; the sign-in answer."""
    status, page = browser.get("/?mode=popup")
    assert status == 200
    signin_url = page_attribute(page, "data-signin-url")
    csrf_token = page_attribute(page, "data-csrf-token")
    token = mint_demo_token(browser)
    # As the app's sign_in.js posts it: from the page's own origin, with the
    # CSRF token {% google_sign_in %} put on the page.
    status, body = browser.post(
        signin_url, {"idToken": token}, {"Origin": browser.base_url, "X-CSRFToken": csrf_token}
    )
    assert status == 200, body
    return dict(json.loads(body))


def demo_redirect_sign_in(browser: Browser) -> str:
    """What the redirect-mode page does with the demo button; the page it lands on."""
    status, page = browser.get("/?mode=redirect")
    assert status == 200
    login_uri = page_attribute(page, "data-login_uri")
    token = mint_demo_token(browser)
    # As Google does: the same value as a cookie on the site and as a field.
    browser.set_cookie("g_csrf_token", "0123456789abcdef")
    status, landing = browser.request(
        "POST",
        login_uri.removeprefix(browser.base_url),
        {"credential": token, "g_csrf_token": "0123456789abcdef"},
        {"Origin": browser.base_url},
    )
    assert status == 200, landing
    return landing


@pytest.fixture(scope="module")
def example_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The example project's ``demo`` command serving on a free loopback port."""
    with serve_example_project(tmp_path_factory.mktemp("example_project")) as base_url:
        yield base_url


def test_demo_sign_in_and_admin(example_server: str) -> None:
    browser = Browser(example_server)
    status, page = browser.get("/")
    assert status == 200
    assert "Nobody is signed in" in page
    # Google's configuration, in popup mode, for the stand-in of Google's library.
    assert 'data-callback="djangoGoogleIdtokenCallback"' in page
    assert "demo/dev_gis.js" in page
    assert "accounts.google.com/gsi/client" not in page  # offline: no Google

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

    # So does redirect mode, in a browser of its own: the login URI signs in
    # and redirects to the page's next, /?mode=redirect.
    redirected = Browser(example_server)
    page = demo_redirect_sign_in(redirected)
    assert redirected.url == f"{example_server}/?mode=redirect"
    assert f"Signed in as <strong>{username}</strong> ({DEMO_EMAIL})" in page
    status, body = redirected.get("/auth/google/me/")
    assert status == 200, body
    assert json.loads(body)["id"] == answer["user"]["id"]

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
    # Nor can a page of this site without Django's CSRF token...
    status, body = browser.post(
        "/auth/google/signin/", {"idToken": token}, {"Origin": browser.base_url}
    )
    assert status == 403
    assert json.loads(body)["code"] == "csrf_failed"
    # ...nor a form posted to the login URI without Google's g_csrf_token cookie.
    status, page = browser.post(
        "/auth/google/gis/", {"credential": token, "g_csrf_token": "forged"}
    )
    assert status == 403
    assert '<code id="refusal-code">csrf_failed</code>' in page
    assert browser.get("/auth/google/me/")[0] == 401
