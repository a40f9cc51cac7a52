"""The sign-in and "who am I" endpoints, and the authentication backend, over the
real code path: tokens minted by the fake issuer, keys fetched over HTTP from
127.0.0.1, requests through the real URLs."""

from __future__ import annotations

import gc
import json
import logging
import os
import re
import warnings
from importlib import import_module
from typing import Any, ClassVar

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import authenticate, get_user, get_user_model
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.test import RequestFactory
from django.utils.log import AdminEmailHandler

from django_google_idtoken.backends import GoogleIdTokenBackend, get_refusal, get_result
from django_google_idtoken.errors import REFUSALS
from django_google_idtoken.models import LinkedAccount

from .helpers import REPO_ROOT, post_form

FORM = "application/x-www-form-urlencoded"

pytestmark = pytest.mark.django_db

SIGNIN = "/auth/google/signin/"
ME = "/auth/google/me/"
USER_KEYS = {"id", "username", "email", "first_name", "last_name"}
ACCOUNT_KEYS = {"provider", "sub", "email", "email_verified", "hosted_domain", "name", "picture"}


def post_json(client: Any, payload: Any) -> Any:
    return client.post(SIGNIN, payload, content_type="application/json")


def db_state() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every user and linked account row, to prove a refusal wrote nothing."""
    user_model = get_user_model()
    return (
        list(user_model.objects.order_by("pk").values()),
        list(LinkedAccount.objects.order_by("pk").values()),
    )


def assert_refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"code", "detail"}
    assert body["code"] == code
    assert isinstance(body["detail"], str)
    assert body["detail"]


def assert_signed_out(client: Any) -> None:
    assert client.get(ME).status_code == 401


# -- success -----------------------------------------------------------------


def test_json_signin_answers_user_created_and_account(client, issuer, key_server):
    token = issuer.mint(
        sub="1001",
        email="ada@gmail.com",
        hd="example.com",
        given_name="Ada",
        family_name="Lovelace",
        name="Ada Lovelace",
        picture="https://lh3.googleusercontent.com/a/ada",
    )
    response = post_json(client, {"id_token": token})

    assert response.status_code == 200, response.content
    user = get_user_model().objects.get()
    assert response.json() == {
        "user": {
            "id": user.pk,
            "username": user.username,
            "email": "ada@gmail.com",
            "first_name": "Ada",
            "last_name": "Lovelace",
        },
        "created": True,
        "account": {
            "provider": "google",
            "sub": "1001",
            "email": "ada@gmail.com",
            "email_verified": True,
            "hosted_domain": "example.com",
            "name": "Ada Lovelace",
            "picture": "https://lh3.googleusercontent.com/a/ada",
        },
    }


@pytest.mark.parametrize(
    "picture",
    [
        "javascript:alert(document.cookie)",
        "JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=",
        "http://lh3.googleusercontent.com/a/ada",  # not https
        "https:javascript:alert(1)",  # no host
        "//evil.example/a.png",  # scheme-relative
        "/a.png",
        'https://x.example/a.png" onerror="alert(1)',
        "https://x.example/a.png\n",
        " https://x.example/a.png",
        "https://[::1/a.png",
        "https://x.example:99999/a.png",
        ["https://x.example/a.png"],
    ],
)
def test_a_picture_that_is_not_an_https_url_is_dropped(client, issuer, key_server, picture):
    # A project's template may well put the picture in an href or a src:
    # javascript: or data: there runs script. Stored, answered by signin/
    # and by accounts/, only an https URL is kept.
    response = post_json(client, {"id_token": issuer.mint(sub="1010", picture=picture)})

    assert response.status_code == 200, response.content
    assert response.json()["account"]["picture"] == ""
    assert LinkedAccount.objects.get().picture == ""
    [listed] = client.get("/auth/google/accounts/").json()
    assert listed["picture"] == ""


def test_a_picture_changed_to_javascript_replaces_the_stored_one(client, issuer, key_server):
    good = "https://lh3.googleusercontent.com/a/ada=s96-c"
    assert (
        post_json(client, {"id_token": issuer.mint(sub="1011", picture=good)}).json()["account"][
            "picture"
        ]
        == good
    )
    response = post_json(client, {"id_token": issuer.mint(sub="1011", picture="javascript:x")})
    assert response.json()["account"]["picture"] == ""
    assert LinkedAccount.objects.get().picture == ""


@pytest.mark.parametrize(
    "picture",
    ["https://lh3.googleusercontent.com/a/ACg8ocK-x_y=s96-c", "HTTPS://x.example/a%20b.png?s=1"],
)
def test_an_https_picture_is_kept(client, issuer, key_server, picture):
    response = post_json(client, {"id_token": issuer.mint(sub="1012", picture=picture)})
    assert response.json()["account"]["picture"] == picture
    assert LinkedAccount.objects.get().picture == picture
    assert client.get("/auth/google/accounts/").json()[0]["picture"] == picture


def test_second_signin_is_not_created(client, issuer, key_server):
    first = post_json(client, {"id_token": issuer.mint(sub="1002")})
    second = post_json(client, {"id_token": issuer.mint(sub="1002")})

    assert first.json()["created"] is True
    assert second.status_code == 200
    assert second.json()["created"] is False
    assert second.json()["user"] == first.json()["user"]
    assert get_user_model().objects.count() == 1
    assert LinkedAccount.objects.count() == 1
    assert key_server.fetches == 1  # the second sign-in used the keys already fetched


# Google's and now.gg's client examples post the form field idToken.
@pytest.mark.parametrize("field", ["idToken", "id_token"])
def test_form_signin(client, issuer, key_server, field):
    token = issuer.mint(sub="1003", email="form@gmail.com")
    response = post_form(client, SIGNIN, {field: token})

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"user", "created", "account"}
    assert set(body["user"]) == USER_KEYS
    assert set(body["account"]) == ACCOUNT_KEYS
    assert body["created"] is True
    assert body["account"]["sub"] == "1003"
    assert LinkedAccount.objects.get().sub == "1003"


def test_signin_opens_a_session(client, issuer, key_server):
    assert_signed_out(client)
    response = post_json(client, {"id_token": issuer.mint(sub="1004", email="me@gmail.com")})
    assert response.status_code == 200
    assert django_settings.SESSION_COOKIE_NAME in response.cookies

    me = client.get(ME)
    assert me.status_code == 200
    assert me.json() == response.json()["user"]


def test_signin_rotates_a_planted_session_key(client, issuer, key_server):
    # Session fixation: a session id planted before sign-in must be useless after it.
    session = client.session
    session["planted"] = True
    session.save()
    planted_key = session.session_key

    response = post_json(client, {"id_token": issuer.mint(sub="1005")})

    assert response.status_code == 200
    new_key = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    assert new_key != planted_key
    store = import_module(django_settings.SESSION_ENGINE).SessionStore()
    assert not store.exists(planted_key)
    assert client.get(ME).status_code == 200


def test_signin_as_another_user_switches_the_session(client, issuer, key_server):
    a = post_json(client, {"id_token": issuer.mint(sub="2001", email="a@gmail.com")})
    assert client.get(ME).json()["email"] == "a@gmail.com"
    key_a = client.cookies[django_settings.SESSION_COOKIE_NAME].value

    b = post_json(client, {"id_token": issuer.mint(sub="2002", email="b@gmail.com")})

    assert b.status_code == 200
    assert b.json()["user"]["id"] != a.json()["user"]["id"]
    assert client.get(ME).json() == b.json()["user"]
    assert client.cookies[django_settings.SESSION_COOKIE_NAME].value != key_a


def test_me_without_a_session(client):
    response = client.get(ME)
    assert_refused(response, 401, "not_authenticated")


def test_user_disabled_after_signin_loses_the_session(client, issuer, key_server):
    post_json(client, {"id_token": issuer.mint(sub="2003")})
    get_user_model().objects.update(is_active=False)

    response = client.get(ME)

    assert_refused(response, 401, "not_authenticated")
    # Not only for DRF views (SessionAuthentication checks is_active itself):
    # the backend's get_user turns the session into an anonymous one for
    # every Django view.
    assert not get_user(response.wsgi_request).is_authenticated


# -- refusals: the token's transport ----------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"id_token": ""},
        {"id_token": "   \t\n"},
        {"id_token": 12345},
        {"id_token": {"token": "x"}},
        {"id_token": ["x.y.z"]},
        {"id_token": None},
        {"idToken": ""},
        {"token": "x.y.z"},
        ["x.y.z"],
        "x.y.z",
        42,
        None,
    ],
    ids=repr,
)
def test_missing_token_json(client, key_server, payload):
    before = db_state()
    # Sent as JSON text, so that null, strings and numbers reach the parser as such.
    response = client.post(SIGNIN, json.dumps(payload), content_type="application/json")
    assert_refused(response, 400, "missing_token")
    assert db_state() == before
    assert key_server.fetches == 0


def test_missing_token_no_body(client, key_server):
    before = db_state()
    assert_refused(client.post(SIGNIN, b"", content_type=FORM), 400, "missing_token")
    # An empty body has nothing to parse, whatever its declared type.
    empty_multipart = client.post(SIGNIN, b"", content_type="multipart/form-data; boundary=b")
    assert_refused(empty_multipart, 400, "missing_token")
    assert_refused(client.post(SIGNIN, b"", content_type=""), 400, "missing_token")
    assert_refused(client.post(SIGNIN, b"", content_type="application/json"), 400, "missing_token")
    assert db_state() == before


@pytest.mark.parametrize("body", ["{not json", '{"id_token": ', "\xff", "[1, 2"])
def test_missing_token_unparsable_json(client, key_server, body):
    before = db_state()
    response = client.post(SIGNIN, body, content_type="application/json")
    assert_refused(response, 400, "missing_token")
    assert db_state() == before


class RecordingUploadHandler(FileUploadHandler):
    """First of the upload handlers in the multipart tests: Django's
    multipart parser calls it before reading any part, so any call means the
    body was parsed (and its file parts spooled, by the handlers after it)."""

    calls: ClassVar[list[str]] = []

    def handle_raw_input(self, *args: Any, **kwargs: Any) -> None:
        RecordingUploadHandler.calls.append("handle_raw_input")

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        RecordingUploadHandler.calls.append("receive_data_chunk")
        return raw_data

    def file_complete(self, file_size: int) -> None:
        RecordingUploadHandler.calls.append("file_complete")


@pytest.fixture
def upload_handlers(settings, tmp_path) -> list[str]:
    RecordingUploadHandler.calls = []
    settings.FILE_UPLOAD_HANDLERS = [
        f"{__name__}.RecordingUploadHandler",
        "django.core.files.uploadhandler.TemporaryFileUploadHandler",
    ]
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    return RecordingUploadHandler.calls


def _large_upload(token: str) -> dict[str, Any]:
    # Over FILE_UPLOAD_MAX_MEMORY_SIZE (2.5 MB): parsed, it goes to a temp file.
    return {"idToken": token, "file": SimpleUploadedFile("big.bin", b"\0" * (5 * 2**20))}


@pytest.mark.parametrize("url", [SIGNIN, "/auth/google/signin/nowgg/"])
@pytest.mark.parametrize("browser", [False, True], ids=["native", "browser"])
def test_multipart_is_refused_before_it_is_read(
    client, issuer, key_server, settings, upload_handlers, url, browser
):
    # A file part is spooled to disk as soon as anything reads request.POST
    # (the login CSRF check does, for a browser's request with Django's CSRF
    # cookie), and DATA_UPLOAD_MAX_MEMORY_SIZE does not count files. Sign-in
    # takes JSON and urlencoded forms only: multipart is 415, unread.
    settings.GOOGLE_IDTOKEN = {
        **settings.GOOGLE_IDTOKEN,
        "PROVIDERS": {"nowgg": {"CLIENT_IDS": ["n"], "VERIFY_URL": "http://127.0.0.1:9/v"}},
    }
    headers: dict[str, Any] = {}
    if browser:
        client.cookies[django_settings.CSRF_COOKIE_NAME] = "x" * 32
        headers = {"HTTP_ORIGIN": "http://testserver", "HTTP_SEC_FETCH_SITE": "same-origin"}
    before = db_state()

    response = client.post(url, _large_upload(issuer.mint()), **headers)

    assert_refused(response, 415, "unsupported_media_type")
    assert upload_handlers == []
    assert os.listdir(settings.FILE_UPLOAD_TEMP_DIR) == []
    assert db_state() == before
    assert key_server.fetches == 0


def test_the_upload_handlers_see_a_multipart_body_that_is_read(
    client, issuer, key_server, upload_handlers
):
    # The control: the same body posted to a view that reads request.POST
    # (the admin's login page) goes through the handlers.
    client.post("/admin/login/", _large_upload(issuer.mint()))
    assert "handle_raw_input" in upload_handlers
    assert "file_complete" in upload_handlers


def test_text_plain_body_is_a_clean_415(client, issuer, key_server):
    # A raw token as text/plain is not one of the accepted encodings. DRF's
    # 415 comes back in the refusal shape, not as an HTML error page.
    before = db_state()
    response = client.post(SIGNIN, issuer.mint(sub="3001"), content_type="text/plain")
    assert_refused(response, 415, "unsupported_media_type")
    assert db_state() == before
    assert_signed_out(client)


@pytest.mark.parametrize("query", [{}, {"id_token": "x.y.z"}, {"idToken": "x.y.z"}])
def test_get_is_405(client, issuer, key_server, query):
    # Tokens never travel in URLs (access logs, history, Referer).
    if query:
        query = {name: issuer.mint(sub="3002") for name in query}
    before = db_state()
    response = client.get(SIGNIN, query)
    assert_refused(response, 405, "method_not_allowed")
    assert "POST" in response["Allow"]
    assert "GET" not in response["Allow"]
    assert db_state() == before
    assert key_server.fetches == 0
    assert_signed_out(client)


# -- refusals: the token itself -----------------------------------------------


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda issuer: "not-a-jwt", "malformed_token"),
        (lambda issuer: "a.b.c", "malformed_token"),
        (lambda issuer: issuer.expired(sub="4001"), "token_expired"),
        (lambda issuer: issuer.wrong_audience(sub="4001"), "wrong_audience"),
        (lambda issuer: issuer.wrong_issuer(sub="4001"), "wrong_issuer"),
        (lambda issuer: issuer.foreign_key(sub="4001"), "invalid_signature"),
        (lambda issuer: issuer.unknown_key(sub="4001"), "unknown_key"),
        (lambda issuer: issuer.mint(sub="4001", exp="9999999999"), "invalid_claims"),
        (lambda issuer: issuer.mint(sub="4001", iat=issuer.now() + 3600), "token_not_yet_valid"),
        (lambda issuer: issuer.mint(sub="4001", header={"alg": "HS256"}), "unsupported_algorithm"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_bad_tokens_are_401(client, issuer, key_server, make, code):
    # A user already linked to this sub must not be signed in by a bad token,
    # nor have their snapshot touched.
    post_json(client, {"id_token": issuer.mint(sub="4001")})
    client.logout()
    before = db_state()

    response = post_json(client, {"id_token": make(issuer)})

    assert_refused(response, 401, code)
    assert db_state() == before
    assert_signed_out(client)


def test_hosted_domain_not_allowed(client, issuer, key_server, settings):
    settings.GOOGLE_IDTOKEN = {**settings.GOOGLE_IDTOKEN, "HOSTED_DOMAINS": ["example.com"]}
    before = db_state()

    for token in (
        issuer.mint(sub="5001", email="eve@other.com", hd="other.com"),
        # No hd at all: a consumer account whose email merely ends in the domain.
        issuer.mint(sub="5002", email="eve@example.com"),
    ):
        assert_refused(post_json(client, {"id_token": token}), 403, "hosted_domain_not_allowed")
    assert db_state() == before
    assert_signed_out(client)

    allowed = issuer.mint(sub="5003", email="ada@example.com", hd="example.com")
    assert post_json(client, {"id_token": allowed}).status_code == 200


def _forget_request(caplog: Any) -> None:
    # django.request's log records carry the request (extra={"request": ...}),
    # and the request carries the refusal with its exception chain; drop them
    # so that what the request held can be garbage-collected inside the test.
    for record in caplog.records:
        record.__dict__.pop("request", None)


def test_keys_unavailable_is_503_with_retry_after(client, issuer, key_server, caplog):
    key_server.respond = lambda path: (500, {}, b"")
    before = db_state()

    response = post_json(client, {"id_token": issuer.mint(sub="6001")})

    assert_refused(response, 503, "keys_unavailable")
    assert int(response["Retry-After"]) > 0
    assert key_server.fetches >= 1
    assert db_state() == before
    assert_signed_out(client)

    # Should a failed fetch leave its connection unclosed (what
    # test_failed_key_fetch_closes_its_connection asserts against), collect it
    # here: its ResourceWarning must not fail whichever later test runs the GC.
    _forget_request(caplog)
    del response
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def test_failed_key_fetch_closes_its_connection(rf: RequestFactory, issuer, key_server):
    # The connection to the key endpoint must be closed when it answers an
    # error status, not left for the garbage collector: under an outage every
    # sign-in would otherwise hold a socket for as long as its refusal lives.
    key_server.respond = lambda path: (500, {}, b"")
    request = rf.post(SIGNIN)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        assert authenticate(request, id_token=issuer.mint(sub="6002")) is None
        assert get_refusal(request).code == "keys_unavailable"
        del request
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == []


def test_inactive_user_is_refused(client, issuer, key_server):
    post_json(client, {"id_token": issuer.mint(sub="7001", email="old@gmail.com")})
    client.logout()
    get_user_model().objects.update(is_active=False)
    before = db_state()

    response = post_json(client, {"id_token": issuer.mint(sub="7001", email="new@gmail.com")})

    assert_refused(response, 403, "user_inactive")
    # Nothing written: the snapshot (email, last_signed_in_at...) is unchanged.
    assert db_state() == before
    assert LinkedAccount.objects.get().email == "old@gmail.com"
    assert_signed_out(client)


# -- the backend, directly ------------------------------------------------------


def test_authenticate_returns_the_user(rf: RequestFactory, issuer, key_server):
    request = rf.post(SIGNIN)
    user = authenticate(request, id_token=issuer.mint(sub="8001", email="direct@gmail.com"))

    assert user is not None
    assert user.email == "direct@gmail.com"
    assert user.linked_accounts.get().sub == "8001"
    assert get_refusal(request) is None
    result = get_result(request)
    assert result is not None
    assert result.created is True
    assert result.user == user


def test_authenticate_returns_none_and_records_why(rf: RequestFactory, issuer, key_server):
    request = rf.post(SIGNIN)
    before = db_state()

    assert authenticate(request, id_token=issuer.expired(sub="8002")) is None

    refusal = get_refusal(request)
    assert refusal is not None
    assert refusal.code == "token_expired"
    assert refusal.status == 401
    assert get_result(request) is None
    assert db_state() == before


def test_refusal_is_reset_by_a_later_success(rf: RequestFactory, issuer, key_server):
    request = rf.post(SIGNIN)
    assert authenticate(request, id_token="garbage") is None
    assert get_refusal(request).code == "malformed_token"
    assert authenticate(request, id_token=issuer.mint(sub="8003")) is not None
    assert get_refusal(request) is None


def test_backend_ignores_password_credentials(rf: RequestFactory, key_server):
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "s3cret-pw")
    request = rf.post("/admin/login/")

    assert (
        GoogleIdTokenBackend().authenticate(request, username="root", password="s3cret-pw") is None
    )
    assert get_refusal(request) is None

    # ModelBackend, listed after ours, still logs the admin in with a password.
    user = authenticate(request, username="root", password="s3cret-pw")
    assert user == admin
    assert user.backend == "django.contrib.auth.backends.ModelBackend"
    assert get_refusal(request) is None
    assert key_server.fetches == 0


def test_admin_password_login_still_works(client, key_server):
    get_user_model().objects.create_superuser("root", "root@example.com", "s3cret-pw")
    response = client.post(
        "/admin/login/", {"username": "root", "password": "s3cret-pw", "next": "/admin/"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_google_users_have_no_password_login(client, issuer, key_server):
    post_json(client, {"id_token": issuer.mint(sub="8004", email="nopw@gmail.com")})
    user = get_user_model().objects.get()
    assert not user.has_usable_password()
    assert authenticate(None, username=user.username, password="") is None


# -- tokens stay out of logs and responses --------------------------------------


def _segments(token: str) -> list[str]:
    return [token, *token.split(".")]


def _log_texts(records: list[logging.LogRecord]) -> list[str]:
    texts = []
    for record in records:
        texts.append(record.getMessage())
        texts.append(repr(record.msg))
        texts.append(repr(record.args))
        if record.exc_info:
            texts.append(logging.Formatter().formatException(record.exc_info))
    return texts


@pytest.mark.parametrize("form", [False, True], ids=["json", "form"])
def test_no_token_in_logs_or_responses(client, issuer, key_server, caplog, form):
    # Every logger at DEBUG, including those configured at a higher level.
    caplog.set_level(logging.DEBUG)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger):
            caplog.set_level(logging.DEBUG, logger=name)
    refused = issuer.foreign_key(sub="9001")
    accepted = issuer.mint(sub="9002")
    responses = []
    for token in (refused, accepted):
        if form:
            responses.append(post_form(client, SIGNIN, {"idToken": token}))
        else:
            responses.append(post_json(client, {"id_token": token}))
    assert [r.status_code for r in responses] == [401, 200]

    texts = _log_texts(caplog.records)
    # Not vacuous: the refusal and the sign-in were both logged.
    assert any("invalid_signature" in text for text in texts)
    assert any("signed in user" in text for text in texts)
    for token, response in zip((refused, accepted), responses, strict=True):
        for part in _segments(token):
            assert all(part not in text for text in texts)
            assert part not in response.content.decode()


def test_no_token_in_the_error_report_mailed_to_admins(client, issuer, key_server, settings):
    # With DEBUG off, Django mails every 5xx response to ADMINS with the
    # request's POST data (django.request -> AdminEmailHandler). A 503 on a
    # form-posted idToken must not mail the token around.
    settings.ADMINS = [("Admin", "admin@example.com")]
    # A key document that is not JSON gives the 503 (an error status would do
    # too; this keeps the connection handling of error answers out of this test).
    key_server.respond = lambda path: (200, {"Content-Type": "application/json"}, b"<html>")
    token = issuer.mint(sub="9003")

    response = post_form(client, SIGNIN, {"idToken": token})

    assert_refused(response, 503, "keys_unavailable")
    assert any(
        isinstance(handler, AdminEmailHandler) for handler in logging.getLogger("django").handlers
    )
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    mailed = message.body + "".join(str(content) for content, _ in message.alternatives)
    for part in _segments(token):
        assert part not in mailed


def test_no_token_in_refusal_details(client, issuer, key_server):
    for token in (issuer.expired(), issuer.wrong_audience(), issuer.foreign_key()):
        body = json.dumps(post_json(client, {"id_token": token}).json())
        for part in _segments(token):
            assert part not in body


def test_the_readme_refusal_table_agrees_with_the_code():
    # Each code of errors.REFUSALS is a row of the README's table, with the
    # status the code answers.
    text = (REPO_ROOT / "README.rst").read_text(encoding="utf-8")
    table = text.split("Refusal codes\n-------------\n", 1)[1].split("\nClients\n", 1)[0]
    rows = {code: int(status) for status, code in re.findall(r"^(\d{3})\s+``(\w+)``", table, re.M)}
    assert set(REFUSALS) <= set(rows)
    assert {code: REFUSALS[code][0] for code in REFUSALS} == {code: rows[code] for code in REFUSALS}
