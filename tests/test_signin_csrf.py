"""Login CSRF on signin/ for browsers: the Origin rule holds for every
request, and a request a browser sends (it carries Origin or Sec-Fetch-Site)
must also pass Django's CSRF check. Native clients send neither header and
need no token, even when their cookie jar holds Django's CSRF cookie.

Django's test client skips CSRF checks unless built with
``enforce_csrf_checks=True``, so every client here is, like a real server.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.middleware.csrf import get_token
from django.test import Client, RequestFactory

from django_google_idtoken.models import LinkedAccount

from .helpers import SIGNIN, assert_refused, db_state, post_form

pytestmark = pytest.mark.django_db

OWN_ORIGIN = "http://testserver"


@pytest.fixture
def client() -> Client:
    return Client(enforce_csrf_checks=True)


def give_csrf_cookie(client: Client) -> str:
    """Put Django's CSRF cookie in the client, as a page of the site would;
    return the (masked) token such a page carries."""
    request = RequestFactory().get("/")
    token = get_token(request)
    client.cookies[settings.CSRF_COOKIE_NAME] = request.META["CSRF_COOKIE"]
    return token


def post(client: Client, token: str, **extra: Any) -> Any:
    return post_form(client, SIGNIN, {"idToken": token}, **extra)


# -- native clients -----------------------------------------------------------------


def test_native_client_needs_no_csrf_token(client, issuer, key_server):
    response = post(client, issuer.mint())
    assert response.status_code == 200, response.content
    assert LinkedAccount.objects.count() == 1


def test_native_client_keeping_its_cookies_signs_in_again(client, issuer, key_server):
    first = post(client, issuer.mint(sub="42"))
    assert first.status_code == 200, first.content
    # login() rotates Django's CSRF token and so sets its cookie: a native
    # client's cookie jar holds it from then on. That is why the cookie cannot
    # be what marks a browser.
    assert settings.CSRF_COOKIE_NAME in first.cookies
    assert settings.CSRF_COOKIE_NAME in client.cookies
    again = post(client, issuer.mint(sub="42"))
    assert again.status_code == 200, again.content
    assert again.json()["created"] is False


def test_native_client_json_body(client, issuer, key_server):
    response = client.post(SIGNIN, {"id_token": issuer.mint()}, content_type="application/json")
    assert response.status_code == 200, response.content


# -- browsers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "browser_header",
    [{"HTTP_ORIGIN": OWN_ORIGIN}, {"HTTP_SEC_FETCH_SITE": "same-origin"}],
    ids=["origin", "sec-fetch-site"],
)
def test_browser_without_token_is_refused_and_writes_nothing(
    client, issuer, key_server, browser_header
):
    give_csrf_cookie(client)
    before = db_state()
    response = post(client, issuer.mint(), **browser_header)
    assert_refused(response, 403, "csrf_failed")
    assert "CSRF token" in response.json()["detail"]
    assert db_state() == before
    assert "sessionid" not in response.cookies
    # Refused before the token is looked at: no key fetch.
    assert key_server.fetches == 0


def test_browser_without_csrf_cookie_is_refused(client, issuer, key_server):
    token = give_csrf_cookie(client)
    del client.cookies[settings.CSRF_COOKIE_NAME]
    response = post(client, issuer.mint(), HTTP_ORIGIN=OWN_ORIGIN, HTTP_X_CSRFTOKEN=token)
    assert_refused(response, 403, "csrf_failed")
    assert not LinkedAccount.objects.exists()


@pytest.mark.parametrize(
    "bad_token",
    ["x" * 64, "", "not a token", "A" * 32],
    ids=["wrong", "empty", "junk", "wrong-length"],
)
def test_browser_with_bad_token_is_refused(client, issuer, key_server, bad_token):
    give_csrf_cookie(client)
    response = post(client, issuer.mint(), HTTP_ORIGIN=OWN_ORIGIN, HTTP_X_CSRFTOKEN=bad_token)
    assert_refused(response, 403, "csrf_failed")
    assert not LinkedAccount.objects.exists()


def test_browser_with_token_of_another_cookie_is_refused(client, issuer, key_server):
    give_csrf_cookie(client)
    other_token = get_token(RequestFactory().get("/"))  # another visitor's secret
    response = post(client, issuer.mint(), HTTP_ORIGIN=OWN_ORIGIN, HTTP_X_CSRFTOKEN=other_token)
    assert_refused(response, 403, "csrf_failed")


def test_browser_with_token_in_header_signs_in(client, issuer, key_server):
    token = give_csrf_cookie(client)
    response = post(client, issuer.mint(), HTTP_ORIGIN=OWN_ORIGIN, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200, response.content
    assert client.get("/auth/google/me/").status_code == 200


def test_browser_with_token_in_form_field_signs_in(client, issuer, key_server):
    token = give_csrf_cookie(client)
    response = post_form(
        client,
        SIGNIN,
        {"idToken": issuer.mint(), "csrfmiddlewaretoken": token},
        HTTP_ORIGIN=OWN_ORIGIN,
    )
    assert response.status_code == 200, response.content


def test_browser_json_body_with_token_signs_in(client, issuer, key_server):
    token = give_csrf_cookie(client)
    response = client.post(
        SIGNIN,
        {"id_token": issuer.mint()},
        content_type="application/json",
        HTTP_SEC_FETCH_SITE="same-origin",
        HTTP_X_CSRFTOKEN=token,
    )
    assert response.status_code == 200, response.content


def test_foreign_origin_is_refused_even_with_a_valid_token(client, issuer, key_server):
    token = give_csrf_cookie(client)
    response = post(
        client, issuer.mint(), HTTP_ORIGIN="https://evil.example", HTTP_X_CSRFTOKEN=token
    )
    assert_refused(response, 403, "csrf_failed")
    assert "Origin" in response.json()["detail"]


def test_trusted_origin_still_needs_the_token(client, issuer, key_server, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.example.com"]
    token = give_csrf_cookie(client)
    refused = post(client, issuer.mint(), HTTP_ORIGIN="https://app.example.com")
    assert_refused(refused, 403, "csrf_failed")
    response = post(
        client, issuer.mint(), HTTP_ORIGIN="https://app.example.com", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 200, response.content


def test_https_browser_without_origin_needs_a_matching_referer(client, issuer, key_server):
    # Django's own rule for https without Origin: the Referer must be this site.
    token = give_csrf_cookie(client)
    browser = {"secure": True, "HTTP_SEC_FETCH_SITE": "same-origin", "HTTP_X_CSRFTOKEN": token}
    refused = post(client, issuer.mint(), **browser)
    assert_refused(refused, 403, "csrf_failed")
    response = post(client, issuer.mint(), **browser, HTTP_REFERER="https://testserver/login/")
    assert response.status_code == 200, response.content


def test_browser_hostile_body_is_400_not_500(client, issuer, key_server, settings):
    # The CSRF check reads the form body: a body Django refuses to parse must
    # end as it does without the check, 400 missing_token.
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 2
    token = give_csrf_cookie(client)
    response = post_form(
        client,
        SIGNIN,
        {"idToken": issuer.mint(), "a": "1", "b": "2"},
        HTTP_ORIGIN=OWN_ORIGIN,
        HTTP_X_CSRFTOKEN=token,
    )
    assert_refused(response, 400, "missing_token")


def test_browser_undecodable_charset_is_400_not_500(client, issuer, key_server):
    token = give_csrf_cookie(client)
    response = client.post(
        SIGNIN,
        b"idToken=abc",
        # No space before charset: the test client then sends the bytes as given.
        content_type="application/x-www-form-urlencoded;charset=rot13",
        HTTP_ORIGIN=OWN_ORIGIN,
        HTTP_X_CSRFTOKEN=token,
    )
    assert_refused(response, 400, "missing_token")
