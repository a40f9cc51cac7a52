"""The redirect-mode login URI (``gis/``) through Django's test client: Google's
double-submit check, verification, the session, and where it redirects.

Every client enforces Django's CSRF checks, as a real server does: the view
must work without Django's token (Google's page cannot send it)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from django_google_idtoken.models import LinkedAccount

from .helpers import db_state

pytestmark = pytest.mark.django_db

GIS = "/auth/google/gis/"
ME = "/auth/google/me/"
G_CSRF = "4f1c2d3e5a6b7c8d9e0f1a2b3c4d5e6f"


@pytest.fixture
def client() -> Client:
    return Client(enforce_csrf_checks=True)


@pytest.fixture(autouse=True)
def _login_redirect_url(settings: Any) -> None:
    settings.LOGIN_REDIRECT_URL = "/welcome/"


def post(
    client: Client,
    credential: str | None,
    *,
    cookie: str | None = G_CSRF,
    field: str | None = G_CSRF,
    query: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    **extra: Any,
) -> Any:
    """What Google posts to the login URI: credential and g_csrf_token, with the cookie."""
    if cookie is not None:
        client.cookies["g_csrf_token"] = cookie
    data = dict(form or {})
    if credential is not None:
        data["credential"] = credential
    if field is not None:
        data["g_csrf_token"] = field
    url = GIS + (f"?{urlencode(query)}" if query else "")
    return client.post(url, data, **extra)


def assert_refused_page(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert f'<code id="refusal-code">{code}</code>' in page, page
    assert "sessionid" not in response.cookies
    # never_cache: a refusal (or a sign-in) must not be served from a cache.
    assert "no-cache" in response["Cache-Control"]


# -- success ------------------------------------------------------------------------------


def test_signs_in_and_redirects_to_login_redirect_url(client, issuer, key_server):
    assert client.get(ME).status_code == 401
    response = post(client, issuer.mint(sub="7", email="ada@example.com"))
    assert response.status_code == 302, response.content
    assert response["Location"] == "/welcome/"
    assert "no-cache" in response["Cache-Control"]
    account = LinkedAccount.objects.get()
    assert account.sub == "7"
    me = client.get(ME)
    assert me.status_code == 200
    assert me.json()["id"] == account.user_id


def test_returning_user_is_the_same_user(client, issuer, key_server):
    post(client, issuer.mint(sub="7"))
    post(Client(enforce_csrf_checks=True), issuer.mint(sub="7"))
    assert get_user_model().objects.count() == 1


def test_session_key_is_rotated(client, issuer, key_server):
    # A session planted before sign-in (session fixation) is useless afterwards.
    session = client.session
    session["planted"] = True
    session.save()
    planted_key = session.session_key
    response = post(client, issuer.mint())
    assert response.status_code == 302
    assert client.cookies["sessionid"].value != planted_key


@pytest.mark.parametrize(
    "next_url", ["/after/", "/after/?tab=2#top", "http://testserver/after/"], ids=str
)
def test_safe_next_from_the_query_string(client, issuer, key_server, next_url):
    response = post(client, issuer.mint(), query={"next": next_url})
    assert response.status_code == 302
    assert response["Location"] == next_url


def test_safe_next_from_a_form_field(client, issuer, key_server):
    response = post(client, issuer.mint(), form={"next": "/from-form/"})
    assert response["Location"] == "/from-form/"


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example/",
        "//evil.example/",
        "http://testserver.evil.example/",
        "javascript:alert(1)",
        "\\\\evil.example/",
        "/\\evil.example/",
        "",
    ],
    ids=str,
)
def test_unsafe_next_goes_to_login_redirect_url(client, issuer, key_server, next_url):
    response = post(client, issuer.mint(), query={"next": next_url})
    assert response.status_code == 302
    assert response["Location"] == "/welcome/"


def test_https_site_refuses_an_http_next(client, issuer, key_server):
    # require_https: on an https site, http://own-host/ would drop to plain http.
    response = post(client, issuer.mint(), query={"next": "http://testserver/x/"}, secure=True)
    assert response["Location"] == "/welcome/"
    response = post(client, issuer.mint(), query={"next": "https://testserver/x/"}, secure=True)
    assert response["Location"] == "https://testserver/x/"


@pytest.mark.parametrize(
    "origin",
    [None, "null", "https://accounts.google.com", "http://testserver"],
    ids=["none", "null", "google", "own"],
)
def test_origins_of_the_real_flows_are_allowed(client, issuer, key_server, origin):
    extra = {} if origin is None else {"HTTP_ORIGIN": origin}
    response = post(client, issuer.mint(), **extra)
    assert response.status_code == 302, response.content


def test_trusted_origin_is_allowed(client, issuer, key_server, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.example.com"]
    response = post(client, issuer.mint(), HTTP_ORIGIN="https://app.example.com")
    assert response.status_code == 302


# -- refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cookie", "field", "detail"),
    [
        (None, G_CSRF, "cookie is missing"),
        ("", G_CSRF, "cookie is missing"),
        (G_CSRF, None, "field is missing"),
        (G_CSRF, "", "field is missing"),
        ("", "", "cookie is missing"),
        (G_CSRF, G_CSRF[:-1] + "0", "do not match"),
        (G_CSRF, G_CSRF.upper(), "do not match"),
        (G_CSRF, G_CSRF + "0", "do not match"),
    ],
    ids=[
        "no-cookie",
        "empty-cookie",
        "no-field",
        "empty-field",
        "both-empty",
        "mismatch",
        "other-case",
        "longer",
    ],
)
def test_double_submit_check(client, issuer, key_server, cookie, field, detail):
    before = db_state()
    response = post(client, issuer.mint(), cookie=cookie, field=field)
    assert_refused_page(response, 403, "csrf_failed")
    assert detail in response.content.decode()
    assert db_state() == before
    # Refused before the token is looked at: no key fetch.
    assert key_server.fetches == 0
    assert client.get(ME).status_code == 401


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "https://sub.testserver", "https://accounts.google.com.evil"]
)
def test_foreign_origin_is_refused(client, issuer, key_server, origin):
    response = post(client, issuer.mint(), HTTP_ORIGIN=origin)
    assert_refused_page(response, 403, "csrf_failed")
    assert not LinkedAccount.objects.exists()


@pytest.mark.parametrize(
    "origin",
    [None, "null", "https://sub.testserver", "https://app.example.com"],
    ids=["no-origin", "null", "sibling", "trusted-sibling"],
)
def test_post_from_a_sibling_subdomain_is_refused(client, issuer, key_server, settings, origin):
    # The attacker moves first: a page on a sibling subdomain tosses a
    # g_csrf_token cookie for the parent domain, then posts its author's own
    # ID token with Referrer-Policy: no-referrer (Origin: null). The browser
    # still marks the post Sec-Fetch-Site: same-site (issue 12, item 3). Even
    # an origin in CSRF_TRUSTED_ORIGINS: no real flow posts same-site.
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.example.com"]
    extra = {"HTTP_SEC_FETCH_SITE": "same-site"}
    if origin is not None:
        extra["HTTP_ORIGIN"] = origin
    before = db_state()
    response = post(client, issuer.mint(), **extra)
    assert_refused_page(response, 403, "csrf_failed")
    assert "Sec-Fetch-Site: same-site" in response.content.decode()
    assert db_state() == before
    assert key_server.fetches == 0
    assert client.get(ME).status_code == 401


@pytest.mark.parametrize(
    ("origin", "fetch_site"),
    [
        ("https://accounts.google.com", "cross-site"),  # Google's page
        ("null", "cross-site"),  # Google's https page to an http login URI
        ("http://testserver", "same-origin"),  # One Tap / FedCM on this site's page
        ("null", "same-origin"),  # this site's page with Referrer-Policy: no-referrer
        (None, "none"),
    ],
)
def test_sec_fetch_site_of_the_real_flows_is_allowed(
    client, issuer, key_server, origin, fetch_site
):
    extra = {"HTTP_SEC_FETCH_SITE": fetch_site}
    if origin is not None:
        extra["HTTP_ORIGIN"] = origin
    response = post(client, issuer.mint(), **extra)
    assert response.status_code == 302, response.content


@pytest.mark.parametrize("credential", [None, "", "   "], ids=["absent", "empty", "blank"])
def test_missing_credential(client, issuer, key_server, credential):
    response = post(client, credential)
    assert_refused_page(response, 400, "missing_token")


def test_bad_credential(client, issuer, key_server):
    response = post(client, "not-a-token")
    assert_refused_page(response, 401, "malformed_token")


def test_expired_credential(client, issuer, key_server):
    response = post(client, issuer.mint(exp=issuer.now() - 3600))
    assert_refused_page(response, 401, "token_expired")
    assert not LinkedAccount.objects.exists()


def test_credential_for_another_app(client, issuer, key_server):
    response = post(client, issuer.mint(aud="9999-other.apps.googleusercontent.com"))
    assert_refused_page(response, 401, "wrong_audience")


def test_inactive_user(client, issuer, key_server):
    post(Client(enforce_csrf_checks=True), issuer.mint(sub="7"))
    get_user_model().objects.update(is_active=False)
    response = post(client, issuer.mint(sub="7"))
    assert_refused_page(response, 403, "user_inactive")


def test_keys_unavailable_is_503_with_retry_after(client, issuer, key_server):
    key_server.respond = lambda path: (500, {}, b"")
    response = post(client, issuer.mint())
    assert_refused_page(response, 503, "keys_unavailable")
    assert int(response["Retry-After"]) > 0


def test_refusal_page_links_back_to_a_safe_next_only(client, issuer, key_server):
    page = post(client, "not-a-token", query={"next": "/back/"}).content.decode()
    assert 'href="/back/"' in page
    page = post(client, "not-a-token", query={"next": "https://evil.example/"}).content.decode()
    assert "evil.example" not in page
    assert 'href="/"' in page


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_other_methods_are_405(client, issuer, key_server, method):
    response = getattr(client, method)(GIS)
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert '<code id="refusal-code">method_not_allowed</code>' in response.content.decode()


def test_token_in_the_url_is_never_used(client, issuer, key_server):
    client.cookies["g_csrf_token"] = G_CSRF
    response = client.get(GIS, {"credential": issuer.mint(), "g_csrf_token": G_CSRF})
    assert response.status_code == 405
    assert key_server.fetches == 0
    assert not LinkedAccount.objects.exists()


def test_too_many_fields_is_400_not_500(client, issuer, key_server, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 2
    response = post(client, issuer.mint(), form={"a": "1", "b": "2"})
    assert_refused_page(response, 400, "missing_token")


def test_undecodable_charset_is_400_not_500(client, issuer, key_server):
    client.cookies["g_csrf_token"] = G_CSRF
    response = client.post(
        GIS,
        f"credential=abc&g_csrf_token={G_CSRF}".encode(),
        # No space before charset: the test client then sends the bytes as given.
        content_type="application/x-www-form-urlencoded;charset=rot13",
    )
    assert_refused_page(response, 400, "missing_token")
