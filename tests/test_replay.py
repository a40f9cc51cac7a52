"""REPLAY_PROTECTION: a token signs in once; without the cache, none does."""

import hashlib
import io
import logging

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError

from django_google_idtoken.jws import b64url_decode
from django_google_idtoken.models import LinkedAccount

from .helpers import assert_refused, db_state

pytestmark = pytest.mark.django_db

SIGNIN = "/auth/google/signin/"
ACCOUNTS = "/auth/google/accounts/"


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


# -- the cache down -------------------------------------------------------------------


@pytest.fixture
def cache_down(settings, replay_on):
    """Replay protection on, and KEYS_CACHE unreachable (like Redis down)."""
    settings.CACHES = {
        **settings.CACHES,
        "broken": {"BACKEND": "tests.keyserver_helpers.BrokenCache"},
    }
    settings.GOOGLE_IDTOKEN = {**settings.GOOGLE_IDTOKEN, "KEYS_CACHE": "broken"}


@pytest.fixture
def our_records():
    records: list[logging.LogRecord] = []
    handler = logging.Handler(level=logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    app_logger = logging.getLogger("django_google_idtoken")
    app_logger.addHandler(handler)
    yield records
    app_logger.removeHandler(handler)


def test_cache_down_fails_closed_with_a_coded_503(client, issuer, cache_down):
    """Without the cache, whether the token was used cannot be known: it is
    not let through (a stolen token could sign in again during the outage),
    and the client is told to retry (a 503 with Retry-After, not a 500)."""
    before = db_state()
    response = signin(client, issuer.mint(sub="42"))
    assert_refused(response, 503, "replay_check_unavailable")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert db_state() == before


def test_cache_down_fails_closed_for_links_too(client, issuer, key_server, settings):
    assert signin(client, issuer.mint(sub="ada-1")).status_code == 200
    settings.CACHES = {
        **settings.CACHES,
        "broken": {"BACKEND": "tests.keyserver_helpers.BrokenCache"},
    }
    settings.GOOGLE_IDTOKEN = {
        **settings.GOOGLE_IDTOKEN,
        "REPLAY_PROTECTION": True,
        "KEYS_CACHE": "broken",
    }
    before = db_state()
    response = client.post(
        ACCOUNTS, {"id_token": issuer.mint(sub="ada-2")}, content_type="application/json"
    )
    assert_refused(response, 503, "replay_check_unavailable")
    assert "Retry-After" in response
    assert db_state() == before


def test_cache_down_is_logged_once_per_outage(client, issuer, settings, replay_on, our_records):
    """An outage starts, and a few hundred sign-ins meet it: one WARNING for
    it, no traceback, no WARNING per request (the refusals are INFO); one
    INFO line when the cache is back."""
    assert signin(client, issuer.mint(sub="before")).status_code == 200
    our_records.clear()  # (it may have ended an outage an earlier test left)
    settings.CACHES = {
        **settings.CACHES,
        "broken": {"BACKEND": "tests.keyserver_helpers.BrokenCache"},
    }
    settings.GOOGLE_IDTOKEN = {**settings.GOOGLE_IDTOKEN, "KEYS_CACHE": "broken"}
    for n in range(300):
        assert signin(client, issuer.mint(sub=str(n))).status_code == 503
    replay_lines = [r for r in our_records if r.name == "django_google_idtoken.replay"]
    assert [r.levelno for r in replay_lines] == [logging.WARNING], replay_lines
    assert "the 'broken' cache is unreachable" in replay_lines[0].getMessage()
    loud = [r.getMessage() for r in our_records if r.levelno >= logging.WARNING]
    assert len(loud) == 1, loud
    assert not [r for r in our_records if r.exc_info]
    settings.GOOGLE_IDTOKEN = {**settings.GOOGLE_IDTOKEN, "KEYS_CACHE": "default"}
    assert signin(client, issuer.mint(sub="after")).status_code == 200
    replay_lines = [r for r in our_records if r.name == "django_google_idtoken.replay"]
    assert len(replay_lines) == 2
    assert replay_lines[1].levelno == logging.INFO
    assert "recovered after" in replay_lines[1].getMessage()


def test_idtoken_check_reports_the_cache_down(issuer, cache_down):
    with pytest.raises(CommandError, match="replay_check_unavailable"):
        call_command("idtoken_check", issuer.mint(sub="42"), stdout=io.StringIO())
