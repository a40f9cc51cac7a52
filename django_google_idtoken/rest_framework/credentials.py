"""API credentials handed back by ``signin/`` (``SIGNIN_TOKEN``), for native
clients that do not keep cookies.

Each kind lives in an optional app, imported only when chosen: the system
check ``django_google_idtoken.E011`` reports a choice whose app is missing.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured


def issue_token(kind: str, user: Any) -> Any:
    """The credential of ``kind`` for ``user``, as JSON-ready data.

    ``"authtoken"``: the key of the user's DRF ``Token`` (created on first
    use; DRF keeps one per user, so every sign-in returns the same key), as a
    string, sent back as ``Authorization: Token <key>``.

    ``"simplejwt"``: a new simplejwt pair ``{"access": ..., "refresh": ...}``;
    the access token is sent back as ``Authorization: Bearer <access>`` and
    renewed at simplejwt's refresh view.
    """
    if kind == "authtoken":
        from rest_framework.authtoken.models import Token

        token, _ = Token.objects.get_or_create(user=user)
        return token.key
    if kind == "simplejwt":
        from rest_framework_simplejwt.tokens import RefreshToken

        refresh = RefreshToken.for_user(user)
        return {"access": str(refresh.access_token), "refresh": str(refresh)}
    raise ImproperlyConfigured(f"Unknown SIGNIN_TOKEN {kind!r}.")
