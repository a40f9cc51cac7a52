"""DEVELOPMENT ONLY: an offline stand-in for Google, for "Sign in as a demo user".

Google cannot be reached offline, so this module plays its part: it holds an
RSA key, publishes the public half as a JWKS (``GET /demo/certs/``, where
``GOOGLE_IDTOKEN["CERTS_URL"]`` points), and mints Google-style ID tokens
(``POST /demo/token/``). The page then posts the token to the app's real
sign-in endpoint, so the app's real key fetching and verification run end to
end.

It is mounted only when ``settings.DEV_ISSUER_ENABLED`` (DEBUG on, no real
``GOOGLE_CLIENT_ID``), and every view checks that again. It mints tokens for
one fixed demo account only: whatever the request says, it is never a way to
sign in as another user.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from django_google_idtoken.testing import FakeIssuer

#: The one Google account this issuer vouches for. Its address is not a local
#: user's, so the default account policy creates a user on the first sign-in.
DEMO_ACCOUNT: dict[str, Any] = {
    "sub": "100000000000000000001",
    "email": "demo@example.com",
    # A Workspace account of example.com: Google is authoritative for the
    # address, so the new user gets it as User.email.
    "hd": "example.com",
    "email_verified": True,
    "name": "Demo User",
    "given_name": "Demo",
    "family_name": "User",
}

#: The published key set never changes while the process runs.
CERTS_MAX_AGE = 3600

_issuer: FakeIssuer | None = None
_issuer_lock = threading.Lock()


def get_issuer() -> FakeIssuer:
    """The development issuer, created on first use in the serving process.

    Not at import time: runserver's autoreloader imports the project in a
    parent process and serves from a child, and a key made in the parent
    would not be the one the child signs with. The lock makes concurrent
    first requests share one key.
    """
    global _issuer
    with _issuer_lock:
        if _issuer is None:
            _issuer = FakeIssuer(client_id=settings.DEV_ISSUER_CLIENT_ID)
        return _issuer


def mint_demo_token() -> str:
    """A fresh ID token for the demo account (and no other)."""
    return get_issuer().mint(drop=["picture"], **DEMO_ACCOUNT)


def _enabled_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    # Defence in depth: the URLs are mounted only when enabled, but a copied
    # urls.py must not bring a token mint into a production configuration.
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not (settings.DEBUG and settings.DEV_ISSUER_ENABLED):
            raise Http404("The development issuer is off.")
        return view(request, *args, **kwargs)

    return wrapper


@require_GET
@_enabled_only
def certs(request: HttpRequest) -> HttpResponse:
    """The issuer's public keys as a JWKS, like Google's v3/certs."""
    response = JsonResponse(get_issuer().jwks())
    response["Cache-Control"] = f"public, max-age={CERTS_MAX_AGE}"
    return response


@require_POST
@never_cache
@_enabled_only
def token(request: HttpRequest) -> HttpResponse:
    """A new ID token for the demo account.

    POST only, behind Django's CSRF check (the page sends its CSRF token), so
    another site cannot drive it from a visitor's browser. The request body is
    ignored: there is nothing to choose.
    """
    return JsonResponse({"id_token": mint_demo_token()})
