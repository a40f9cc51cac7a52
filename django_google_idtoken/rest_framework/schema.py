"""OpenAPI descriptions of the endpoints, for drf-spectacular (the ``openapi``
extra). Imported by the app's ``ready()`` only when drf-spectacular is
installed; without it nothing here runs and nothing else needs it.

The views stay free of schema code: drf-spectacular's extensions describe
them from here (request bodies, answers, every refusal code with its status)
and the two authentication classes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiViewExtension
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import serializers

from ..errors import REFUSALS
from .serializers import LinkedAccountDetailSerializer

# -- refusal codes, per endpoint and status ----------------------------------

#: What the verifier answers for a token that does not verify.
TOKEN_CODES = (
    "malformed_token",
    "unsupported_algorithm",
    "unknown_key",
    "invalid_signature",
    "wrong_issuer",
    "wrong_audience",
    "token_expired",
    "token_not_yet_valid",
    "invalid_claims",
)

#: Codes of errors that DRF raises (not in errors.REFUSALS), with their details.
DRF_CODES = {
    "not_authenticated": "Authentication credentials were not provided.",
    "unsupported_media_type": 'Unsupported media type "text/plain" in request.',
    "not_found": "You have no linked account with this id.",
}

Codes = dict[int, tuple[str, ...]]

SIGNIN_CODES: Codes = {
    400: ("missing_token",),
    401: (*TOKEN_CODES, "token_replayed"),
    403: (
        "hosted_domain_not_allowed",
        "csrf_failed",
        "user_inactive",
        "signup_disabled",
        "email_in_use",
        "email_not_verified",
    ),
    # signin/<provider>/: a name not in PROVIDERS, and now.gg's Verify Token API.
    404: ("unknown_provider",),
    415: ("unsupported_media_type",),
    502: ("provider_error",),
    503: (
        "keys_unavailable",
        "key_refresh_pending",
        "replay_check_unavailable",
        "provider_unavailable",
    ),
}

#: Endpoints for a signed-in user: a session, or a Bearer ID token (refused
#: with 401 for any reason but unavailable keys; 400 for a malformed header).
#: signup_disabled, email_in_use and email_not_verified only with BEARER_CREATE_USERS.
USER_CODES: Codes = {
    400: ("missing_token",),
    401: (
        "not_authenticated",
        *TOKEN_CODES,
        "account_not_linked",
        "user_inactive",
        "hosted_domain_not_allowed",
        "signup_disabled",
        "email_in_use",
        "email_not_verified",
    ),
    # A Bearer token of now.gg's, while its Verify Token API cannot answer.
    502: ("provider_error",),
    503: ("keys_unavailable", "key_refresh_pending", "provider_unavailable"),
}

LINK_CODES: Codes = {
    400: ("missing_token",),
    401: ("token_replayed",),
    403: ("csrf_failed", "hosted_domain_not_allowed"),
    404: ("unknown_provider",),
    409: ("account_linked_elsewhere",),
    415: ("unsupported_media_type",),
    502: ("provider_error",),
    # REPLAY_PROTECTION applies to linking (never to Bearer requests).
    503: ("replay_check_unavailable", "provider_unavailable"),
}

UNLINK_CODES: Codes = {
    403: ("csrf_failed",),
    404: ("not_found",),
    409: ("last_login_method",),
}


def merge(*tables: Codes) -> Codes:
    """The union of several status -> codes tables, in order, without repeats."""
    merged: dict[int, list[str]] = {}
    for table in tables:
        for status, codes in table.items():
            merged.setdefault(status, [])
            merged[status] += [code for code in codes if code not in merged[status]]
    return {status: tuple(merged[status]) for status in sorted(merged)}


def detail(code: str) -> str:
    return REFUSALS[code][1] if code in REFUSALS else DRF_CODES[code]


def refusal(status: int, codes: Iterable[str]) -> OpenApiResponse:
    """A refusal answer: {"code", "detail"} with ``code`` one of ``codes``."""
    codes = tuple(codes)
    return OpenApiResponse(
        response={
            "type": "object",
            "properties": {
                "code": {"type": "string", "enum": list(codes)},
                "detail": {"type": "string", "description": "Human-readable; may change."},
            },
            "required": ["code", "detail"],
        },
        description="Refused: " + ", ".join(f"`{code}`" for code in codes) + ".",
        examples=[
            OpenApiExample(
                code,
                value={"code": code, "detail": detail(code)},
                status_codes=[status],
                response_only=True,
            )
            for code in codes
        ],
    )


def refusals(table: Codes) -> dict[int, OpenApiResponse]:
    return {status: refusal(status, codes) for status, codes in table.items()}


RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    int,
    OpenApiParameter.HEADER,
    description="Seconds to wait before retrying (with every 503: keys_unavailable, "
    "key_refresh_pending, replay_check_unavailable, provider_unavailable).",
    response=[503],
)

# -- bodies --------------------------------------------------------------------

TOKEN_HELP = "The ID token from the client's Google Sign-In (a compact JWS)."
PROVIDER_HELP = "The identity provider that issued the token (default: google)."


class GoogleIdTokenSignInSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id_token = serializers.CharField(help_text=TOKEN_HELP)


class GoogleIdTokenSignInFormSerializer(serializers.Serializer):  # type: ignore[type-arg]
    idToken = serializers.CharField(required=False, help_text=f"{TOKEN_HELP} Or id_token.")
    id_token = serializers.CharField(required=False, help_text=f"{TOKEN_HELP} Or idToken.")


class GoogleIdTokenLinkSerializer(GoogleIdTokenSignInSerializer):
    provider = serializers.CharField(required=False, help_text=PROVIDER_HELP)


class GoogleIdTokenLinkFormSerializer(GoogleIdTokenSignInFormSerializer):
    provider = serializers.CharField(required=False, help_text=PROVIDER_HELP)


class GoogleIdTokenUserSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.CharField(allow_blank=True)
    first_name = serializers.CharField(allow_blank=True)
    last_name = serializers.CharField(allow_blank=True)


class GoogleIdTokenAccountSerializer(serializers.Serializer):  # type: ignore[type-arg]
    provider = serializers.CharField()
    sub = serializers.CharField()
    email = serializers.CharField(allow_blank=True)
    email_verified = serializers.BooleanField()
    hosted_domain = serializers.CharField(allow_blank=True)
    name = serializers.CharField(allow_blank=True)
    picture = serializers.CharField(allow_blank=True)


class GoogleIdTokenLinkedAccountSerializer(LinkedAccountDetailSerializer):
    pass


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "description": "SIGNIN_TOKEN 'authtoken': the DRF token key."},
            {
                "type": "object",
                "description": "SIGNIN_TOKEN 'simplejwt': a simplejwt pair.",
                "properties": {"access": {"type": "string"}, "refresh": {"type": "string"}},
                "required": ["access", "refresh"],
            },
        ]
    }
)
class _CredentialField(serializers.Field):  # type: ignore[type-arg]
    pass


class GoogleIdTokenSignInResultSerializer(serializers.Serializer):  # type: ignore[type-arg]
    user = GoogleIdTokenUserSerializer()
    created = serializers.BooleanField(help_text="True when this sign-in created the user.")
    account = GoogleIdTokenAccountSerializer()
    token = _CredentialField(
        required=False, help_text="The API credential; only when SIGNIN_TOKEN is set."
    )


def _forms(json: Any, form: Any, *, multipart: bool = True) -> dict[str, Any]:
    content = {"application/json": json, "application/x-www-form-urlencoded": form}
    if multipart:
        content["multipart/form-data"] = form
    return content


# -- the views -----------------------------------------------------------------

VIEWS = "django_google_idtoken.rest_framework.views"


def _describe(target: Any, **methods: Any) -> Any:
    # A subclass carries the annotations, so the real view is left as it was.
    return extend_schema_view(**methods)(type(target.__name__, (target,), {}))


def _signin(target: Any, operation_id: str, *parameters: OpenApiParameter) -> Any:
    return _describe(
        target,
        post=extend_schema(
            operation_id=operation_id,
            summary="Sign in with an ID token",
            description=(
                "Verifies the ID token, finds or creates the linked user, opens a "
                "session (SIGNIN_SESSION) and, with SIGNIN_TOKEN, hands back an API "
                "credential under `token`. Tokens are never accepted in URLs. JSON or an "
                "urlencoded form only: any other body (multipart included) is refused "
                "unread, 415 unsupported_media_type."
            ),
            request=_forms(
                GoogleIdTokenSignInSerializer, GoogleIdTokenSignInFormSerializer, multipart=False
            ),
            responses={200: GoogleIdTokenSignInResultSerializer, **refusals(SIGNIN_CODES)},
            parameters=[*parameters, RETRY_AFTER],
        ),
    )


class SignInViewSchema(OpenApiViewExtension):
    target_class = f"{VIEWS}.SignInView"

    def view_replacement(self) -> Any:
        return _signin(self.target_class, "google_idtoken_signin")


class ProviderSignInViewSchema(OpenApiViewExtension):
    target_class = f"{VIEWS}.ProviderSignInView"

    def view_replacement(self) -> Any:
        provider = OpenApiParameter(
            "provider",
            str,
            OpenApiParameter.PATH,
            description="A provider of the PROVIDERS setting (nowgg, an OpenID Connect "
            "provider's name), or google; any other answers 404 unknown_provider.",
        )
        return _signin(self.target_class, "google_idtoken_signin_provider", provider)


class MeViewSchema(OpenApiViewExtension):
    target_class = f"{VIEWS}.MeView"

    def view_replacement(self) -> Any:
        return _describe(
            self.target_class,
            get=extend_schema(
                operation_id="google_idtoken_me",
                summary="The signed-in user",
                responses={200: GoogleIdTokenUserSerializer, **refusals(USER_CODES)},
                parameters=[RETRY_AFTER],
            ),
        )


class LinkedAccountsViewSchema(OpenApiViewExtension):
    target_class = f"{VIEWS}.LinkedAccountsView"

    def view_replacement(self) -> Any:
        return _describe(
            self.target_class,
            get=extend_schema(
                operation_id="google_idtoken_accounts_list",
                summary="The signed-in user's linked accounts",
                responses={
                    200: GoogleIdTokenLinkedAccountSerializer(many=True),
                    **refusals(USER_CODES),
                },
                parameters=[RETRY_AFTER],
            ),
            post=extend_schema(
                operation_id="google_idtoken_accounts_link",
                summary="Link an account to the signed-in user",
                description=(
                    "Verifies the ID token (as at sign-in, replay protection included) and "
                    "links its account to the signed-in user: 201 when linked, 200 when it "
                    "already was. Session requests need Django's CSRF token."
                ),
                request=_forms(GoogleIdTokenLinkSerializer, GoogleIdTokenLinkFormSerializer),
                responses={
                    200: OpenApiResponse(
                        GoogleIdTokenLinkedAccountSerializer, description="Already linked."
                    ),
                    201: OpenApiResponse(
                        GoogleIdTokenLinkedAccountSerializer, description="Linked."
                    ),
                    **refusals(merge(USER_CODES, LINK_CODES)),
                },
                parameters=[RETRY_AFTER],
            ),
        )


class LinkedAccountDetailViewSchema(OpenApiViewExtension):
    target_class = f"{VIEWS}.LinkedAccountDetailView"

    def view_replacement(self) -> Any:
        return _describe(
            self.target_class,
            delete=extend_schema(
                operation_id="google_idtoken_accounts_unlink",
                summary="Unlink one of the signed-in user's accounts",
                description=(
                    "Refused with last_login_method when the user would be left with no "
                    "way to sign in (no other linked account, no usable password). Session "
                    "requests need Django's CSRF token."
                ),
                parameters=[
                    OpenApiParameter(
                        "account_id",
                        int,
                        OpenApiParameter.PATH,
                        description="The account's id, from GET accounts/.",
                    ),
                    RETRY_AFTER,
                ],
                responses={
                    204: OpenApiResponse(description="Unlinked."),
                    **refusals(merge(USER_CODES, UNLINK_CODES)),
                },
            ),
        )


# -- authentication --------------------------------------------------------------


class GoogleIdTokenScheme(OpenApiAuthenticationExtension):
    target_class = "django_google_idtoken.rest_framework.authentication.GoogleIdTokenAuthentication"
    match_subclasses = True
    name = "googleIdToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A Google ID token: Authorization: Bearer <ID token>.",
        }


class CsrfSessionScheme(OpenApiAuthenticationExtension):
    target_class = f"{VIEWS}.CsrfSessionAuthentication"
    # drf-spectacular's own name for session cookies, so both merge into one.
    name = "cookieAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        from django.conf import settings

        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}
