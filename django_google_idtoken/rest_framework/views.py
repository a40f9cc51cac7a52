"""Sign-in and "who am I" endpoints. They translate HTTP to the backend and
back; every decision is made by the verifier and the account policy."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import authenticate, login
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from rest_framework import exceptions, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..backends import GoogleIdTokenBackend, get_refusal, get_result
from ..csrf import check_login_csrf
from ..errors import Refused
from ..providers import get_provider
from .serializers import LinkedAccountSerializer, UserSerializer

logger = logging.getLogger("django_google_idtoken")

BACKEND_PATH = f"{GoogleIdTokenBackend.__module__}.{GoogleIdTokenBackend.__qualname__}"

#: Where clients put the token: JSON "id_token", or the form field "idToken"
#: that Google's and now.gg's client examples post (or "id_token").
TOKEN_FIELDS = ("id_token", "idToken")


def refusal_response(refusal: Refused) -> Response:
    """The JSON answer for a refusal: {"code", "detail"}, with Retry-After on 503."""
    response = Response(refusal.as_dict(), status=refusal.status)
    if refusal.retry_after is not None:
        response["Retry-After"] = str(refusal.retry_after)
    return response


class CodedErrorsMixin:
    """Answers every error as {"code", "detail"}, DRF's own ones included
    (parse errors, 405, 415, 401), so clients have one shape to handle."""

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, Refused):
            return refusal_response(exc)
        if isinstance(exc, exceptions.NotAuthenticated):
            # A session endpoint: there is no WWW-Authenticate scheme to offer,
            # but "not signed in" is still a 401, not DRF's default 403.
            return Response(
                {"code": "not_authenticated", "detail": str(exc.detail)},
                status=status.HTTP_401_UNAUTHORIZED,
            )
        if isinstance(exc, exceptions.APIException):
            response: Response = super().handle_exception(exc)  # type: ignore[misc]
            detail = exc.detail if isinstance(exc.detail, str) else exc.default_detail
            response.data = {"code": exc.default_code, "detail": str(detail)}
            return response
        unhandled: Response = super().handle_exception(exc)  # type: ignore[misc]
        return unhandled


@sensitive_variables("data", "value")
def extract_token(request: Request) -> str:
    """The token from the body; 400 missing_token if absent, empty or not a string."""
    try:
        data = request.data
    except (exceptions.ParseError, RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent):
        raise Refused("missing_token", "The request body could not be parsed.") from None
    except exceptions.APIException:
        raise  # 415 for a content type no parser takes, answered as such
    except Exception as err:  # noqa: BLE001
        # Hostile bodies reach past DRF's own parse errors: deeply nested
        # JSON (RecursionError), and charsets naming codecs that cannot decode
        # text at all (idna: UnicodeError; rot13: LookupError; zlib: TypeError
        # or zlib.error). Parsing the body is pure input handling, so every
        # failure there is "no usable token", never a 500.
        logger.info("unparsable sign-in body (%s)", type(err).__name__)
        raise Refused("missing_token", "The request body could not be parsed.") from None
    if not hasattr(data, "get"):
        raise Refused("missing_token")
    for name in TOKEN_FIELDS:
        value = data.get(name)
        if value is not None:
            if not isinstance(value, str) or not value.strip():
                raise Refused("missing_token")
            return value.strip()
    raise Refused("missing_token")


# Error reports (500 mails to ADMINS, Sentry) must not carry the token: it is
# a bearer credential. On dispatch, since DRF wraps the request for post().
@method_decorator(sensitive_post_parameters(*TOKEN_FIELDS), name="dispatch")
class SignInView(CodedErrorsMixin, APIView):
    """POST an ID token; get a session and the signed-in user. ``signin/``
    takes Google's tokens, ``signin/<provider>/`` a configured provider's.

    Tokens are accepted only in POST bodies, never in URLs (which end up in
    access logs, browser history and Referer headers): GET answers 405.
    """

    # No authentication classes: the token in the body is the credential, and
    # an existing session must not change what this view does.
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @sensitive_variables("token")
    def post(self, request: Request, provider: str | None = None) -> Response:
        http_request = request._request
        # Login CSRF: the Origin rule for all, Django's CSRF token for browsers.
        check_login_csrf(http_request)
        # Before reading the body: a misspelt provider route is a 404
        # whatever was posted to it.
        get_provider(provider)
        token = extract_token(request)
        user = authenticate(http_request, id_token=token, provider=provider)
        if user is None:
            refusal = get_refusal(http_request)
            if refusal is None:
                # Another backend declined, or ours is not configured.
                refusal = Refused("malformed_token")
            return refusal_response(refusal)
        result = get_result(http_request)
        # login() rotates the session key, so a session id planted before
        # sign-in (session fixation) is useless afterwards.
        login(http_request, user, backend=BACKEND_PATH)
        return Response(
            {
                "user": UserSerializer(user).data,
                "created": bool(result and result.created),
                "account": LinkedAccountSerializer(result.account).data if result else None,
            }
        )


class MeView(CodedErrorsMixin, APIView):
    """The session's user; 401 without one."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        return Response(UserSerializer(request.user).data)
