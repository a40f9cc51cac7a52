"""REPLAY_PROTECTION: a token signs in once."""

import hashlib

import pytest
from django.core.cache import cache

from django_google_idtoken.jws import b64url_decode
from django_google_idtoken.models import LinkedAccount

pytestmark = pytest.mark.django_db

SIGNIN = "/auth/google/signin/"


@pytest.fixture
def replay_on(settings, key_server):
    settings.GOOGLE_IDTOKEN = {**settings.GOOGLE_IDTOKEN, "REPLAY_PROTECTION": True}


def signin(client, token):
    return client.post(SIGNIN, {"id_token": token}, content_type="application/json")


def test_off_by_default_a_token_may_sign_in_twice(client, issuer, key_server):
    token = issuer.mint()
    assert signin(client, token).status_code == 200
    assert signin(client, token).status_code == 200


def test_a_used_token_is_refused(client, issuer, replay_on):
    token = issuer.mint(sub="42")
    assert signin(client, token).status_code == 200
    before = LinkedAccount.objects.get().last_signed_in_at
    second = signin(client, token)
    assert second.status_code == 401
    assert second.json()["code"] == "token_replayed"
    # Nothing written by the refused attempt.
    assert LinkedAccount.objects.get().last_signed_in_at == before
    # A fresh token for the same account is fine.
    assert signin(client, issuer.mint(sub="42")).status_code == 200


def test_the_mark_is_keyed_on_the_signature_and_lives_until_expiry(client, issuer, replay_on):
    now = issuer.now()
    token = issuer.mint(iat=now, exp=now + 600)
    assert signin(client, token).status_code == 200
    digest = hashlib.sha256(b64url_decode(token.rsplit(".", 1)[1])).hexdigest()
    key = f"django_google_idtoken:used:{digest}"
    assert cache.get(key) == 1
    expire_info = getattr(cache, "_expire_info", None)
    if expire_info is not None:  # local-memory cache: check the mark's lifetime
        expires = expire_info[cache.make_and_validate_key(key)]
        assert now + 600 <= expires <= now + 600 + 60 + 5  # exp + LEEWAY (+ rounding)
