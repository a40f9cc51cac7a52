"""What ``signin/`` hands back (``SIGNIN_SESSION``, ``SIGNIN_TOKEN``): a
session, a DRF authtoken, a simplejwt pair, and each credential working on a
project's own API view (tests/views.py) through the real URLs."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from .helpers import assert_refused, sign_in

pytestmark = pytest.mark.django_db

ME = "/auth/google/me/"


def configure(settings: Any, **options: Any) -> None:
    settings.GOOGLE_IDTOKEN = {**settings.GOOGLE_IDTOKEN, **options}


def test_by_default_a_session_and_no_token(client, issuer, key_server):
    response = sign_in(client, issuer.mint(sub="c-1"))
    assert response.status_code == 200
    assert "token" not in response.json()
    assert django_settings.SESSION_COOKIE_NAME in response.cookies
    assert client.get(ME).status_code == 200
    assert not Token.objects.exists()


def test_authtoken_instead_of_the_session(client, issuer, key_server, settings):
    configure(settings, SIGNIN_TOKEN="authtoken", SIGNIN_SESSION=False)

    response = sign_in(client, issuer.mint(sub="c-2", email="c2@gmail.com"))

    assert response.status_code == 200, response.content
    user = get_user_model().objects.get()
    key = response.json()["token"]
    assert key == Token.objects.get(user=user).key
    # No session: a client without cookies gets nothing it would drop.
    assert django_settings.SESSION_COOKIE_NAME not in response.cookies
    assert client.get(ME).status_code == 401
    # Still a sign-in for Django: user_logged_in updated last_login.
    assert user.last_login is not None
    # The key authenticates the project's own views that take DRF tokens.
    who = client.get("/api/whoami-token/", HTTP_AUTHORIZATION=f"Token {key}")
    assert who.status_code == 200
    assert who.json()["id"] == user.pk


def test_authtoken_keeps_one_key_per_user(client, issuer, key_server, settings):
    configure(settings, SIGNIN_TOKEN="authtoken", SIGNIN_SESSION=False)
    first = sign_in(client, issuer.mint(sub="c-3")).json()["token"]
    second = sign_in(client, issuer.mint(sub="c-3")).json()["token"]
    assert first == second
    assert Token.objects.count() == 1


def test_authtoken_besides_the_session(client, issuer, key_server, settings):
    configure(settings, SIGNIN_TOKEN="authtoken")
    response = sign_in(client, issuer.mint(sub="c-4"))
    assert isinstance(response.json()["token"], str)
    assert client.get(ME).status_code == 200


def test_simplejwt_pair(client, issuer, key_server, settings):
    configure(settings, SIGNIN_TOKEN="simplejwt", SIGNIN_SESSION=False)
    # Issued 30 days ago (and still valid): simplejwt's "iat" is now, and the
    # same base64 text (","iat":17...) in both tokens would trip the leak
    # guard (see SIMPLE_JWT in tests/settings.py).
    token = issuer.mint(sub="c-5", iat=issuer.now() - 30 * 86400)

    response = sign_in(client, token)

    assert response.status_code == 200, response.content
    pair = response.json()["token"]
    assert set(pair) == {"access", "refresh"}
    user = get_user_model().objects.get()
    assert client.get(ME).status_code == 401
    who = client.get("/api/whoami-jwt/", HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    assert who.status_code == 200, who.content
    assert who.json()["id"] == user.pk
    # The refresh token is a real simplejwt refresh token.
    from rest_framework_simplejwt.tokens import RefreshToken

    assert str(RefreshToken(pair["refresh"])["user_id"]) == str(user.pk)


def test_a_refused_signin_issues_nothing(client, issuer, key_server, settings):
    configure(settings, SIGNIN_TOKEN="authtoken")
    response = sign_in(client, issuer.expired(sub="c-6"))
    assert_refused(response, 401, "token_expired")
    assert not Token.objects.exists()
    assert "token" not in response.json()
