"""Races on first sign-in, through a real threaded HTTP server.

Each test posts ID tokens to the sign-in URL of pytest-django's
``live_server`` (Django's ``LiveServerThread``: a threaded WSGI server on
127.0.0.1, one thread per connection) from client threads of its own, each
with its own connection, all released together behind a barrier. Nothing in
the sign-in path is mocked; the tests only watch it and hold requests at
chosen points:

* ``ServerProbe`` tags each request (an ``X-Race-Tag`` header), and hooks
  ``request_started`` and an execute wrapper on every database connection the
  server opens. That is how the tests prove the requests really were in the
  server at the same time (a rendezvous at the start of every request, which a
  server handling one request at a time could never meet), and how they force
  the worst interleaving: every request has done all its reads and decided to
  write before any of them writes, so the database constraints, not luck,
  have to settle the race.
* Only rows and answers are counted; nothing asserts a duration.

These tests need a database that takes concurrent writers: they run on
PostgreSQL (the CI's second pass). Django's in-memory SQLite test database is
one connection that the live server shares between all its threads, so
concurrent requests interleave their transactions on that one connection
(tried: they answer 500, "cannot open savepoint - SQL statements in
progress"); the deterministic race tests in test_accounts.py cover the same
code paths on SQLite. The two-subs test also runs in a subprocess under
tests.settings_emailuser, where the email is unique and settles that race.
"""

from __future__ import annotations

import http.client
import itertools
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.signals import request_started
from django.db import connection
from django.db.backends.signals import connection_created
from django.dispatch import Signal
from pytest_django.live_server_helper import LiveServer

from django_google_idtoken.models import LinkedAccount
from django_google_idtoken.signals import account_created, account_linked

from .helpers import run_pytest_under_email_user

pytestmark = [
    pytest.mark.skipif(
        connection.vendor == "sqlite",
        reason="needs a database that takes concurrent writers (PostgreSQL: "
        "IDTOKEN_TEST_DB=postgres); the live server shares SQLite's one in-memory "
        "connection between all its threads",
    ),
    pytest.mark.django_db(transaction=True),
]

SIGNIN = "/auth/google/signin/"
EMAIL_USER_MODEL = "emailuser.EmailUser"
UNDER_EMAIL_USER = django_settings.AUTH_USER_MODEL == EMAIL_USER_MODEL
#: Bounds on waiting, so that a server that cannot run the requests together
#: fails the test instead of hanging it. Never asserted: only whether the
#: rendezvous was met, and what each request answered.
RENDEZVOUS_TIMEOUT = 30.0
#: How long a request is held at a write rendezvous the implementation might
#: legitimately never let every request reach (a lock taken before writing
#: serializes the writers); past it, the requests go on unforced.
WRITE_RENDEZVOUS_TIMEOUT = 5.0
CLIENT_TIMEOUT = 120.0


# -- the server side -----------------------------------------------------------


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    # This file also runs in a subprocess under tests.settings_emailuser (see
    # the last test) while the parent run holds its test database open: on a
    # database server, the subprocess needs a test database of its own.
    if not UNDER_EMAIL_USER:
        return
    for db in django_settings.DATABASES.values():
        if db["ENGINE"] != "django.db.backends.sqlite3":
            db.setdefault("TEST", {})["NAME"] = f"test_{db['NAME']}_races_emailuser"


@pytest.fixture(scope="module")
def live_server() -> Iterator[LiveServer]:
    """pytest-django's live server (the ``LiveServer`` its fixture of this name
    starts, which its autouse helper pairs with ``transactional_db``), bound
    to 127.0.0.1 explicitly, and for this module only."""
    server = LiveServer("127.0.0.1")
    yield server
    server.stop()


class Rendezvous:
    """Holds each caller until ``parties`` callers have arrived; ``met`` says
    whether they all did before ``timeout`` (if not, everyone goes on)."""

    def __init__(self, parties: int, *, timeout: float = RENDEZVOUS_TIMEOUT) -> None:
        self._barrier = threading.Barrier(parties, timeout=timeout)
        self.met = True

    def __call__(self, tag: str = "") -> None:
        try:
            self._barrier.wait()
        except threading.BrokenBarrierError:
            self.met = False


def _nothing(tag: str) -> None:
    pass


class ServerProbe:
    """Hooks into the live server's request threads without touching the code
    under test: each request's tag (from its ``X-Race-Tag`` header) is kept in
    its thread, and three callbacks run in that thread with the tag:

    * ``on_start``: when the request enters Django (``request_started``);
    * ``after_account_lookup``: after its first query on the linked accounts
      table (the lookup by provider and sub every sign-in starts with);
    * ``before_first_write``: before its first INSERT, UPDATE or DELETE.

    The database hooks are execute wrappers put on every connection the server
    opens while the probe is active (``connection_created``): on PostgreSQL
    each request thread opens its own."""

    def __init__(self) -> None:
        self.on_start: Callable[[str], None] = _nothing
        self.after_account_lookup: Callable[[str], None] = _nothing
        self.before_first_write: Callable[[str], None] = _nothing
        self._local = threading.local()
        self._active = False

    def __enter__(self) -> ServerProbe:
        self._active = True
        request_started.connect(self._started, weak=False)
        connection_created.connect(self._install, weak=False)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._active = False
        request_started.disconnect(self._started)
        connection_created.disconnect(self._install)

    def _started(self, sender: Any, environ: dict[str, Any], **kwargs: Any) -> None:
        tag = environ.get("HTTP_X_RACE_TAG")
        if tag is None or not self._active:
            return
        self._local.tag = tag
        self._local.looked_up = False
        self._local.wrote = False
        self.on_start(tag)

    def _install(self, sender: Any, connection: Any, **kwargs: Any) -> None:
        connection.execute_wrappers.append(self._wrap)

    def _wrap(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        local = self._local
        tag = getattr(local, "tag", None)
        if tag is None or not self._active:
            return execute(sql, params, many, context)
        if not local.wrote and sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            local.wrote = True
            self.before_first_write(tag)
        result = execute(sql, params, many, context)
        if not local.looked_up and LinkedAccount._meta.db_table in sql:
            local.looked_up = True
            self.after_account_lookup(tag)
        return result


# -- the client side -------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    tag: str
    status: int
    body: Any  # the JSON answer, or the text of a non-JSON one (Django's 500 page)

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None

    @property
    def user_id(self) -> int | None:
        return self.body["user"]["id"] if self.status == 200 else None


def post_together(
    live_server: Any,
    requests: list[tuple[str, str]],
    *,
    on_answer: Callable[[str], None] = _nothing,
) -> list[Answer]:
    """POST each ``(tag, token)`` to the sign-in URL from a thread of its own,
    over a connection of its own, all released together; return the answers in
    order. Each thread connects before the barrier, so every request already
    has a server thread waiting for it when the barrier opens."""
    port = live_server.thread.port
    barrier = threading.Barrier(len(requests), timeout=RENDEZVOUS_TIMEOUT)
    answers: list[Answer | None] = [None] * len(requests)
    errors: list[str] = []

    def client(i: int, tag: str, token: str) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
        try:
            conn.connect()
            barrier.wait()
            conn.request(
                "POST",
                SIGNIN,
                body=json.dumps({"id_token": token}),
                headers={"Content-Type": "application/json", "X-Race-Tag": tag},
            )
            response = conn.getresponse()
            raw = response.read()
            if response.getheader("Content-Type", "").startswith("application/json"):
                body: Any = json.loads(raw)
            else:
                body = raw.decode("utf-8", "replace")
            answers[i] = Answer(tag=tag, status=response.status, body=body)
            on_answer(tag)
        except Exception as err:  # noqa: BLE001 - reported by the main thread
            barrier.abort()  # do not leave the other clients waiting
            errors.append(f"{tag}: {type(err).__name__}: {err}")
        finally:
            conn.close()

    threads = [
        threading.Thread(target=client, args=(i, tag, token), daemon=True)
        for i, (tag, token) in enumerate(requests)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(CLIENT_TIMEOUT + RENDEZVOUS_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a client never got its answer"
    assert errors == [], errors
    return [answer for answer in answers if answer is not None]


# -- helpers ---------------------------------------------------------------------


def set_policy(settings: Any, **values: Any) -> None:
    # GOOGLE_IDTOKEN is read live (the server threads see it too); keep the
    # CERTS_URL that key_server put there.
    settings.GOOGLE_IDTOKEN = {**settings.GOOGLE_IDTOKEN, **values}


@contextmanager
def connected(signal: Signal, receiver: Callable[..., Any]) -> Iterator[None]:
    signal.connect(receiver, weak=False)
    try:
        yield
    finally:
        signal.disconnect(receiver)


@contextmanager
def counting(signal: Signal) -> Iterator[list[str]]:
    """The sub of every sending of ``signal`` (from any thread) inside the block."""
    subs: list[str] = []

    def receiver(claims: Any, **kwargs: Any) -> None:
        subs.append(claims.sub)

    with connected(signal, receiver):
        yield subs


class Boom(Exception):
    pass


def explode(**kwargs: Any) -> None:
    raise Boom("a project's account_created receiver failed")


def users_and_accounts() -> tuple[int, int]:
    return get_user_model().objects.count(), LinkedAccount.objects.count()


_subs = itertools.count(7_000_000)


def new_sub() -> str:
    return str(next(_subs))


# -- one sub, many first sign-ins ---------------------------------------------------


def test_concurrent_first_sign_ins_for_one_sub_make_one_user(live_server, issuer, key_server):
    """20 first sign-ins for one new sub (20 distinct tokens: a user tapping
    "Sign in" on several devices at once, or a client retrying) all succeed as
    one user: one created it, the others found it. Every request has decided
    to create the user before any writes, so 19 of them meet the unique
    constraints (username, then provider+sub) and must recover by reading the
    winner's row, not answer 500."""
    count = 20
    sub, email = new_sub(), "race.one@gmail.com"
    requests = [(f"r{i}", issuer.mint(sub=sub, email=email)) for i in range(count)]
    assert len(set(dict(requests).values())) == count  # really 20 distinct tokens
    started = Rendezvous(count)
    writing = Rendezvous(count, timeout=WRITE_RENDEZVOUS_TIMEOUT)

    with ServerProbe() as probe, counting(account_created) as created:
        probe.on_start = started
        probe.before_first_write = writing
        answers = post_together(live_server, requests)

    assert started.met, "the server did not have all 20 requests in flight at once"
    assert [a.status for a in answers] == [200] * count, answers
    account = LinkedAccount.objects.get(provider="google", sub=sub)
    assert users_and_accounts() == (1, 1)
    assert {a.user_id for a in answers} == {account.user_id}
    assert sum(a.body["created"] is True for a in answers) == 1, answers
    assert all(a.body["account"]["sub"] == sub for a in answers)
    assert created == [sub]  # the signal of the one sign-up that committed
    assert get_user_model().objects.get().email == email


# -- two subs, one email -------------------------------------------------------------

#: How the two requests of a round are interleaved: released together and left
#: alone; held so that both decide to write before either writes; or B held
#: after its own account lookup until A's answer is back (B then meets A's
#: committed user with its email).
PAIR_MODES = ("free", "write_together", "b_after_a")


def test_concurrent_first_sign_ins_of_two_subs_with_one_email_never_share_a_user(
    live_server, issuer, key_server, settings
):
    """Two Google accounts with the same email (one of them need not own it:
    Google lets anyone put an unverified address on an account) sign in for
    the first time at once, with LINK_BY_EMAIL off. Whatever the interleaving,
    neither may end up signed in as the other's user: each either gets a user
    of its own (200) or is refused (403 email_in_use), never a 500."""
    set_policy(settings, LINK_BY_EMAIL=False)
    rounds = 12
    for n, mode in zip(range(rounds), itertools.cycle(PAIR_MODES)):
        sub_a, sub_b, email = new_sub(), new_sub(), f"pair{n}@gmail.com"
        tokens = {
            "a": issuer.mint(sub=sub_a, email=email),
            "b": issuer.mint(sub=sub_b, email=email),
        }
        started = Rendezvous(2)
        a_answered = threading.Event()

        def hold_b(tag: str, a_answered: threading.Event = a_answered) -> None:
            if tag == "b":
                a_answered.wait(RENDEZVOUS_TIMEOUT)

        def note_a(tag: str, a_answered: threading.Event = a_answered) -> None:
            if tag == "a":
                a_answered.set()

        with ServerProbe() as probe:
            probe.on_start = started
            if mode == "write_together":
                probe.before_first_write = Rendezvous(2, timeout=WRITE_RENDEZVOUS_TIMEOUT)
            elif mode == "b_after_a":
                probe.after_account_lookup = hold_b
            answers = {
                a.tag: a for a in post_together(live_server, list(tokens.items()), on_answer=note_a)
            }

        context = f"round {n} ({mode}): {answers}"
        assert started.met, context
        for answer in answers.values():
            assert answer.status == 200 or (answer.status, answer.code) == (
                403,
                "email_in_use",
            ), context
        assert any(a.status == 200 for a in answers.values()), context
        owners = {}
        for tag, sub in (("a", sub_a), ("b", sub_b)):
            account = LinkedAccount.objects.filter(provider="google", sub=sub).first()
            if answers[tag].status == 200:
                assert account is not None, context
                assert answers[tag].user_id == account.user_id, context
                owners[tag] = account.user_id
            else:
                assert account is None, context  # a refusal writes nothing
        assert len(set(owners.values())) == len(owners), f"one user for both subs: {context}"
        # Each success made a user of its own: none was handed someone else's.
        assert all(answers[tag].body["created"] is True for tag in owners), context
        if mode == "b_after_a":
            # A's user with this email was committed before B looked for one.
            assert answers["a"].status == 200, context
            assert (answers["b"].status, answers["b"].code) == (403, "email_in_use"), context
    # Every user holds at most one of the round's subs, and no user without one.
    assert LinkedAccount.objects.values("user").distinct().count() == LinkedAccount.objects.count()
    assert get_user_model().objects.count() == LinkedAccount.objects.count()


# -- link by email ---------------------------------------------------------------------


def test_concurrent_first_sign_ins_link_one_account_to_the_existing_user(
    live_server, issuer, key_server, settings
):
    """LINK_BY_EMAIL on, a local user holding a Gmail address Google vouches
    for: 20 concurrent first sign-ins for one sub all sign in as that user,
    through one linked account; the 19 links that lose the race to the
    (provider, sub) constraint read the winner's instead of answering 500."""
    set_policy(settings, LINK_BY_EMAIL=True)
    olivia = get_user_model().objects.create_user("olivia", "olivia@gmail.com", "local-password")
    count = 20
    sub = new_sub()
    requests = [
        (f"r{i}", issuer.mint(sub=sub, email="olivia@gmail.com", email_verified=True))
        for i in range(count)
    ]
    started = Rendezvous(count)
    writing = Rendezvous(count, timeout=WRITE_RENDEZVOUS_TIMEOUT)

    with (
        ServerProbe() as probe,
        counting(account_linked) as linked,
        counting(account_created) as created,
    ):
        probe.on_start = started
        probe.before_first_write = writing
        answers = post_together(live_server, requests)

    assert started.met, "the server did not have all 20 requests in flight at once"
    assert [a.status for a in answers] == [200] * count, answers
    assert {a.user_id for a in answers} == {olivia.pk}
    assert all(a.body["created"] is False for a in answers)
    assert users_and_accounts() == (1, 1)
    account = LinkedAccount.objects.get()
    assert (account.provider, account.sub, account.user_id) == ("google", sub, olivia.pk)
    assert linked == [sub]
    assert created == []
    olivia.refresh_from_db()
    assert olivia.check_password("local-password")  # linking does not touch the user


# -- a failure part-way through ----------------------------------------------------------


def test_failing_account_created_receiver_during_a_burst_writes_nothing(
    live_server, issuer, key_server
):
    """A project's ``account_created`` receiver raises while 10 first sign-ins
    for one sub run at once. The signal is sent inside the transaction that
    writes the user and the account, so every attempt rolls back: the server
    answers each with its 500 (the project's own exception, which nothing
    turns into a refusal) and neither a user nor a linked account is left."""
    count = 10
    sub, email = new_sub(), "half.done@gmail.com"
    requests = [(f"r{i}", issuer.mint(sub=sub, email=email)) for i in range(count)]
    started = Rendezvous(count)

    with ServerProbe() as probe, connected(account_created, explode):
        probe.on_start = started
        probe.before_first_write = Rendezvous(count, timeout=WRITE_RENDEZVOUS_TIMEOUT)
        answers = post_together(live_server, requests)

    assert started.met, "the server did not have all requests in flight at once"
    assert [a.status for a in answers] == [500] * count, answers
    assert users_and_accounts() == (0, 0)
    assert not LinkedAccount.objects.filter(sub=sub).exists()

    # Nothing half-written stands in the way (no orphan user holding the
    # username or the email): with the receiver gone, the sign-up works.
    (answer,) = post_together(live_server, [("again", issuer.mint(sub=sub, email=email))])
    assert answer.status == 200, answer
    assert answer.body["created"] is True
    assert users_and_accounts() == (1, 1)


# -- the same race under a user model with a unique email ------------------------------


@pytest.mark.skipif(UNDER_EMAIL_USER, reason="this is the subprocess")
def test_email_unique_user_model_settles_the_two_subs_race_too():
    """Under a user model whose email is unique (tests/emailuser: the email is
    the USERNAME_FIELD), the race between two subs with one email takes
    another path: when both decide to create a user, the email's unique
    constraint stops the second insert, and that request must answer 403
    email_in_use, not sign in as the user that won. AUTH_USER_MODEL cannot
    change inside one process, so the two-subs test runs again in a
    subprocess under tests.settings_emailuser (same database and cache
    services: the environment passes through)."""
    output = run_pytest_under_email_user("tests/test_races.py", "-k", "never_share_a_user")
    assert "1 passed" in output, output
