"""Sign-in, "who am I" and account-linking endpoints. They translate HTTP to
the backend and back; every decision is made by the verifier and the account
policy."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import authenticate, login, user_logged_in
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from rest_framework import exceptions, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import ErrorDetail
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..accounts import link_account, unlink_account
from ..backends import GoogleIdTokenBackend, get_refusal, get_result
from ..conf import conf
from ..csrf import check_login_csrf
from ..errors import Refused
from ..models import LinkedAccount
from ..providers import get_provider
from ..replay import mark_used
from .authentication import GoogleIdTokenAuthentication
from .credentials import issue_token
from .serializers import LinkedAccountDetailSerializer, LinkedAccountSerializer, UserSerializer

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
            # "Not signed in" is a 401 even where no class offers a
            # WWW-Authenticate challenge (DRF's default would be 403).
            response = Response(
                {"code": "not_authenticated", "detail": str(exc.detail)},
                status=status.HTTP_401_UNAUTHORIZED,
            )
            challenge = self.get_authenticate_header(self.request)  # type: ignore[attr-defined]
            if challenge:
                response["WWW-Authenticate"] = challenge
            return response
        if isinstance(exc, exceptions.APIException):
            handled: Response = super().handle_exception(exc)  # type: ignore[misc]
            detail = exc.detail if isinstance(exc.detail, str) else exc.default_detail
            # An error raised with its own code (a Bearer refusal's, CSRF's)
            # keeps it; DRF's own errors carry their default code.
            code = exc.detail.code if isinstance(exc.detail, ErrorDetail) else None
            handled.data = {"code": code or exc.default_code, "detail": str(detail)}
            return handled
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
    # No MultiPartParser: see refuse_unparsable_media_type.
    parser_classes = [JSONParser, FormParser]

    def refuse_unparsable_media_type(self, request: Request) -> None:
        """415 ``unsupported_media_type`` for a body that none of the view's
        parsers takes, before anything reads it.

        Sign-in takes JSON and urlencoded forms, what every client sends
        (Google's, now.gg's and the README's). A multipart body would be
        parsed by Django in full, its file parts spooled to disk (which
        ``DATA_UPLOAD_MAX_MEMORY_SIZE`` does not count), as soon as anything
        reads ``request.POST``: the login CSRF check does, before the token
        is looked at. Refused here, it costs nothing but its headers.
        """
        media_type = request.content_type
        # request.stream is None for an empty body (DRF then parses nothing).
        if not media_type or request.stream is None:
            return
        if self.get_content_negotiator().select_parser(request, self.get_parsers()) is None:
            raise exceptions.UnsupportedMediaType(media_type)

    @sensitive_variables("token")
    def post(self, request: Request, provider: str | None = None) -> Response:
        http_request = request._request
        # First of all: the CSRF check below may read the body.
        self.refuse_unparsable_media_type(request)
        # Login CSRF: the Origin rule for all, Django's CSRF token for browsers.
        check_login_csrf(http_request)
        # Before reading the body: a misspelt provider route is a 404
        # whatever token was posted to it.
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
        open_session, token_kind = conf.read("SIGNIN_SESSION", "SIGNIN_TOKEN")
        if open_session:
            # login() rotates the session key, so a session id planted before
            # sign-in (session fixation) is useless afterwards.
            login(http_request, user, backend=BACKEND_PATH)
        else:
            # No session, but a sign-in all the same: what login() would tell
            # user_logged_in receivers (last_login, audit logs) they still hear.
            user_logged_in.send(sender=type(user), request=http_request, user=user)
        body = {
            "user": UserSerializer(user).data,
            "created": bool(result and result.created),
            "account": LinkedAccountSerializer(result.account).data if result else None,
        }
        if token_kind is not None:
            body["token"] = issue_token(token_kind, user)
        return Response(body)


class ProviderSignInView(SignInView):
    """``signin/<provider>/``: the same, for a provider of ``PROVIDERS`` (a
    class of its own so that the OpenAPI description names both)."""


class CsrfSessionAuthentication(SessionAuthentication):
    """DRF's SessionAuthentication (Django's CSRF check on unsafe methods),
    whose CSRF refusal answers with the code ``csrf_failed``."""

    def enforce_csrf(self, request: Request) -> None:
        try:
            super().enforce_csrf(request)
        except exceptions.PermissionDenied as err:
            raise exceptions.PermissionDenied(str(err.detail), code="csrf_failed") from None


#: A Bearer ID token (first: its challenge is the one a 401 offers) or a
#: session, for the endpoints that act on the signed-in user.
USER_AUTHENTICATION: list[Any] = [GoogleIdTokenAuthentication, CsrfSessionAuthentication]


class MeView(CodedErrorsMixin, APIView):
    """The signed-in user (session or Bearer ID token); 401 without one."""

    authentication_classes = USER_AUTHENTICATION
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        return Response(UserSerializer(request.user).data)


# Linking hands the token's owner a way to sign in as the current user, so
# the request must come from that user: a session request passes Django's
# CSRF check (CsrfSessionAuthentication), or the user's own Bearer token
# authenticates it (a header no other site can make a browser send). Without
# the CSRF check a hostile page could post its author's ID token from the
# victim's browser and take over the victim's account.
@method_decorator(sensitive_post_parameters(*TOKEN_FIELDS), name="dispatch")
class LinkedAccountsView(CodedErrorsMixin, APIView):
    """``GET``: the signed-in user's linked accounts. ``POST`` an ID token
    (as at sign-in): link its account to the signed-in user."""

    authentication_classes = USER_AUTHENTICATION
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    def get(self, request: Request) -> Response:
        user: Any = request.user  # authenticated (IsAuthenticated)
        accounts = LinkedAccount.objects.filter(user=user).order_by("created_at", "pk")
        return Response(LinkedAccountDetailSerializer(accounts, many=True).data)

    @sensitive_variables("token")
    def post(self, request: Request) -> Response:
        token = extract_token(request)
        data = request.data  # parsed and checked by extract_token
        # get_provider refuses unknown_provider for any name it does not know,
        # a non-string (5, ["google"]) included.
        provider = get_provider(data.get("provider") if isinstance(data, dict) else None)
        try:
            claims = provider.verify(token)
            # As at sign-in: with REPLAY_PROTECTION a token links once.
            mark_used(claims)
            account, created = link_account(request.user, claims, request._request)
        except Refused as refusal:
            refusal.log(logger, "ID token refused for linking")
            raise
        logger.info(
            "user %s linked a %s account (new=%s)", request.user.pk, claims.provider, created
        )
        return Response(
            LinkedAccountDetailSerializer(account).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class LinkedAccountDetailView(CodedErrorsMixin, APIView):
    """``DELETE``: unlink one of the signed-in user's accounts; 204, 404 if
    it is not theirs, 409 ``last_login_method`` if it is their last way in."""

    authentication_classes = USER_AUTHENTICATION
    permission_classes = [IsAuthenticated]

    def delete(self, request: Request, account_id: str) -> Response:
        try:
            unlink_account(request.user, account_id, request._request)
        except LinkedAccount.DoesNotExist:
            raise exceptions.NotFound("You have no linked account with this id.") from None
        logger.info("user %s unlinked a linked account", request.user.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
