"""The settings of Sign in with Google on web pages (WEB_CLIENT_ID, UX_MODE,
ONE_TAP, LOGIN_URI): defaults, validation, and system checks E004, E009 and
E010."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

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
