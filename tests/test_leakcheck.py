"""The suite-wide guard against token material in logs and responses
(tests/conftest.py ``leak_guard``) really sees what it must."""

import logging

import pytest

from django_google_idtoken.errors import Refused
from django_google_idtoken.providers import google
from tests.helpers import post_form
from tests.leakcheck import find_leaks

pytestmark = pytest.mark.django_db


def test_find_leaks_flags_any_17_character_run_of_a_segment(issuer):
    token = issuer.mint()
    header, payload, signature = token.split(".")
    assert find_leaks([f"oops {payload[40:57]} oops"], [token])
    assert find_leaks([signature], [token])
    assert find_leaks([header], [token])
    assert not find_leaks([f"oops {payload[40:56]} oops"], [token])  # 16 characters is fine
    assert not find_leaks(
        ["code=wrong_audience kid='abc' iss='https://accounts.google.com'"], [token]
    )


def test_find_leaks_flags_signature_bytes_in_other_encodings(issuer):
    import base64

    token = issuer.mint()
    raw = base64.urlsafe_b64decode(token.rsplit(".", 1)[1] + "==")
    assert find_leaks([raw.hex()[100:140]], [token])
    assert find_leaks([base64.b64encode(raw).decode()[:20]], [token])
    assert find_leaks([repr(raw)], [token])


def test_the_guard_sees_debug_records_of_any_logger(leak_guard, issuer, key_server):
    token = issuer.mint()
    with pytest.raises(Refused):
        google.verify(token[:-4] + "AAAA")
    assert token[:-4] + "AAAA" in leak_guard.tokens
    logging.getLogger("some.third.party").debug("payload was %s", token.split(".")[1])
    assert leak_guard.leaks()
    leak_guard.texts.clear()  # this test's own leak is deliberate


def test_the_guard_sees_responses(leak_guard, client, issuer, key_server):
    token = issuer.mint()
    post_form(client, "/auth/google/signin/", {"idToken": token})
    assert token in leak_guard.tokens
    assert any('"user"' in text for text in leak_guard.texts)
    assert not leak_guard.leaks()


def test_refusals_are_logged_with_code_and_safe_context_only(
    leak_guard, client, issuer, key_server
):
    post_form(client, "/auth/google/signin/", {"idToken": issuer.wrong_audience()})
    post_form(
        client,
        "/auth/google/signin/",
        {"idToken": issuer.mint(kid="no-such-kid", key=issuer.keys[issuer.active_kid])},
    )
    refusals = [t for t in leak_guard.texts if "ID token refused" in t]
    assert len(refusals) == 2
    wrong_aud, unknown_kid = refusals
    assert wrong_aud.startswith("django_google_idtoken INFO ")
    assert "wrong_audience" in wrong_aud
    assert "aud='someone-else.apps.googleusercontent.com'" in wrong_aud
    assert "iss='https://accounts.google.com'" in wrong_aud
    assert "unknown_key" in unknown_kid and "kid='no-such-kid'" in unknown_kid
