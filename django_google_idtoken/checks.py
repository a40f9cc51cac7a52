"""System checks for misconfiguration, with stable ids.

E001 no CLIENT_IDS (and no other provider); E002 the backend is not in
AUTHENTICATION_BACKENDS; E003 CERTS_URL is not https and not loopback; E004 a
setting has the wrong type (or value); E005 KEYS_CACHE names no configured
cache; E006 an entry of PROVIDERS is malformed (bad name, unknown TYPE or
key, wrong type); E007 a provider has no CLIENT_IDS; E008 a provider's URL is
not https and not loopback; E009 WEB_CLIENT_ID is not one of CLIENT_IDS; E010
LOGIN_URI is not an absolute https URL (or http on a loopback host); E011
SIGNIN_TOKEN names an app that is not installed; E020 two providers (Google
included) take tokens of the same issuer; W001 an unknown key in
GOOGLE_IDTOKEN (most likely a typo); W002 sign-in hands back no credential
at all; E012 LOCAL_EMAIL_VERIFIED names no importable callable; W003
LINK_BY_EMAIL is on without LOCAL_EMAIL_VERIFIED. Deployment only (``check
--deploy``): W010 redirect mode without LOGIN_URI.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.utils.module_loading import import_string

from .conf import DEFAULTS, SETTING_NAME, raw_settings, type_error
from .providers import issuer_problems, provider_problems
from .transport import url_allowed
from .web import login_uri_allowed

BACKEND = "django_google_idtoken.backends.GoogleIdTokenBackend"


@register(Tags.security)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    errors: list[Any] = []
    value = getattr(settings, SETTING_NAME, {})
    if not isinstance(value, dict):
        return [
            Error(
                f"{SETTING_NAME} must be a dict.",
                hint="See the settings section of the README.",
                id="django_google_idtoken.E004",
            )
        ]
    raw = raw_settings()
    for name in sorted(set(raw) - set(DEFAULTS)):
        errors.append(
            Warning(
                f"{SETTING_NAME} has an unknown key {name!r}.",
                hint=f"Known keys: {', '.join(sorted(DEFAULTS))}.",
                id="django_google_idtoken.W001",
            )
        )
    bad_types = set()
    for name in DEFAULTS:
        if name in raw:
            problem = type_error(name, raw[name])
            if problem:
                bad_types.add(name)
                errors.append(Error(problem, id="django_google_idtoken.E004"))
    providers = raw.get("PROVIDERS", {}) if "PROVIDERS" not in bad_types else {}
    for name, config in providers.items():
        errors.extend(
            Error(found.message, id=f"django_google_idtoken.{found.check_id}")
            for found in provider_problems(name, config)
        )
    errors.extend(
        Error(
            found.message,
            hint="Configure one provider per issuer and list every client ID of that issuer "
            "in its CLIENT_IDS (for Google's issuer, in the top-level CLIENT_IDS).",
            id=f"django_google_idtoken.{found.check_id}",
        )
        for found in issuer_problems(providers)
    )
    # A project that signs in only with other providers needs no Google client.
    if "CLIENT_IDS" not in bad_types and not raw.get("CLIENT_IDS") and not providers:
        errors.append(
            Error(
                f"{SETTING_NAME}['CLIENT_IDS'] is empty: no token can be accepted.",
                hint="List the OAuth client IDs (web, Android, iOS) your apps get tokens for.",
                id="django_google_idtoken.E001",
            )
        )
    if BACKEND not in getattr(settings, "AUTHENTICATION_BACKENDS", []):
        errors.append(
            Error(
                f"{BACKEND} is not in AUTHENTICATION_BACKENDS.",
                hint="Add it before ModelBackend so authenticate(id_token=...) can reach it.",
                id="django_google_idtoken.E002",
            )
        )
    certs_url = raw.get("CERTS_URL", DEFAULTS["CERTS_URL"])
    if "CERTS_URL" not in bad_types and not url_allowed(certs_url):
        errors.append(
            Error(
                f"{SETTING_NAME}['CERTS_URL'] must be an https URL (or http on a loopback host).",
                hint="Keys fetched over plain http can be swapped in transit.",
                id="django_google_idtoken.E003",
            )
        )
    alias = raw.get("KEYS_CACHE", DEFAULTS["KEYS_CACHE"])
    if "KEYS_CACHE" not in bad_types and alias not in getattr(settings, "CACHES", {"default": {}}):
        errors.append(
            Error(
                f"{SETTING_NAME}['KEYS_CACHE'] is {alias!r}, which is not in CACHES.",
                id="django_google_idtoken.E005",
            )
        )
    errors.extend(check_web_sign_in(raw, bad_types))
    errors.extend(_check_signin_credential(raw, bad_types))
    errors.extend(_check_email_trust(raw, bad_types))
    return errors


def _check_email_trust(raw: dict[str, Any], bad_types: set[str]) -> list[Any]:
    """E012 LOCAL_EMAIL_VERIFIED does not name a callable; W003 LINK_BY_EMAIL
    trusts local users' addresses without asking the project."""
    path = raw.get("LOCAL_EMAIL_VERIFIED")
    if "LOCAL_EMAIL_VERIFIED" in bad_types:
        return []
    if path is not None:
        try:
            target = import_string(path)
        except ImportError as err:
            problem: str | None = f"cannot be imported ({err})"
        else:
            problem = None if callable(target) else "is not callable"
        if problem:
            return [
                Error(
                    f"{SETTING_NAME}['LOCAL_EMAIL_VERIFIED'] = {path!r} {problem}.",
                    hint="Give the dotted path of a function that takes a user and returns "
                    "True if the project has verified that user's email address.",
                    id="django_google_idtoken.E012",
                )
            ]
        return []
    if raw.get("LINK_BY_EMAIL") is True:
        return [
            Warning(
                f"{SETTING_NAME}['LINK_BY_EMAIL'] is on and LOCAL_EMAIL_VERIFIED is not set: "
                "every local user's email address counts as verified.",
                hint="If anyone can sign up here with an address they do not own, an attacker "
                "can register a victim's address first and receive the victim's Google account "
                "when it links by email (pre-account takeover). Set LOCAL_EMAIL_VERIFIED to a "
                "function that says whether a user's address was verified.",
                id="django_google_idtoken.W003",
            )
        ]
    return []


def check_web_sign_in(raw: dict[str, Any], bad_types: set[str]) -> list[Any]:
    """E009 and E010: the settings of the google_sign_in template tag."""
    errors: list[Any] = []
    web_client_id = raw.get("WEB_CLIENT_ID", "")
    client_ids = raw.get("CLIENT_IDS", [])
    if (
        {"WEB_CLIENT_ID", "CLIENT_IDS"}.isdisjoint(bad_types)
        and web_client_id
        and web_client_id not in client_ids
    ):
        errors.append(
            Error(
                f"{SETTING_NAME}['WEB_CLIENT_ID'] is not one of CLIENT_IDS.",
                hint="Tokens from the button carry it as aud: add it to CLIENT_IDS, or "
                "they are all refused with wrong_audience.",
                id="django_google_idtoken.E009",
            )
        )
    login_uri = raw.get("LOGIN_URI", "")
    if "LOGIN_URI" not in bad_types and login_uri and not login_uri_allowed(login_uri):
        errors.append(
            Error(
                f"{SETTING_NAME}['LOGIN_URI'] must be an absolute https URL (or http on a "
                "loopback host).",
                hint="Google posts ID tokens only to https login URIs (http://localhost for "
                "development); leave it empty to use this app's gis/ URL on the request's host.",
                id="django_google_idtoken.E010",
            )
        )
    return errors


def _check_signin_credential(raw: dict[str, Any], bad_types: set[str]) -> list[Any]:
    if bad_types & {"SIGNIN_TOKEN", "SIGNIN_SESSION"}:
        return []
    token = raw.get("SIGNIN_TOKEN", DEFAULTS["SIGNIN_TOKEN"])
    if token == "authtoken" and not apps.is_installed("rest_framework.authtoken"):
        return [
            Error(
                f"{SETTING_NAME}['SIGNIN_TOKEN'] is 'authtoken', but 'rest_framework.authtoken' "
                "is not in INSTALLED_APPS.",
                hint="Add it to INSTALLED_APPS and run migrate.",
                id="django_google_idtoken.E011",
            )
        ]
    if token == "simplejwt" and not _importable("rest_framework_simplejwt"):
        return [
            Error(
                f"{SETTING_NAME}['SIGNIN_TOKEN'] is 'simplejwt', but "
                "djangorestframework-simplejwt is not installed.",
                hint='pip install "django-google-idtoken[jwt]"',
                id="django_google_idtoken.E011",
            )
        ]
    if token is None and not raw.get("SIGNIN_SESSION", DEFAULTS["SIGNIN_SESSION"]):
        return [
            Warning(
                f"{SETTING_NAME}['SIGNIN_SESSION'] is False and SIGNIN_TOKEN is None: "
                "signin/ verifies the token but hands back no credential.",
                hint="Set SIGNIN_TOKEN to 'authtoken' or 'simplejwt', or SIGNIN_SESSION to True.",
                id="django_google_idtoken.W002",
            )
        ]
    return []


def _importable(module: str) -> bool:
    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):  # a parent missing, or blocked in sys.modules
        return False


@register(Tags.security, deploy=True)
def check_deploy_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """W010: in production, redirect mode needs LOGIN_URI."""
    try:
        raw = raw_settings()
    except Exception:  # noqa: BLE001 - not a dict: check_settings reports E004
        return []
    mode = raw.get("UX_MODE", DEFAULTS["UX_MODE"])
    login_uri = raw.get("LOGIN_URI", DEFAULTS["LOGIN_URI"])
    if type_error("UX_MODE", mode) or type_error("LOGIN_URI", login_uri):
        return []  # E004
    if mode == "redirect" and not login_uri:
        # Without it the tag builds the login URI from the request's Host
        # header (within ALLOWED_HOSTS): a proxy that rewrites Host, or
        # ALLOWED_HOSTS = ["*"], gives Google a URI it does not know, and
        # Google refuses to post the token there.
        return [
            Warning(
                f"{SETTING_NAME}['UX_MODE'] is 'redirect' but LOGIN_URI is empty: the login URI "
                "Google posts ID tokens to is built from each request's Host header.",
                hint=f"Set {SETTING_NAME}['LOGIN_URI'] to the absolute https URL of this app's "
                "gis/ view, as registered among the web client's Authorized redirect URIs.",
                id="django_google_idtoken.W010",
            )
        ]
    return []
