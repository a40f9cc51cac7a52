"""Login CSRF: the sign-in endpoint refuses requests from foreign Origins."""

import pytest
from django.contrib.auth.models import User

from django_google_idtoken.models import LinkedAccount

from .helpers import post_form

pytestmark = pytest.mark.django_db

SIGNIN = "/auth/google/signin/"


def post(client, token, **headers):
    return post_form(client, SIGNIN, {"idToken": token}, **headers)


def test_native_client_without_origin_signs_in(client, issuer, key_server):
    assert post(client, issuer.mint()).status_code == 200


def test_same_origin_page_signs_in(client, issuer, key_server):
    response = post(client, issuer.mint(), HTTP_ORIGIN="http://testserver")
    assert response.status_code == 200


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "null",  # sandboxed iframes and some redirects
        "https://testserver",  # other scheme
        "http://testserver:8080",  # other port
        "http://testserver.evil.example",
        "not a url",
    ],
)
def test_foreign_origin_is_refused_and_writes_nothing(client, issuer, key_server, origin):
    response = post(client, issuer.mint(), HTTP_ORIGIN=origin)
    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"
    assert not User.objects.exists()
    assert not LinkedAccount.objects.exists()
    assert "sessionid" not in response.cookies
    # Refused before the token is even looked at: no key fetch.
    assert key_server.fetches == 0


def test_trusted_origins_are_honoured(client, issuer, key_server, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.example.com", "https://*.example.org"]
    assert post(client, issuer.mint(), HTTP_ORIGIN="https://app.example.com").status_code == 200
    assert post(client, issuer.mint(), HTTP_ORIGIN="https://a.b.example.org").status_code == 200
    assert post(client, issuer.mint(), HTTP_ORIGIN="https://example.org").status_code == 200
    refused = post(client, issuer.mint(), HTTP_ORIGIN="http://a.example.org")
    assert refused.json()["code"] == "csrf_failed"
    refused = post(client, issuer.mint(), HTTP_ORIGIN="https://example.org.evil.example")
    assert refused.json()["code"] == "csrf_failed"
