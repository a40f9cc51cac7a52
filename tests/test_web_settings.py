"""The settings of Sign in with Google on web pages (WEB_CLIENT_ID, UX_MODE,
ONE_TAP, LOGIN_URI): defaults, validation, and system checks E004, E009,
E010 and W010 (deployment)."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from django_google_idtoken.conf import conf

PREFIX = "django_google_idtoken."
WEB = "1234-web.apps.googleusercontent.com"
IOS = "1234-ios.apps.googleusercontent.com"
CLIENT_IDS = [WEB, IOS]


def configure(settings: Any, **options: Any) -> None:
    settings.GOOGLE_IDTOKEN = {"CLIENT_IDS": CLIENT_IDS, **options}


def our_ids() -> list[str]:
    return [
        m.id.removeprefix(PREFIX) for m in checks.run_checks() if (m.id or "").startswith(PREFIX)
    ]


def test_defaults(settings: Any) -> None:
    configure(settings)
    assert conf.WEB_CLIENT_ID == WEB
    assert conf.UX_MODE == "popup"
    assert conf.ONE_TAP is False
    assert conf.LOGIN_URI == ""
    settings.GOOGLE_IDTOKEN = {}
    assert conf.WEB_CLIENT_ID == ""


def test_every_setting_is_read(settings: Any) -> None:
    configure(
        settings,
        WEB_CLIENT_ID=IOS,
        UX_MODE="redirect",
        ONE_TAP=True,
        LOGIN_URI="https://example.com/auth/google/gis/",
    )
    assert conf.WEB_CLIENT_ID == IOS
    assert conf.UX_MODE == "redirect"
    assert conf.ONE_TAP is True
    assert conf.LOGIN_URI == "https://example.com/auth/google/gis/"
    assert our_ids() == []


WRONG = [
    ("UX_MODE", "modal"),
    ("UX_MODE", "Popup"),
    ("UX_MODE", None),
    ("UX_MODE", 1),
    ("ONE_TAP", "yes"),
    ("ONE_TAP", 1),
    ("WEB_CLIENT_ID", 1234),
    ("WEB_CLIENT_ID", None),
    ("LOGIN_URI", None),
    ("LOGIN_URI", ["https://example.com/"]),
]


@pytest.mark.parametrize(("name", "value"), WRONG, ids=[f"{n}={v!r}" for n, v in WRONG])
def test_e004_wrong_type_or_value(settings: Any, name: str, value: Any) -> None:
    configure(settings, **{name: value})
    # Only E004: a wrong-typed value is not also reported (or crashed on) by E009/E010.
    assert our_ids() == ["E004"]
    with pytest.raises(ImproperlyConfigured, match=name):
        getattr(conf, name)


def test_e006_web_client_id_not_in_client_ids(settings: Any) -> None:
    configure(settings, WEB_CLIENT_ID="9999-other.apps.googleusercontent.com")
    assert our_ids() == ["E009"]
    configure(settings, WEB_CLIENT_ID=IOS)
    assert our_ids() == []


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/auth/google/gis/",
        "/auth/google/gis/",
        "auth/google/gis/",
        "https:///gis/",
        "https://example.com/gis/#frag",
        "ftp://example.com/gis/",
        "http://[::1/gis/",
    ],
)
def test_e007_login_uri_not_absolute_https(settings: Any, url: str) -> None:
    configure(settings, LOGIN_URI=url)
    assert our_ids() == ["E010"]


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/auth/google/gis/",
        "https://example.com/auth/google/gis/?next=%2F",
        "http://localhost:8000/auth/google/gis/",
        "http://127.0.0.1:8000/auth/google/gis/",
    ],
)
def test_e007_https_or_loopback_is_fine(settings: Any, url: str) -> None:
    configure(settings, LOGIN_URI=url)
    assert our_ids() == []


def deploy_ids() -> list[str]:
    return [
        m.id.removeprefix(PREFIX)
        for m in checks.run_checks(include_deployment_checks=True)
        if (m.id or "").startswith(PREFIX)
    ]


def test_w010_redirect_mode_without_login_uri_warns_on_deploy(settings: Any) -> None:
    # The login URI would be built from the Host header of each request
    # (issue 12, item 12): check --deploy says LOGIN_URI must be set.
    configure(settings, UX_MODE="redirect")
    assert deploy_ids() == ["W010"]
    messages = [
        m for m in checks.run_checks(include_deployment_checks=True) if m.id == PREFIX + "W010"
    ]
    assert messages[0].level == checks.WARNING
    assert "LOGIN_URI" in messages[0].msg
    assert "Authorized redirect URIs" in (messages[0].hint or "")
    # Not a development-time message: plain check stays quiet.
    assert our_ids() == []


@pytest.mark.parametrize(
    "options",
    [
        {"UX_MODE": "redirect", "LOGIN_URI": "https://www.example.com/auth/google/gis/"},
        {"UX_MODE": "popup"},
        {},
    ],
    ids=["redirect-with-login-uri", "popup", "default"],
)
def test_w010_quiet_otherwise(settings: Any, options: dict[str, Any]) -> None:
    configure(settings, **options)
    assert "W010" not in deploy_ids()


def test_w010_not_reported_over_a_wrong_type(settings: Any) -> None:
    configure(settings, UX_MODE="redirect", LOGIN_URI=None)
    assert deploy_ids() == ["E004"]
    settings.GOOGLE_IDTOKEN = ["not a dict"]
    assert deploy_ids() == ["E004"]


def test_w010_through_manage_py_check_deploy(settings: Any) -> None:
    configure(settings, UX_MODE="redirect")
    out = StringIO()
    call_command("check", "--deploy", "--tag", "security", stdout=out, stderr=out)
    assert "django_google_idtoken.W010" in out.getvalue()
