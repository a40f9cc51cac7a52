"""Settings are read live through ``conf``: defaults, types, and no reloads."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_google_idtoken.conf import conf
from django_google_idtoken.errors import Refused
from django_google_idtoken.providers import google
from django_google_idtoken.testing import FakeIssuer

NEW_CLIENT = "5678-new.apps.googleusercontent.com"


@pytest.mark.parametrize("absent", ["empty-dict", "no-setting"])
def test_defaults(settings: Any, absent: str) -> None:
    if absent == "empty-dict":
        settings.GOOGLE_IDTOKEN = {}
    else:
        del settings.GOOGLE_IDTOKEN
    # The documented defaults (issue and README.rst).
    assert conf.CLIENT_IDS == ()
    assert conf.HOSTED_DOMAINS == ()
    assert conf.CERTS_URL == "https://www.googleapis.com/oauth2/v3/certs"
    assert conf.LEEWAY == 60
    assert conf.CREATE_USERS is True
    assert conf.LINK_BY_EMAIL is False
    assert conf.HTTP_TIMEOUT == 5
    assert conf.KEYS_CACHE == "default"
    assert conf.KEYS_MAX_STALE == 6 * 3600
    assert conf.KEYS_REFETCH_COOLDOWN == 5
    assert conf.REPLAY_PROTECTION is False
    assert conf.SIGNIN_SESSION is True
    assert conf.SIGNIN_TOKEN is None
    assert conf.BEARER_CREATE_USERS is False
    assert conf.BEARER_REMOTE_PROVIDERS is False


def test_unset_keys_keep_their_defaults(settings: Any) -> None:
    settings.GOOGLE_IDTOKEN = {"CLIENT_IDS": ("a", "b"), "LEEWAY": 1.5}
    assert conf.CLIENT_IDS == ("a", "b")
    assert conf.LEEWAY == 1.5
    assert conf.HTTP_TIMEOUT == 5
    assert conf.CREATE_USERS is True


def test_every_setting_is_read(settings: Any) -> None:
    settings.GOOGLE_IDTOKEN = {
        "CLIENT_IDS": ["web", "ios"],
        "HOSTED_DOMAINS": ["example.com"],
        "CERTS_URL": "https://example.com/certs",
        "LEEWAY": 0,
        "CREATE_USERS": False,
        "LINK_BY_EMAIL": True,
        "HTTP_TIMEOUT": 0.5,
        "KEYS_CACHE": "keys",
        "KEYS_MAX_STALE": 10,
        "KEYS_REFETCH_COOLDOWN": 1,
        "REPLAY_PROTECTION": True,
        "SIGNIN_SESSION": False,
        "SIGNIN_TOKEN": "simplejwt",
        "BEARER_CREATE_USERS": True,
        "BEARER_REMOTE_PROVIDERS": True,
    }
    assert conf.CLIENT_IDS == ("web", "ios")
    assert conf.HOSTED_DOMAINS == ("example.com",)
    assert conf.CERTS_URL == "https://example.com/certs"
    assert conf.LEEWAY == 0
    assert conf.CREATE_USERS is False
    assert conf.LINK_BY_EMAIL is True
    assert conf.HTTP_TIMEOUT == 0.5
    assert conf.KEYS_CACHE == "keys"
    assert conf.KEYS_MAX_STALE == 10
    assert conf.KEYS_REFETCH_COOLDOWN == 1
    assert conf.REPLAY_PROTECTION is True
    assert conf.SIGNIN_SESSION is False
    assert conf.SIGNIN_TOKEN == "simplejwt"
    assert conf.BEARER_CREATE_USERS is True
    assert conf.BEARER_REMOTE_PROVIDERS is True


def test_override_settings_applies_immediately_and_is_undone() -> None:
    before = conf.CLIENT_IDS
    with override_settings(GOOGLE_IDTOKEN={"CLIENT_IDS": [NEW_CLIENT], "LEEWAY": 5}):
        assert conf.CLIENT_IDS == (NEW_CLIENT,)
        assert conf.LEEWAY == 5
        with override_settings(GOOGLE_IDTOKEN={"CLIENT_IDS": ["inner"]}):
            assert conf.CLIENT_IDS == ("inner",)
            assert conf.LEEWAY == 60
        assert conf.CLIENT_IDS == (NEW_CLIENT,)
    assert before == conf.CLIENT_IDS


def test_settings_fixture_changes_are_seen_on_next_access(settings: Any) -> None:
    settings.GOOGLE_IDTOKEN = {"CLIENT_IDS": ["one"]}
    assert conf.CLIENT_IDS == ("one",)
    settings.GOOGLE_IDTOKEN = {"CLIENT_IDS": ["two"]}
    assert conf.CLIENT_IDS == ("two",)


def test_verification_follows_settings_without_reload(
    issuer: FakeIssuer, key_server: Any, settings: Any
) -> None:
    # The provider reads CLIENT_IDS and HOSTED_DOMAINS on each call, so a
    # change takes effect on the next token, in the same process.
    token = issuer.mint(aud=NEW_CLIENT, hd="example.com")
    with pytest.raises(Refused) as info:
        google.verify(token)
    assert info.value.code == "wrong_audience"
    options = settings.GOOGLE_IDTOKEN
    settings.GOOGLE_IDTOKEN = {**options, "CLIENT_IDS": [NEW_CLIENT]}
    assert google.verify(token).audience == NEW_CLIENT
    with override_settings(GOOGLE_IDTOKEN={**options, "CLIENT_IDS": [NEW_CLIENT]}):
        assert google.verify(token).audience == NEW_CLIENT
        with override_settings(
            GOOGLE_IDTOKEN={**options, "CLIENT_IDS": [NEW_CLIENT], "HOSTED_DOMAINS": ["other.com"]}
        ):
            with pytest.raises(Refused) as info:
                google.verify(token)
            assert info.value.code == "hosted_domain_not_allowed"


def test_hosted_domains_are_lowercased(settings: Any) -> None:
    settings.GOOGLE_IDTOKEN = {"HOSTED_DOMAINS": ["Example.COM", "WORKSPACE.example"]}
    assert conf.HOSTED_DOMAINS == ("example.com", "workspace.example")


def test_sequences_come_back_as_tuples(settings: Any) -> None:
    # Callers cannot change the configured list through the value they read.
    settings.GOOGLE_IDTOKEN = {"CLIENT_IDS": ["web"], "HOSTED_DOMAINS": ["example.com"]}
    assert isinstance(conf.CLIENT_IDS, tuple)
    assert isinstance(conf.HOSTED_DOMAINS, tuple)


WRONG_TYPES = [
    ("CLIENT_IDS", "1234-test.apps.googleusercontent.com"),
    ("CLIENT_IDS", ["ok", ""]),
    ("CLIENT_IDS", ["ok", 1]),
    ("HOSTED_DOMAINS", "example.com"),
    ("CERTS_URL", 123),
    ("LEEWAY", "60"),
    ("LEEWAY", True),
    ("LEEWAY", -1),
    ("LEEWAY", None),
    # NaN passes "is a number, not negative", but disables every time rule.
    ("LEEWAY", float("nan")),
    # Infinite leeway would accept a token that expired years ago.
    ("LEEWAY", float("inf")),
    ("HTTP_TIMEOUT", float("nan")),
    ("CREATE_USERS", "yes"),
    ("CREATE_USERS", 1),
    ("LINK_BY_EMAIL", "false"),
    ("HTTP_TIMEOUT", -1),
    ("HTTP_TIMEOUT", "5"),
    ("KEYS_CACHE", None),
    ("KEYS_MAX_STALE", "6h"),
    ("KEYS_REFETCH_COOLDOWN", True),
]


@pytest.mark.parametrize(("name", "value"), WRONG_TYPES, ids=[f"{n}={v!r}" for n, v in WRONG_TYPES])
def test_wrong_type_raises_improperly_configured_at_access(
    settings: Any, name: str, value: Any
) -> None:
    settings.GOOGLE_IDTOKEN = {name: value}
    with pytest.raises(ImproperlyConfigured, match=name):
        getattr(conf, name)


@pytest.mark.parametrize("value", [["CLIENT_IDS"], "CLIENT_IDS", None], ids=repr)
def test_setting_not_a_dict_raises_improperly_configured(settings: Any, value: Any) -> None:
    settings.GOOGLE_IDTOKEN = value
    with pytest.raises(ImproperlyConfigured, match="GOOGLE_IDTOKEN"):
        conf.CLIENT_IDS  # noqa: B018 - the access is what raises
