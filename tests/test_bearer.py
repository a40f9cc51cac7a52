"""``Authorization: Bearer <ID token>`` (RFC 6750) through real views: the
app's own ``me/`` (refusals in the {"code", "detail"} shape) and a project's
own view with DRF's default exception handler (tests/views.py). Tokens from
the fake issuer, keys fetched over HTTP from 127.0.0.1."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.cache import caches
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.log import AdminEmailHandler
from django.views.debug import (
    get_default_exception_reporter_filter,
    get_exception_reporter_filter,
)

from django_google_idtoken.keys import reset_stores
from django_google_idtoken.models import LinkedAccount
from django_google_idtoken.testing import generate_key

from .helpers import SIGNIN, assert_refused, db_state, sign_in
from .views import ProjectReporterFilter

pytestmark = pytest.mark.django_db

ME = "/auth/google/me/"
WHOAMI = "/api/whoami/"
CHALLENGE = 'Bearer realm="api"'
# RFC 6750 section 3: error_description may not hold '"' or '\'.
INVALID_TOKEN = re.compile(
    r'^Bearer realm="api", error="invalid_token", '
    r'error_description="[\x20\x21\x23-\x5b\x5d-\x7e]+"$'
)


def bearer(client: Any, url: str, token: str, scheme: str = "Bearer") -> Any:
    return client.get(url, HTTP_AUTHORIZATION=f"{scheme} {token}")


@pytest.fixture
def ada(client, issuer, key_server):
    """A user who signed in once with sub "b-1"; the client is signed out again."""
    response = sign_in(client, issuer.mint(sub="b-1", email="ada@gmail.com"))
    assert response.status_code == 200
    client.logout()
    return get_user_model().objects.get(pk=response.json()["user"]["id"])


def assert_no_token_in_headers(response: Any, token: str) -> None:
    headers = " ".join(f"{name}: {value}" for name, value in response.items())
    for part in token.split("."):
        if len(part) > 16:
            assert part not in headers


# -- success -------------------------------------------------------------------


@pytest.mark.parametrize("url", [ME, WHOAMI])
def test_a_bearer_token_authenticates_the_linked_user(client, issuer, ada, url):
    response = bearer(client, url, issuer.mint(sub="b-1", email="ada@gmail.com"))

    assert response.status_code == 200, response.content
    assert response.json()["id"] == ada.pk
    if url == WHOAMI:
        # request.auth is the token's verified claims.
        assert response.json()["sub"] == "b-1"
    # Stateless: no session was opened.
    assert client.get(ME).status_code == 401


def test_the_scheme_name_is_case_insensitive(client, issuer, ada):
    # RFC 7235 section 2.1: auth-scheme is case-insensitive.
    for scheme in ("bearer", "BEARER"):
        response = bearer(client, WHOAMI, issuer.mint(sub="b-1"), scheme=scheme)
        assert response.status_code == 200, response.content


def test_a_returning_request_writes_nothing(client, issuer, ada):
    account = LinkedAccount.objects.get()
    token = issuer.mint(sub="b-1", email="ada@gmail.com")  # the same profile as at sign-in
    before = db_state()

    with CaptureQueriesContext(connection) as queries:
        assert bearer(client, WHOAMI, token).status_code == 200

    assert db_state() == before
    # One indexed read of the account and its user; no write, no session.
    statements = [q["sql"].split(None, 1)[0].upper() for q in queries.captured_queries]
    assert statements == ["SELECT"], queries.captured_queries
    # Not a sign-in: last_signed_in_at stays.
    assert LinkedAccount.objects.get().last_signed_in_at == account.last_signed_in_at


def test_a_changed_profile_is_written_but_is_not_a_sign_in(client, issuer, ada):
    account = LinkedAccount.objects.get()
    token = issuer.mint(sub="b-1", email="ada@example.org", name="Ada King", hd="example.org")

    assert bearer(client, WHOAMI, token).status_code == 200

    fresh = LinkedAccount.objects.get()
    assert (fresh.email, fresh.name, fresh.hosted_domain) == (
        "ada@example.org",
        "Ada King",
        "example.org",
    )
    assert fresh.last_signed_in_at == account.last_signed_in_at
    # The user's own fields are not the snapshot's: they stay.
    assert get_user_model().objects.get().email == "ada@gmail.com"


def test_replay_protection_does_not_apply_to_bearer_use(client, issuer, key_server, settings):
    settings.GOOGLE_IDTOKEN = {**settings.GOOGLE_IDTOKEN, "REPLAY_PROTECTION": True}
    assert sign_in(client, issuer.mint(sub="b-2")).status_code == 200
    client.logout()
    token = issuer.mint(sub="b-2")

    # The same token on every request until it expires...
    for _ in range(3):
        assert bearer(client, WHOAMI, token).status_code == 200
    # ...and bearer use does not spend it: it still signs in, once.
    assert sign_in(client, token).status_code == 200
    assert_refused(sign_in(client, token), 401, "token_replayed")


# -- no credentials, or someone else's --------------------------------------------


def test_no_credentials_is_401_with_a_bare_challenge(client, key_server):
    own = client.get(ME)
    assert_refused(own, 401, "not_authenticated")
    assert own["WWW-Authenticate"] == CHALLENGE

    project = client.get(WHOAMI)
    assert project.status_code == 401
    assert set(project.json()) == {"detail"}
    assert project["WWW-Authenticate"] == CHALLENGE
    assert key_server.fetches == 0


@pytest.mark.parametrize(
    "header", ["Basic YWRhOnNlY3JldA==", "Token 0123456789abcdef", "JWT x.y.z"]
)
def test_other_schemes_are_left_to_other_classes(client, key_server, header):
    # Not ours: no verification, no error code; the view's other classes decide.
    response = client.get(WHOAMI, HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == CHALLENGE
    assert key_server.fetches == 0


@pytest.mark.parametrize("header", ["Bearer", "Bearer   ", "Bearer a.b.c extra"])
def test_a_malformed_header_is_400_invalid_request(client, key_server, header):
    # RFC 6750 section 3.1: invalid_request, 400.
    own = client.get(ME, HTTP_AUTHORIZATION=header)
    assert_refused(own, 400, "missing_token")
    project = client.get(WHOAMI, HTTP_AUTHORIZATION=header)
    assert project.status_code == 400
    for response in (own, project):
        assert response["WWW-Authenticate"].startswith(
            'Bearer realm="api", error="invalid_request", error_description="'
        )
    assert key_server.fetches == 0


# -- refusals ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda issuer: "not-a-jwt", "malformed_token"),
        (lambda issuer: "a.b.c\u00e9", "malformed_token"),
        (lambda issuer: issuer.expired(sub="b-1"), "token_expired"),
        (lambda issuer: issuer.wrong_audience(sub="b-1"), "wrong_audience"),
        (lambda issuer: issuer.wrong_issuer(sub="b-1"), "wrong_issuer"),
        (lambda issuer: issuer.foreign_key(sub="b-1"), "invalid_signature"),
        (
            lambda issuer: issuer.mint(sub="b-1", kid="no-such-kid", key=generate_key()),
            "unknown_key",
        ),
        (lambda issuer: issuer.mint(sub="b-1", header={"alg": "HS256"}), "unsupported_algorithm"),
        (lambda issuer: issuer.mint(sub="b-1", iat=issuer.now() + 3600), "token_not_yet_valid"),
        (lambda issuer: issuer.mint(sub="b-1", exp="soon"), "invalid_claims"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_a_bad_token_is_401_invalid_token(client, issuer, ada, make, code):
    token = make(issuer)
    before = db_state()

    own = bearer(client, ME, token)
    project = bearer(client, WHOAMI, token)

    assert_refused(own, 401, code)
    assert project.status_code == 401
    assert set(project.json()) == {"detail"}
    assert project.json()["detail"] == own.json()["detail"]
    for response in (own, project):
        assert INVALID_TOKEN.match(response["WWW-Authenticate"]), response["WWW-Authenticate"]
        assert_no_token_in_headers(response, token)
    assert db_state() == before


def test_an_unlinked_sub_is_refused_and_creates_nobody(client, issuer, key_server):
    before = db_state()
    response = bearer(client, ME, issuer.mint(sub="b-new"))
    assert_refused(response, 401, "account_not_linked")
    assert INVALID_TOKEN.match(response["WWW-Authenticate"])
    assert db_state() == before


def test_bearer_create_users_signs_up_like_a_first_sign_in(client, issuer, key_server, settings):
    settings.GOOGLE_IDTOKEN = {**settings.GOOGLE_IDTOKEN, "BEARER_CREATE_USERS": True}
    token = issuer.mint(sub="b-new", email="new@gmail.com")

    response = bearer(client, WHOAMI, token)

    assert response.status_code == 200, response.content
    user = get_user_model().objects.get()
    assert response.json()["id"] == user.pk
    assert user.email == "new@gmail.com"
    assert not user.has_usable_password()
    assert LinkedAccount.objects.get().sub == "b-new"
    # The next request finds the same user.
    assert bearer(client, WHOAMI, token).json()["id"] == user.pk
    assert get_user_model().objects.count() == 1


def test_bearer_create_users_still_obeys_create_users(client, issuer, key_server, settings):
    settings.GOOGLE_IDTOKEN = {
        **settings.GOOGLE_IDTOKEN,
        "BEARER_CREATE_USERS": True,
        "CREATE_USERS": False,
    }
    before = db_state()
    assert_refused(bearer(client, ME, issuer.mint(sub="b-new")), 401, "signup_disabled")
    assert db_state() == before


def test_an_inactive_user_is_401(client, issuer, ada):
    get_user_model().objects.update(is_active=False)
    before = db_state()
    response = bearer(client, ME, issuer.mint(sub="b-1", email="changed@gmail.com"))
    assert_refused(response, 401, "user_inactive")
    assert INVALID_TOKEN.match(response["WWW-Authenticate"])
    assert db_state() == before  # not even the snapshot


def test_hosted_domain_not_allowed_is_401(client, issuer, ada, settings):
    settings.GOOGLE_IDTOKEN = {**settings.GOOGLE_IDTOKEN, "HOSTED_DOMAINS": ["example.com"]}
    response = bearer(client, ME, issuer.mint(sub="b-1"))
    assert_refused(response, 401, "hosted_domain_not_allowed")


def forget_keys() -> None:
    """Drop the keys the sign-in in ``ada`` fetched (process and shared cache)."""
    for alias in caches:
        caches[alias].clear()
    reset_stores()


def test_keys_unavailable_is_503_with_retry_after(client, issuer, ada, key_server):
    forget_keys()
    key_server.respond = lambda path: (200, {"Content-Type": "application/json"}, b"<html>")
    token = issuer.mint(sub="b-1")

    own = bearer(client, ME, token)
    project = bearer(client, WHOAMI, token)

    assert_refused(own, 503, "keys_unavailable")
    assert project.status_code == 503
    for response in (own, project):
        # Not 401: the token may be good, and a client told 401 would drop it.
        assert int(response["Retry-After"]) > 0
        assert "WWW-Authenticate" not in response


def test_refusals_are_logged_without_the_token(client, issuer, ada, caplog):
    caplog.set_level(logging.INFO, logger="django_google_idtoken")
    token = issuer.expired(sub="b-1")
    bearer(client, WHOAMI, token)
    messages = [record.getMessage() for record in caplog.records]
    assert any("token_expired" in message for message in messages)
    # (The suite-wide leak guard checks every record for token material.)


def test_no_token_in_the_error_report_mailed_to_admins(client, issuer, ada, key_server, settings):
    # A 5xx answer is mailed to ADMINS with the request's headers: the
    # Authorization header must be cleansed there.
    settings.ADMINS = [("Admin", "admin@example.com")]
    forget_keys()
    key_server.respond = lambda path: (200, {"Content-Type": "application/json"}, b"<html>")
    token = issuer.mint(sub="b-1")

    assert bearer(client, WHOAMI, token).status_code == 503

    assert any(
        isinstance(handler, AdminEmailHandler) for handler in logging.getLogger("django").handlers
    )
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    mailed = message.body + "".join(str(content) for content, _ in message.alternatives)
    assert "HTTP_AUTHORIZATION" in mailed
    for part in token.split("."):
        assert part not in mailed


@pytest.fixture
def project_reporter_filter(settings):
    # Django memoises the default filter and does not forget it when the
    # setting changes: clear it on the way in and out.
    get_default_exception_reporter_filter.cache_clear()
    settings.DEFAULT_EXCEPTION_REPORTER_FILTER = "tests.views.ProjectReporterFilter"
    yield
    get_default_exception_reporter_filter.cache_clear()


def test_a_projects_own_reporter_filter_is_kept(
    client, issuer, ada, key_server, settings, project_reporter_filter
):
    # Django 4.2's filter shows the Authorization header in error reports;
    # the class gives such a request a filter that hides it, derived from the
    # project's own filter class, so whatever else that class hides stays hidden.
    settings.ADMINS = [("Admin", "admin@example.com")]
    forget_keys()
    key_server.respond = lambda path: (200, {"Content-Type": "application/json"}, b"<html>")
    token = issuer.mint(sub="b-1")

    response = bearer(client, WHOAMI, token)

    assert response.status_code == 503
    used = get_exception_reporter_filter(response.wsgi_request)
    assert isinstance(used, ProjectReporterFilter)
    assert used.hidden_settings.search("HTTP_AUTHORIZATION")
    (message,) = mail.outbox
    for part in token.split("."):
        assert part not in message.body


def test_bearer_and_signin_agree_on_the_user(client, issuer, key_server):
    signed_in = sign_in(client, issuer.mint(sub="b-3"))
    client.logout()
    assert bearer(client, ME, issuer.mint(sub="b-3")).json() == signed_in.json()["user"]


def test_signin_takes_no_bearer_header(client, issuer, key_server):
    # The body's token is sign-in's only credential: a Bearer header alone
    # does not sign in (nor open a session).
    response = client.post(
        SIGNIN,
        b"",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {issuer.mint(sub='b-4')}",
    )
    assert_refused(response, 400, "missing_token")
    assert LinkedAccount.objects.count() == 0
