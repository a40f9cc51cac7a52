"""Stateless API authentication: ``Authorization: Bearer <ID token>`` (RFC 6750).

Each request carries a fresh ID token from the client's Google SDK instead of
a session cookie or an API token of our own. The token is verified exactly
as at sign-in and mapped to its user by (provider, sub).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.http import HttpRequest
from django.views.debug import SafeExceptionReporterFilter, get_exception_reporter_filter
from django.views.decorators.debug import sensitive_variables
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from ..accounts import find_user
from ..claims import Claims
from ..conf import conf
from ..errors import Refused
from ..providers import provider_for_token

logger = logging.getLogger("django_google_idtoken")

# Where a failure waits for authenticate_header(): DRF builds the
# WWW-Authenticate header from a new instance of the class, after the fact,
# so the request is the only thing both calls see.
_CHALLENGE_ATTR = "_google_idtoken_bearer_challenge"

REMOTE_PROVIDER_DETAIL = (
    "Tokens of this identity provider are not accepted as Bearer credentials here; "
    "sign in with them instead."
)

# RFC 6750 section 3: error_description is %x20-21 / %x23-5B / %x5D-7E (no
# double quote, no backslash, printable ASCII only).
_NOT_DESCRIPTION_CHAR = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")


class InvalidBearerToken(exceptions.AuthenticationFailed):
    """A Bearer credential was refused. ``code`` is the refusal's (the same
    codes as sign-in); the status is 401, or 400 for a malformed header."""

    def __init__(self, refusal: Refused, *, status_code: int = status.HTTP_401_UNAUTHORIZED):
        super().__init__(detail=refusal.detail, code=refusal.code)
        self.status_code = status_code
        self.refusal = refusal


class KeysUnavailableError(exceptions.APIException):
    """The issuer's keys cannot be fetched (or, for now.gg, its Verify Token
    API cannot answer): 503 with Retry-After (or 502), not 401 (the token may
    well be good, and a client told 401 would throw it away)."""

    status_code: int = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "keys_unavailable"

    def __init__(self, refusal: Refused) -> None:
        super().__init__(detail=refusal.detail, code=refusal.code)
        self.status_code = refusal.status
        # DRF's exception handler turns ``wait`` into the Retry-After header.
        self.wait = refusal.retry_after


class GoogleIdTokenAuthentication(BaseAuthentication):
    """Authenticates ``Authorization: Bearer <ID token>``.

    Returns ``(user, claims)``: ``request.user`` is the linked user and
    ``request.auth`` the token's verified :class:`~django_google_idtoken.claims.Claims`.
    A request without a Bearer header is left to the view's other
    authentication classes. List this class first: DRF takes the
    ``WWW-Authenticate`` challenge of a 401 from the first class.
    """

    keyword = "Bearer"
    www_authenticate_realm = "api"

    # Directly, not through method_decorator (see backends.py): error reports
    # must not show the token held in these locals.
    @sensitive_variables("header", "token")
    def authenticate(self, request: Request) -> tuple[Any, Claims] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None  # no credentials, or another scheme's (Basic, Token...)
        hide_authorization_in_error_reports(request._request)
        if len(header) != 2:
            # RFC 6750 section 3.1: a malformed request is invalid_request, 400.
            raise self._fail(
                request,
                Refused("missing_token", "The Authorization header must be 'Bearer <ID token>'."),
                error="invalid_request",
                status_code=status.HTTP_400_BAD_REQUEST,
            )
        # latin-1 decodes any byte: whatever is not a compact JWS is refused
        # by the verifier as malformed_token, like any other bad token.
        token = header[1].decode("latin-1")
        try:
            provider = provider_for_token(token)
            if provider.verifies_remotely and not conf.BEARER_REMOTE_PROVIDERS:
                # Anyone may put a Bearer header on any API request. A forged
                # token naming a remote verifier's issuer would cost a call to
                # it (a worker held up to HTTP_TIMEOUT), and a flood of them
                # would spend the project's rate limit there, so that real
                # sign-ins fail. Off unless the project turns it on.
                raise Refused("wrong_issuer", REMOTE_PROVIDER_DETAIL, provider=provider.name)
            claims = provider.verify(token)
            # No replay protection (REPLAY_PROTECTION) here, by design: a
            # bearer token is presented again on every request until it
            # expires. It guards sign-ins and links, which turn one token
            # into a lasting session or link.
            result = find_user(claims, request._request, create=conf.BEARER_CREATE_USERS)
        except Refused as refusal:
            refusal.log(logger, "Bearer ID token refused")
            if refusal.status >= 500:
                raise KeysUnavailableError(refusal) from None
            # Every other refusal is "this token does not authenticate you
            # here" (an inactive user too: 401, not sign-in's 403).
            raise self._fail(request, refusal, error="invalid_token") from None
        return result.user, claims

    def authenticate_header(self, request: Request) -> str:
        challenge = f'{self.keyword} realm="{self.www_authenticate_realm}"'
        failure = getattr(request, _CHALLENGE_ATTR, None)
        if failure is None:
            # No credentials at all: RFC 6750 section 3.1 says no error code.
            return challenge
        error, description = failure
        return f'{challenge}, error="{error}", error_description="{description}"'

    def _fail(
        self,
        request: Request,
        refusal: Refused,
        *,
        error: str,
        status_code: int = status.HTTP_401_UNAUTHORIZED,
    ) -> InvalidBearerToken:
        # The detail never quotes the token (errors.py), so the header does not.
        description = _NOT_DESCRIPTION_CHAR.sub("", refusal.detail)
        setattr(request, _CHALLENGE_ATTR, (error, description))
        return InvalidBearerToken(refusal, status_code=status_code)


def hide_authorization_in_error_reports(request: HttpRequest) -> None:
    """Make error reports of ``request`` (the 5xx mails to ADMINS, and what
    else uses Django's exception reporter filter) cleanse its Authorization
    header, which holds the token.

    Django 5.0+ does so itself; Django 4.2's SafeExceptionReporterFilter
    lists ``HTTP_AUTHORIZATION`` verbatim among the request's headers. As
    ``sensitive_post_parameters`` does for bodies, the request gets a filter
    of its own: the one in force, with ``AUTH`` added to what it hides. A
    filter that is not Django's (nor a subclass) is left to its author.
    """
    current = get_exception_reporter_filter(request)
    if not isinstance(current, SafeExceptionReporterFilter):
        return
    if current.hidden_settings.search("HTTP_AUTHORIZATION"):
        return
    base = type(current)
    hiding = _HIDING_FILTERS.get(base)
    if hiding is None:
        pattern = re.compile(f"AUTH|{base.hidden_settings.pattern}", base.hidden_settings.flags)
        hiding = _HIDING_FILTERS[base] = type(base.__name__, (base,), {"hidden_settings": pattern})
    request.exception_reporter_filter = hiding()


#: One subclass per filter class in force (normally one: the project's).
_HIDING_FILTERS: dict[type[SafeExceptionReporterFilter], type[SafeExceptionReporterFilter]] = {}
