"""The Django authentication backend.

Per Django's contract, ``authenticate()`` never raises for a bad credential: it
returns ``None`` and records why on the request, where the view (or your own
code) reads it with :func:`get_refusal`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import BaseBackend
from django.http import HttpRequest
from django.views.decorators.debug import sensitive_variables

from .accounts import SignInResult, sign_in
from .errors import Refused
from .providers import get_provider
from .replay import mark_used

logger = logging.getLogger("django_google_idtoken")

_REFUSAL_ATTR = "google_idtoken_refusal"
_RESULT_ATTR = "google_idtoken_result"


def get_refusal(request: HttpRequest | None) -> Refused | None:
    """Why the last ``authenticate(request, id_token=...)`` returned None, if it did."""
    return getattr(request, _REFUSAL_ATTR, None)


def get_result(request: HttpRequest | None) -> SignInResult | None:
    """The account and ``created`` flag of the last successful sign-in on ``request``."""
    return getattr(request, _RESULT_ATTR, None)


class GoogleIdTokenBackend(BaseBackend):
    """Authenticates ``authenticate(request, id_token=...)`` with a Google ID
    token, or with another configured provider's:
    ``authenticate(request, id_token=..., provider="nowgg")``."""

    # Directly, not through method_decorator: its wrapper frame would hold
    # the token in plain sight of error reports.
    @sensitive_variables("id_token")
    def authenticate(
        self,
        request: HttpRequest | None,
        id_token: str | None = None,
        provider: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if id_token is None:
            return None  # someone else's credentials (username/password...)
        if request is not None:
            setattr(request, _REFUSAL_ATTR, None)
            setattr(request, _RESULT_ATTR, None)
        try:
            claims = get_provider(provider).verify(id_token)
            mark_used(claims)
            result = sign_in(claims, request)
        except Refused as refusal:
            refusal.log(logger)
            if request is not None:
                setattr(request, _REFUSAL_ATTR, refusal)
            return None
        if request is not None:
            setattr(request, _RESULT_ATTR, result)
        logger.info(
            "signed in user %s (%s sub, created=%s)",
            result.user.pk,
            claims.provider,
            result.created,
        )
        return result.user

    def get_user(self, user_id: Any) -> Any:
        user_model = get_user_model()
        try:
            user = user_model._default_manager.get(pk=user_id)
        except (user_model.DoesNotExist, ValueError, TypeError):
            return None
        # A user disabled after signing in loses the session on the next request.
        return user if getattr(user, "is_active", True) else None
