"""The account policy with a custom user model whose USERNAME_FIELD is the
email and that has no username or name fields (tests/emailuser).

AUTH_USER_MODEL cannot be swapped inside one process (models, migrations and
the admin registry are bound to it at startup), so the default run launches
this file again in a subprocess under tests.settings_emailuser, and the cases
themselves run only there."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from io import StringIO
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection

from django_google_idtoken.models import LinkedAccount
from django_google_idtoken.testing import FakeIssuer

from .helpers import assert_refused, db_state, run_pytest_under_email_user, sign_in
from .test_nowgg import NOWGG_CLIENT_ID, VerifyTokenAPI, nowgg_token

EMAIL_USER_MODEL = "emailuser.EmailUser"
UNDER_EMAIL_USER = django_settings.AUTH_USER_MODEL == EMAIL_USER_MODEL
SIGNIN = "/auth/google/signin/"
ME = "/auth/google/me/"

#: The names of the cases that need the custom user model; the launcher checks
#: that at least this many ran and passed in the subprocess.
CASES: list[str] = []


def case(test: Callable[..., Any]) -> Callable[..., Any]:
    CASES.append(test.__name__)
    return pytest.mark.skipif(
        not UNDER_EMAIL_USER,
        reason=f"needs AUTH_USER_MODEL={EMAIL_USER_MODEL!r}; run in a subprocess by "
        "test_cases_pass_under_the_email_user_model",
    )(pytest.mark.django_db(test))


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    # The subprocess runs while the parent run holds its test database open;
    # on a database server, it needs a test database of its own.
    if not UNDER_EMAIL_USER:
        return
    for db in django_settings.DATABASES.values():
        if db["ENGINE"] != "django.db.backends.sqlite3":
            db.setdefault("TEST", {})["NAME"] = f"test_{db['NAME']}_emailuser"


# -- the launcher (default run) -------------------------------------------------


@pytest.mark.skipif(UNDER_EMAIL_USER, reason="this is the subprocess")
def test_cases_pass_under_the_email_user_model():
    output = run_pytest_under_email_user("tests/test_custom_user.py")
    passed = re.search(r"(\d+) passed", output)
    assert passed is not None, output
    assert int(passed.group(1)) >= len(CASES), output
    assert " failed" not in output and " error" not in output, output


# -- helpers --------------------------------------------------------------------


@contextmanager
def after_first_query(matches: Callable[[str], bool], action: Callable[[], None]) -> Iterator[None]:
    """Run ``action`` right after the first query whose SQL ``matches``: another
    request committing between two of this request's queries."""
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


# -- the cases (subprocess run) --------------------------------------------------


@case
def test_the_custom_model_is_in_use():
    user_model = get_user_model()
    assert user_model._meta.label == EMAIL_USER_MODEL
    assert user_model.USERNAME_FIELD == "email"
    assert not any(field.name == "username" for field in user_model._meta.get_fields())


@case
def test_first_sign_in_creates_an_email_user(client, issuer, key_server):
    response = sign_in(client, issuer.mint(sub="1", email="ada@gmail.com"))

    assert response.status_code == 200, response.content
    user = get_user_model().objects.get()
    assert user.email == "ada@gmail.com"
    assert not user.has_usable_password()
    assert response.json() == {
        "user": {
            "id": user.pk,
            "username": "ada@gmail.com",
            "email": "ada@gmail.com",
            "first_name": "",
            "last_name": "",
        },
        "created": True,
        "account": {
            "provider": "google",
            "sub": "1",
            "email": "ada@gmail.com",
            "email_verified": True,
            "hosted_domain": "",
            "name": "Ada Lovelace",
            "picture": "https://lh3.googleusercontent.com/a/default-user=s96-c",
        },
    }
    assert LinkedAccount.objects.get().user == user
    assert client.get(ME).json() == response.json()["user"]


@case
def test_returning_sign_in(client, issuer, key_server):
    first = sign_in(client, issuer.mint(sub="2", email="bob@gmail.com"))
    client.logout()
    second = sign_in(client, issuer.mint(sub="2", email="bob.new@gmail.com"))

    assert second.status_code == 200, second.content
    assert second.json()["created"] is False
    assert second.json()["user"] == first.json()["user"]
    assert get_user_model().objects.count() == 1
    assert LinkedAccount.objects.get().email == "bob.new@gmail.com"


@case
def test_email_in_use(client, issuer, key_server, settings):
    settings.GOOGLE_IDTOKEN = {
        **settings.GOOGLE_IDTOKEN,
        "LOCAL_EMAIL_VERIFIED": "tests.email_policy.always",
    }
    get_user_model().objects.create_user("Carol@Gmail.com", "local-password")
    before = db_state()

    response = sign_in(client, issuer.mint(sub="3", email="carol@gmail.com"))

    assert_refused(response, 403, "email_in_use")
    assert db_state() == before


@case
def test_link_by_email(client, issuer, key_server, settings):
    settings.GOOGLE_IDTOKEN = {**settings.GOOGLE_IDTOKEN, "LINK_BY_EMAIL": True}
    dora = get_user_model().objects.create_user("dora@gmail.com", "local-password")

    response = sign_in(client, issuer.mint(sub="4", email="dora@gmail.com"))

    assert response.status_code == 200, response.content
    assert response.json()["created"] is False
    assert response.json()["user"]["username"] == "dora@gmail.com"
    assert LinkedAccount.objects.get().user == dora


@case
def test_token_without_email_is_refused(client, issuer, key_server):
    # The email is this model's username: without one there is no user to make.
    before = db_state()

    response = sign_in(client, issuer.mint(sub="5", drop=["email", "email_verified"]))

    assert_refused(response, 401, "invalid_claims")
    assert db_state() == before
    assert client.get(ME).status_code == 401


@case
def test_email_taken_while_signing_up(client, issuer, key_server):
    # Another user registers the address between the email check and the
    # insert: the unique email refuses the insert, and the answer is
    # email_in_use, not a 500 and not a second user with that email.
    user_model = get_user_model()

    def is_email_check(sql: str) -> bool:
        return sql.lstrip().upper().startswith("SELECT") and '"verified_email" =' in sql

    def someone_registers() -> None:
        user_model.objects.create_user("erin@gmail.com", "local-password")

    with after_first_query(is_email_check, someone_registers):
        response = sign_in(client, issuer.mint(sub="6", email="erin@gmail.com"))

    assert_refused(response, 403, "email_in_use")
    assert user_model.objects.count() == 1
    assert LinkedAccount.objects.count() == 0


@case
def test_an_unverified_address_cannot_become_a_username(client, issuer, key_server):
    # The address is this model's unique username: a user created with an
    # address nobody verified would pre-claim it, and its real owner could
    # never sign up. Refused, and nothing written.
    before = db_state()
    for claims in (
        {"email_verified": False},
        {"email_verified": True},  # a domain Google does not run
    ):
        email = "ceo@gmail.com" if claims["email_verified"] is False else "ceo@company.example"
        response = sign_in(client, issuer.mint(sub="squat", email=email, **claims))
        assert_refused(response, 403, "email_not_verified")
        assert db_state() == before

    owner = sign_in(client, issuer.mint(sub="owner", email="ceo@gmail.com"))
    assert owner.status_code == 200, owner.content
    assert owner.json()["created"] is True
    assert owner.json()["user"]["username"] == "ceo@gmail.com"


@case
def test_now_gg_first_does_not_pre_claim_the_address(client, issuer, key_server, settings):
    nowgg_issuer = FakeIssuer(client_id=NOWGG_CLIENT_ID, issuer="https://now.gg")
    api = VerifyTokenAPI(nowgg_issuer)
    try:
        settings.GOOGLE_IDTOKEN = {
            **settings.GOOGLE_IDTOKEN,
            "LINK_BY_EMAIL": True,
            "PROVIDERS": {"nowgg": {"CLIENT_IDS": [NOWGG_CLIENT_ID], "VERIFY_URL": api.url}},
        }
        before = db_state()
        attacker = client.post(
            "/auth/google/signin/nowgg/",
            {"id_token": nowgg_token(nowgg_issuer, email="victim@gmail.com")},
            content_type="application/json",
        )
        assert_refused(attacker, 403, "email_not_verified")
        assert db_state() == before
    finally:
        api.close()

    victim = sign_in(client, issuer.mint(sub="victim", email="victim@gmail.com"))
    assert victim.status_code == 200, victim.content
    assert victim.json()["created"] is True


@case
def test_no_missing_migrations_with_a_custom_user_model():
    out = StringIO()
    call_command(
        "makemigrations", "django_google_idtoken", "--check", "--dry-run", stdout=out, stderr=out
    )
    assert "No changes detected" in out.getvalue()
