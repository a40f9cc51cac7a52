"""Account linking for signed-in users: ``GET``/``POST auth/google/accounts/``
and ``DELETE auth/google/accounts/<id>/``, through the real URLs, with
sessions (Django's CSRF check) and Bearer ID tokens."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.middleware.csrf import get_token
from django.test import Client, RequestFactory

from django_google_idtoken.models import LinkedAccount
from django_google_idtoken.signals import account_linked, account_unlinked

from .helpers import assert_refused, db_state, sign_in

pytestmark = pytest.mark.django_db

ACCOUNTS = "/auth/google/accounts/"
ITEM_KEYS = {
    "id",
    "provider",
    "sub",
    "email",
    "email_verified",
    "hosted_domain",
    "name",
    "picture",
    "created_at",
    "last_signed_in_at",
}


def detail_url(pk: Any) -> str:
    return f"{ACCOUNTS}{pk}/"


def link(client: Any, token: str, body: dict[str, Any] | None = None, **headers: Any) -> Any:
    payload = {"id_token": token, **(body or {})}
    return client.post(ACCOUNTS, payload, content_type="application/json", **headers)


@contextmanager
def receive(signal: Any) -> Iterator[list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        calls.append({"sender": sender, **kwargs})

    signal.connect(receiver)
    try:
        yield calls
    finally:
        signal.disconnect(receiver)


@pytest.fixture
def ada(client, issuer, key_server):
    """Signed in (a session) through Google account "ada-1"; no usable password."""
    response = sign_in(client, issuer.mint(sub="ada-1", email="ada@gmail.com"))
    assert response.status_code == 200
    return get_user_model().objects.get(pk=response.json()["user"]["id"])


@pytest.fixture
def bob(issuer, key_server):
    """Another user, with Google account "bob-1", signed in on a client of his own."""
    other = Client()
    assert sign_in(other, issuer.mint(sub="bob-1", email="bob@gmail.com")).status_code == 200
    return LinkedAccount.objects.get(sub="bob-1").user


# -- listing -----------------------------------------------------------------------


def test_list_shows_only_the_users_own_accounts(client, issuer, ada, bob):
    assert link(client, issuer.mint(sub="ada-2", email="ada@work.example")).status_code == 201

    response = client.get(ACCOUNTS)

    assert response.status_code == 200
    body = response.json()
    assert [item["sub"] for item in body] == ["ada-1", "ada-2"]
    assert all(set(item) == ITEM_KEYS for item in body)
    assert [item["id"] for item in body] == list(
        LinkedAccount.objects.filter(user=ada).order_by("pk").values_list("pk", flat=True)
    )
    assert body[1]["email"] == "ada@work.example"


def test_list_needs_a_signed_in_user(client, key_server):
    response = client.get(ACCOUNTS)
    assert_refused(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


# -- linking -----------------------------------------------------------------------


def test_link_a_second_account(client, issuer, ada):
    token = issuer.mint(sub="ada-2", email="ada@work.example", hd="work.example")
    with receive(account_linked) as calls:
        response = link(client, token)

    assert response.status_code == 201, response.content
    account = LinkedAccount.objects.get(sub="ada-2")
    assert account.user == ada
    assert response.json()["id"] == account.pk
    assert set(response.json()) == ITEM_KEYS
    assert response.json()["hosted_domain"] == "work.example"
    assert len(calls) == 1
    assert calls[0]["sender"] is LinkedAccount
    assert calls[0]["user"] == ada
    assert calls[0]["account"] == account
    assert calls[0]["claims"].sub == "ada-2"
    # Now either account signs in as Ada.
    other = Client()
    assert sign_in(other, issuer.mint(sub="ada-2")).json()["user"]["id"] == ada.pk


@pytest.mark.parametrize("field", ["idToken", "id_token"])
def test_link_takes_form_bodies_like_signin(client, issuer, ada, field):
    body = urlencode({field: issuer.mint(sub="ada-2"), "provider": "google"})
    response = client.post(ACCOUNTS, body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 201, response.content


def test_linking_again_is_an_idempotent_200(client, issuer, ada):
    assert link(client, issuer.mint(sub="ada-2", name="Old")).status_code == 201
    first = LinkedAccount.objects.get(sub="ada-2")

    with receive(account_linked) as calls:
        again = link(client, issuer.mint(sub="ada-2", name="New"))

    assert again.status_code == 200
    assert again.json()["id"] == first.pk
    assert calls == []
    assert LinkedAccount.objects.filter(sub="ada-2").count() == 1
    # The snapshot follows the newer token; linking is no sign-in.
    fresh = LinkedAccount.objects.get(sub="ada-2")
    assert fresh.name == "New"
    assert fresh.last_signed_in_at == first.last_signed_in_at
    # Linking the account you signed in with is fine too.
    assert link(client, issuer.mint(sub="ada-1")).status_code == 200


def test_an_account_linked_to_another_user_is_409(client, issuer, ada, bob):
    before = db_state()
    with receive(account_linked) as calls:
        response = link(client, issuer.mint(sub="bob-1"))
    assert_refused(response, 409, "account_linked_elsewhere")
    assert db_state() == before
    assert calls == []
    assert LinkedAccount.objects.get(sub="bob-1").user == bob


@pytest.mark.parametrize(
    ("make", "status", "code"),
    [
        (lambda issuer: "not-a-jwt", 401, "malformed_token"),
        (lambda issuer: issuer.expired(sub="ada-2"), 401, "token_expired"),
        (lambda issuer: issuer.wrong_audience(sub="ada-2"), 401, "wrong_audience"),
        (lambda issuer: issuer.foreign_key(sub="ada-2"), 401, "invalid_signature"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_a_bad_token_links_nothing(client, issuer, ada, make, status, code):
    before = db_state()
    assert_refused(link(client, make(issuer)), status, code)
    assert db_state() == before
    # The session is untouched: still Ada.
    assert client.get("/auth/google/me/").json()["id"] == ada.pk


def test_hosted_domains_apply_to_links(client, issuer, ada, settings):
    settings.GOOGLE_IDTOKEN = {**settings.GOOGLE_IDTOKEN, "HOSTED_DOMAINS": ["work.example"]}
    before = db_state()
    assert_refused(link(client, issuer.mint(sub="ada-2")), 403, "hosted_domain_not_allowed")
    assert db_state() == before


@pytest.mark.parametrize("body", [{}, {"id_token": ""}, {"id_token": 5}], ids=repr)
def test_missing_token_is_400(client, ada, body):
    before = db_state()
    response = client.post(ACCOUNTS, body, content_type="application/json")
    assert_refused(response, 400, "missing_token")
    assert db_state() == before


@pytest.mark.parametrize("provider", ["now.gg-typo", "", 5, ["google"]], ids=repr)
def test_an_unknown_provider_is_404(client, issuer, ada, key_server, provider):
    before = db_state()
    response = link(client, issuer.mint(sub="ada-2"), {"provider": provider})
    assert_refused(response, 404, "unknown_provider")
    assert db_state() == before
    assert key_server.fetches == 1  # the sign-in's: the token was not verified


def test_replay_protection_applies_to_links(client, issuer, ada, settings):
    settings.GOOGLE_IDTOKEN = {**settings.GOOGLE_IDTOKEN, "REPLAY_PROTECTION": True}
    used = issuer.mint(sub="ada-2")
    assert sign_in(Client(), used).status_code == 200  # Someone signed in with it.
    before = db_state()

    assert_refused(link(client, used), 401, "token_replayed")
    assert db_state() == before

    fresh = issuer.mint(sub="ada-3")
    assert link(client, fresh).status_code == 201
    assert_refused(link(client, fresh), 401, "token_replayed")


def test_a_bearer_client_links_without_csrf(issuer, ada):
    # A Bearer header is something no other site can make a browser send:
    # no CSRF token is needed, and none is asked for.
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        ACCOUNTS,
        {"id_token": issuer.mint(sub="ada-2")},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {issuer.mint(sub='ada-1')}",
    )
    assert response.status_code == 201, response.content
    assert LinkedAccount.objects.get(sub="ada-2").user == ada


# -- CSRF: session requests ----------------------------------------------------------


@pytest.fixture
def csrf_client(ada):
    """Ada's session in a browser-like client: Django's CSRF check enforced,
    and the CSRF cookie set, as after any page of the site. Returns the
    client and the token a page would embed (for the X-CSRFToken header)."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(ada, backend="django_google_idtoken.backends.GoogleIdTokenBackend")
    page = RequestFactory().get("/")
    token = get_token(page)
    client.cookies[django_settings.CSRF_COOKIE_NAME] = page.META["CSRF_COOKIE"]
    return client, token


def test_a_session_link_without_the_csrf_token_is_refused(csrf_client, issuer):
    # Login CSRF's twin: a hostile page posting its author's ID token from
    # the victim's browser would hand the author the victim's account.
    browser, token = csrf_client
    before = db_state()
    response = link(browser, issuer.mint(sub="eve-1"))
    assert_refused(response, 403, "csrf_failed")
    assert db_state() == before

    response = link(browser, issuer.mint(sub="ada-2"), HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201, response.content


def test_a_session_unlink_without_the_csrf_token_is_refused(client, csrf_client, issuer):
    browser, token = csrf_client
    assert link(client, issuer.mint(sub="ada-2")).status_code == 201
    pk = LinkedAccount.objects.get(sub="ada-2").pk
    before = db_state()

    assert_refused(browser.delete(detail_url(pk)), 403, "csrf_failed")
    assert db_state() == before

    response = browser.delete(detail_url(pk), HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 204


def test_reading_the_list_needs_no_csrf_token(csrf_client):
    browser, _ = csrf_client
    assert browser.get(ACCOUNTS).status_code == 200


# -- unlinking ----------------------------------------------------------------------


def test_unlink_an_account(client, issuer, ada):
    assert link(client, issuer.mint(sub="ada-2")).status_code == 201
    account = LinkedAccount.objects.get(sub="ada-2")

    with receive(account_unlinked) as calls:
        response = client.delete(detail_url(account.pk))

    assert response.status_code == 204
    assert response.content == b""
    assert list(LinkedAccount.objects.filter(user=ada).values_list("sub", flat=True)) == ["ada-1"]
    assert len(calls) == 1
    assert calls[0]["user"] == ada
    assert calls[0]["account"].pk == account.pk
    assert calls[0]["account"].sub == "ada-2"
    assert "claims" not in calls[0]
    # The unlinked account no longer signs in as Ada: it is a stranger now.
    stranger = sign_in(Client(), issuer.mint(sub="ada-2", email="someone@gmail.com"))
    assert stranger.json()["user"]["id"] != ada.pk


def test_the_last_account_of_a_user_without_a_password_stays(client, ada):
    account = LinkedAccount.objects.get(user=ada)
    before = db_state()
    with receive(account_unlinked) as calls:
        response = client.delete(detail_url(account.pk))
    assert_refused(response, 409, "last_login_method")
    assert db_state() == before
    assert calls == []


def test_the_last_account_may_go_once_the_user_has_a_password(client, ada):
    ada.set_password("correct horse battery staple")
    ada.save()
    # A new password ends the old sessions (Django's session auth hash).
    client.force_login(ada, backend="django_google_idtoken.backends.GoogleIdTokenBackend")
    account = LinkedAccount.objects.get(user=ada)

    assert client.delete(detail_url(account.pk)).status_code == 204
    assert not LinkedAccount.objects.filter(user=ada).exists()


def test_another_users_account_is_not_found(client, ada, bob):
    theirs = LinkedAccount.objects.get(user=bob)
    before = db_state()
    response = client.delete(detail_url(theirs.pk))
    # 404, not 403: whether the id exists is none of Ada's business.
    assert_refused(response, 404, "not_found")
    assert db_state() == before


@pytest.mark.parametrize("pk", ["999999", "abc", "1.0", "99999999999999999999999999", "-1"])
def test_unknown_ids_are_not_found(client, ada, pk):
    before = db_state()
    assert_refused(client.delete(detail_url(pk)), 404, "not_found")
    assert db_state() == before


def test_unlink_needs_a_signed_in_user(client, ada):
    pk = LinkedAccount.objects.get().pk
    client.logout()
    assert_refused(client.delete(detail_url(pk)), 401, "not_authenticated")
    assert LinkedAccount.objects.filter(pk=pk).exists()


def test_a_bearer_client_unlinks_with_another_accounts_token(issuer, ada):
    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {issuer.mint(sub='ada-1')}"}
    assert link(client, issuer.mint(sub="ada-2"), **auth).status_code == 201
    pk = LinkedAccount.objects.get(sub="ada-2").pk

    assert client.delete(detail_url(pk), **auth).status_code == 204
    ada_1 = LinkedAccount.objects.get(sub="ada-1").pk
    assert_refused(client.delete(detail_url(ada_1), **auth), 409, "last_login_method")


# -- the race on the last two accounts (PostgreSQL) ------------------------------------


@pytest.mark.skipif(
    connection.vendor == "sqlite",
    reason="needs concurrent transactions (PostgreSQL: IDTOKEN_TEST_DB=postgres)",
)
@pytest.mark.django_db(transaction=True)
def test_two_racing_unlinks_of_the_last_two_accounts_cannot_both_win(issuer, key_server):
    """Two requests each unlink one of a password-less user's two accounts,
    at once. Each request is held after its reads, just before its DELETE,
    until the other arrives there too (or a bound passes): without the row
    lock both would see two accounts, both delete, and leave the user locked
    out. With it, the second waits in its SELECT ... FOR UPDATE until the
    first commits, then sees one account left and refuses."""
    first = Client()
    assert sign_in(first, issuer.mint(sub="race-1")).status_code == 200
    assert link(first, issuer.mint(sub="race-2")).status_code == 201
    user = LinkedAccount.objects.get(sub="race-1").user
    pks = list(LinkedAccount.objects.filter(user=user).order_by("pk").values_list("pk", flat=True))
    second = Client()
    second.force_login(user, backend="django_google_idtoken.backends.GoogleIdTokenBackend")

    # Bounds only, never asserted: a lock that keeps the other request out of
    # the rendezvous makes the first wait this long, then go on alone.
    barrier = threading.Barrier(2, timeout=5)
    met: list[bool] = []

    def hold_before_delete(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if sql.lstrip().upper().startswith("DELETE") and LinkedAccount._meta.db_table in sql:
            try:
                barrier.wait()
                met.append(True)
            except threading.BrokenBarrierError:
                met.append(False)
        return execute(sql, params, many, context)

    answers: dict[int, int] = {}

    def unlink(client: Client, pk: int) -> None:
        try:
            with connection.execute_wrapper(hold_before_delete):
                answers[pk] = client.delete(detail_url(pk)).status_code
        finally:
            connection.close()

    threads = [
        threading.Thread(target=unlink, args=(client, pk))
        for client, pk in zip((first, second), pks, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sorted(answers.values()) == [204, 409], answers
    assert LinkedAccount.objects.filter(user=user).count() == 1
    # Only one request ever reached its DELETE: the other was refused first.
    assert met == [False]
