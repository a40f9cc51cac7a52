"""The comparison views of the sign-in benchmark.

(b) ``LoginFloorView``: what no sign-in can avoid. It parses the same kind of
    body as the sign-in endpoint, loads a known user by primary key and calls
    ``django.contrib.auth.login`` (session key rotation and session write).
(c) ``plain``: a plain Django view answering ``{}``.
(d) ``NaiveSignInView``: Google's guide followed literally, as many apps do:
    ``verify_oauth2_token(token, google.auth.transport.requests.Request(),
    CLIENT_ID)``, which downloads and parses the certificates on every call,
    then ``get_or_create`` and ``login``.
"""

from __future__ import annotations

from typing import Any

import google.auth.transport.requests
from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from google.auth import exceptions as google_exceptions
from google.oauth2 import id_token as google_id_token
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from django_google_idtoken.rest_framework.serializers import UserSerializer

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


class LoginFloorView(APIView):
    """(b) Parse the body, load the user by pk, log in: the floor of any sign-in."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    def post(self, request: Request) -> Response:
        token = request.data.get("id_token")
        if not isinstance(token, str) or not token:
            return Response({"code": "missing_token"}, status=400)
        user = get_user_model()._default_manager.get(pk=int(request.data["user_id"]))
        login(request._request, user, backend=MODEL_BACKEND)
        return Response({"user": UserSerializer(user).data, "created": False})


@csrf_exempt
def plain(request: HttpRequest) -> JsonResponse:
    """(c) A plain Django view."""
    return JsonResponse({})


class NaiveSignInView(APIView):
    """(d) The naive sign-in: certificates downloaded and parsed on every call."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    def post(self, request: Request) -> Response:
        token = request.data.get("id_token")
        try:
            # The body of google.oauth2.id_token.verify_oauth2_token, whose
            # certificate URL is fixed to Google's v1/certs, with verify_token's
            # certs_url pointed at the local key server's v1 (PEM) endpoint.
            idinfo = google_id_token.verify_token(
                token,
                google.auth.transport.requests.Request(),
                audience=settings.BENCH_CLIENT_ID,
                certs_url=settings.BENCH_NAIVE_CERTS_URL,
            )
            if idinfo["iss"] not in google_id_token._GOOGLE_ISSUERS:
                raise google_exceptions.GoogleAuthError("Wrong issuer.")
        except (ValueError, google_exceptions.GoogleAuthError):
            return Response({"code": "invalid_token"}, status=401)
        user, created = get_user_model()._default_manager.get_or_create(
            username=idinfo["sub"], defaults={"email": idinfo.get("email", "")}
        )
        login(request._request, user, backend=MODEL_BACKEND)
        return Response({"user": UserSerializer(user).data, "created": created})
