"""A generic OpenID Connect provider ("apple" here, as Sign in with Apple would
be configured), with its own keys and discovery document served on 127.0.0.1;
provider configuration checks; the admin's provider filter."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.contrib.auth import get_user_model
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.test import Client

from django_google_idtoken import transport
from django_google_idtoken.jws import b64url_encode
from django_google_idtoken.models import LinkedAccount
from django_google_idtoken.providers import get_provider, provider_names
from django_google_idtoken.testing import FakeIssuer, KeyServer, public_jwk

from .helpers import assert_refused, db_state, sign_in

pytestmark = pytest.mark.django_db

APPLE_ISSUER = "https://appleid.apple.com"
APPLE_CLIENT_ID = "com.example.app"
APPLE_SIGNIN = "/auth/google/signin/apple/"
JSON = {"Content-Type": "application/json", "Cache-Control": "public, max-age=3600"}


class OIDCServer(KeyServer):
    """The issuer's JWKS at /jwks and its discovery document at
    /.well-known/openid-configuration (which ``discovery`` can replace)."""

    def __init__(self, issuer: FakeIssuer) -> None:
        super().__init__(issuer)
        self.discovery: dict[str, Any] = {
            "issuer": issuer.issuer,
            "jwks_uri": self.base_url + "/jwks",
        }
        #: JWKS entries as published (tests may edit "alg").
        self.jwk_changes: dict[str, dict[str, Any]] = {}
        self.respond = self._respond

    def _respond(self, path: str) -> tuple[int, dict[str, str], bytes]:
        if path == "/jwks":
            keys = [
                {**public_jwk(kid, key), **self.jwk_changes.get(kid, {})}
                for kid, key in self.issuer.keys.items()
            ]
            return 200, JSON, json.dumps({"keys": keys}).encode()
        if path == "/.well-known/openid-configuration":
            return 200, JSON, json.dumps(self.discovery).encode()
        return 404, {}, b"not found"


@pytest.fixture
def apple() -> FakeIssuer:
    return FakeIssuer(client_id=APPLE_CLIENT_ID, issuer=APPLE_ISSUER)


@pytest.fixture
def apple_server(apple: FakeIssuer) -> Iterator[OIDCServer]:
    server = OIDCServer(apple)
    yield server
    server.close()


def configure(settings: Any, **entry: Any) -> None:
    settings.GOOGLE_IDTOKEN = {
        **settings.GOOGLE_IDTOKEN,
        "PROVIDERS": {
            "apple": {
                "TYPE": "oidc",
                "ISSUER": APPLE_ISSUER,
                "CLIENT_IDS": [APPLE_CLIENT_ID],
                **entry,
            }
        },
    }


@pytest.fixture
def jwks_configured(settings: Any, apple_server: OIDCServer, key_server: Any) -> OIDCServer:
    configure(settings, JWKS_URL=apple_server.base_url + "/jwks")
    return apple_server


@pytest.fixture
def discovery_configured(settings: Any, apple_server: OIDCServer, key_server: Any) -> OIDCServer:
    configure(settings, DISCOVERY_URL=apple_server.base_url + "/.well-known/openid-configuration")
    return apple_server


def apple_token(apple: FakeIssuer, **overrides: Any) -> str:
    # Apple's shape: email_verified as a string, no name or picture.
    claims = {"email_verified": "true", **overrides}
    return apple.mint(
        drop=["name", "picture", "given_name", "family_name", "azp", "at_hash"], **claims
    )


def signed(apple: FakeIssuer, alg: str, digest: hashes.HashAlgorithm, **overrides: Any) -> str:
    """A token signed with ``alg`` (FakeIssuer signs RS256 only)."""
    kid = apple.active_kid
    header = {"alg": alg, "kid": kid, "typ": "JWT"}
    signing_input = (
        b64url_encode(json.dumps(header).encode())
        + "."
        + b64url_encode(json.dumps(apple.claims(**overrides)).encode())
    )
    key: rsa.RSAPrivateKey = apple.keys[kid]
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), digest)
    return signing_input + "." + b64url_encode(signature)


def post(client: Any, token: str) -> Any:
    return client.post(APPLE_SIGNIN, {"id_token": token}, content_type="application/json")


# -- sign-in ------------------------------------------------------------------------


@pytest.mark.parametrize("configured", ["jwks_configured", "discovery_configured"])
def test_sign_in_with_an_oidc_provider(client, apple, configured, request):
    server = request.getfixturevalue(configured)
    response = post(
        client, apple_token(apple, sub="001234.abcd", email="ada@privaterelay.appleid.com")
    )
    assert response.status_code == 200, response.content
    account = LinkedAccount.objects.get()
    assert (account.provider, account.sub) == ("apple", "001234.abcd")
    # Apple's string "true" counts as verified.
    assert account.email_verified is True
    assert server.hits["/jwks"] == 1


def test_discovery_and_keys_are_fetched_once(client, apple, discovery_configured):
    for _ in range(3):
        assert post(client, apple_token(apple)).status_code == 200
    assert discovery_configured.hits == {"/.well-known/openid-configuration": 1, "/jwks": 1}


@pytest.mark.parametrize(
    ("discovery", "why"),
    [
        ({"issuer": "https://evil.example", "jwks_uri": None}, "another issuer"),
        ({"issuer": APPLE_ISSUER, "jwks_uri": "http://keys.example/jwks"}, "http jwks_uri"),
        ({"issuer": APPLE_ISSUER}, "no jwks_uri"),
        # URLs urllib cannot take apart (they used to raise, a 500 per sign-in).
        ({"issuer": APPLE_ISSUER, "jwks_uri": "https://[keys.example/jwks"}, "unparsable"),
        ({"issuer": APPLE_ISSUER, "jwks_uri": "https://keys.example:99999/jwks"}, "bad port"),
    ],
)
def test_unusable_discovery_document_is_keys_unavailable(
    client, apple, discovery_configured, discovery, why
):
    discovery_configured.discovery = {
        k: (v if v is not None else discovery_configured.base_url + "/jwks")
        for k, v in discovery.items()
    }
    before = db_state()
    response = post(client, apple_token(apple))
    assert_refused(response, 503, "keys_unavailable")
    assert "Retry-After" in response
    assert discovery_configured.hits["/jwks"] == 0, why
    assert db_state() == before


@pytest.mark.parametrize(
    "headers",
    [
        {"Age": "\u00b2"},
        {"Cache-Control": "public, max-age=" + "9" * 5000},
        {"Cache-Control": "max-age=60", "Age": "9" * 5000},
    ],
    ids=["age-superscript", "max-age-5000-digits", "age-5000-digits"],
)
def test_discovery_document_with_odd_freshness_headers_is_used(
    client, apple, discovery_configured, headers
):
    """Headers no sane server sends do not make a good discovery document
    unusable (they used to raise, a 500 on every sign-in)."""
    serve = discovery_configured.respond

    def respond(path: str) -> tuple[int, dict[str, str], bytes]:
        status, sent, body = serve(path)
        return status, {**sent, **headers}, body

    discovery_configured.respond = respond
    assert post(client, apple_token(apple)).status_code == 200
    assert discovery_configured.hits == {"/.well-known/openid-configuration": 1, "/jwks": 1}


def test_unforeseen_failure_in_discovery_is_keys_unavailable(
    client, apple, discovery_configured, monkeypatch
):
    """Any exception while fetching the discovery document (a bug nobody
    foresaw, stood in for by an HTTP client that raises one) is a failed
    fetch: 503 keys_unavailable, backed off, never a 500."""
    asked: list[str] = []

    def request(method: str, url: str, **kwargs: Any) -> Any:
        asked.append(url)
        raise RuntimeError("nobody saw this coming")

    monkeypatch.setattr(transport, "request", request)
    for _ in range(3):
        response = post(client, apple_token(apple))
        assert_refused(response, 503, "keys_unavailable")
        assert "Retry-After" in response
    assert len(asked) == 1


def test_email_verified_other_spellings_do_not_count(client, apple, jwks_configured):
    post(client, apple_token(apple, sub="a", email="a@example.com", email_verified="false"))
    post(client, apple_token(apple, sub="b", email="b@example.com", email_verified="TRUE"))
    post(client, apple_token(apple, sub="c", email="c@example.com", email_verified=True))
    assert dict(LinkedAccount.objects.values_list("sub", "email_verified")) == {
        "a": False,
        "b": False,
        "c": True,
    }


def test_hd_means_nothing_from_another_issuer(client, apple, jwks_configured):
    post(client, apple_token(apple, hd="example.com"))
    assert LinkedAccount.objects.get().hosted_domain == ""


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda a: apple_token(a, iss="https://accounts.google.com"), "wrong_issuer"),
        (lambda a: apple_token(a, iss=APPLE_ISSUER + "/"), "wrong_issuer"),
        (lambda a: apple_token(a, aud="com.other.app"), "wrong_audience"),
        (lambda a: a.expired(), "token_expired"),
        (lambda a: a.foreign_key(), "invalid_signature"),
    ],
    ids=["google-iss", "trailing-slash", "aud", "expired", "foreign-key"],
)
def test_oidc_refusals(client, apple, jwks_configured, make, code):
    before = db_state()
    assert_refused(post(client, make(apple)), 401, code)
    assert db_state() == before


def test_a_google_token_is_not_an_apple_token(client, issuer, jwks_configured):
    before = db_state()
    assert_refused(post(client, issuer.mint(aud=APPLE_CLIENT_ID)), 401, "unknown_key")
    assert db_state() == before


def test_an_apple_token_is_not_a_google_token(client, apple, jwks_configured):
    before = db_state()
    assert_refused(sign_in(client, apple_token(apple)), 401, "unknown_key")
    assert db_state() == before


# -- algorithms ----------------------------------------------------------------------


def test_algorithm_allow_list(client, apple, apple_server, key_server, settings):
    configure(settings, JWKS_URL=apple_server.base_url + "/jwks", ALGORITHMS=["RS384"])
    apple_server.jwk_changes[apple.active_kid] = {"alg": "RS384"}
    assert post(client, signed(apple, "RS384", hashes.SHA384())).status_code == 200
    # RS256 is not on this provider's list, whatever the token says.
    assert_refused(post(client, apple.mint()), 401, "unsupported_algorithm")


def test_a_key_published_for_one_algorithm_verifies_no_other(
    client, apple, apple_server, key_server, settings
):
    configure(settings, JWKS_URL=apple_server.base_url + "/jwks", ALGORITHMS=["RS256", "RS512"])
    # Published for RS256 only: an RS512 token under its kid is refused,
    # though its signature is genuine.
    assert_refused(post(client, signed(apple, "RS512", hashes.SHA512())), 401, "unknown_key")
    assert post(client, apple.mint()).status_code == 200


def test_an_rsa_key_without_alg_serves_the_allowed_algorithms(
    client, apple, apple_server, key_server, settings
):
    configure(settings, JWKS_URL=apple_server.base_url + "/jwks", ALGORITHMS=["RS256", "RS512"])

    def without_alg(path: str) -> tuple[int, dict[str, str], bytes]:
        keys = [public_jwk(kid, key) for kid, key in apple.keys.items()]
        for jwk in keys:
            del jwk["alg"]
        return 200, JSON, json.dumps({"keys": keys}).encode()

    apple_server.respond = without_alg
    assert post(client, signed(apple, "RS512", hashes.SHA512())).status_code == 200
    assert post(client, apple.mint(sub="other")).status_code == 200


def test_a_google_key_published_for_rs512_does_not_verify_rs256(client, issuer, key_server):
    key_server.respond = lambda path: (
        200,
        JSON,
        json.dumps(
            {"keys": [{**public_jwk(kid, key), "alg": "RS512"} for kid, key in issuer.keys.items()]}
        ).encode(),
    )
    assert_refused(sign_in(client, issuer.mint()), 401, "unknown_key")


# -- linking by email ------------------------------------------------------------------


def test_oidc_email_links_only_with_trust_email(client, apple, apple_server, key_server, settings):
    user = get_user_model().objects.create_user("ada", email="ada@example.com")
    settings.GOOGLE_IDTOKEN = {**settings.GOOGLE_IDTOKEN, "LINK_BY_EMAIL": True}
    configure(settings, JWKS_URL=apple_server.base_url + "/jwks")
    # Without TRUST_EMAIL the issuer's address neither links nor blocks.
    response = post(Client(), apple_token(apple, sub="a1", email="ada@example.com"))
    assert response.status_code == 200, response.content
    assert response.json()["created"] is True
    assert response.json()["user"]["id"] != user.pk

    configure(settings, JWKS_URL=apple_server.base_url + "/jwks", TRUST_EMAIL=True)
    # Unverified: still not Ada's.
    unverified = apple_token(apple, sub="a2", email="ada@example.com", email_verified="false")
    response = post(Client(), unverified)
    assert response.json()["created"] is True
    assert response.json()["user"]["id"] != user.pk
    response = post(client, apple_token(apple, sub="a3", email="ada@example.com"))
    assert response.status_code == 200, response.content
    assert response.json()["user"]["id"] == user.pk


def test_one_user_can_hold_accounts_from_several_providers(
    client, issuer, apple, apple_server, key_server, settings
):
    settings.GOOGLE_IDTOKEN = {**settings.GOOGLE_IDTOKEN, "LINK_BY_EMAIL": True}
    configure(settings, JWKS_URL=apple_server.base_url + "/jwks", TRUST_EMAIL=True)
    first = sign_in(client, issuer.mint(email="ada@gmail.com")).json()
    client.logout()
    second = post(client, apple_token(apple, email="ada@gmail.com")).json()
    assert second["user"]["id"] == first["user"]["id"]
    assert sorted(LinkedAccount.objects.values_list("provider", flat=True)) == ["apple", "google"]


# -- configuration ---------------------------------------------------------------------


def _ids(settings: Any, providers: Any, **top: Any) -> list[str]:
    settings.GOOGLE_IDTOKEN = {"CLIENT_IDS": ["x"], **top, "PROVIDERS": providers}
    return sorted(m.id for m in run_checks() if m.id and m.id.startswith("django_google_idtoken"))


GOOD_OIDC = {
    "TYPE": "oidc",
    "ISSUER": APPLE_ISSUER,
    "CLIENT_IDS": ["a"],
    "JWKS_URL": "https://appleid.apple.com/auth/keys",
}


@pytest.mark.parametrize(
    ("providers", "expected"),
    [
        ({}, []),
        ({"nowgg": {"CLIENT_IDS": ["n"]}}, []),
        ({"apple": GOOD_OIDC}, []),
        (
            {
                "ms": {
                    **GOOD_OIDC,
                    "JWKS_URL": "",
                    "DISCOVERY_URL": "https://login.microsoftonline.com/x/v2.0/.well-known/openid-configuration",
                }
            },
            [],
        ),
        ({"Apple": GOOD_OIDC}, ["E006"]),
        ({"a" * 33: GOOD_OIDC}, ["E006"]),
        ({"google": GOOD_OIDC}, ["E006"]),
        ({"apple": "oidc"}, ["E006"]),
        ({"apple": {**GOOD_OIDC, "TYPE": "saml"}}, ["E006"]),
        ({"apple": {k: v for k, v in GOOD_OIDC.items() if k != "TYPE"}}, ["E006"]),
        ({"apple": {**GOOD_OIDC, "CLIENT_ID": "a"}}, ["E006"]),
        ({"apple": {**GOOD_OIDC, "CLIENT_IDS": []}}, ["E007"]),
        ({"nowgg": {}}, ["E007"]),
        ({"apple": {**GOOD_OIDC, "CLIENT_IDS": "a"}}, ["E006"]),
        ({"apple": {**GOOD_OIDC, "JWKS_URL": "http://appleid.apple.com/auth/keys"}}, ["E008"]),
        ({"apple": {**GOOD_OIDC, "ISSUER": "http://appleid.apple.com"}}, ["E008"]),
        ({"apple": {**GOOD_OIDC, "ISSUER": ""}}, ["E006"]),
        ({"nowgg": {"CLIENT_IDS": ["n"], "VERIFY_URL": "http://now.gg/verify"}}, ["E008"]),
        ({"nowgg": {"CLIENT_IDS": ["n"], "VERIFY_URL": "http://127.0.0.1:9/v"}}, []),
        ({"apple": {**GOOD_OIDC, "DISCOVERY_URL": "https://x.example/d"}}, ["E006"]),
        ({"apple": {**GOOD_OIDC, "JWKS_URL": ""}}, ["E006"]),
        ({"apple": {**GOOD_OIDC, "ALGORITHMS": ["HS256"]}}, ["E006"]),
        ({"apple": {**GOOD_OIDC, "ALGORITHMS": ["none"]}}, ["E006"]),
        ({"apple": {**GOOD_OIDC, "ALGORITHMS": []}}, ["E006"]),
        ({"apple": {**GOOD_OIDC, "TRUST_EMAIL": "yes"}}, ["E006"]),
        ({"nowgg": {"CLIENT_IDS": ["n"], "CACHE_SECONDS": -1}}, ["E006"]),
        ({"nowgg": {"CLIENT_IDS": ["n"], "CACHE_SECONDS": True}}, ["E006"]),
        (["nowgg"], ["E004"]),
    ],
)
def test_provider_checks(settings, providers, expected):
    assert _ids(settings, providers) == [f"django_google_idtoken.{e}" for e in expected]


def test_no_google_client_is_fine_when_another_provider_is_configured(settings):
    assert _ids(settings, {"nowgg": {"CLIENT_IDS": ["n"]}}, CLIENT_IDS=[]) == []
    assert _ids(settings, {}, CLIENT_IDS=[]) == ["django_google_idtoken.E001"]


def test_a_misconfigured_provider_is_improperly_configured_when_used(settings):
    settings.GOOGLE_IDTOKEN = {"CLIENT_IDS": ["x"], "PROVIDERS": {"apple": {"TYPE": "oidc"}}}
    with pytest.raises(ImproperlyConfigured):
        get_provider("apple")


def test_provider_names_and_registry_follow_the_settings(settings):
    settings.GOOGLE_IDTOKEN = {"CLIENT_IDS": ["x"], "PROVIDERS": {"apple": GOOD_OIDC}}
    first = get_provider("apple")
    assert get_provider("apple") is first
    assert provider_names() == ["google", "apple"]
    settings.GOOGLE_IDTOKEN = {"CLIENT_IDS": ["x"], "PROVIDERS": {"nowgg": {"CLIENT_IDS": ["n"]}}}
    assert provider_names() == ["google", "nowgg"]


# -- admin -------------------------------------------------------------------------------


def test_admin_filters_linked_accounts_by_provider(admin_client):
    user = get_user_model().objects.create_user("ada")
    LinkedAccount.objects.create(user=user, provider="google", sub="1", email="g@gmail.com")
    LinkedAccount.objects.create(user=user, provider="nowgg", sub="1", email="n@example.com")
    LinkedAccount.objects.create(user=user, provider="apple", sub="2", email="a@example.com")
    url = "/admin/django_google_idtoken/linkedaccount/"
    page = admin_client.get(url).content.decode()
    for name in ("google", "nowgg", "apple"):
        assert f"?provider={name}" in page
    filtered = admin_client.get(url, {"provider": "nowgg"}).content.decode()
    assert "n@example.com" in filtered
    assert "g@gmail.com" not in filtered and "a@example.com" not in filtered


# -- idtoken_keys --provider ------------------------------------------------------------


def _keys_command(*args: str, **options: Any) -> str:
    out = io.StringIO()
    call_command("idtoken_keys", *args, stdout=out, **options)
    return out.getvalue()


def test_idtoken_keys_for_an_oidc_provider_found_by_discovery(apple, discovery_configured):
    out = _keys_command(provider="apple", refresh=True)
    assert f"Fetched keys from '{discovery_configured.base_url}/jwks'." in out
    assert apple.active_kid in out
    assert discovery_configured.hits == {"/.well-known/openid-configuration": 1, "/jwks": 1}


HOSTILE_SUFFIX = "/jwks\x1b]0;owned\x07\x1b[2J\n2026-12-02 12:00:00 INFO forged: user 1 signed in"


def _control_characters(text: str) -> set[str]:
    return {c for c in text if not c.isprintable() and c != "\n"}


def test_idtoken_keys_escapes_a_discovered_jwks_uri(apple, discovery_configured):
    """The jwks_uri comes from the network: printed by idtoken_keys, its
    escape sequences must not reach the operator's terminal, nor its newline
    make a second line (as kids are, it is printed as repr())."""
    hostile = discovery_configured.base_url + HOSTILE_SUFFIX
    discovery_configured.discovery["jwks_uri"] = hostile
    out = _keys_command(provider="apple")
    assert repr(hostile) in out
    assert _control_characters(out) == set()
    assert len(out.strip().splitlines()) == 1
    with pytest.raises(CommandError) as info:
        _keys_command(provider="apple", refresh=True)
    message = str(info.value)
    assert repr(hostile) in message
    assert _control_characters(message) == set()
    assert "\n" not in message


def test_key_store_log_lines_escape_a_discovered_jwks_uri(
    client, apple, discovery_configured, leak_guard
):
    """Nor does it reach the logs raw: a newline in it would forge a log line."""
    hostile = discovery_configured.base_url + HOSTILE_SUFFIX
    discovery_configured.discovery["jwks_uri"] = hostile
    response = post(client, apple_token(apple))
    assert_refused(response, 503, "keys_unavailable")
    # The package's own records (the formatter puts the logger name first):
    # Django 4.2's template engine logs tracebacks that merely mention it.
    logged = [text for text in leak_guard.texts if text.startswith("django_google_idtoken")]
    assert any(repr(hostile) in text for text in logged), logged
    for text in logged:
        assert _control_characters(text) == set(), text
        assert "\n" not in text, text


def test_idtoken_keys_refuses_providers_without_keys(settings, key_server):
    settings.GOOGLE_IDTOKEN = {
        **settings.GOOGLE_IDTOKEN,
        "PROVIDERS": {"nowgg": {"CLIENT_IDS": ["n"]}},
    }
    with pytest.raises(CommandError, match="publishes no keys"):
        _keys_command(provider="nowgg")
    with pytest.raises(CommandError, match="unknown provider 'nope'.*google, nowgg"):
        _keys_command(provider="nope")


def test_idtoken_keys_reports_an_unusable_discovery_document(apple, discovery_configured):
    discovery_configured.discovery = {"issuer": "https://evil.example"}
    with pytest.raises(CommandError, match="provider 'apple': .*keys"):
        _keys_command(provider="apple", refresh=True)


# -- Authorization: Bearer with another provider's token -----------------------------


def test_bearer_takes_an_oidc_providers_token(client, apple, jwks_configured):
    signed_in = post(client, apple_token(apple, sub="bearer-1")).json()
    response = Client().get(
        "/auth/google/me/", HTTP_AUTHORIZATION=f"Bearer {apple_token(apple, sub='bearer-1')}"
    )
    assert response.status_code == 200, response.content
    assert response.json()["id"] == signed_in["user"]["id"]


def test_bearer_chooses_by_iss_but_the_provider_still_verifies(client, apple, jwks_configured):
    post(client, apple_token(apple, sub="bearer-2"))
    # Names Apple's issuer, but is signed by a key Apple does not publish.
    forged = apple.foreign_key(sub="bearer-2")
    response = Client().get("/auth/google/me/", HTTP_AUTHORIZATION=f"Bearer {forged}")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_signature"
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
