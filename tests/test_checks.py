"""System checks: each stable id, under settings overrides, through Django's
own check runner (which also proves the check is registered)."""

from __future__ import annotations

import sys
from io import StringIO
from typing import Any

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from django_google_idtoken.checks import check_settings
from django_google_idtoken.providers import get_provider

PREFIX = "django_google_idtoken."
BACKEND = "django_google_idtoken.backends.GoogleIdTokenBackend"
CLIENT_IDS = ["1234-test.apps.googleusercontent.com"]


def our_messages() -> list[checks.CheckMessage]:
    return [m for m in checks.run_checks() if (m.id or "").startswith(PREFIX)]


def our_ids() -> list[str]:
    return [m.id.removeprefix(PREFIX) for m in our_messages() if m.id]


def configure(settings: Any, **options: Any) -> None:
    settings.GOOGLE_IDTOKEN = {"CLIENT_IDS": CLIENT_IDS, **options}


def test_clean_configuration_has_no_messages(settings: Any) -> None:
    assert check_settings() == []
    assert our_ids() == []


def test_full_configuration_has_no_messages(settings: Any) -> None:
    # Every documented key, each with a value of its documented type.
    configure(
        settings,
        HOSTED_DOMAINS=["example.com"],
        CERTS_URL="https://www.googleapis.com/oauth2/v1/certs",
        LEEWAY=30.5,
        CREATE_USERS=False,
        LINK_BY_EMAIL=True,
        LOCAL_EMAIL_VERIFIED="tests.email_policy.verified",
        HTTP_TIMEOUT=2,
        KEYS_CACHE="default",
        KEYS_MAX_STALE=0,
        KEYS_REFETCH_COOLDOWN=120,
        REPLAY_PROTECTION=True,
        LAST_SIGNIN_INTERVAL=60,
        SIGNIN_SESSION=False,
        SIGNIN_TOKEN="authtoken",
        BEARER_CREATE_USERS=True,
        BEARER_REMOTE_PROVIDERS=True,
    )
    assert our_ids() == []


def test_manage_py_check_passes_on_the_test_settings() -> None:
    out = StringIO()
    call_command("check", stdout=out)
    assert "no issues" in out.getvalue()


def test_manage_py_check_fails_on_an_error(settings: Any) -> None:
    configure(settings, CLIENT_IDS=[])
    with pytest.raises(SystemCheckError, match=r"django_google_idtoken\.E001"):
        call_command("check", stdout=StringIO())


# -- E001: no CLIENT_IDS ------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        {},
        {"CERTS_URL": "https://www.googleapis.com/oauth2/v3/certs"},
        {"CLIENT_IDS": []},
        {"CLIENT_IDS": ()},
    ],
    ids=["empty-dict", "key-missing", "empty-list", "empty-tuple"],
)
def test_e001_no_client_ids(settings: Any, value: dict[str, Any]) -> None:
    settings.GOOGLE_IDTOKEN = value
    assert our_ids() == ["E001"]
    (message,) = our_messages()
    assert message.level == checks.ERROR
    assert message.hint


def test_e001_setting_absent(settings: Any) -> None:
    del settings.GOOGLE_IDTOKEN
    assert our_ids() == ["E001"]


# -- E002: backend not installed ------------------------------------------------


@pytest.mark.parametrize(
    "backends",
    [["django.contrib.auth.backends.ModelBackend"], []],
    ids=["model-backend-only", "empty"],
)
def test_e002_backend_missing(settings: Any, backends: list[str]) -> None:
    settings.AUTHENTICATION_BACKENDS = backends
    assert our_ids() == ["E002"]


def test_e002_backend_anywhere_in_the_list_is_enough(settings: Any) -> None:
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend", BACKEND]
    assert our_ids() == []


# -- E003: CERTS_URL must be https, or http on loopback ---------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://www.googleapis.com/oauth2/v3/certs",
        "http://10.0.0.1/certs",
        "http://0.0.0.0/certs",
        # Names that merely start like a loopback host are public hosts.
        "http://localhost.evil.example/certs",
        "http://127.0.0.1.nip.io/certs",
        "ftp://www.googleapis.com/oauth2/v3/certs",
        "file:///etc/passwd",
        "//www.googleapis.com/oauth2/v3/certs",
        "www.googleapis.com/oauth2/v3/certs",
        "",
    ],
)
def test_e003_certs_url_not_https(settings: Any, url: str) -> None:
    configure(settings, CERTS_URL=url)
    assert our_ids() == ["E003"]


@pytest.mark.parametrize(
    "url",
    [
        "https://www.googleapis.com/oauth2/v3/certs",
        "https://www.googleapis.com/oauth2/v1/certs",
        "http://127.0.0.1/certs",
        "http://127.0.0.1:8000/certs",
        "http://127.0.0.2:8000/certs",
        "http://localhost:8000/certs",
        "http://[::1]:8000/certs",
    ],
)
def test_e003_https_or_loopback_is_fine(settings: Any, url: str) -> None:
    configure(settings, CERTS_URL=url)
    assert our_ids() == []


# -- E004: wrong types -------------------------------------------------------------

WRONG_TYPES = [
    ("CLIENT_IDS", "1234-test.apps.googleusercontent.com"),
    ("CLIENT_IDS", None),
    ("CLIENT_IDS", ["1234-test.apps.googleusercontent.com", ""]),
    ("CLIENT_IDS", ["1234-test.apps.googleusercontent.com", 42]),
    ("CLIENT_IDS", {"web": "1234-test.apps.googleusercontent.com"}),
    ("HOSTED_DOMAINS", "example.com"),
    ("HOSTED_DOMAINS", [None]),
    ("CERTS_URL", 123),
    ("CERTS_URL", None),
    ("LEEWAY", "60"),
    ("LEEWAY", True),
    ("LEEWAY", -1),
    ("LEEWAY", None),
    ("LEEWAY", [60]),
    # NaN compares false with everything: "now > exp + leeway" would never
    # hold, and no token would ever expire.
    ("LEEWAY", float("nan")),
    # Infinite leeway would accept a token that expired years ago.
    ("LEEWAY", float("inf")),
    ("HTTP_TIMEOUT", float("nan")),
    ("CREATE_USERS", "yes"),
    ("CREATE_USERS", 1),
    ("CREATE_USERS", None),
    ("LINK_BY_EMAIL", "no"),
    ("LINK_BY_EMAIL", 0),
    ("HTTP_TIMEOUT", -1),
    ("HTTP_TIMEOUT", "5"),
    ("HTTP_TIMEOUT", False),
    ("KEYS_CACHE", 0),
    ("KEYS_CACHE", None),
    # Unhashable: must be reported, not crash the E005 lookup in CACHES.
    ("KEYS_CACHE", ["default"]),
    ("KEYS_MAX_STALE", -5),
    ("KEYS_MAX_STALE", "6h"),
    ("KEYS_REFETCH_COOLDOWN", False),
    ("KEYS_REFETCH_COOLDOWN", -0.5),
    ("SIGNIN_SESSION", "no"),
    ("SIGNIN_TOKEN", "jwt"),
    ("SIGNIN_TOKEN", "session"),
    ("SIGNIN_TOKEN", "AuthToken"),
    ("SIGNIN_TOKEN", False),
    ("SIGNIN_TOKEN", ["authtoken"]),
    ("BEARER_CREATE_USERS", 1),
    ("BEARER_REMOTE_PROVIDERS", "no"),
    ("BEARER_REMOTE_PROVIDERS", 1),
]


@pytest.mark.parametrize(("name", "value"), WRONG_TYPES, ids=[f"{n}={v!r}" for n, v in WRONG_TYPES])
def test_e004_setting_of_wrong_type(settings: Any, name: str, value: Any) -> None:
    configure(settings, **{name: value})
    # Only E004: a wrong-typed CLIENT_IDS, CERTS_URL or KEYS_CACHE is not also
    # reported (or crashed on) by E001, E003 or E005.
    assert our_ids() == ["E004"]
    (message,) = our_messages()
    assert message.level == checks.ERROR
    assert name in message.msg


@pytest.mark.parametrize(
    "value", [["CLIENT_IDS"], "CLIENT_IDS", None, (("CLIENT_IDS", CLIENT_IDS),)], ids=repr
)
def test_e004_google_idtoken_not_a_dict(settings: Any, value: Any) -> None:
    settings.GOOGLE_IDTOKEN = value
    assert our_ids() == ["E004"]


def test_e004_reports_each_wrong_setting(settings: Any) -> None:
    configure(settings, LEEWAY="60", CREATE_USERS="yes")
    assert our_ids() == ["E004", "E004"]


# -- E005: KEYS_CACHE names no cache --------------------------------------------


def test_e005_keys_cache_not_in_caches(settings: Any) -> None:
    configure(settings, KEYS_CACHE="keys")
    assert our_ids() == ["E005"]


def test_e005_configured_alias_is_fine(settings: Any) -> None:
    settings.CACHES = {
        **settings.CACHES,
        "keys": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    configure(settings, KEYS_CACHE="keys")
    assert our_ids() == []


# -- W001: unknown keys ------------------------------------------------------------


@pytest.mark.parametrize("typo", ["CLIENT_ID", "LEEWAY_SECONDS", "client_ids"])
def test_w001_unknown_key(settings: Any, typo: str) -> None:
    configure(settings, **{typo: "x"})
    assert our_ids() == ["W001"]
    (message,) = our_messages()
    assert message.level == checks.WARNING
    assert repr(typo) in message.msg


def test_w001_is_only_a_warning_for_manage_py_check(settings: Any) -> None:
    configure(settings, CLIENT_ID="x")
    out = StringIO()
    call_command("check", stdout=out, stderr=out)
    assert "django_google_idtoken.W001" in out.getvalue()


# -- E011: SIGNIN_TOKEN names an app that is not installed ------------------------


@pytest.mark.parametrize("token", ["authtoken", "simplejwt"])
def test_e006_chosen_app_installed_is_fine(settings: Any, token: str) -> None:
    configure(settings, SIGNIN_TOKEN=token)
    assert our_ids() == []


def test_e006_authtoken_not_in_installed_apps(settings: Any) -> None:
    settings.INSTALLED_APPS = [
        app for app in settings.INSTALLED_APPS if app != "rest_framework.authtoken"
    ]
    configure(settings, SIGNIN_TOKEN="authtoken")
    assert our_ids() == ["E011"]
    (message,) = our_messages()
    assert message.level == checks.ERROR
    assert "rest_framework.authtoken" in message.msg
    # Without it chosen, nothing to report.
    configure(settings, SIGNIN_TOKEN=None)
    assert our_ids() == []


def test_e006_simplejwt_not_installed(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes the package unimportable, as if not installed.
    monkeypatch.setitem(sys.modules, "rest_framework_simplejwt", None)
    configure(settings, SIGNIN_TOKEN="simplejwt")
    assert our_ids() == ["E011"]
    (message,) = our_messages()
    assert "[jwt]" in (message.hint or "")


# -- W002: sign-in hands back no credential ------------------------------------------


def test_w002_no_session_and_no_token(settings: Any) -> None:
    configure(settings, SIGNIN_SESSION=False)
    assert our_ids() == ["W002"]
    assert our_messages()[0].level == checks.WARNING
    configure(settings, SIGNIN_SESSION=False, SIGNIN_TOKEN="simplejwt")
    assert our_ids() == []


def test_w003_link_by_email_without_local_email_verified(settings: Any) -> None:
    configure(settings, LINK_BY_EMAIL=True)
    assert our_ids() == ["W003"]
    [warning] = [m for m in check_settings() if m.id.endswith("W003")]
    assert "pre-account takeover" in warning.hint


def test_w003_not_without_link_by_email_or_with_the_callable(settings: Any) -> None:
    configure(settings, LINK_BY_EMAIL=False)
    assert our_ids() == []
    configure(settings, LINK_BY_EMAIL=True, LOCAL_EMAIL_VERIFIED="tests.email_policy.verified")
    assert our_ids() == []


@pytest.mark.parametrize(
    "path",
    [
        "tests.email_policy.missing",
        "tests.no_such_module.verified",
        "",
        "tests.email_policy.NOT_CALLABLE",
    ],
)
def test_e012_local_email_verified_not_a_callable(settings: Any, path: str) -> None:
    configure(settings, LOCAL_EMAIL_VERIFIED=path)
    assert our_ids() == ["E012"]


def test_e004_local_email_verified_of_wrong_type(settings: Any) -> None:
    configure(settings, LOCAL_EMAIL_VERIFIED=print)
    assert our_ids() == ["E004"]


# -- E020: two providers take tokens of the same issuer ------------------------------

APPLE = {
    "TYPE": "oidc",
    "ISSUER": "https://appleid.apple.com",
    "CLIENT_IDS": ["com.example.app"],
    "JWKS_URL": "https://appleid.apple.com/auth/keys",
}


@pytest.mark.parametrize(
    ("providers", "clashing"),
    [
        # Two apps of one issuer configured as two providers: Bearer picks by
        # iss, so the second one's tokens would all be wrong_audience.
        ({"apple": APPLE, "apple-tv": {**APPLE, "CLIENT_IDS": ["com.example.tv"]}}, "apple-tv"),
        ({"google-too": {**APPLE, "ISSUER": "https://accounts.google.com"}}, "google-too"),
        (
            {"nowgg": {"CLIENT_IDS": ["n"]}, "nowgg2": {"TYPE": "nowgg", "CLIENT_IDS": ["m"]}},
            "nowgg2",
        ),
        (
            {"nowgg": {"CLIENT_IDS": ["n"]}, "fake-nowgg": {**APPLE, "ISSUER": "https://now.gg"}},
            "fake-nowgg",
        ),
    ],
    ids=["two-oidc", "google-issuer", "two-nowgg", "oidc-as-nowgg"],
)
def test_e020_two_providers_with_one_issuer(settings: Any, providers: Any, clashing: str) -> None:
    configure(settings, PROVIDERS=providers)
    assert our_ids() == ["E020"]
    (message,) = our_messages()
    assert message.level == checks.ERROR
    assert repr(clashing) in message.msg
    assert message.hint and "CLIENT_IDS" in message.hint
    # Used anyway (no system checks under a WSGI server), it fails loudly
    # rather than send one provider's tokens to the other.
    with pytest.raises(ImproperlyConfigured, match=clashing):
        get_provider(clashing)


def test_e020_distinct_issuers_are_fine(settings: Any) -> None:
    configure(
        settings,
        PROVIDERS={
            "apple": APPLE,
            # Issuers compare exactly: these are different issuers.
            "apple-slash": {**APPLE, "ISSUER": "https://appleid.apple.com/"},
            "nowgg": {"CLIENT_IDS": ["n"]},
        },
    )
    assert our_ids() == []
    assert get_provider("apple-slash").issuers == frozenset({"https://appleid.apple.com/"})


def test_e020_leaves_malformed_entries_to_their_own_ids(settings: Any) -> None:
    configure(settings, PROVIDERS={"apple": APPLE, "apple2": {**APPLE, "CLIENT_IDS": []}})
    assert our_ids() == ["E007"]
