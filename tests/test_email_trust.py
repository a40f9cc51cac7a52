"""Who owns an email address: only an address an authoritative provider
verified (or a local user's address the project vouches for) links an account
to a user or refuses a sign-in as ``email_in_use``.

Each test lets the attacker move first, through the real sign-in URLs: they
sign in with the victim's address through a provider that does not vouch for
it (now.gg; an OpenID Connect issuer without ``TRUST_EMAIL``; Google with
``email_verified: false``, or for a domain Google does not run), or sign up
locally with it, before the victim ever arrives. Afterwards the victim must
get a user of their own, never the attacker's, and never be locked out.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from django_google_idtoken.models import LinkedAccount, ProvisionedUser
from django_google_idtoken.testing import FakeIssuer

from . import email_policy
from .helpers import assert_refused, db_state, sign_in
from .test_nowgg import NOWGG_CLIENT_ID, VerifyTokenAPI, nowgg_token
from .test_oidc import OIDCServer, apple_token

pytestmark = pytest.mark.django_db

ME = "/auth/google/me/"
ACCOUNTS = "/auth/google/accounts/"
VICTIM = "victim@gmail.com"


@pytest.fixture
def nowgg_issuer() -> FakeIssuer:
    return FakeIssuer(client_id=NOWGG_CLIENT_ID, issuer="https://now.gg")


@pytest.fixture
def apple() -> FakeIssuer:
    return FakeIssuer(client_id="com.example.app", issuer="https://appleid.apple.com")


@pytest.fixture
def corp() -> FakeIssuer:
    """An OpenID Connect issuer the project trusts for emails (TRUST_EMAIL)."""
    return FakeIssuer(client_id="corp-client", issuer="https://login.corp.example")


@pytest.fixture
def providers(
    settings: Any,
    key_server: Any,
    nowgg_issuer: FakeIssuer,
    apple: FakeIssuer,
    corp: FakeIssuer,
) -> Iterator[None]:
    """Google (key_server), now.gg (its Verify Token API stand-in), "apple"
    (OIDC without TRUST_EMAIL) and "corp" (OIDC with TRUST_EMAIL), all on
    127.0.0.1."""
    api = VerifyTokenAPI(nowgg_issuer)
    apple_server = OIDCServer(apple)
    corp_server = OIDCServer(corp)
    settings.GOOGLE_IDTOKEN = {
        **settings.GOOGLE_IDTOKEN,
        "PROVIDERS": {
            "nowgg": {"CLIENT_IDS": [NOWGG_CLIENT_ID], "VERIFY_URL": api.url},
            "apple": {
                "TYPE": "oidc",
                "ISSUER": apple.issuer,
                "CLIENT_IDS": [apple.client_id],
                "JWKS_URL": apple_server.base_url + "/jwks",
            },
            "corp": {
                "TYPE": "oidc",
                "ISSUER": corp.issuer,
                "CLIENT_IDS": [corp.client_id],
                "JWKS_URL": corp_server.base_url + "/jwks",
                "TRUST_EMAIL": True,
            },
        },
    }
    email_policy.VERIFIED_USERNAMES.clear()
    yield
    email_policy.VERIFIED_USERNAMES.clear()
    for server in (api, apple_server, corp_server):
        server.close()


def policy(settings: Any, **values: Any) -> None:
    settings.GOOGLE_IDTOKEN = {**settings.GOOGLE_IDTOKEN, **values}


def post(client: Client, provider: str, token: str) -> Any:
    return client.post(
        f"/auth/google/signin/{provider}/", {"id_token": token}, content_type="application/json"
    )


def signed_in_user(response: Any) -> int:
    assert response.status_code == 200, response.content
    return int(response.json()["user"]["id"])


def assert_separate(attacker_id: int, victim_response: Any, victim: Client) -> None:
    """The victim got a user of their own: created now, not the attacker's,
    holding the victim's account only, with the victim's session on it."""
    assert victim_response.status_code == 200, victim_response.content
    body = victim_response.json()
    assert body["created"] is True
    assert body["user"]["id"] != attacker_id
    assert victim.get(ME).json()["id"] == body["user"]["id"]
    victim_accounts = LinkedAccount.objects.filter(user_id=body["user"]["id"])
    assert [a.provider for a in victim_accounts] == ["google"]
    victim_sub = body["account"]["sub"]
    assert not LinkedAccount.objects.filter(user_id=attacker_id, sub=victim_sub).exists()


# The ways an attacker can sign in first with the victim's address without
# owning it: a provider that vouches for no address, an OIDC issuer the
# project does not trust for emails, and Google itself when it does not
# vouch (unverified, or a domain Google does not run).
ATTACKER_FIRST = {
    "nowgg": lambda nowgg_issuer, apple, issuer: (
        "nowgg",
        nowgg_token(nowgg_issuer, sub="attacker-ngg", email=VICTIM),
    ),
    "oidc-without-trust-email": lambda nowgg_issuer, apple, issuer: (
        "apple",
        apple_token(apple, sub="attacker-apple", email=VICTIM),
    ),
    "google-unverified": lambda nowgg_issuer, apple, issuer: (
        "google",
        issuer.mint(sub="attacker-google", email=VICTIM, email_verified=False),
    ),
}


@pytest.mark.parametrize("link_by_email", [False, True], ids=["default", "link-by-email"])
@pytest.mark.parametrize("route", sorted(ATTACKER_FIRST))
def test_attacker_signs_in_first_with_the_victims_gmail(
    settings, providers, issuer, nowgg_issuer, apple, route, link_by_email
):
    policy(settings, LINK_BY_EMAIL=link_by_email)
    attacker = Client()
    provider, token = ATTACKER_FIRST[route](nowgg_issuer, apple, issuer)
    attacker_response = post(attacker, provider, token)
    attacker_id = signed_in_user(attacker_response)
    # The address the attacker chose is kept for display, never as theirs.
    assert get_user_model().objects.get(pk=attacker_id).email == ""
    assert LinkedAccount.objects.get(user_id=attacker_id).verified_email == ""

    victim = Client()
    victim_response = sign_in(victim, issuer.mint(sub="victim-google", email=VICTIM))

    assert_separate(attacker_id, victim_response, victim)
    assert get_user_model().objects.get(pk=victim_response.json()["user"]["id"]).email == VICTIM
    # The attacker's session still sees the attacker's own user, nothing of the victim's.
    assert attacker.get(ME).json()["id"] == attacker_id
    assert [a["provider"] for a in attacker.get(ACCOUNTS).json()] == [provider]


@pytest.mark.parametrize("link_by_email", [False, True], ids=["default", "link-by-email"])
@pytest.mark.parametrize(
    "attacker_claims",
    [
        {"email_verified": False},
        # Google saw the address verified once, but does not run the domain.
        {"email_verified": True},
        # Google runs another Workspace domain: it vouches for that one only.
        {"email_verified": True, "hd": "attacker.example"},
    ],
    ids=["unverified", "verified-no-hd", "other-hd"],
)
def test_attacker_first_with_a_workspace_address_google_does_not_vouch_for(
    settings, providers, issuer, attacker_claims, link_by_email
):
    policy(settings, LINK_BY_EMAIL=link_by_email)
    attacker = Client()
    attacker_id = signed_in_user(
        sign_in(
            attacker,
            issuer.mint(sub="ceo-squatter", email="ceo@company.example", **attacker_claims),
        )
    )

    victim = Client()
    owner_token = issuer.mint(
        sub="ceo-real", email="ceo@company.example", email_verified=True, hd="company.example"
    )
    response = sign_in(victim, owner_token)

    assert_separate(attacker_id, response, victim)


@pytest.mark.parametrize("link_by_email", [False, True], ids=["default", "link-by-email"])
def test_attacker_links_an_unverified_address_into_their_own_user_first(
    settings, providers, issuer, nowgg_issuer, link_by_email
):
    # Linking through accounts/ is another way to attach an address to a
    # user before its owner arrives: it must not count either.
    policy(settings, LINK_BY_EMAIL=link_by_email)
    attacker = Client()
    attacker_id = signed_in_user(
        sign_in(attacker, issuer.mint(sub="attacker-own", email="attacker@gmail.com"))
    )
    linked = attacker.post(
        ACCOUNTS,
        {"provider": "nowgg", "id_token": nowgg_token(nowgg_issuer, sub="a-ngg", email=VICTIM)},
        content_type="application/json",
        headers={"X-CSRFToken": attacker.cookies["csrftoken"].value},
    )
    assert linked.status_code in (200, 201), linked.content

    victim = Client()
    assert_separate(attacker_id, sign_in(victim, issuer.mint(sub="v", email=VICTIM)), victim)


@pytest.mark.parametrize("link_by_email", [False, True], ids=["default", "link-by-email"])
def test_victim_first_then_the_attacker_gets_a_user_of_their_own(
    settings, providers, issuer, nowgg_issuer, apple, link_by_email
):
    # The other order: the victim is already here. An unverified address is
    # neither a way in (no link) nor a reason to refuse (no email_in_use).
    policy(settings, LINK_BY_EMAIL=link_by_email)
    victim = Client()
    victim_id = signed_in_user(sign_in(victim, issuer.mint(sub="victim-google", email=VICTIM)))

    for route in sorted(ATTACKER_FIRST):
        provider, token = ATTACKER_FIRST[route](nowgg_issuer, apple, issuer)
        attacker = Client()
        response = post(attacker, provider, token)
        assert response.status_code == 200, (route, response.content)
        assert response.json()["created"] is True, route
        assert response.json()["user"]["id"] != victim_id, route
    assert LinkedAccount.objects.filter(user_id=victim_id).count() == 1


def test_a_trusted_address_links_only_with_link_by_email(settings, providers, issuer, corp):
    # The legitimate case: Google vouched for the address, and so does an
    # issuer the project trusts for emails.
    owner = Client()
    owner_id = signed_in_user(sign_in(owner, issuer.mint(sub="owner-google", email=VICTIM)))
    before = db_state()

    refused = post(Client(), "corp", corp.mint(sub="owner-corp", email=VICTIM))
    assert_refused(refused, 403, "email_in_use")
    assert db_state() == before
    # The detail says what the person can do about it.
    assert "Sign in to it the way you did before" in refused.json()["detail"]
    assert "link this account" in refused.json()["detail"]

    policy(settings, LINK_BY_EMAIL=True)
    # ASCII case does not make it another address.
    linked = post(Client(), "corp", corp.mint(sub="owner-corp", email="Victim@GMAIL.com"))
    assert linked.status_code == 200, linked.content
    assert linked.json()["created"] is False
    assert linked.json()["user"]["id"] == owner_id


def test_an_address_that_stops_being_verified_stops_counting(settings, providers, issuer, corp):
    # The snapshot follows the provider: once Google no longer vouches for the
    # address (the account's email changed to an unverified one), it no
    # longer links anything to this user.
    policy(settings, LINK_BY_EMAIL=True)
    owner_id = signed_in_user(sign_in(Client(), issuer.mint(sub="g1", email=VICTIM)))
    assert LinkedAccount.objects.get(sub="g1").verified_email == VICTIM
    signed_in_user(sign_in(Client(), issuer.mint(sub="g1", email=VICTIM, email_verified=False)))
    assert LinkedAccount.objects.get(sub="g1").verified_email == ""

    response = post(Client(), "corp", corp.mint(sub="c1", email=VICTIM))
    assert response.json()["created"] is True
    assert response.json()["user"]["id"] != owner_id


# -- local users: the project's say (LOCAL_EMAIL_VERIFIED) ---------------------------


def local_user(username: str, email: str) -> Any:
    return get_user_model().objects.create_user(username, email, "local-password")


@pytest.mark.parametrize(
    ("callable_path", "link_by_email", "outcome"),
    [
        # Default: a local address counts once LINK_BY_EMAIL is on (today's rule).
        (None, False, "created"),
        (None, True, "linked"),
        # The project's answer decides, whatever LINK_BY_EMAIL says about linking.
        ("tests.email_policy.verified", False, "email_in_use"),
        ("tests.email_policy.verified", True, "linked"),
        ("tests.email_policy.always", True, "linked"),
    ],
)
def test_local_user_address_counts_as_the_project_says(
    settings, providers, issuer, callable_path, link_by_email, outcome
):
    policy(settings, LINK_BY_EMAIL=link_by_email, LOCAL_EMAIL_VERIFIED=callable_path)
    local = local_user("lou", "Lou@Gmail.com")
    email_policy.VERIFIED_USERNAMES.add("lou")
    before = db_state()

    client = Client()
    response = sign_in(client, issuer.mint(sub="lou-google", email="lou@gmail.com"))

    if outcome == "email_in_use":
        assert_refused(response, 403, "email_in_use")
        assert db_state() == before
    elif outcome == "linked":
        assert response.status_code == 200, response.content
        assert response.json()["created"] is False
        assert response.json()["user"]["id"] == local.pk
    else:
        assert response.status_code == 200, response.content
        assert response.json()["created"] is True
        assert response.json()["user"]["id"] != local.pk


@pytest.mark.parametrize(
    "callable_path", ["tests.email_policy.verified", "tests.email_policy.truthy_but_not_true"]
)
def test_local_signup_with_an_unverified_address_first(settings, providers, issuer, callable_path):
    # The attacker signs up locally with the victim's address, which the
    # project never verified: the victim's Google account must not land there.
    policy(settings, LINK_BY_EMAIL=True, LOCAL_EMAIL_VERIFIED=callable_path)
    squatter = local_user("squatter", VICTIM)  # not in VERIFIED_USERNAMES
    victim = Client()
    response = sign_in(victim, issuer.mint(sub="victim-google", email=VICTIM))
    assert_separate(squatter.pk, response, victim)


@pytest.mark.parametrize("link_by_email", [False, True], ids=["default", "link-by-email"])
def test_users_this_package_created_never_count_through_user_email(
    settings, providers, issuer, nowgg_issuer, link_by_email
):
    # The attacker signs in with now.gg, then puts the victim's address on
    # their user (a profile form of the project's, or data from before this
    # rule). Even a project callable that trusts every address does not make
    # it the attacker's: only a provider's verification counts for such users.
    policy(settings, LINK_BY_EMAIL=link_by_email, LOCAL_EMAIL_VERIFIED="tests.email_policy.always")
    attacker = Client()
    attacker_id = signed_in_user(post(attacker, "nowgg", nowgg_token(nowgg_issuer, email=VICTIM)))
    assert ProvisionedUser.objects.filter(user_id=attacker_id).exists()
    get_user_model().objects.filter(pk=attacker_id).update(email=VICTIM)

    victim = Client()
    assert_separate(attacker_id, sign_in(victim, issuer.mint(sub="v", email=VICTIM)), victim)


# -- what "the same address" means, on every database ---------------------------------

LOOKALIKES = [
    ("admin@corp.example", "adm\u0131n@corp.example"),  # dotless i: UPPER() gives I
    ("sam@corp.example", "\u017fam@corp.example"),  # long s: UPPER() gives S
    ("kate@corp.example", "\u212aate@corp.example"),  # Kelvin sign: lower() gives k
    ("admin@corp.example", "\uff41dmin@corp.example"),  # fullwidth a
    ("admin@corp.example", "admin@\uff43orp.example"),  # fullwidth c in the domain
]


@pytest.mark.parametrize(("owner", "lookalike"), LOOKALIKES)
def test_lookalike_addresses_are_other_addresses(
    settings, providers, issuer, corp, owner, lookalike
):
    # An issuer the project trusts vouches for the look-alike address; it is
    # not the owner's address, on PostgreSQL (UPPER folds Unicode) as on SQLite.
    policy(settings, LINK_BY_EMAIL=True)
    owner_id = signed_in_user(
        sign_in(Client(), issuer.mint(sub="owner", email=owner, hd="corp.example"))
    )
    response = post(Client(), "corp", corp.mint(sub="lookalike", email=lookalike))
    assert response.status_code == 200, response.content
    assert response.json()["created"] is True
    assert response.json()["user"]["id"] != owner_id


@pytest.mark.parametrize(("owner", "lookalike"), LOOKALIKES)
def test_lookalike_addresses_do_not_match_local_users(settings, providers, corp, owner, lookalike):
    policy(settings, LINK_BY_EMAIL=True, LOCAL_EMAIL_VERIFIED="tests.email_policy.always")
    local = local_user("owner", owner)
    response = post(Client(), "corp", corp.mint(sub="lookalike", email=lookalike))
    assert response.status_code == 200, response.content
    assert response.json()["created"] is True
    assert response.json()["user"]["id"] != local.pk


def test_ascii_case_is_the_same_address_for_local_users(settings, providers, corp):
    policy(settings, LINK_BY_EMAIL=True, LOCAL_EMAIL_VERIFIED="tests.email_policy.always")
    local = local_user("owner", "Admin@Corp.Example")
    response = post(Client(), "corp", corp.mint(sub="c", email="admin@CORP.example"))
    assert response.status_code == 200, response.content
    assert response.json()["user"]["id"] == local.pk
