"""The management commands, run with ``call_command`` (and, for exit codes,
as real ``manage.py``-style processes) against the loopback key server."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from django_google_idtoken.keys import get_store
from django_google_idtoken.models import LinkedAccount
from django_google_idtoken.testing import FakeIssuer, KeyServer, generate_key, public_jwk
from tests.helpers import REPO_ROOT, db_state, sign_in

pytestmark = pytest.mark.django_db


def run(name: str, *args: str, **options: Any) -> tuple[str, str]:
    """Run a command; return (stdout, stderr)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command(name, *args, stdout=stdout, stderr=stderr, **options)
    return stdout.getvalue(), stderr.getvalue()


def run_refused(name: str, *args: str, **options: Any) -> str:
    """Run a command that must fail; return its one-line message."""
    with pytest.raises(CommandError) as info:
        run(name, *args, **options)
    assert info.value.returncode != 0
    message = str(info.value)
    assert "\n" not in message
    return message


def manage(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The command as an operator runs it: a process of its own, with the
    suite's settings (whose CERTS_URL is a loopback port nothing serves)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    return subprocess.run(
        [sys.executable, "-m", "django", *args],
        cwd=REPO_ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


# -- idtoken_check ---------------------------------------------------------------


def test_check_prints_the_verified_claims(issuer, key_server):
    token = issuer.mint(sub="9100", email="ada@example.com", name="Ada Lovelace")
    before = db_state()
    out, err = run("idtoken_check", token)
    report = json.loads(out)
    assert report["provider"] == "google"
    assert report["claims"]["sub"] == "9100"
    assert report["claims"]["email"] == "ada@example.com"
    assert report["claims"]["aud"] == issuer.client_id
    assert report["linked_user"] is None
    assert token not in out + err
    # A check is not a sign-in: nothing is created or linked.
    assert db_state() == before


def test_check_names_the_linked_user(client, issuer, key_server):
    assert sign_in(client, issuer.mint(sub="9101", email="grace@gmail.com")).status_code == 200
    user = LinkedAccount.objects.get(sub="9101").user
    out, _ = run("idtoken_check", issuer.mint(sub="9101", email="new@example.com"))
    assert json.loads(out)["linked_user"] == {
        "id": user.pk,
        "username": user.get_username(),
        "email": "grace@gmail.com",
        "is_active": True,
    }
    # The snapshot is not updated by a check either.
    assert LinkedAccount.objects.get(sub="9101").email == "grace@gmail.com"


def test_check_reads_the_token_from_stdin(issuer, key_server):
    token = issuer.mint(sub="9102")
    out, err = run("idtoken_check", "-", stdin=io.StringIO(token + "\n"))
    assert json.loads(out)["claims"]["sub"] == "9102"
    assert token not in out + err


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda issuer: issuer.expired(sub="9103"), "token_expired"),
        (lambda issuer: issuer.wrong_audience(sub="9103"), "wrong_audience"),
        (lambda issuer: issuer.wrong_issuer(sub="9103"), "wrong_issuer"),
        (lambda issuer: issuer.foreign_key(sub="9103"), "invalid_signature"),
        (lambda issuer: issuer.unknown_key(sub="9103"), "unknown_key"),
        (lambda issuer: "not-a-token", "malformed_token"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_check_reports_the_refusal(issuer, key_server, make, code):
    token = make(issuer)
    before = db_state()
    message = run_refused("idtoken_check", token)
    assert message.startswith(f"refused: {code}: ")
    assert token not in message
    assert db_state() == before


def test_check_refusal_names_the_offending_audience(issuer, key_server):
    message = run_refused("idtoken_check", issuer.wrong_audience())
    assert "aud='someone-else.apps.googleusercontent.com'" in message


def test_check_does_not_spend_the_token_under_replay_protection(
    client, issuer, key_server, settings
):
    settings.GOOGLE_IDTOKEN = {**settings.GOOGLE_IDTOKEN, "REPLAY_PROTECTION": True}
    token = issuer.mint(sub="9104")
    run("idtoken_check", token)
    run("idtoken_check", token)
    assert sign_in(client, token).status_code == 200
    # ...but says when a token was spent: that sign-in is what refuses it now.
    message = run_refused("idtoken_check", token)
    assert message.startswith("refused: token_replayed: ")


def test_check_without_keys_reports_keys_unavailable(issuer, key_server):
    key_server.respond = lambda path: (500, {}, b"")
    message = run_refused("idtoken_check", issuer.mint())
    assert message.startswith("refused: keys_unavailable: ")


@pytest.mark.parametrize("token", ["", "   ", "-"])
def test_check_without_a_token_is_an_error(key_server, token):
    message = run_refused("idtoken_check", token, stdin=io.StringIO(""))
    assert message == "no token given"


def test_check_unknown_provider_is_an_error(issuer, key_server):
    message = run_refused("idtoken_check", issuer.mint(), provider="no-such-provider")
    assert "no-such-provider" in message


def test_check_named_google_provider(issuer, key_server):
    out, _ = run("idtoken_check", issuer.mint(sub="9105"), provider="google")
    assert json.loads(out)["claims"]["sub"] == "9105"


def test_check_process_exit_status_and_stderr():
    token = "eyJhbGciOiJub25lIn0.e30."
    refused = manage("idtoken_check", "-", stdin=token)
    assert refused.returncode == 1
    assert "malformed_token" in refused.stderr
    assert token not in refused.stdout + refused.stderr
    assert refused.stdout == ""


# -- idtoken_keys -----------------------------------------------------------------


def test_keys_without_anything_cached(key_server):
    out, _ = run("idtoken_keys")
    assert "No keys cached" in out
    assert repr(key_server.url) in out
    assert key_server.fetches == 0


def test_keys_lists_what_sign_ins_fetched(client, issuer, key_server):
    extra = issuer.add_key()
    assert sign_in(client, issuer.mint()).status_code == 200
    out, _ = run("idtoken_keys")
    assert key_server.fetches == 1  # listing does not fetch
    assert f"Keys for {key_server.url!r}" in out
    assert "(fresh, " in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    for kid in (issuer.active_kid, extra):
        assert "RSA 2048-bit alg=RS256 use=sig" in lines[kid]
        assert lines[kid].endswith("yes")
    assert "Fetched: " in out and "Expires: " in out and " UTC" in out


def test_keys_refresh_fetches_now(issuer, key_server):
    out, _ = run("idtoken_keys", "--refresh")
    assert key_server.fetches == 1
    assert out.startswith(f"Fetched keys from {key_server.url!r}.")
    assert issuer.active_kid in out
    run("idtoken_keys", "--refresh")
    assert key_server.fetches == 2


def test_keys_shows_expiry_from_cache_control(issuer, key_server):
    key_server.cache_control = "public, max-age=7200"
    run("idtoken_keys", "--refresh")
    shared = get_store(key_server.url).shared_document()
    assert shared is not None
    assert shared.expires_at - shared.fetched_at == 7200
    store = get_store(key_server.url)
    store.clock = lambda: shared.fetched_at + 90
    out, _ = run("idtoken_keys")
    assert "(fresh, 1h 58m left)" in out


def test_keys_shows_stale_and_expired_status(issuer, key_server, settings):
    run("idtoken_keys", "--refresh")
    store = get_store(key_server.url)
    shared = store.shared_document()
    assert shared is not None
    store.clock = lambda: shared.expires_at + 600
    out, _ = run("idtoken_keys")
    assert "STALE: expired 10m 00s ago" in out
    assert "KEYS_MAX_STALE" in out
    settings.GOOGLE_IDTOKEN = {**settings.GOOGLE_IDTOKEN, "KEYS_MAX_STALE": 60}
    out, _ = run("idtoken_keys")
    assert "EXPIRED 10m 00s ago, past KEYS_MAX_STALE: not used" in out


def test_keys_marks_keys_the_store_ignores(issuer, key_server):
    small = generate_key(1024)
    document = {"keys": [public_jwk(issuer.active_kid, issuer.keys[issuer.active_kid])]}
    document["keys"].append(public_jwk("small-key", small))
    document["keys"].append({"kid": "ec-key", "kty": "EC", "crv": "P-256"})
    key_server.respond = lambda path: (
        200,
        {"Content-Type": "application/json"},
        json.dumps(document).encode(),
    )
    out, _ = run("idtoken_keys", "--refresh")
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert lines[issuer.active_kid].endswith("yes")
    assert "RSA 1024-bit" in lines["small-key"] and lines["small-key"].endswith("no (ignored)")
    assert "EC" in lines["ec-key"] and lines["ec-key"].endswith("no (ignored)")


def test_keys_describes_pem_certificates(issuer, key_server, settings):
    settings.GOOGLE_IDTOKEN = {
        **settings.GOOGLE_IDTOKEN,
        "CERTS_URL": key_server.base_url + "/v1/certs",
    }
    out, _ = run("idtoken_keys", "--refresh")
    assert "RSA 2048-bit certificate" in out
    assert issuer.active_kid in out


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ((500, {}, b"oops"), "HTTP 500"),
        ((200, {}, b"not json"), "key document is not JSON"),
        ((200, {}, b'{"keys": []}'), "key document holds no usable RSA key"),
    ],
)
def test_keys_refresh_failure_is_one_line_and_non_zero(key_server, answer, reason):
    key_server.respond = lambda path: answer
    message = run_refused("idtoken_keys", "--refresh")
    assert message == f"could not fetch keys from {key_server.url!r}: {reason}"


def test_keys_refresh_fails_even_when_stale_keys_remain(client, issuer, key_server):
    """Sign-ins go on with the keys already held, but a health check must
    still hear that Google's endpoint is failing."""
    assert sign_in(client, issuer.mint()).status_code == 200
    key_server.respond = lambda path: (503, {}, b"")
    message = run_refused("idtoken_keys", "--refresh")
    assert message.endswith(": HTTP 503")
    assert sign_in(client, issuer.mint()).status_code == 200


def test_keys_reports_a_broken_cache(key_server, settings):
    settings.CACHES = {
        **settings.CACHES,
        "broken": {"BACKEND": "tests.keyserver_helpers.BrokenCache"},
    }
    settings.GOOGLE_IDTOKEN = {**settings.GOOGLE_IDTOKEN, "KEYS_CACHE": "broken"}
    message = run_refused("idtoken_keys")
    assert message == "could not read the 'broken' cache: ConnectionError"


def test_keys_refresh_process_exit_status():
    """The suite's CERTS_URL is a loopback port nothing serves: one line on
    stderr (no log line besides), saying who refused, in words."""
    failed = manage("idtoken_keys", "--refresh")
    assert failed.returncode == 1
    assert failed.stderr.splitlines() == [
        "CommandError: could not fetch keys from 'http://127.0.0.1:9/unused': "
        "connection refused by host '127.0.0.1' port 9"
    ]
    assert failed.stdout == ""


def _settings_module(tmp_path: Any, certs_url: str) -> dict[str, str]:
    """A settings module with this CERTS_URL; the environment to run with it."""
    (tmp_path / "keys_settings.py").write_text(
        "from tests.settings import *  # noqa: F403\n"
        f"GOOGLE_IDTOKEN = {{**GOOGLE_IDTOKEN, 'CERTS_URL': {certs_url!r}}}\n"
    )
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "keys_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO_ROOT)]),
    }


def test_keys_refresh_with_an_unresolvable_host_is_one_line_in_words(tmp_path):
    """The README promises one line; a host that does not resolve used to
    print two (a log line and the error), both ending in a bare "gaierror"."""
    env = _settings_module(tmp_path, "https://no-such-host.invalid/oauth2/v3/certs")
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(name, None)  # resolve the host itself, not a proxy's
    failed = subprocess.run(
        [sys.executable, "-m", "django", "idtoken_keys", "--refresh"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 1
    lines = failed.stderr.splitlines()
    assert len(lines) == 1, failed.stderr
    assert re.fullmatch(
        r"CommandError: could not fetch keys from 'https://no-such-host\.invalid/oauth2/v3/certs': "
        r"cannot resolve host 'no-such-host\.invalid' \([A-Za-z][^()]+\)",
        lines[0],
    ), lines[0]
    assert "gaierror" not in failed.stderr


def test_keys_refresh_process_succeeds_against_a_live_server(tmp_path):
    issuer = FakeIssuer()
    server = KeyServer(issuer)
    try:
        env = _settings_module(tmp_path, server.url)
        completed = subprocess.run(
            [sys.executable, "-m", "django", "idtoken_keys", "--refresh"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert completed.returncode == 0, completed.stderr
        assert issuer.active_kid in completed.stdout
        assert server.hits == {"/certs": 1}
    finally:
        server.close()


def test_no_user_is_created_by_any_command(issuer, key_server):
    run("idtoken_check", issuer.mint(sub="9106"))
    run("idtoken_keys", "--refresh")
    assert not get_user_model().objects.exists()
