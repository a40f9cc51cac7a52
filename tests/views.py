"""A project's own API views, as the README shows them: DRF's default
exception handler, the app's Bearer class, the credentials signin/ issues."""

from __future__ import annotations

from typing import Any

from django.views.debug import SafeExceptionReporterFilter
from rest_framework.authentication import TokenAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTAuthentication

from django_google_idtoken.claims import Claims
from django_google_idtoken.rest_framework.authentication import GoogleIdTokenAuthentication


def _answer(request: Request) -> Response:
    claims: Any = request.auth
    return Response(
        {
            "id": request.user.pk,
            "email": request.user.email,
            # request.auth is the token's Claims under the Bearer class.
            "sub": claims.sub if isinstance(claims, Claims) else None,
        }
    )


class WhoAmI(APIView):
    authentication_classes = [GoogleIdTokenAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        return _answer(request)


class WhoAmIByToken(APIView):
    authentication_classes = [GoogleIdTokenAuthentication, TokenAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        return _answer(request)


class WhoAmIByJWT(APIView):
    authentication_classes = [JWTAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        return _answer(request)


class ProjectReporterFilter(SafeExceptionReporterFilter):
    """A project's own error-report filter (DEFAULT_EXCEPTION_REPORTER_FILTER)."""
