"""The account policy: users are found by (provider, sub), created or linked by
email only under the rules of the spec, refused when disabled; signals; races.

Mostly through the sign-in endpoint, so that the policy is tested as clients
meet it; the concurrency tests call ``accounts.sign_in`` directly."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.dispatch import Signal
from django.test.utils import CaptureQueriesContext

from django_google_idtoken import accounts, providers
from django_google_idtoken.models import LinkedAccount, ProvisionedUser
from django_google_idtoken.signals import account_created, account_linked

from .helpers import SIGNIN, assert_refused, db_state, sign_in

pytestmark = pytest.mark.django_db

ME = "/auth/google/me/"
LONG_AGO = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)


def set_policy(settings: Any, **values: Any) -> None:
    # GOOGLE_IDTOKEN is read live; keep CERTS_URL, which key_server put there.
    settings.GOOGLE_IDTOKEN = {**settings.GOOGLE_IDTOKEN, **values}


def local_user(username: str, email: str, **fields: Any) -> Any:
    return get_user_model().objects.create_user(username, email, "local-password", **fields)


@contextmanager
def received(signal: Signal) -> Iterator[list[dict[str, Any]]]:
    """The keyword arguments of every sending of ``signal`` inside the block."""
    calls: list[dict[str, Any]] = []

    def receiver(**kwargs: Any) -> None:
        calls.append(kwargs)

    signal.connect(receiver, weak=False)
    try:
        yield calls
    finally:
        signal.disconnect(receiver)


@contextmanager
def connected(signal: Signal, receiver: Callable[..., Any]) -> Iterator[None]:
    signal.connect(receiver, weak=False)
    try:
        yield
    finally:
        signal.disconnect(receiver)


class Boom(Exception):
    pass


def explode(**kwargs: Any) -> None:
    raise Boom


# -- returning users ------------------------------------------------------------


def test_returning_user_is_found_by_sub_after_an_email_change(client, issuer, key_server):
    first = sign_in(client, issuer.mint(sub="100", email="ada@gmail.com", name="Ada"))
    assert first.json()["created"] is True
    LinkedAccount.objects.update(last_signed_in_at=LONG_AGO)

    second = sign_in(
        client,
        issuer.mint(
            sub="100",
            email="ada.king@example.com",
            email_verified=False,
            hd="example.com",
            name="Ada King",
            picture="https://lh3.googleusercontent.com/a/new",
        ),
    )

    assert second.status_code == 200, second.content
    assert second.json()["created"] is False
    assert second.json()["user"]["id"] == first.json()["user"]["id"]
    assert get_user_model().objects.count() == 1
    account = LinkedAccount.objects.get()
    assert account.email == "ada.king@example.com"
    assert account.email_verified is False
    assert account.hosted_domain == "example.com"
    assert account.name == "Ada King"
    assert account.picture == "https://lh3.googleusercontent.com/a/new"
    assert account.last_signed_in_at > LONG_AGO
    assert second.json()["account"]["email"] == "ada.king@example.com"
    # The code updates only the LinkedAccount snapshot: the user's own email
    # field is the project's to manage and keeps the address it was created with.
    assert get_user_model().objects.get().email == "ada@gmail.com"
    assert second.json()["user"]["email"] == "ada@gmail.com"


def test_returning_user_does_not_get_the_email_policy(client, issuer, key_server, settings):
    # Found by sub: neither CREATE_USERS nor another local user with the
    # token's new email stands in the way of an already linked account.
    sign_in(client, issuer.mint(sub="101", email="grace@gmail.com"))
    local_user("other", "taken@example.com")
    set_policy(settings, CREATE_USERS=False)

    response = sign_in(client, issuer.mint(sub="101", email="taken@example.com"))

    assert response.status_code == 200, response.content
    assert response.json()["user"]["email"] == "grace@gmail.com"


def test_returning_inactive_user_is_refused(client, issuer, key_server):
    sign_in(client, issuer.mint(sub="102", email="gone@gmail.com"))
    client.logout()
    get_user_model().objects.update(is_active=False)
    LinkedAccount.objects.update(last_signed_in_at=LONG_AGO)
    before = db_state()

    response = sign_in(client, issuer.mint(sub="102", email="changed@gmail.com"))

    assert_refused(response, 403, "user_inactive")
    assert db_state() == before
    assert client.get(ME).status_code == 401


# -- new users ----------------------------------------------------------------


def test_new_user_fields(client, issuer, key_server):
    token = issuer.mint(
        sub="200", email="grace.hopper@gmail.com", given_name="Grace", family_name="Hopper"
    )
    response = sign_in(client, token)

    assert response.status_code == 200, response.content
    user = get_user_model().objects.get()
    assert user.email == "grace.hopper@gmail.com"
    assert user.first_name == "Grace"
    assert user.last_name == "Hopper"
    assert user.username == "grace.hopper"
    assert not user.has_usable_password()
    assert user.is_active
    assert not user.is_staff
    assert not user.is_superuser
    account = user.linked_accounts.get()
    assert (account.provider, account.sub) == ("google", "200")


def test_new_users_with_the_same_local_part_get_unique_usernames(client, issuer, key_server):
    sign_in(client, issuer.mint(sub="201", email="sam@gmail.com"))
    sign_in(client, issuer.mint(sub="202", email="sam@example.org"))
    sign_in(client, issuer.mint(sub="203", email="SAM@example.net"))

    usernames = list(get_user_model().objects.order_by("pk").values_list("username", flat=True))
    assert usernames[0] == "sam"
    assert len(set(usernames)) == 3
    assert usernames[1].startswith("sam-")
    assert LinkedAccount.objects.count() == 3


def test_username_drops_characters_usernames_cannot_hold(client, issuer, key_server):
    sign_in(client, issuer.mint(sub="204", email="o'brien+news@gmail.com"))
    user = get_user_model().objects.get()
    assert user.username == "obrien+news"
    user.full_clean()  # the generated username passes the model's validators


def test_new_user_without_email(client, issuer, key_server):
    # auth.User does not need an email: a token without one still signs up.
    response = sign_in(client, issuer.mint(sub="205", drop=["email", "email_verified"]))
    assert response.status_code == 200, response.content
    user = get_user_model().objects.get()
    assert user.email == ""
    assert user.username
    assert response.json()["account"]["email"] == ""


def test_signup_disabled(client, issuer, key_server, settings):
    set_policy(settings, CREATE_USERS=False)
    before = db_state()

    response = sign_in(client, issuer.mint(sub="206", email="new@gmail.com"))

    assert_refused(response, 403, "signup_disabled")
    assert db_state() == before
    assert client.get(ME).status_code == 401


# -- a local user with the same email -------------------------------------------


def test_local_email_counts_only_once_the_project_says_so(client, issuer, key_server, settings):
    # Without LINK_BY_EMAIL or LOCAL_EMAIL_VERIFIED nothing says the local
    # user's address was ever verified: it neither links nor blocks.
    bob = local_user("bob", "Bob@Gmail.com")
    response = sign_in(client, issuer.mint(sub="300", email="bob@gmail.com"))
    assert response.status_code == 200, response.content
    assert response.json()["created"] is True
    assert response.json()["user"]["id"] != bob.pk


def test_email_in_use_without_link_by_email(client, issuer, key_server, settings):
    set_policy(settings, LOCAL_EMAIL_VERIFIED="tests.email_policy.always")
    local_user("bob", "Bob@Gmail.com")  # the match is case-insensitive (ASCII)
    before = db_state()

    response = sign_in(client, issuer.mint(sub="300", email="bob@gmail.com"))

    assert_refused(response, 403, "email_in_use")
    assert db_state() == before
    assert client.get(ME).status_code == 401


@pytest.mark.parametrize(
    ("local_email", "claims"),
    [
        ("carol@gmail.com", {"email": "carol@gmail.com"}),
        ("Carol@GMail.com", {"email": "carol@gmail.com"}),
        ("carol@googlemail.com", {"email": "carol@googlemail.com"}),
        # A Workspace account: Google is authoritative for its own hd.
        ("carol@company.com", {"email": "carol@company.com", "hd": "company.com"}),
        ("carol@company.com", {"email": "carol@Company.com", "hd": "Company.com"}),
    ],
)
def test_link_by_email(client, issuer, key_server, settings, local_email, claims):
    set_policy(settings, LINK_BY_EMAIL=True)
    carol = local_user("carol", local_email)

    with received(account_linked) as linked, received(account_created) as created:
        response = sign_in(client, issuer.mint(sub="301", email_verified=True, **claims))

    assert response.status_code == 200, response.content
    assert response.json()["created"] is False
    assert response.json()["user"]["id"] == carol.pk
    assert get_user_model().objects.count() == 1
    account = LinkedAccount.objects.get()
    assert account.user == carol
    assert account.sub == "301"
    assert created == []
    assert len(linked) == 1
    assert linked[0]["sender"] is LinkedAccount
    assert linked[0]["user"] == carol
    assert linked[0]["account"] == account
    assert linked[0]["claims"].sub == "301"
    assert linked[0]["request"].path == SIGNIN
    # The local password still works: linking does not touch the user.
    carol.refresh_from_db()
    assert carol.check_password("local-password")
    assert client.get(ME).json()["id"] == carol.pk

    # Next time the account is found by sub; no second link.
    client.logout()
    with received(account_linked) as again:
        assert sign_in(client, issuer.mint(sub="301", **claims)).json()["created"] is False
    assert again == []


@pytest.mark.parametrize(
    ("local_email", "claims"),
    [
        # Not verified: anyone can put any address on a Google account.
        ("dave@gmail.com", {"email": "dave@gmail.com", "email_verified": False}),
        ("dave@gmail.com", {"email": "dave@gmail.com", "email_verified": "true"}),
        # The string "false" is truthy in Python.
        ("dave@gmail.com", {"email": "dave@gmail.com", "email_verified": "false"}),
        # Google saw the address verified once, but does not run the domain.
        ("dave@company.com", {"email": "dave@company.com", "email_verified": True}),
        (
            "dave@company.com",
            {"email": "dave@company.com", "email_verified": True, "hd": "other.com"},
        ),
        # A Workspace domain vouches for itself only, not for its subdomains' lookalikes.
        (
            "dave@evil-company.com",
            {"email": "dave@evil-company.com", "email_verified": True, "hd": "company.com"},
        ),
    ],
)
def test_link_by_email_needs_google_authority(
    client, issuer, key_server, settings, local_email, claims
):
    set_policy(settings, LINK_BY_EMAIL=True)
    dave = local_user("dave", local_email)
    before_users = db_state()[0]

    with received(account_linked) as linked:
        response = sign_in(client, issuer.mint(sub="302", **claims))

    # Neither the local user's account (no link) nor a lockout (no
    # email_in_use): a user of its own, which does not get the address.
    assert response.status_code == 200, response.content
    assert response.json()["created"] is True
    assert linked == []
    new_user = get_user_model().objects.get(pk=response.json()["user"]["id"])
    assert new_user.pk != dave.pk
    assert new_user.email == ""
    assert LinkedAccount.objects.get().email == claims["email"]  # kept in the snapshot
    assert db_state()[0][: len(before_users)] == before_users


def test_link_by_email_with_two_local_users_of_that_email(client, issuer, key_server, settings):
    # Which one would it be? Refuse rather than guess.
    set_policy(settings, LINK_BY_EMAIL=True)
    local_user("erin1", "erin@gmail.com")
    local_user("erin2", "ERIN@gmail.com")
    before = db_state()

    response = sign_in(client, issuer.mint(sub="303", email="erin@gmail.com"))

    assert_refused(response, 403, "email_in_use")
    assert db_state() == before


def test_link_by_email_to_an_inactive_user(client, issuer, key_server, settings):
    set_policy(settings, LINK_BY_EMAIL=True)
    local_user("frank", "frank@gmail.com", is_active=False)
    before = db_state()

    with received(account_linked) as linked:
        response = sign_in(client, issuer.mint(sub="304", email="frank@gmail.com"))

    assert_refused(response, 403, "user_inactive")
    assert db_state() == before
    assert linked == []


def test_link_by_email_even_with_signup_disabled(client, issuer, key_server, settings):
    # Linking creates no user, so CREATE_USERS=False does not stop it.
    set_policy(settings, LINK_BY_EMAIL=True, CREATE_USERS=False)
    gina = local_user("gina", "gina@gmail.com")
    response = sign_in(client, issuer.mint(sub="305", email="gina@gmail.com"))
    assert response.status_code == 200, response.content
    assert LinkedAccount.objects.get().user == gina


def test_email_in_use_beats_signup_disabled(client, issuer, key_server, settings):
    set_policy(settings, CREATE_USERS=False, LOCAL_EMAIL_VERIFIED="tests.email_policy.always")
    local_user("hank", "hank@gmail.com")
    before = db_state()
    assert_refused(
        sign_in(client, issuer.mint(sub="306", email="hank@gmail.com")), 403, "email_in_use"
    )
    assert db_state() == before


# -- signals ------------------------------------------------------------------


def test_account_created_is_sent_once(client, issuer, key_server):
    with received(account_created) as created, received(account_linked) as linked:
        sign_in(client, issuer.mint(sub="400", email="ivy@gmail.com"))
        sign_in(client, issuer.mint(sub="400", email="ivy@gmail.com"))

    assert linked == []
    assert len(created) == 1
    call = created[0]
    user = get_user_model().objects.get()
    assert call["sender"] is LinkedAccount
    assert call["user"] == user
    assert call["account"] == LinkedAccount.objects.get()
    assert call["claims"].sub == "400"
    assert call["claims"].email == "ivy@gmail.com"
    assert call["request"].path == SIGNIN
    assert call["request"].method == "POST"


def test_account_created_receiver_that_raises_rolls_back(client, issuer, key_server):
    # The signal is sent inside the transaction that writes the account: a
    # project's failing hook must not leave half a sign-up behind. Nothing
    # turns the error into a refusal, so it propagates (a 500 in production).
    before = db_state()
    with connected(account_created, explode), pytest.raises(Boom):
        sign_in(client, issuer.mint(sub="401", email="jay@gmail.com"))

    assert db_state() == before
    assert client.get(ME).status_code == 401
    # And the next attempt, with the hook fixed, signs up normally.
    response = sign_in(client, issuer.mint(sub="401", email="jay@gmail.com"))
    assert response.json()["created"] is True


def test_account_linked_receiver_that_raises_rolls_back(client, issuer, key_server, settings):
    set_policy(settings, LINK_BY_EMAIL=True)
    local_user("kim", "kim@gmail.com")
    before = db_state()

    with connected(account_linked, explode), pytest.raises(Boom):
        sign_in(client, issuer.mint(sub="402", email="kim@gmail.com"))

    assert db_state() == before
    assert client.get(ME).status_code == 401


def test_account_created_when_called_without_a_request(issuer, key_server):
    claims = providers.google.verify(issuer.mint(sub="403"))
    with received(account_created) as created:
        result = accounts.sign_in(claims)
    assert result.created is True
    assert created[0]["request"] is None
    assert created[0]["account"] == result.account


# -- races --------------------------------------------------------------------


@contextmanager
def after_first_query(matches: Callable[[str], bool], action: Callable[[], None]) -> Iterator[None]:
    """Run ``action`` on the same connection right after the first query whose
    SQL ``matches``: what another request committing between two of this
    request's queries looks like to it, at a chosen point and every time."""
    fired = False

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal fired
        result = execute(sql, params, many, context)
        if not fired and matches(sql):
            fired = True
            action()
        return result

    with connection.execute_wrapper(wrapper):
        yield
    assert fired, "the query to interleave with never ran"


def is_account_lookup(sql: str) -> bool:
    return sql.lstrip().upper().startswith("SELECT") and LinkedAccount._meta.db_table in sql


def is_username_check(sql: str) -> bool:
    return (
        sql.lstrip().upper().startswith("SELECT")
        and get_user_model()._meta.db_table in sql
        and '"username" =' in sql
    )


def is_email_check(sql: str) -> bool:
    # Who owns the token's verified address: the indexed lookup among linked accounts.
    return sql.lstrip().upper().startswith("SELECT") and '"verified_email" =' in sql


def winner_signs_up(sub: str, email: str, username: str) -> Callable[[], None]:
    """What the other of two simultaneous first sign-ins writes: a new user
    with the token's email, and its linked account."""

    def write() -> None:
        user = get_user_model().objects.create_user(username, email)
        user.set_unusable_password()
        user.save()
        ProvisionedUser.objects.create(user=user)
        LinkedAccount.objects.create(
            user=user, provider="google", sub=sub, email=email, verified_email=email
        )

    return write


# Deterministic versions of two simultaneous first sign-ins for one sub: the
# "other request" commits its user and account at a chosen point between this
# request's queries, on every database (SQLite cannot run the threaded version
# below). Either way this request must end signed in as the winner's user.


def test_first_sign_in_loses_the_race_before_its_email_check(client, issuer, key_server):
    # The winner commits after this request found no account for the sub, and
    # before it looks for local users with the email: it then finds the
    # winner's brand-new user, which is not "someone else's account".
    with (
        received(account_created) as created,
        after_first_query(is_account_lookup, winner_signs_up("500", "lee@gmail.com", "lee")),
    ):
        response = sign_in(client, issuer.mint(sub="500", email="lee@gmail.com"))

    assert response.status_code == 200, response.content
    assert response.json()["created"] is False
    assert response.json()["user"]["username"] == "lee"
    assert get_user_model().objects.count() == 1
    assert LinkedAccount.objects.get().user.username == "lee"
    assert created == []
    assert client.get(ME).json()["username"] == "lee"


def test_first_sign_in_loses_the_race_for_its_sub(client, issuer, key_server):
    # The winner commits after this request's email check: this request's
    # insert hits the (provider, sub) unique constraint, rolls back its own new
    # user, and reads the winner's row.
    with (
        received(account_created) as created,
        after_first_query(is_email_check, winner_signs_up("501", "max@gmail.com", "max")),
    ):
        response = sign_in(client, issuer.mint(sub="501", email="max@gmail.com"))

    assert response.status_code == 200, response.content
    assert response.json()["created"] is False
    assert response.json()["user"]["username"] == "max"
    assert get_user_model().objects.count() == 1
    assert LinkedAccount.objects.get().user.username == "max"
    assert created == []  # the insert failed before the signal: no false "created"
    assert client.get(ME).json()["username"] == "max"


def test_first_sign_in_loses_the_race_for_its_username(client, issuer, key_server):
    # Another user takes the generated username between the check and the
    # insert: the sign-up retries with a randomized username instead of failing.
    # The check runs inside the sign-up's own savepoint, so the competing row,
    # written on the same connection, is rolled back with the failed attempt;
    # what counts here is the IntegrityError the first attempt meets.
    taken = []

    def someone_takes_the_username() -> None:
        taken.append(get_user_model().objects.create_user("mia", "mia@example.org").username)

    with after_first_query(is_username_check, someone_takes_the_username):
        response = sign_in(client, issuer.mint(sub="502", email="mia@gmail.com"))

    assert response.status_code == 200, response.content
    assert response.json()["created"] is True
    assert taken == ["mia"]
    username = response.json()["user"]["username"]
    assert username.startswith("mia-")
    assert LinkedAccount.objects.get().user.username == username


@pytest.mark.django_db(transaction=True)
def test_simultaneous_first_sign_ins_end_in_one_user(issuer, key_server):
    if connection.vendor == "sqlite":
        # Django's in-memory SQLite test database is one shared-cache database
        # with table-level locks: a concurrent writer gets "database table is
        # locked" at once instead of waiting, so no real race can run there.
        # The test_first_sign_in_loses_the_race_* tests cover the same paths
        # deterministically on every database.
        pytest.skip("SQLite's shared-cache test database cannot run concurrent writers")
    rounds, threads = 8, 4
    for n in range(rounds):
        claims = providers.google.verify(issuer.mint(sub=f"6{n:02}", email=f"race{n}@gmail.com"))
        barrier = threading.Barrier(threads)
        results: list[accounts.SignInResult] = []
        errors: list[BaseException] = []

        def first_sign_in(claims=claims, barrier=barrier, results=results, errors=errors) -> None:
            try:
                barrier.wait()
                results.append(accounts.sign_in(claims))
            except BaseException as err:  # noqa: BLE001 - reported by the main thread
                errors.append(err)
            finally:
                connection.close()

        workers = [threading.Thread(target=first_sign_in) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

        assert errors == []
        assert len({result.user.pk for result in results}) == 1
        assert sum(result.created for result in results) == 1
        assert LinkedAccount.objects.filter(sub=claims.sub).count() == 1
    assert get_user_model().objects.count() == rounds
    assert LinkedAccount.objects.count() == rounds


# -- recording sign-ins (LAST_SIGNIN_INTERVAL) ---------------------------------


def account_updates(queries: Any) -> list[str]:
    table = LinkedAccount._meta.db_table
    return [q["sql"] for q in queries if q["sql"].startswith("UPDATE") and table in q["sql"]]


def test_a_returning_sign_in_within_the_interval_writes_nothing(client, issuer, key_server):
    sign_in(client, issuer.mint(sub="800", email="ivy@gmail.com"))
    recorded = LinkedAccount.objects.get().last_signed_in_at
    client.logout()
    with CaptureQueriesContext(connection) as queries:
        response = sign_in(client, issuer.mint(sub="800", email="ivy@gmail.com"))
    assert response.status_code == 200, response.content
    assert account_updates(queries.captured_queries) == []
    assert LinkedAccount.objects.get().last_signed_in_at == recorded


def test_a_sign_in_after_the_interval_records_the_time(client, issuer, key_server, settings):
    set_policy(settings, LAST_SIGNIN_INTERVAL=600)
    sign_in(client, issuer.mint(sub="801", email="jo@gmail.com"))
    almost = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=590)
    LinkedAccount.objects.update(last_signed_in_at=almost)
    assert sign_in(client, issuer.mint(sub="801", email="jo@gmail.com")).status_code == 200
    assert LinkedAccount.objects.get().last_signed_in_at == almost

    LinkedAccount.objects.update(last_signed_in_at=LONG_AGO)
    with CaptureQueriesContext(connection) as queries:
        assert sign_in(client, issuer.mint(sub="801", email="jo@gmail.com")).status_code == 200
    [update] = account_updates(queries.captured_queries)
    assert "last_signed_in_at" in update
    assert LinkedAccount.objects.get().last_signed_in_at > almost


def test_a_changed_profile_records_the_sign_in_too(client, issuer, key_server):
    sign_in(client, issuer.mint(sub="802", email="kim@gmail.com", name="Kim"))
    recent = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=5)
    LinkedAccount.objects.update(last_signed_in_at=recent)
    assert sign_in(client, issuer.mint(sub="802", email="kim@gmail.com", name="Kim Lee"))
    account = LinkedAccount.objects.get()
    assert account.name == "Kim Lee"
    assert account.last_signed_in_at > recent


def test_interval_zero_records_every_sign_in(client, issuer, key_server, settings):
    set_policy(settings, LAST_SIGNIN_INTERVAL=0)
    sign_in(client, issuer.mint(sub="803", email="lu@gmail.com"))
    recent = datetime.datetime.now(datetime.UTC) - datetime.timedelta(microseconds=1)
    LinkedAccount.objects.update(last_signed_in_at=recent)
    assert sign_in(client, issuer.mint(sub="803", email="lu@gmail.com")).status_code == 200
    assert LinkedAccount.objects.get().last_signed_in_at > recent
