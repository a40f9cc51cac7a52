"""The key store (django_google_idtoken.keys), over the real code path.

Keys are served over real HTTP on 127.0.0.1 (the toolkit's ``KeyServer``, or a
``RawServer`` for answers a well-behaved server will not give), tokens are
minted by ``FakeIssuer``, and tokens go through ``google.verify`` or the
store's own API. Time moves through the store's injected clock; nothing in
the fetch path or the store is mocked, and no test asserts a duration: the
tests count requests instead.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import math
import secrets
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.cache import caches
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from django_google_idtoken import transport
from django_google_idtoken.conf import conf
from django_google_idtoken.errors import KeysUnavailable, Refused
from django_google_idtoken.jws import b64url_encode
from django_google_idtoken.keys import (
    DEFAULT_TTL,
    FAILURE_BACKOFF,
    MAX_DOCUMENT_BYTES,
    MAX_TTL,
    MIN_TTL,
    KeyStore,
    get_store,
    reset_stores,
    ttl_from_headers,
)
from django_google_idtoken.outages import LOG_INTERVAL
from django_google_idtoken.providers import google
from django_google_idtoken.testing import (
    FakeIssuer,
    KeyServer,
    generate_key,
    pem_certificate,
    public_jwk,
)
from django_google_idtoken.transport import url_allowed
from tests.conftest import CLIENT_ID
from tests.helpers import SIGNIN, sign_in
from tests.keyserver_helpers import (
    RawServer,
    closed_port,
    drip,
    network_calls,
    stop_quickly,
)

Answer = tuple[int, dict[str, str], bytes]
JSON = {"Content-Type": "application/json"}
KEYS_LOGGER = "django_google_idtoken.keys"


# -- helpers -------------------------------------------------------------------


class Clock:
    """A clock the test moves by hand; installed as ``store.clock``."""

    def __init__(self, t: float | None = None) -> None:
        self.t = time.time() if t is None else t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def configure(settings: Any, **values: Any) -> None:
    """Change some GOOGLE_IDTOKEN keys (settings are read live)."""
    settings.GOOGLE_IDTOKEN = {**settings.GOOGLE_IDTOKEN, **values}


def store_with_clock(url: str, clock: Clock) -> KeyStore:
    """The process store for ``url``, running on ``clock`` (before its first use)."""
    store = get_store(url)
    store.clock = clock
    return store


def jwks_answer(issuer: FakeIssuer, **headers: str) -> Callable[[str], Answer]:
    """A ``respond`` for the key server: the issuer's live JWKS with exactly ``headers``."""

    def respond(path: str) -> Answer:
        return 200, {**JSON, **headers}, json.dumps(issuer.jwks()).encode()

    return respond


def fixed_answer(status: int, headers: dict[str, str], body: bytes) -> Callable[[str], Answer]:
    return lambda path: (status, headers, body)


def assert_keys_unavailable(token: str) -> KeysUnavailable:
    """Verification fails with the 503 refusal clients are told to retry."""
    with pytest.raises(KeysUnavailable) as info:
        google.verify(token)
    error = info.value
    assert isinstance(error, Refused)
    assert error.code == "keys_unavailable"
    assert error.status == 503
    assert isinstance(error.retry_after, int)
    assert error.retry_after >= 1
    return error


def assert_refused(token: str, code: str) -> None:
    with pytest.raises(Refused) as info:
        google.verify(token)
    assert info.value.code == code


def random_kid_tokens(token: str, count: int) -> list[str]:
    """``count`` attacker tokens: a real token's payload and signature under
    random kids (what a flood of unknown kids looks like on the wire)."""
    _, payload, signature = token.split(".")
    tokens = []
    for _ in range(count):
        header = {"alg": "RS256", "kid": secrets.token_hex(20), "typ": "JWT"}
        header_b64 = b64url_encode(json.dumps(header).encode())
        tokens.append(f"{header_b64}.{payload}.{signature}")
    return tokens


def run_concurrently(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``count`` threads released together; return each
    result or the exception it raised."""
    barrier = threading.Barrier(count)

    def task(i: int) -> Any:
        barrier.wait()
        try:
            return work(i)
        except Exception as err:  # noqa: BLE001 - returned for the test to inspect
            return err

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(task, range(count)))


def ec_jwk(kid: str) -> dict[str, str]:
    # No "alg": the key type alone must make it unusable.
    numbers = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "use": "sig",
        "kid": kid,
        "x": b64url_encode(numbers.x.to_bytes(32, "big")),
        "y": b64url_encode(numbers.y.to_bytes(32, "big")),
    }


@pytest.fixture(autouse=True)
def _collect_leaks_here() -> Iterator[None]:
    """Collect garbage after each test with ResourceWarning silenced, so that
    a connection leaked by one test is reported by the test written for it
    (test_error_answers_do_not_leak_the_connection), not at random in a later
    test that happens to trigger the garbage collector."""
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.fixture
def key_server(key_server: KeyServer) -> Iterator[KeyServer]:
    """conftest's key server, stopped without waiting out the server loop's
    0.5 s poll interval (which would otherwise dominate this module's run time)."""
    yield key_server
    stop_quickly(key_server.httpd)


@pytest.fixture
def token(issuer: FakeIssuer) -> str:
    return issuer.mint(sub="1000")


@pytest.fixture
def clock(key_server: KeyServer) -> Clock:
    """The store for the key server's URL, on a clock the test moves."""
    clock = Clock()
    store_with_clock(key_server.url, clock)
    return clock


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[Any], None]], RawServer]]:
    """Start ``RawServer``s with a given connection handler; closed after the test."""
    servers: list[RawServer] = []

    def start(handler: Callable[[Any], None]) -> RawServer:
        server = RawServer(handler)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


# -- 1. both of Google's formats -------------------------------------------------


def test_jwks_document_verifies_tokens(issuer, key_server, token):
    claims = google.verify(token)
    assert claims.sub == "1000"
    assert claims.audience == CLIENT_ID
    assert key_server.hits == {"/certs": 1}


def test_pem_certificate_map_verifies_tokens(issuer, key_server, settings, token):
    """Google's v1/certs format: {kid: PEM certificate}."""
    configure(settings, CERTS_URL=key_server.base_url + "/v1/certs")
    claims = google.verify(token)
    assert claims.sub == "1000"
    assert key_server.hits == {"/v1/certs": 1}


@pytest.mark.parametrize("path", ["/certs", "/v1/certs"])
def test_every_published_key_verifies(issuer, key_server, settings, path):
    """Google publishes two or three keys at once; each one must be usable."""
    configure(settings, CERTS_URL=key_server.base_url + path)
    second = issuer.add_key()
    assert google.verify(issuer.mint(sub="1")).sub == "1"
    assert google.verify(issuer.mint(sub="2", kid=second)).sub == "2"
    assert key_server.fetches == 1


def test_jwk_with_verify_key_ops_is_usable(issuer, key_server, token):
    """Control for the "encrypt-key-ops-only" fault: key_ops naming "verify" is fine."""
    jwk = {**public_jwk(issuer.active_kid, issuer.keys[issuer.active_kid]), "key_ops": ["verify"]}
    key_server.respond = fixed_answer(200, JSON, json.dumps({"keys": [jwk]}).encode())
    assert google.verify(token).sub == "1000"


def test_key_is_chosen_by_kid(issuer, key_server):
    """A token signed with key A under key B's kid does not verify: the kid
    selects exactly one key, never "any key that works"."""
    second = issuer.add_key()
    forged = issuer.mint(kid=second, key=issuer.keys[issuer.active_kid])
    assert_refused(forged, "invalid_signature")


# -- 2. parse once ---------------------------------------------------------------


def test_warm_store_fetches_and_parses_once(issuer, key_server):
    tokens = [issuer.mint(sub=str(i)) for i in range(25)]
    for t in tokens * 2:
        google.verify(t)
    store = get_store(key_server.url)
    assert key_server.fetches == 1
    assert store.stats.fetches == 1
    assert store.stats.parses == 1


def test_changed_document_is_parsed_again(issuer, key_server, token):
    """The parse counter counts real work (so the test above is meaningful)."""
    google.verify(token)
    issuer.rotate()
    store = get_store(key_server.url)
    store.refresh()
    assert store.stats.parses == 2
    assert key_server.fetches == 2


def test_refetched_unchanged_document_is_not_parsed_again(issuer, key_server, clock, token):
    """When the keys expire and the endpoint answers the same document, the
    parsed key objects are kept (no second parse), as the shared-cache path
    already does."""
    google.verify(token)
    store = get_store(key_server.url)
    before = store.current().keys[issuer.active_kid]
    clock.advance(3600 + 1)
    google.verify(token)
    assert key_server.fetches == 2
    assert store.stats.parses == 1
    assert store.current().keys[issuer.active_kid] is before


# -- 3. Cache-Control ------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "fresh_for"),
    [
        pytest.param(
            {"Cache-Control": "public, max-age=1000, must-revalidate, no-transform", "Age": "400"},
            600,
            id="max-age-minus-age",
        ),
        pytest.param({"Cache-Control": "public, max-age=1000"}, 1000, id="max-age"),
        pytest.param({}, DEFAULT_TTL, id="no-cache-control"),
        pytest.param({"Cache-Control": "no-store"}, MIN_TTL, id="no-store"),
        pytest.param({"Cache-Control": "no-cache"}, MIN_TTL, id="no-cache"),
        pytest.param({"Cache-Control": "public, max-age=3600, no-cache"}, MIN_TTL, id="both"),
        pytest.param({"Cache-Control": "max-age=31536000"}, MAX_TTL, id="clamped-to-max"),
        pytest.param({"Cache-Control": "max-age=0"}, MIN_TTL, id="clamped-to-min"),
    ],
)
def test_freshness_follows_cache_control(issuer, key_server, clock, token, headers, fresh_for):
    key_server.respond = jwks_answer(issuer, **headers)
    start = clock.t
    google.verify(token)
    assert key_server.fetches == 1
    clock.t = start + fresh_for - 1
    google.verify(token)
    assert key_server.fetches == 1, "refetched while still fresh"
    clock.t = start + fresh_for + 1
    google.verify(token)
    assert key_server.fetches == 2, "not refetched once expired"
    google.verify(token)
    assert key_server.fetches == 2


@pytest.mark.parametrize(
    ("cache_control", "age", "ttl"),
    [
        ("public, max-age=19800, must-revalidate, no-transform", None, 19800),  # Google's
        ("public, max-age=3600", "600", 3000),
        ("max-age=3600", " 600 ", 3000),
        ("MAX-AGE=120", None, 120),
        ('max-age="120"', None, 120),
        ("max-age=3600", "not-a-number", 3600),
        ("max-age=100", "500", MIN_TTL),  # older than its max-age: not fresh for long
        ("max-age=0", None, MIN_TTL),
        ("max-age=2", None, MIN_TTL),
        ("max-age=99999999999999999999", None, MAX_TTL),
        ("no-store", None, MIN_TTL),
        ("private, no-cache", None, MIN_TTL),
        ("max-age=3600, no-store", None, MIN_TTL),
        (None, None, DEFAULT_TTL),
        ("", None, DEFAULT_TTL),
        ("public", None, DEFAULT_TTL),
        ("max-age=abc", None, DEFAULT_TTL),
        ("s-maxage=100", None, DEFAULT_TTL),  # a shared-cache directive, not ours
        ("x-max-age=100", None, DEFAULT_TTL),  # a look-alike directive is not max-age
        # Digits that str.isdigit() (or the regex \d) takes but HTTP does not:
        # ASCII digits only (RFC 9111 1.2.2), whatever int() would make of them.
        ("max-age=3600", "\u00b2", 3600),  # superscript two: int() raises
        ("max-age=3600", "\u0663", 3600),  # ARABIC-INDIC DIGIT THREE
        ("max-age=\u0663\u0666\u0660\u0660", None, DEFAULT_TTL),
        ("max-age=\u00b2", None, DEFAULT_TTL),
        # Longer than Python converts (4,300 digits): RFC 9111 1.2.2's 2^31.
        ("max-age=" + "9" * 5000, None, MAX_TTL),
        ("max-age=" + "0" * 4999 + "77", None, 77),  # leading zeros are not size
        ("max-age=3600", "9" * 5000, MIN_TTL),
        ("max-age=2147483648", "2147483647", MIN_TTL),
    ],
)
def test_ttl_from_headers(cache_control, age, ttl):
    assert ttl_from_headers(cache_control, age) == ttl


_HEADER_TEXT = st.text(
    st.one_of(
        st.characters(),
        st.sampled_from(list('0123456789 ,="\t')),
        st.characters(categories=["Nd", "No"]),
    ),
    max_size=60,
)
_DIGITS = st.one_of(
    st.integers(min_value=0, max_value=10**12).map(str),
    st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=12),
    st.integers(min_value=4000, max_value=6000).map(lambda n: "9" * n),
)


@given(
    cache_control=st.one_of(
        st.none(),
        _HEADER_TEXT,
        st.tuples(_HEADER_TEXT, _DIGITS, _HEADER_TEXT).map(
            lambda t: f"{t[0]},max-age={t[1]}{t[2]}"
        ),
        _DIGITS.map(lambda digits: f"public, max-age={digits}"),
    ),
    age=st.one_of(st.none(), _HEADER_TEXT, _DIGITS),
)
@hypothesis_settings(deadline=None)
def test_ttl_from_headers_never_raises(cache_control, age):
    """Whatever the endpoint sends in Cache-Control and Age, the answer is a
    freshness within bounds, never an exception."""
    ttl = ttl_from_headers(cache_control, age)
    assert type(ttl) is int
    assert MIN_TTL <= ttl <= MAX_TTL


@given(max_age=st.integers(0, 10**6), age=st.integers(0, 10**6))
def test_ttl_from_headers_reads_ascii_digits(max_age, age):
    """Control for the test above: ordinary values are read, not ignored."""
    expected = max(MIN_TTL, min(MAX_TTL, max_age - age))
    assert ttl_from_headers(f"public, max-age={max_age}", str(age)) == expected


ODD_HEADERS = {
    "age-superscript": {"Cache-Control": "public, max-age=1000", "Age": "\u00b2"},
    "age-superscripts": {"Cache-Control": "public, max-age=1000", "Age": "\u00b3\u00b9"},
    "max-age-5000-digits": {"Cache-Control": "public, max-age=" + "9" * 5000},
    "age-5000-digits": {"Cache-Control": "public, max-age=1000", "Age": "9" * 5000},
}


@pytest.mark.parametrize("headers", list(ODD_HEADERS.values()), ids=list(ODD_HEADERS))
def test_odd_freshness_headers_still_serve_the_keys(issuer, key_server, clock, token, headers):
    """A key document with headers no sane server sends is still a good key
    document: a cold store fetches it and verifies, and so does an expired
    store refreshing from it (which used to raise on every sign-in)."""
    key_server.respond = jwks_answer(issuer, **headers)
    assert google.verify(token).sub == "1000"
    assert key_server.fetches == 1
    clock.advance(MAX_TTL + 1)
    assert google.verify(token).sub == "1000"
    assert key_server.fetches == 2
    assert get_store(key_server.url).stats.failures == 0


# -- 4. the shared cache ---------------------------------------------------------


def test_document_is_shared_with_other_processes_through_the_cache(issuer, key_server, token):
    google.verify(token)
    assert key_server.fetches == 1
    reset_stores()  # a new worker process: nothing held locally
    google.verify(token)
    store = get_store(key_server.url)
    assert key_server.fetches == 1
    assert store.stats.fetches == 0
    assert store.stats.parses == 1  # its own parsed objects, from the cached document


def test_shared_document_is_dropped_with_the_cache(issuer, key_server, token):
    """The sharing really goes through the Django cache (and nowhere else)."""
    google.verify(token)
    caches["default"].clear()
    reset_stores()
    google.verify(token)
    assert key_server.fetches == 2


def test_shared_document_keeps_the_fetchers_expiry(issuer, key_server, token):
    """Another process does not restart the freshness period: it uses the
    document until the max-age the endpoint sent runs out, then refetches."""
    key_server.cache_control = "public, max-age=1000"
    start = time.time()
    store_with_clock(key_server.url, Clock(start))
    google.verify(token)
    reset_stores()
    other_clock = Clock(start + 999)
    store_with_clock(key_server.url, other_clock)
    google.verify(token)
    assert key_server.fetches == 1
    other_clock.t = start + 1001
    google.verify(token)
    assert key_server.fetches == 2


def test_expired_process_picks_up_a_document_another_process_refreshed(issuer, key_server):
    """Workers share refreshes too, not only the first fetch."""
    token = issuer.mint()
    start = time.time()
    first = store_with_clock(key_server.url, Clock(start))
    first.get(issuer.active_kid)
    reset_stores()
    second = store_with_clock(key_server.url, Clock(start))
    second.get(issuer.active_kid)
    assert key_server.fetches == 1
    first.clock = Clock(start + 3601)
    first.get(issuer.active_kid)  # expired: refetches and shares
    assert key_server.fetches == 2
    second.clock = Clock(start + 3602)
    second.get(issuer.active_kid)
    assert key_server.fetches == 2
    assert google.verify(token).sub


def test_different_urls_do_not_share_a_cache_entry(issuer, key_server):
    """The URL is part of the cache key: two issuers' documents never mix."""
    other_issuer = FakeIssuer(client_id=CLIENT_ID)
    other_server = KeyServer(other_issuer)
    try:
        kid, other_kid = issuer.active_kid, other_issuer.active_kid
        get_store(key_server.url).get(kid)
        get_store(other_server.url).get(other_kid)
        reset_stores()
        ours, theirs = get_store(key_server.url), get_store(other_server.url)
        assert set(ours.current().keys) == {kid}
        assert set(theirs.current().keys) == {other_kid}
        assert (key_server.fetches, other_server.fetches) == (1, 1)
    finally:
        stop_quickly(other_server.httpd)
        other_server.close()


def test_keys_cache_setting_chooses_the_cache(issuer, key_server, settings, token):
    # A LOCATION of its own: local-memory caches with the same LOCATION share storage.
    settings.CACHES = {
        **settings.CACHES,
        "keys": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"idtoken-keys-{secrets.token_hex(8)}",
        },
    }
    configure(settings, KEYS_CACHE="keys")
    google.verify(token)
    # Clearing the default cache changes nothing: the document is not there.
    caches["default"].clear()
    reset_stores()
    google.verify(token)
    assert key_server.fetches == 1
    # Clearing the configured cache does.
    caches["keys"].clear()
    reset_stores()
    google.verify(token)
    assert key_server.fetches == 2


def test_cache_outage_does_not_stop_sign_ins(issuer, key_server, settings, clock, token, caplog):
    """With the shared cache down, the process still holds its parsed keys,
    and the unknown-kid cool-down still applies locally."""
    settings.CACHES = {
        **settings.CACHES,
        "broken": {"BACKEND": "tests.keyserver_helpers.BrokenCache"},
    }
    configure(settings, KEYS_CACHE="broken")
    for _ in range(10):
        assert google.verify(token).sub == "1000"
    assert key_server.fetches == 1
    codes = [refusal_code(flood_token) for flood_token in random_kid_tokens(token, 50)]
    assert codes == ["unknown_key"] + ["key_refresh_pending"] * 49
    assert key_server.fetches == 2
    assert any(
        r.name == KEYS_LOGGER and r.levelno == logging.WARNING and "cache" in r.getMessage()
        for r in caplog.records
    )


# -- 5. single flight ------------------------------------------------------------


def test_cold_store_fetches_once_under_concurrency(issuer, key_server):
    key_server.delay = 0.3  # the first fetch is still running when the others arrive
    tokens = [issuer.mint(sub=str(i)) for i in range(50)]
    results = run_concurrently(50, lambda i: google.verify(tokens[i]))
    assert [getattr(r, "sub", r) for r in results] == [str(i) for i in range(50)]
    assert key_server.fetches == 1


def test_expired_store_refetches_once_under_concurrency(issuer, key_server, clock, token):
    google.verify(token)
    clock.advance(3600 + 1)
    key_server.delay = 0.3
    results = run_concurrently(50, lambda i: google.verify(token))
    assert all(getattr(r, "sub", None) == "1000" for r in results), results
    assert key_server.fetches == 2


def test_failing_cold_fetch_is_not_repeated_by_waiting_threads(issuer, key_server, token):
    key_server.delay = 0.3
    key_server.respond = fixed_answer(500, {}, b"internal error")
    results = run_concurrently(50, lambda i: google.verify(token))
    assert all(isinstance(r, KeysUnavailable) for r in results), results
    assert key_server.fetches == 1


def test_concurrent_unknown_kid_flood_refetches_once(issuer, key_server, clock, token):
    google.verify(token)
    flood = random_kid_tokens(token, 400)

    def work(i: int) -> list[str]:
        codes = []
        for t in flood[i::20]:
            try:
                google.verify(t)
            except Refused as err:
                codes.append(err.code)
        return codes

    results = run_concurrently(20, work)
    # One refetch: the token that made it is refused as unknown; the others,
    # meeting the spent cool-down, are told to retry (made-up or not, nothing
    # tells their kids from a key the issuer started using a moment ago).
    codes = Counter(code for thread_codes in results for code in thread_codes)
    assert codes == {"unknown_key": 1, "key_refresh_pending": 399}, results
    assert key_server.fetches == 2


# -- 6. rotation -----------------------------------------------------------------


def test_rotated_key_is_accepted_after_exactly_one_refetch(issuer, key_server, token):
    old_kid = issuer.active_kid
    google.verify(token)
    new_kid = issuer.rotate()
    assert new_kid != old_kid
    assert google.verify(issuer.mint(sub="2")).sub == "2"
    assert key_server.fetches == 2
    assert google.verify(issuer.mint(sub="3")).sub == "3"
    assert google.verify(token).sub == "1000"  # the old key is still published
    assert key_server.fetches == 2


def test_removed_key_stops_verifying_after_the_next_refresh(issuer, key_server, clock, token):
    old_kid = issuer.active_kid
    google.verify(token)
    issuer.rotate()
    issuer.remove_key(old_kid)
    # Until the keys are refreshed, the cached (still fresh) document applies.
    assert google.verify(token).sub == "1000"
    clock.advance(3600 + 1)
    assert_refused(token, "unknown_key")
    assert google.verify(issuer.mint(sub="2")).sub == "2"


def test_removed_key_stops_verifying_after_an_explicit_refresh(issuer, key_server, token):
    old_kid = issuer.active_kid
    google.verify(token)
    issuer.rotate()
    issuer.remove_key(old_kid)
    store = get_store(key_server.url)
    store.refresh()
    assert old_kid not in store.current().keys
    assert_refused(token, "unknown_key")


def test_rotation_seen_by_another_process_without_another_fetch(issuer, key_server):
    """Process B refetches for the new kid; process A (whose cool-down B's
    refetch has taken, cache-wide) finds the new document in the shared cache."""
    start = time.time()
    process_a = store_with_clock(key_server.url, Clock(start))
    process_a.get(issuer.active_kid)
    reset_stores()
    process_b = store_with_clock(key_server.url, Clock(start + 1))
    process_b.get(issuer.active_kid)
    assert key_server.fetches == 1
    new_kid = issuer.rotate()
    process_b.get(new_kid)
    assert key_server.fetches == 2
    process_a.clock = Clock(start + 2)
    assert process_a.get(new_kid) is not None
    assert key_server.fetches == 2


# -- 7. unknown kid flood --------------------------------------------------------


def window_start(t: float, length: float) -> float:
    """The start of the cool-down window (aligned to the clock) ``t`` is in."""
    return math.floor(t / length) * length


def refusal_code(token: str) -> str:
    with pytest.raises(Refused) as info:
        google.verify(token)
    return info.value.code


def assert_pending(token: str) -> Refused:
    """Refused for now, with a retry, not as unknown: 503 key_refresh_pending."""
    with pytest.raises(Refused) as info:
        google.verify(token)
    refusal = info.value
    assert (refusal.code, refusal.status) == ("key_refresh_pending", 503)
    assert isinstance(refusal.retry_after, int) and refusal.retry_after >= 1
    return refusal


def test_unknown_kid_flood_refetches_once_per_cooldown(issuer, key_server, settings, clock, token):
    """1,000 random kids cost one refetch per cool-down window: the first is
    refused as unknown (the keys fetched for it do not list it), the rest
    are told to retry when the window ends. A key the issuer starts using
    meanwhile is not refused, and is accepted once the window has passed."""
    configure(settings, KEYS_REFETCH_COOLDOWN=10)
    clock.t = window_start(clock.t, 10) + 1
    google.verify(token)
    assert key_server.fetches == 1
    codes = Counter(refusal_code(t) for t in random_kid_tokens(token, 1000))
    assert codes == {"unknown_key": 1, "key_refresh_pending": 999}
    assert key_server.fetches == 2
    issuer.rotate()
    rotated = issuer.mint(sub="2")
    refusal = assert_pending(rotated)
    assert refusal.retry_after == 9
    assert key_server.fetches == 2
    clock.advance(refusal.retry_after)
    assert google.verify(rotated).sub == "2"
    assert key_server.fetches == 3
    for t in random_kid_tokens(token, 100):
        assert_pending(t)
    assert key_server.fetches == 3


def test_unknown_kid_cooldown_holds_within_the_cooldown_window(
    issuer, key_server, settings, clock, token
):
    """The window's length is the setting's: still spent just before it ends,
    and the next one allows one refetch again."""
    configure(settings, KEYS_REFETCH_COOLDOWN=60)
    clock.t = window_start(clock.t, 60) + 0.5
    google.verify(token)
    flood = random_kid_tokens(token, 3)
    assert refusal_code(flood[0]) == "unknown_key"
    clock.advance(59)
    assert assert_pending(flood[1]).retry_after == 1
    assert key_server.fetches == 2
    clock.advance(1)
    assert refusal_code(flood[2]) == "unknown_key"
    assert key_server.fetches == 3


def test_unknown_kid_cooldown_is_shared_across_processes(issuer, key_server, clock, token):
    google.verify(token)
    flood = random_kid_tokens(token, 2)
    assert refusal_code(flood[0]) == "unknown_key"
    assert key_server.fetches == 2
    reset_stores()  # another worker, sharing the cache
    store_with_clock(key_server.url, clock)
    assert_pending(flood[1])
    assert key_server.fetches == 2


def test_a_kid_proven_absent_is_refused_at_once(issuer, key_server, clock, token):
    """A kid that keys fetched after its token arrived did not list is no key
    of the issuer's (issuers publish before they sign): the same kid again is
    refused as unknown at once, costing nothing, while another new kid still
    meets the spent cool-down."""
    google.verify(token)
    same, other = random_kid_tokens(token, 2)
    for _ in range(5):
        assert refusal_code(same) == "unknown_key"
    assert key_server.fetches == 2
    assert_pending(other)
    assert key_server.fetches == 2


def test_failed_refetch_for_an_unknown_kid_is_keys_unavailable(issuer, key_server, clock, token):
    """Whether the issuer publishes the kid cannot be known while its
    endpoint fails: 503 keys_unavailable, not 401, and the endpoint is not
    asked again before the back-off ends."""
    google.verify(token)
    key_server.respond = fixed_answer(500, {}, b"down")
    issuer.rotate()
    rotated = issuer.mint(sub="2")
    assert_keys_unavailable(rotated)
    assert key_server.fetches == 2
    clock.advance(MIN_TTL)
    assert_keys_unavailable(rotated)
    assert key_server.fetches == 2
    key_server.respond = None
    clock.advance(FAILURE_BACKOFF)
    assert google.verify(rotated).sub == "2"


@pytest.mark.django_db
def test_rotation_under_garbage_traffic_is_never_refused_as_unknown(
    client, issuer, key_server, clock, token
):
    """Issue 12's soak: a client sends a token with a made-up kid every
    second, which spends each cool-down window's refetch; two seconds after
    one such refetch the issuer starts signing with a new key. A client
    signing in with the new key every second, and retrying as Retry-After
    says, is never answered 401: 503 key_refresh_pending at most until the
    window ends, then 200, within the default KEYS_REFETCH_COOLDOWN. The
    made-up kids end in refusals, and the issuer sees one request per
    window at most."""
    cooldown = conf.KEYS_REFETCH_COOLDOWN
    assert cooldown == 5  # the default, not a setting chosen for the test
    start = window_start(clock.t, cooldown) + cooldown + 0.3
    clock.t = start
    google.verify(token)
    garbage = iter(random_kid_tokens(token, 200))
    garbage_codes: Counter[str] = Counter()
    answers: list[tuple[float, int]] = []
    retry_at: float | None = None
    rotated_at = first_accepted = None
    for second in range(90):
        clock.t = start + second
        garbage_codes[refusal_code(next(garbage))] += 1
        if second == 32:  # two seconds after the garbage refetch at 30
            issuer.rotate()
            rotated_at = clock.t
        if rotated_at is None or (retry_at is not None and clock.t < retry_at):
            continue
        response = sign_in(client, issuer.mint(sub="rotated"))
        answers.append((clock.t - rotated_at, response.status_code))
        if response.status_code == 503:
            assert response.json()["code"] == "key_refresh_pending"
            retry_after = int(response["Retry-After"])
            assert 1 <= retry_after <= cooldown
            retry_at = clock.t + retry_after
        else:
            assert response.status_code == 200, response.content
            first_accepted = first_accepted or clock.t
            retry_at = None
    assert {status for _, status in answers} == {503, 200}, answers
    assert first_accepted is not None and rotated_at is not None
    assert first_accepted - rotated_at <= cooldown, answers
    assert all(status == 200 for waited, status in answers if waited > cooldown), answers
    assert set(garbage_codes) == {"unknown_key", "key_refresh_pending"}
    assert garbage_codes["unknown_key"] >= 90 // cooldown - 1, garbage_codes
    # One fetch to start, at most one per window after.
    assert key_server.fetches <= 1 + 90 // cooldown + 1


# -- 8. faults with a cold cache --------------------------------------------------

_SMALL_KEY = generate_key(1024)


def _faults() -> dict[str, Callable[[FakeIssuer], Answer]]:
    def jwks(keys: list[dict[str, Any]]) -> bytes:
        return json.dumps({"keys": keys}).encode()

    def real_jwk(issuer: FakeIssuer, **changes: Any) -> dict[str, Any]:
        return {**public_jwk(issuer.active_kid, issuer.keys[issuer.active_kid]), **changes}

    def padded(issuer: FakeIssuer) -> bytes:
        # Valid JSON holding the real keys: only the size cap refuses it.
        return json.dumps(issuer.jwks()).encode() + b" " * MAX_DOCUMENT_BYTES

    return {
        "http-500": lambda i: (500, {}, b"internal error"),
        "http-404": lambda i: (404, {}, b"not found"),
        "http-204": lambda i: (204, {}, b""),
        "not-json": lambda i: (200, JSON, b"<html>Service Unavailable</html>"),
        "not-utf8": lambda i: (200, JSON, b'{"keys": "\xff\xfe"}'),
        "json-array": lambda i: (200, JSON, json.dumps(i.jwks()["keys"]).encode()),
        "json-string": lambda i: (200, JSON, b'"keys"'),
        "json-null": lambda i: (200, JSON, b"null"),
        "deeply-nested-json": lambda i: (200, JSON, b"[" * 100_000 + b"]" * 100_000),
        "empty-object": lambda i: (200, JSON, b"{}"),
        "empty-key-list": lambda i: (200, JSON, jwks([])),
        "keys-not-a-list": lambda i: (200, JSON, b'{"keys": {"kty": "RSA"}}'),
        "ec-key-only": lambda i: (200, JSON, jwks([ec_jwk(i.active_kid)])),
        "rsa-1024-only": lambda i: (200, JSON, jwks([public_jwk(i.active_kid, _SMALL_KEY)])),
        "encryption-key-only": lambda i: (200, JSON, jwks([real_jwk(i, use="enc")])),
        # RFC 7517 4.3: a key whose key_ops leave out "verify" is not for verifying.
        "encrypt-key-ops-only": lambda i: (200, JSON, jwks([real_jwk(i, key_ops=["encrypt"])])),
        "malformed-rsa-only": lambda i: (200, JSON, jwks([real_jwk(i, n="!!not base64!!")])),
        "pem-ec-only": lambda i: (
            200,
            JSON,
            json.dumps(
                {i.active_kid: pem_certificate(ec.generate_private_key(ec.SECP256R1()))}
            ).encode(),
        ),
        "pem-1024-only": lambda i: (
            200,
            JSON,
            json.dumps({i.active_kid: pem_certificate(_SMALL_KEY)}).encode(),
        ),
        "pem-garbage": lambda i: (
            200,
            JSON,
            json.dumps({i.active_kid: "-----BEGIN CERTIFICATE-----\nnope\n"}).encode(),
        ),
        "too-large": lambda i: (200, JSON, padded(i)),
    }


FAULTS = _faults()


@pytest.mark.parametrize("fault", list(FAULTS))
def test_bad_answer_with_a_cold_cache_is_keys_unavailable(issuer, key_server, token, fault):
    key_server.respond = fixed_answer(*FAULTS[fault](issuer))
    assert_keys_unavailable(token)
    assert key_server.fetches == 1


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_is_not_followed(issuer, key_server, token, status):
    """The configured URL is the trust anchor: a redirect, even to a URL that
    serves good keys, is a failure."""
    target = key_server.base_url + "/v1/certs"

    def respond(path: str) -> Answer:
        if path == "/certs":
            return status, {"Location": target}, b""
        return 200, JSON, json.dumps(issuer.pem_certificates()).encode()

    key_server.respond = respond
    assert_keys_unavailable(token)
    assert key_server.hits == {"/certs": 1}


@pytest.mark.parametrize("status", [500, 302])
def test_error_answers_do_not_leak_the_connection(issuer, key_server, token, status):
    """An HTTP error answer's connection is closed, not left for the garbage
    collector (which reports it as an unclosed socket, at random, in whatever
    test or request happens to trigger a collection)."""
    headers = {"Location": key_server.base_url + "/v1/certs"}
    key_server.respond = fixed_answer(status, headers, b"error")
    gc.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert_keys_unavailable(token)
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == []


def test_connection_refused_is_keys_unavailable(settings, token):
    with closed_port() as port:
        configure(settings, CERTS_URL=f"http://127.0.0.1:{port}/certs")
        assert_keys_unavailable(token)


def test_slow_server_past_http_timeout_is_keys_unavailable(issuer, key_server, settings, token):
    """The endpoint answers good keys, but only after HTTP_TIMEOUT (so the
    test fails if the setting were ignored: the default of 5 s would wait)."""
    configure(settings, HTTP_TIMEOUT=1)
    key_server.delay = 3
    assert_keys_unavailable(token)


def _response_head(length: int | None) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
    if length is not None:
        head += f"Content-Length: {length}\r\n".encode()
    return head + b"\r\n"


class SlowAnswer:
    """A raw-server handler that drips ``pieces`` and records whether it got
    to send them all, or the client hung up first."""

    def __init__(self, pieces: list[bytes], interval: float = 0.4) -> None:
        self.pieces = pieces
        self.interval = interval
        self.finished: bool | None = None
        self.done = threading.Event()

    def __call__(self, conn: Any) -> None:
        try:
            drip(conn, self.pieces, self.interval)
            self.finished = True
        except OSError:
            self.finished = False
            raise
        finally:
            self.done.set()

    def assert_client_gave_up(self) -> None:
        # A bound on waiting for the server thread, not an assertion on time.
        assert self.done.wait(30)
        assert self.finished is False, "the client read the whole slow answer"


def test_body_dripped_past_http_timeout_is_keys_unavailable(issuer, settings, token, raw_server):
    """Each read returns within the timeout, but the whole body takes several
    times HTTP_TIMEOUT: the deadline is for the whole fetch."""
    body = json.dumps(issuer.jwks()).encode()
    step = len(body) // 10 + 1
    pieces = [body[i : i + step] for i in range(0, len(body), step)]
    answer = SlowAnswer([_response_head(len(body)), *pieces])
    configure(settings, CERTS_URL=raw_server(answer).url, HTTP_TIMEOUT=1)
    assert_keys_unavailable(token)
    answer.assert_client_gave_up()


def test_headers_dripped_past_http_timeout_are_keys_unavailable(
    issuer, settings, token, raw_server
):
    """A slow-drip endpoint may stall in the status line and headers as well
    as in the body: the fetch gives up at HTTP_TIMEOUT there too, rather than
    reading every header and only then noticing that its time is up."""
    body = json.dumps(issuer.jwks()).encode()
    head = [b"HTTP/1.1 200 OK\r\n"] + [f"X-Drip-{n}: x\r\n".encode() for n in range(10)]
    tail = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    answer = SlowAnswer([*head, tail + body])
    configure(settings, CERTS_URL=raw_server(answer).url, HTTP_TIMEOUT=1)
    assert_keys_unavailable(token)
    answer.assert_client_gave_up()


def test_too_large_body_without_content_length_is_keys_unavailable(
    issuer, settings, token, raw_server
):
    """The size cap holds while reading, not only against Content-Length."""
    body = json.dumps(issuer.jwks()).encode() + b" " * MAX_DOCUMENT_BYTES
    server = raw_server(lambda conn: conn.sendall(_response_head(None) + body))
    configure(settings, CERTS_URL=server.url)
    assert_keys_unavailable(token)


def test_raw_server_serves_good_keys(issuer, settings, token, raw_server):
    """Control for the tests above: the same raw answers, sent promptly and
    within the size cap, do verify (so those tests fail for the right reason)."""
    body = json.dumps(issuer.jwks()).encode()
    server = raw_server(lambda conn: conn.sendall(_response_head(None) + body))
    configure(settings, CERTS_URL=server.url, HTTP_TIMEOUT=1)
    assert google.verify(token).sub == "1000"
    body_with_length = _response_head(len(body)) + body
    other = raw_server(lambda conn: drip(conn, [body_with_length], 0))
    reset_stores()
    caches["default"].clear()
    configure(settings, CERTS_URL=other.url)
    assert google.verify(token).sub == "1000"


@pytest.mark.parametrize("fault", ["http-500", "not-json", "empty-key-list", "too-large"])
def test_failure_backs_off_then_recovers_without_restart(issuer, key_server, clock, token, fault):
    key_server.respond = fixed_answer(*FAULTS[fault](issuer))
    start = clock.t
    first = assert_keys_unavailable(token)
    assert first.retry_after <= FAILURE_BACKOFF
    assert key_server.fetches == 1
    # Within the back-off: refused at once, without asking the endpoint again.
    clock.t = start + FAILURE_BACKOFF - 1
    again = assert_keys_unavailable(token)
    assert again.retry_after <= first.retry_after
    assert key_server.fetches == 1
    # The endpoint recovers; after the back-off the store fetches again.
    key_server.respond = None
    clock.t = start + FAILURE_BACKOFF + 1
    assert google.verify(token).sub == "1000"
    assert key_server.fetches == 2


def test_timeout_backs_off_then_recovers(issuer, key_server, settings, clock, token):
    configure(settings, HTTP_TIMEOUT=1)
    key_server.delay = 2
    assert_keys_unavailable(token)
    key_server.delay = 0
    assert_keys_unavailable(token)
    assert key_server.fetches == 1
    clock.advance(FAILURE_BACKOFF + 1)
    assert google.verify(token).sub == "1000"
    assert key_server.fetches == 2


class UnforeseenBug(Exception):
    """Stands in for a failure nothing in the fetch path foresaw."""


@pytest.fixture
def buggy_transport(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make the HTTP client raise an exception no code above it expects (a
    bug in reading some answer, say); return the URLs it was asked for."""
    asked: list[str] = []

    def request(method: str, url: str, **kwargs: Any) -> Any:
        asked.append(url)
        raise UnforeseenBug("nobody saw this coming")

    monkeypatch.setattr(transport, "request", request)
    return asked


def test_unforeseen_failure_is_a_fetch_failure_with_stale_keys(
    issuer, key_server, settings, clock, token, buggy_transport
):
    """Any exception in a fetch is a failed fetch: the last good keys serve
    (within KEYS_MAX_STALE), the store backs off, and past the stale bound
    it refuses keys_unavailable; never an exception out of verification,
    which would be a 500 on every sign-in."""
    configure(settings, KEYS_MAX_STALE=600)
    start = clock.t
    store = get_store(key_server.url)
    store.load(json.dumps(issuer.jwks()).encode(), ttl=3600)
    clock.t = start + 3601
    assert google.verify(token).sub == "1000"
    assert buggy_transport == [key_server.url]
    assert store.stats.last_error == "unexpected UnforeseenBug"
    clock.t = start + 3601 + FAILURE_BACKOFF - 1
    assert google.verify(token).sub == "1000"
    assert len(buggy_transport) == 1, "no back-off after the failure"
    clock.t = start + 3600 + 601
    assert_keys_unavailable(token)
    assert len(buggy_transport) == 2


@pytest.mark.django_db
def test_unforeseen_failure_with_nothing_cached_is_a_503(
    client, key_server, token, buggy_transport
):
    response = client.post(SIGNIN, {"id_token": token}, content_type="application/json")
    assert response.status_code == 503
    assert response.json()["code"] == "keys_unavailable"
    assert 1 <= int(response["Retry-After"]) <= FAILURE_BACKOFF
    client.post(SIGNIN, {"id_token": token}, content_type="application/json")
    assert buggy_transport == [key_server.url]


# -- 9. stale-if-error -------------------------------------------------------------


def _warnings_from_keys(caplog: Any) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == KEYS_LOGGER and r.levelno == logging.WARNING]


def test_last_good_keys_serve_during_an_outage_for_max_stale(
    issuer, key_server, settings, clock, token, caplog
):
    configure(settings, KEYS_MAX_STALE=600)
    start = clock.t
    google.verify(token)
    key_server.respond = fixed_answer(500, {}, b"down")
    clock.t = start + 3600 + 1  # expired
    caplog.clear()
    assert google.verify(token).sub == "1000"
    assert key_server.fetches == 2  # it did try
    assert _warnings_from_keys(caplog), "no warning about serving stale keys"
    clock.t = start + 3600 + 599  # stale but within KEYS_MAX_STALE
    assert google.verify(token).sub == "1000"
    clock.t = start + 3600 + 601  # past expires_at + KEYS_MAX_STALE
    assert_keys_unavailable(token)


def test_recovery_after_stale_period_replaces_the_stale_keys(
    issuer, key_server, settings, clock, token
):
    google.verify(token)
    key_server.respond = fixed_answer(500, {}, b"down")
    clock.advance(3600 + 1)
    assert google.verify(token).sub == "1000"
    key_server.respond = None
    issuer.rotate()
    clock.advance(FAILURE_BACKOFF + 1)
    assert google.verify(issuer.mint(sub="2")).sub == "2"
    assert get_store(key_server.url).current().expires_at > clock.t


def test_new_process_uses_stale_shared_keys_during_an_outage(
    issuer, key_server, settings, token, caplog
):
    """A worker started during an outage uses the last good document another
    worker left in the cache, within the same bound."""
    configure(settings, KEYS_MAX_STALE=600)
    start = time.time()
    store_with_clock(key_server.url, Clock(start))
    google.verify(token)
    key_server.respond = fixed_answer(500, {}, b"down")
    reset_stores()
    store_with_clock(key_server.url, Clock(start + 3601))
    caplog.clear()
    assert google.verify(token).sub == "1000"
    assert _warnings_from_keys(caplog)
    reset_stores()
    store_with_clock(key_server.url, Clock(start + 3600 + 601))
    assert_keys_unavailable(token)


# -- 9b. no log floods ----------------------------------------------------------------


class RecordList(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def our_records() -> Iterator[list[logging.LogRecord]]:
    """Every record the app's loggers emit during the test."""
    handler = RecordList()
    app_logger = logging.getLogger("django_google_idtoken")
    app_logger.addHandler(handler)
    yield handler.records
    app_logger.removeHandler(handler)


def loud(records: list[logging.LogRecord]) -> list[str]:
    """The WARNING-and-above lines: what an operator is paged or mailed for."""
    return [r.getMessage() for r in records if r.levelno >= logging.WARNING]


@pytest.mark.django_db
def test_stale_keys_are_logged_when_they_go_stale_not_per_request(
    client, issuer, key_server, settings, clock, our_records
):
    """Issue 12 counted 19,948 warnings in 60 s while stale keys served: one
    per request. It is one when the keys go stale, then one a minute with a
    count, then one (INFO) when they are fresh again; no traceback."""
    configure(settings, KEYS_MAX_STALE=3600)
    start = clock.t
    assert sign_in(client, issuer.mint(sub="1")).status_code == 200
    key_server.respond = fixed_answer(500, {}, b"down")
    for i in range(300):
        clock.t = start + 3601 + i * 0.1  # 30 seconds of sign-ins
        assert sign_in(client, issuer.mint(sub="1")).status_code == 200
    assert key_server.fetches >= 3, "the store stopped trying"
    (line,) = loud(our_records)
    assert "are stale" in line and "HTTP 500" in line, line
    clock.t = start + 3601 + LOG_INTERVAL + 1
    assert sign_in(client, issuer.mint(sub="1")).status_code == 200
    assert len(loud(our_records)) == 2
    assert "(and 299 more times in the last 61s)" in loud(our_records)[1]
    key_server.respond = None
    clock.advance(FAILURE_BACKOFF)
    assert sign_in(client, issuer.mint(sub="1")).status_code == 200
    assert len(loud(our_records)) == 2
    assert any("are stale: recovered after" in r.getMessage() for r in our_records)
    assert not [r for r in our_records if r.exc_info]


@pytest.mark.django_db
def test_unreachable_keys_cache_is_logged_once_not_per_request(
    client, issuer, key_server, settings, clock, token, our_records
):
    """Issue 12 counted 2,346 warnings with a 55-line traceback each in 30 s
    while Redis was down and requests carried made-up kids. It is one line,
    with no traceback, and one (INFO) when the cache is back."""
    settings.CACHES = {
        **settings.CACHES,
        "broken": {"BACKEND": "tests.keyserver_helpers.BrokenCache"},
    }
    configure(settings, KEYS_CACHE="broken")
    assert sign_in(client, token).status_code == 200
    statuses = Counter(
        sign_in(client, garbage).status_code for garbage in random_kid_tokens(token, 300)
    )
    assert set(statuses) == {401, 503}, statuses
    (line,) = loud(our_records)
    assert "the keys cache 'broken' is unreachable" in line, line
    assert not [r for r in our_records if r.exc_info]
    configure(settings, KEYS_CACHE="default")
    sign_in(client, random_kid_tokens(token, 1)[0])
    assert any("is unreachable: recovered after" in r.getMessage() for r in our_records)
    assert len(loud(our_records)) == 1


@pytest.mark.django_db
def test_no_usable_keys_is_logged_once_not_per_request(
    client, issuer, key_server, clock, token, our_records
):
    """With the endpoint down and nothing cached, every sign-in is refused
    keys_unavailable (503): one ERROR says why, not one per refusal."""
    key_server.respond = fixed_answer(503, {}, b"down")
    for _ in range(300):
        clock.advance(0.1)
        assert sign_in(client, token).status_code == 503
    (line,) = loud(our_records)
    assert "no usable signing keys from" in line and "HTTP 503" in line, line
    refusals = [r for r in our_records if "refused: keys_unavailable" in r.getMessage()]
    assert len(refusals) == 300
    assert {r.levelno for r in refusals} == {logging.INFO}


# -- 10. only https (or loopback) -----------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://www.googleapis.com/oauth2/v3/certs",
        "https://www.googleapis.com/oauth2/v1/certs",
        "HTTPS://www.googleapis.com/oauth2/v3/certs",
        "http://127.0.0.1:8000/certs",
        "http://127.0.0.2/certs",
        "http://localhost:8000/certs",
        "http://LOCALHOST/certs",
        "http://[::1]:8000/certs",
    ],
)
def test_url_allowed(url):
    assert url_allowed(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/certs",
        "http://www.googleapis.com/oauth2/v3/certs",
        "http://10.0.0.1/certs",
        "http://0.0.0.0/certs",
        "http://localhost.example.com/certs",
        "http://127.0.0.1.example.com/certs",
        "http://127.0.0.1@example.com/certs",
        "ftp://127.0.0.1/certs",
        "file:///etc/passwd",
        "www.googleapis.com/oauth2/v3/certs",
        "",
    ],
)
def test_url_refused(url):
    assert not url_allowed(url)


def test_plain_http_url_is_refused_without_network_access(settings, token):
    configure(settings, CERTS_URL="http://example.com/certs")
    with network_calls() as calls:
        assert_keys_unavailable(token)
    assert calls == []


def test_network_recorder_sees_a_fetch(key_server, token):
    """Control for the test above: the recorder does see a real fetch."""
    with network_calls() as calls:
        google.verify(token)
    assert any(event == "socket.connect" for event, _ in calls)


def test_localhost_fetches_over_plain_http(issuer, key_server, settings, token):
    port = key_server.httpd.server_address[1]
    configure(settings, CERTS_URL=f"http://localhost:{port}/certs")
    assert google.verify(token).sub == "1000"
    assert key_server.fetches == 1


# -- 11. no token material in logs ------------------------------------------------


def test_no_token_material_in_logs(issuer, key_server, settings, clock, caplog):
    caplog.set_level(logging.DEBUG)
    configure(settings, KEYS_MAX_STALE=600)
    tokens = [issuer.mint(sub=str(i)) for i in range(4)]
    tokens.append(issuer.foreign_key())
    tokens.extend(random_kid_tokens(tokens[0], 2))

    def attempt_all() -> None:
        for t in tokens:
            with contextlib.suppress(Refused):
                google.verify(t)

    start = clock.t
    key_server.respond = fixed_answer(500, {}, b"down")  # cold failure
    attempt_all()
    clock.t = start + FAILURE_BACKOFF + 1
    key_server.respond = fixed_answer(200, JSON, b"garbage")
    attempt_all()
    clock.t = start + 2 * (FAILURE_BACKOFF + 1)
    key_server.respond = None  # recovery, unknown kids, a bad signature
    attempt_all()
    key_server.respond = fixed_answer(500, {}, b"down")
    clock.t = start + 3600 + 100  # stale keys served, with a warning
    attempt_all()
    clock.t = start + 3600 + 1000  # past the stale bound
    attempt_all()

    assert {r.levelno for r in caplog.records} >= {logging.WARNING, logging.ERROR}
    secrets_in_tokens = set()
    for t in tokens:
        secrets_in_tokens.add(t)
        secrets_in_tokens.add(t.split(".")[2])  # the signature
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    for secret in secrets_in_tokens:
        assert secret not in logged
