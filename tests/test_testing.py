"""The public testing toolkit (``django_google_idtoken.testing`` and its pytest
plugin), through its public interface: tokens it mints go through the real
sign-in view, ``authenticate()`` and ``GoogleProvider.verify``; nothing is
mocked. The README's downstream examples are run by test_readme_examples.py.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
import unittest
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import authenticate
from django.test import RequestFactory, TestCase

from django_google_idtoken.backends import get_refusal
from django_google_idtoken.errors import Refused
from django_google_idtoken.keys import DEFAULT_TTL, get_store, reset_stores
from django_google_idtoken.providers import google
from django_google_idtoken.testing import (
    DEFAULT_CLIENT_ID,
    FakeGoogle,
    FakeGoogleMixin,
    FakeIssuer,
    KeyServer,
)
from tests.conftest import CLIENT_ID
from tests.helpers import assert_refused, db_state, sign_in
from tests.keyserver_helpers import network_calls

pytestmark = pytest.mark.django_db

CONNECTS = {"socket.connect", "socket.getaddrinfo", "socket.gethostbyname"}


def refusal_code(token: str) -> str:
    with pytest.raises(Refused) as info:
        google.verify(token)
    return info.value.code


# -- installed keys: the real code path, no network -----------------------------


def test_fake_google_signs_in_through_the_real_view_without_network(client, fake_google):
    with network_calls() as calls:
        response = sign_in(client, fake_google.mint(sub="7001", email="ada@gmail.com"))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["created"] is True
    assert body["account"]["sub"] == "7001"
    assert body["user"]["email"] == "ada@gmail.com"
    assert not [event for event, _ in calls if event in CONNECTS]


def test_settings_point_at_the_fake_while_it_is_active(fake_google):
    value = django_settings.GOOGLE_IDTOKEN
    assert value["CERTS_URL"] == fake_google.certs_url
    assert fake_google.certs_url.startswith("http://127.0.0.1:")
    # The project's first client id is the default audience; the list is kept.
    assert fake_google.client_id == CLIENT_ID
    assert value["CLIENT_IDS"] == [CLIENT_ID, "1234-ios.apps.googleusercontent.com"]


def test_authenticate_accepts_fake_tokens(fake_google):
    request = RequestFactory().post("/")
    user = authenticate(request, id_token=fake_google.mint(sub="7002"))
    assert user is not None
    assert user.linked_accounts.get().sub == "7002"


def test_default_claims_are_googles(fake_google):
    claims = fake_google.claims()
    assert claims["iss"] == "https://accounts.google.com"
    assert claims["aud"] == claims["azp"] == fake_google.client_id
    assert len(claims["sub"]) == 21 and claims["sub"].isdigit()
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["email_verified"] is True
    assert {"email", "name", "given_name", "family_name", "picture", "at_hash"} <= set(claims)
    assert fake_google.claims()["sub"] != claims["sub"]


def test_any_claim_can_be_overridden_or_dropped(client, fake_google):
    token = fake_google.mint(
        sub="7003", email="grace@example.org", name="Grace Hopper", hd="example.org"
    )
    account = sign_in(client, token).json()["account"]
    assert (account["email"], account["name"], account["hosted_domain"]) == (
        "grace@example.org",
        "Grace Hopper",
        "example.org",
    )
    dropped = sign_in(client, fake_google.mint(sub="7004", drop=["email", "name", "picture"]))
    assert dropped.status_code == 200, dropped.content
    assert dropped.json()["account"]["email"] == ""
    assert dropped.json()["account"]["name"] == ""


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda google: google.expired(sub="7005"), "token_expired"),
        (lambda google: google.wrong_audience(sub="7005"), "wrong_audience"),
        (lambda google: google.wrong_issuer(sub="7005"), "wrong_issuer"),
        (lambda google: google.foreign_key(sub="7005"), "invalid_signature"),
        (lambda google: google.unknown_key(sub="7005"), "unknown_key"),
        (lambda google: google.mint(drop=["sub"]), "invalid_claims"),
        (lambda google: google.mint(iat=google.issuer.now() + 3600), "token_not_yet_valid"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_bad_tokens_are_refused_by_the_real_view(client, fake_google, make, code):
    before = db_state()
    with network_calls() as calls:
        response = sign_in(client, make(fake_google))
    assert_refused(response, 401, code)
    assert db_state() == before
    assert not [event for event, _ in calls if event in CONNECTS]


def test_rotation_keeps_old_tokens_until_their_key_is_removed(client, fake_google):
    old_kid = fake_google.active_kid
    old_token = fake_google.mint(sub="7006")
    new_kid = fake_google.rotate()
    assert fake_google.active_kid == new_kid != old_kid
    assert set(fake_google.keys) == {old_kid, new_kid}
    new_token = fake_google.mint(sub="7006")
    assert json.loads(_segment(new_token, 0))["kid"] == new_kid
    assert google.verify(old_token).sub == "7006"
    assert google.verify(new_token).sub == "7006"
    fake_google.remove_key(old_kid)
    with network_calls() as calls:
        assert refusal_code(old_token) == "unknown_key"
    assert not [event for event, _ in calls if event in CONNECTS]
    assert sign_in(client, new_token).status_code == 200


def test_added_key_is_published_before_it_signs(fake_google):
    kid = fake_google.add_key()
    assert fake_google.active_kid != kid
    token = fake_google.mint(sub="7007", kid=kid)
    assert google.verify(token).sub == "7007"


def test_keys_changed_on_the_issuer_are_installed_by_publish(fake_google):
    token = fake_google.mint(sub="7008")
    fake_google.issuer.keys.clear()
    fake_google.issuer.rotate()
    fake_google.publish()
    assert refusal_code(token) == "unknown_key"


def test_installed_keys_survive_a_new_process_store(fake_google):
    """Installed keys are shared through KEYS_CACHE like fetched ones: a
    store built afterwards (another worker) has them without fetching."""
    reset_stores()
    with network_calls() as calls:
        assert google.verify(fake_google.mint(sub="7009")).sub == "7009"
    assert not [event for event, _ in calls if event in CONNECTS]
    assert get_store(fake_google.certs_url).stats.fetches == 0


def test_tokens_verify_only_while_the_fake_is_active(settings):
    original = dict(settings.GOOGLE_IDTOKEN)
    with FakeGoogle() as fake:
        token = fake.mint(sub="7010")
        assert google.verify(token).sub == "7010"
        url = fake.certs_url
        store = get_store(url)
    assert original == settings.GOOGLE_IDTOKEN
    # The installed document is gone from the shared cache and the process.
    assert store.shared_document() is None
    assert get_store(url) is not store


def test_exit_restores_settings_after_a_failing_block(settings):
    original = dict(settings.GOOGLE_IDTOKEN)
    with pytest.raises(RuntimeError), FakeGoogle():
        raise RuntimeError("the test failed")
    assert original == settings.GOOGLE_IDTOKEN


def test_a_fake_cannot_be_started_twice():
    with FakeGoogle() as fake, pytest.raises(RuntimeError):
        fake.start()


def test_client_id_not_configured_is_added_for_the_duration(settings):
    original = dict(settings.GOOGLE_IDTOKEN)
    with FakeGoogle(client_id="999-other.apps.googleusercontent.com") as fake:
        assert django_settings.GOOGLE_IDTOKEN["CLIENT_IDS"] == [
            *original["CLIENT_IDS"],
            "999-other.apps.googleusercontent.com",
        ]
        assert google.verify(fake.mint(sub="7011")).audience == fake.client_id
    assert original == settings.GOOGLE_IDTOKEN


def test_project_without_client_ids_gets_the_default(settings):
    settings.GOOGLE_IDTOKEN = {"CERTS_URL": "http://127.0.0.1:9/unused"}
    with FakeGoogle() as fake:
        assert fake.client_id == DEFAULT_CLIENT_ID
        assert django_settings.GOOGLE_IDTOKEN["CLIENT_IDS"] == [DEFAULT_CLIENT_ID]
        assert google.verify(fake.mint(sub="7012")).sub == "7012"
    assert settings.GOOGLE_IDTOKEN == {"CERTS_URL": "http://127.0.0.1:9/unused"}


def test_existing_issuer_keeps_its_keys_and_client_id(issuer):
    with FakeGoogle(issuer) as fake:
        assert fake.issuer is issuer
        assert fake.client_id == issuer.client_id
        assert google.verify(issuer.mint(sub="7013")).sub == "7013"


def test_other_settings_are_kept(settings):
    settings.GOOGLE_IDTOKEN = {**settings.GOOGLE_IDTOKEN, "HOSTED_DOMAINS": ["example.org"]}
    with FakeGoogle() as fake:
        assert refusal_code(fake.mint()) == "hosted_domain_not_allowed"
        assert google.verify(fake.mint(hd="example.org")).hosted_domain == "example.org"


def test_fake_google_works_with_the_settings_fixture_changed_in_the_test(
    client, fake_google, settings
):
    """The fixture's setting rides on pytest-django's ``settings``, so a test
    may change GOOGLE_IDTOKEN further (by copying it) and everything is
    restored in order afterwards."""
    settings.GOOGLE_IDTOKEN = {**settings.GOOGLE_IDTOKEN, "CREATE_USERS": False}
    assert_refused(sign_in(client, fake_google.mint(sub="7014")), 403, "signup_disabled")


# -- loopback HTTP mode ---------------------------------------------------------


@pytest.mark.fake_google(http=True)
def test_http_mode_serves_the_keys_on_loopback(client, fake_google):
    server = fake_google.server
    assert isinstance(server, KeyServer)
    assert django_settings.GOOGLE_IDTOKEN["CERTS_URL"] == server.url
    assert server.fetches == 0  # nothing installed: the app fetches
    assert sign_in(client, fake_google.mint(sub="7015")).status_code == 200
    assert sign_in(client, fake_google.mint(sub="7016")).status_code == 200
    assert server.hits == {"/certs": 1}
    # A rotated key is picked up by the app's unknown-kid refetch.
    fake_google.rotate()
    assert sign_in(client, fake_google.mint(sub="7017")).status_code == 200
    assert server.hits == {"/certs": 2}


@pytest.mark.fake_google(http=True, max_age=120)
def test_http_mode_sends_max_age(fake_google):
    assert fake_google.server is not None
    _, headers, _ = fake_google.server.answer("/certs")
    assert headers["Cache-Control"].startswith("public, max-age=120,")
    google.verify(fake_google.mint())
    keyset = get_store(fake_google.certs_url).current()
    assert keyset.expires_at - keyset.fetched_at == 120


def test_http_mode_server_stops_on_exit():
    with FakeGoogle(http=True) as fake:
        server = fake.server
        assert server is not None
    assert fake.server is None
    assert server.httpd.socket.fileno() == -1


def test_key_server_serves_both_formats_and_follows_the_issuer():
    issuer = FakeIssuer()
    server = KeyServer(issuer, max_age=60)
    try:
        _, _, jwks = server.answer("/certs")
        _, _, pems = server.answer("/v1/certs")
        assert [key["kid"] for key in json.loads(jwks)["keys"]] == [issuer.active_kid]
        assert list(json.loads(pems)) == [issuer.active_kid]
        assert server.answer("/certs")[2] is jwks  # rendered once per key set
        old_kid = issuer.active_kid
        new_kid = issuer.rotate()
        _, _, rotated = server.answer("/certs")
        assert [key["kid"] for key in json.loads(rotated)["keys"]] == [old_kid, new_kid]
        issuer.remove_key(old_kid)
        _, _, pems = server.answer("/v1/certs")
        assert list(json.loads(pems)) == [new_kid]
        assert server.answer("/nothing")[0] == 404
        assert server.v1_url == server.base_url + "/v1/certs"
        assert server.snapshot() == server.hits
    finally:
        server.close()


# -- the Django runner ------------------------------------------------------------


class MixinTests(FakeGoogleMixin, TestCase):
    """FakeGoogleMixin under Django's TestCase (pytest runs it the way
    Django's runner would, with the suite's autouse fixtures around it; the
    README's example runs under Django's own runner)."""

    def test_sign_in(self) -> None:
        token = self.fake_google.mint(sub="7018")
        response = self.client.post(
            "/auth/google/signin/", {"id_token": token}, content_type="application/json"
        )
        self.assertEqual(response.status_code, 200)
        self.assertEqual(django_settings.GOOGLE_IDTOKEN["CERTS_URL"], self.fake_google.certs_url)

    def test_refusal(self) -> None:
        request = RequestFactory().post("/")
        self.assertIsNone(authenticate(request, id_token=self.fake_google.unknown_key()))
        refusal = get_refusal(request)
        assert refusal is not None
        self.assertEqual(refusal.code, "unknown_key")


class MixinOptionTests(FakeGoogleMixin, TestCase):
    fake_google_options = {"client_id": "555-mixin.apps.googleusercontent.com", "http": True}

    def test_options_are_applied(self) -> None:
        self.assertIsNotNone(self.fake_google.server)
        self.assertIn(
            "555-mixin.apps.googleusercontent.com", django_settings.GOOGLE_IDTOKEN["CLIENT_IDS"]
        )
        self.assertEqual(google.verify(self.fake_google.mint(sub="7019")).sub, "7019")


def test_mixin_restores_settings_after_each_test(settings):
    original = dict(settings.GOOGLE_IDTOKEN)
    seen: list[str] = []

    class Case(FakeGoogleMixin, unittest.TestCase):
        def test_verify(self) -> None:
            seen.append(django_settings.GOOGLE_IDTOKEN["CERTS_URL"])
            self.assertEqual(google.verify(self.fake_google.mint(sub="7021")).sub, "7021")

    result = Case("test_verify").run()
    assert result is not None and result.wasSuccessful(), result.errors + result.failures
    assert seen and seen[0] != original["CERTS_URL"]
    assert original == settings.GOOGLE_IDTOKEN


# -- KeyStore.load, the public way the fake installs keys ----------------------------


def test_load_installs_a_document_without_fetching(settings):
    issuer = FakeIssuer(client_id=CLIENT_ID)
    url = "http://127.0.0.1:9/never-fetched"
    settings.GOOGLE_IDTOKEN = {**settings.GOOGLE_IDTOKEN, "CERTS_URL": url}
    store = get_store(url)
    keyset = store.load(json.dumps(issuer.pem_certificates()).encode(), ttl=600)
    assert set(keyset.keys) == {issuer.active_kid}
    assert keyset.expires_at - keyset.fetched_at == 600
    with network_calls() as calls:
        assert google.verify(issuer.mint(sub="7020")).sub == "7020"
        # A loaded document is the complete key list until it expires: an
        # unknown kid is refused at once, with no refetch.
        assert refusal_code(issuer.unknown_key()) == "unknown_key"
    assert not [event for event, _ in calls if event in CONNECTS]
    assert store.stats.fetches == 0
    shared = store.shared_document()
    assert shared is not None and shared.url == url
    assert list(json.loads(shared.body)) == [issuer.active_kid]


def test_load_default_ttl():
    store = get_store("http://127.0.0.1:9/default-ttl")
    keyset = store.load(json.dumps(FakeIssuer().jwks()).encode())
    assert keyset.expires_at - keyset.fetched_at == DEFAULT_TTL


@pytest.mark.parametrize(
    ("document", "ttl"),
    [
        (b"not json", 60),
        (b'{"keys": []}', 60),
        (b"[]", 60),
        (json.dumps({"keys": [{"kid": "x", "kty": "EC"}]}).encode(), 60),
        (b'{"keys": []}', 0),
    ],
)
def test_load_refuses_unusable_documents(document, ttl):
    store = get_store("http://127.0.0.1:9/bad-documents")
    with pytest.raises(ValueError):
        store.load(document, ttl=ttl)
    assert store.shared_document() is None


# -- the pytest plugin ---------------------------------------------------------------


def test_plugin_is_registered_by_entry_point(request):
    assert request.config.pluginmanager.hasplugin("django_google_idtoken")


def test_plugin_does_not_disturb_projects_without_django(tmp_path: Path):
    """A project that never configures Django: the plugin is loaded (from the
    installed package's entry point), adds no autouse fixture and touches no
    Django settings."""
    (tmp_path / "test_plain.py").write_text(
        textwrap.dedent(
            """
            def test_plain(request):
                from django.conf import settings
                assert request.config.pluginmanager.hasplugin("django_google_idtoken")
                assert not settings.configured
                assert "fake_google" not in request.fixturenames
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"]
        + ["test_plain.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "1 passed" in completed.stdout


def test_plugin_works_without_pytest_django(tmp_path: Path):
    """Django configured by hand, pytest-django off: the fixture falls back
    to override_settings and restores the setting after the test."""
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            """
            import django
            from django.conf import settings

            settings.configure(
                INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes",
                                "django_google_idtoken"],
                USE_TZ=True,
                GOOGLE_IDTOKEN={"CLIENT_IDS": ["abc.apps.googleusercontent.com"]},
            )
            django.setup()
            """
        )
    )
    (tmp_path / "test_by_hand.py").write_text(
        textwrap.dedent(
            """
            from django.conf import settings
            from django_google_idtoken.providers import google

            def test_fixture(fake_google):
                assert settings.GOOGLE_IDTOKEN["CERTS_URL"] == fake_google.certs_url
                claims = google.verify(fake_google.mint(sub="1"))
                assert claims.audience == "abc.apps.googleusercontent.com"

            def test_restored_afterwards():
                assert settings.GOOGLE_IDTOKEN == {
                    "CLIENT_IDS": ["abc.apps.googleusercontent.com"]
                }
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:django"]
        + ["-W", "error", "test_by_hand.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "2 passed" in completed.stdout


def _segment(token: str, index: int) -> str:
    part = token.split(".")[index]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode()
