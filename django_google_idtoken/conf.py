"""Typed, live access to the ``GOOGLE_IDTOKEN`` setting.

Every property reads ``django.conf.settings`` on each access, so
``override_settings`` works without reloading anything. Never copy one of these
values into a module-level constant or a default argument.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

SETTING_NAME = "GOOGLE_IDTOKEN"

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v3/certs"

#: Defaults for every key of ``GOOGLE_IDTOKEN``; the README documents each one.
DEFAULTS: dict[str, Any] = {
    "CLIENT_IDS": [],
    "HOSTED_DOMAINS": [],
    "CERTS_URL": GOOGLE_CERTS_URL,
    "LEEWAY": 60,
    "CREATE_USERS": True,
    "LINK_BY_EMAIL": False,
    "LOCAL_EMAIL_VERIFIED": None,
    "HTTP_TIMEOUT": 5,
    "KEYS_CACHE": "default",
    "KEYS_MAX_STALE": 6 * 3600,
    "KEYS_REFETCH_COOLDOWN": 5,
    "REPLAY_PROTECTION": False,
    "LAST_SIGNIN_INTERVAL": 300,
    "PROVIDERS": {},
    # Sign in with Google on web pages (the google_sign_in template tag).
    "WEB_CLIENT_ID": "",
    "UX_MODE": "popup",
    "ONE_TAP": False,
    "LOGIN_URI": "",
    "SIGNIN_SESSION": True,
    "SIGNIN_TOKEN": None,
    "BEARER_CREATE_USERS": False,
    "BEARER_REMOTE_PROVIDERS": False,
}

# The type each key must have; (int, float) means "a number". bool is refused
# where a number is expected (``True`` is an int in Python).
TYPES: dict[str, tuple[type, ...]] = {
    "CLIENT_IDS": (list, tuple),
    "HOSTED_DOMAINS": (list, tuple),
    "CERTS_URL": (str,),
    "LEEWAY": (int, float),
    "CREATE_USERS": (bool,),
    "LINK_BY_EMAIL": (bool,),
    "LOCAL_EMAIL_VERIFIED": (str, type(None)),
    "HTTP_TIMEOUT": (int, float),
    "KEYS_CACHE": (str,),
    "KEYS_MAX_STALE": (int, float),
    "KEYS_REFETCH_COOLDOWN": (int, float),
    "REPLAY_PROTECTION": (bool,),
    "LAST_SIGNIN_INTERVAL": (int, float),
    "PROVIDERS": (dict,),
    "WEB_CLIENT_ID": (str,),
    "UX_MODE": (str,),
    "ONE_TAP": (bool,),
    "LOGIN_URI": (str,),
    "SIGNIN_SESSION": (bool,),
    "SIGNIN_TOKEN": (str, type(None)),
    "BEARER_CREATE_USERS": (bool,),
    "BEARER_REMOTE_PROVIDERS": (bool,),
}

#: Settings that take one of a few values.
CHOICES: dict[str, tuple[Any, ...]] = {
    "UX_MODE": ("popup", "redirect"),
    "SIGNIN_TOKEN": (None, "authtoken", "simplejwt"),
}


def raw_settings() -> dict[str, Any]:
    """The user's ``GOOGLE_IDTOKEN`` dict as written (empty if absent)."""
    value = getattr(settings, SETTING_NAME, {})
    if not isinstance(value, dict):
        raise ImproperlyConfigured(f"{SETTING_NAME} must be a dict.")
    return value


def type_error(name: str, value: Any) -> str | None:
    """Why ``value`` is not acceptable for setting ``name``, or None if it is."""
    if name in CHOICES:
        # None or an exact str: an int or a str subclass equal to a choice is a mistake.
        if (value is None or type(value) is str) and value in CHOICES[name]:
            return None
        choices = ", ".join(repr(choice) for choice in CHOICES[name])
        return f"{SETTING_NAME}['{name}'] must be one of {choices}, not {value!r}."
    expected = TYPES[name]
    numeric = float in expected
    if numeric and (isinstance(value, bool) or not isinstance(value, expected)):
        return f"{SETTING_NAME}['{name}'] must be a number, not {type(value).__name__}."
    if numeric and not (math.isfinite(value) and value >= 0):
        return f"{SETTING_NAME}['{name}'] must be a finite number, not negative."
    if not isinstance(value, expected):
        names = " or ".join(t.__name__ for t in expected)
        return f"{SETTING_NAME}['{name}'] must be a {names}, not {type(value).__name__}."
    if isinstance(value, (list, tuple)) and not all(isinstance(i, str) and i for i in value):
        return f"{SETTING_NAME}['{name}'] must contain only non-empty strings."
    return None


class _Invalid:
    """A setting that failed validation: raised when (and only when) read."""

    __slots__ = ("problem",)

    def __init__(self, problem: str) -> None:
        self.problem = problem


def _normalize(name: str, value: Any) -> Any:
    if name == "HOSTED_DOMAINS":
        # Domain names compare case-insensitively, as every address here does.
        from .emails import normalize  # emails reads conf: import it late

        return tuple(normalize(domain) for domain in value)
    if isinstance(value, dict):
        # A copy: a new object whenever the settings change, which is what
        # providers.get_provider keys its registry on.
        return copy.deepcopy(value)
    if isinstance(value, list):
        return tuple(value)
    if TYPES[name] == (int, float):
        return float(value)
    return value


class Settings:
    """One typed property per setting, read live from ``settings.GOOGLE_IDTOKEN``.

    Validated values are memoised against an equal copy of the dict they
    came from, so a read costs a dict comparison, yet any change (a new dict
    from ``override_settings``, or the dict edited in place) is seen on the
    next read.
    """

    def __init__(self) -> None:
        self._memo: tuple[dict[str, Any], dict[str, Any]] | None = None

    def _values(self) -> dict[str, Any]:
        raw = raw_settings()
        memo = self._memo
        if memo is not None and memo[0] == raw:
            return memo[1]
        values: dict[str, Any] = {}
        for name, default in DEFAULTS.items():
            value = raw.get(name, default)
            problem = type_error(name, value)
            values[name] = _Invalid(problem) if problem else _normalize(name, value)
        try:
            self._memo = (copy.deepcopy(raw), values)
        except Exception:  # noqa: BLE001 - an uncopyable value: just don't memoise
            self._memo = None
        return values

    def _get(self, name: str) -> Any:
        value = self._values()[name]
        if isinstance(value, _Invalid):
            raise ImproperlyConfigured(value.problem)
        return value

    def read(self, *names: str) -> tuple[Any, ...]:
        """Several settings from one look at ``settings`` (for hot paths)."""
        values = self._values()
        result = tuple(values[name] for name in names)
        for value in result:
            if isinstance(value, _Invalid):
                raise ImproperlyConfigured(value.problem)
        return result

    @property
    def CLIENT_IDS(self) -> Sequence[str]:
        return self._get("CLIENT_IDS")  # type: ignore[no-any-return]

    @property
    def HOSTED_DOMAINS(self) -> Sequence[str]:
        return self._get("HOSTED_DOMAINS")  # type: ignore[no-any-return]

    @property
    def CERTS_URL(self) -> str:
        return str(self._get("CERTS_URL"))

    @property
    def LEEWAY(self) -> float:
        return float(self._get("LEEWAY"))

    @property
    def CREATE_USERS(self) -> bool:
        return bool(self._get("CREATE_USERS"))

    @property
    def LINK_BY_EMAIL(self) -> bool:
        return bool(self._get("LINK_BY_EMAIL"))

    @property
    def LOCAL_EMAIL_VERIFIED(self) -> str | None:
        """Dotted path of a callable ``(user) -> bool``: is a local user's address verified?"""
        return self._get("LOCAL_EMAIL_VERIFIED")  # type: ignore[no-any-return]

    @property
    def HTTP_TIMEOUT(self) -> float:
        return float(self._get("HTTP_TIMEOUT"))

    @property
    def KEYS_CACHE(self) -> str:
        return str(self._get("KEYS_CACHE"))

    @property
    def KEYS_MAX_STALE(self) -> float:
        return float(self._get("KEYS_MAX_STALE"))

    @property
    def KEYS_REFETCH_COOLDOWN(self) -> float:
        return float(self._get("KEYS_REFETCH_COOLDOWN"))

    @property
    def REPLAY_PROTECTION(self) -> bool:
        return bool(self._get("REPLAY_PROTECTION"))

    @property
    def LAST_SIGNIN_INTERVAL(self) -> float:
        return float(self._get("LAST_SIGNIN_INTERVAL"))

    @property
    def PROVIDERS(self) -> dict[str, Any]:
        return self._get("PROVIDERS")  # type: ignore[no-any-return]

    @property
    def WEB_CLIENT_ID(self) -> str:
        """The button's client ID: ``WEB_CLIENT_ID``, or else the first of ``CLIENT_IDS``."""
        web_client_id, client_ids = self.read("WEB_CLIENT_ID", "CLIENT_IDS")
        return str(web_client_id or (client_ids[0] if client_ids else ""))

    @property
    def UX_MODE(self) -> str:
        return str(self._get("UX_MODE"))

    @property
    def ONE_TAP(self) -> bool:
        return bool(self._get("ONE_TAP"))

    @property
    def LOGIN_URI(self) -> str:
        return str(self._get("LOGIN_URI"))

    @property
    def SIGNIN_SESSION(self) -> bool:
        return bool(self._get("SIGNIN_SESSION"))

    @property
    def SIGNIN_TOKEN(self) -> str | None:
        return self._get("SIGNIN_TOKEN")  # type: ignore[no-any-return]

    @property
    def BEARER_CREATE_USERS(self) -> bool:
        return bool(self._get("BEARER_CREATE_USERS"))

    @property
    def BEARER_REMOTE_PROVIDERS(self) -> bool:
        return bool(self._get("BEARER_REMOTE_PROVIDERS"))


conf = Settings()
