"""A fake Google for tests: its own RSA keys, realistic ID tokens, and a way
to make the app trust them, so your tests run the app's real verification,
account and view code with no network and no mocks.

* :class:`FakeGoogle` is the whole fake, used as a context manager (or through
  the ``fake_google`` pytest fixture, or :class:`FakeGoogleMixin` for Django's
  test runner). While it is active, ``GOOGLE_IDTOKEN["CERTS_URL"]`` points at
  it and its key set is installed in the app's key store; its client id is in
  ``CLIENT_IDS``. Afterwards settings and keys are as they were.
* :class:`FakeIssuer` mints the tokens: default claims like Google's, any of
  them overridden or dropped, and deliberately bad tokens.
* :class:`KeyServer` publishes an issuer's keys over real HTTP on 127.0.0.1,
  for tests that want the app to fetch them (``FakeGoogle(http=True)``).

Nothing here is used by the sign-in code itself. Tokens minted here verify
only where this issuer's keys are installed or served, which a production
configuration never does.

    with FakeGoogle() as google:
        token = google.mint(sub="1234", email="ada@example.com")
        expired = google.expired()
        no_email = google.mint(drop=["email"])
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import secrets
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from .conf import raw_settings
from .jws import b64url_encode
from .keys import KeyStore, get_store, reset_stores

if TYPE_CHECKING:
    import unittest

    _TestCaseBase = unittest.TestCase
else:
    _TestCaseBase = object

__all__ = [
    "DEFAULT_CLIENT_ID",
    "GOOGLE_ISSUER",
    "FakeGoogle",
    "FakeGoogleMixin",
    "FakeIssuer",
    "KeyServer",
    "LoopbackHTTPServer",
    "encode_token",
    "generate_key",
    "key_id",
    "pem_certificate",
    "public_jwk",
    "sign_rs256",
]

GOOGLE_ISSUER = "https://accounts.google.com"
DEFAULT_CLIENT_ID = "1234-test.apps.googleusercontent.com"

# -- keys ------------------------------------------------------------------


def generate_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """A new RSA private key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


_shared_keys: dict[str, rsa.RSAPrivateKey] = {}
_shared_keys_lock = threading.Lock()


def _shared_key(role: str) -> rsa.RSAPrivateKey:
    """One key per role for the whole process, made on first use: a 2048-bit
    key takes tens of milliseconds to generate, too long to pay in every test."""
    with _shared_keys_lock:
        key = _shared_keys.get(role)
        if key is None:
            key = _shared_keys[role] = generate_key()
        return key


def key_id(key: rsa.RSAPrivateKey) -> str:
    """A kid for ``key``, derived from its public half (40 hex digits, like Google's)."""
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha1(public).hexdigest()  # noqa: S324 - a key id, not a security hash


def public_jwk(kid: str, key: rsa.RSAPrivateKey) -> dict[str, str]:
    """The public half of ``key`` as a JWK, as Google's v3/certs lists it."""
    numbers = key.public_key().public_numbers()
    n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
    return {
        "kty": "RSA",
        "alg": "RS256",
        "use": "sig",
        "kid": kid,
        "n": b64url_encode(n),
        "e": b64url_encode(e),
    }


def pem_certificate(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    """A self-signed certificate for ``key``, as Google's v1/certs lists them
    (an EC key makes one a verifier must refuse)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-issuer.invalid")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=14))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def sign_rs256(signing_input: bytes, key: rsa.RSAPrivateKey) -> bytes:
    """The RS256 signature of ``signing_input``."""
    return key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())


def encode_token(
    header: Mapping[str, Any], payload: Mapping[str, Any], key: rsa.RSAPrivateKey
) -> str:
    """Sign any header and payload with RS256, exactly as given (for attack tests too)."""
    signing_input = (
        b64url_encode(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64url_encode(json.dumps(payload, separators=(",", ":")).encode())
    )
    return signing_input + "." + b64url_encode(sign_rs256(signing_input.encode("ascii"), key))


# -- tokens ----------------------------------------------------------------


class FakeIssuer:
    """An ID token issuer with its own keys, minting Google-style tokens.

    ``keys`` maps each published kid to its private key; ``active_kid`` is
    the one new tokens are signed with.
    """

    def __init__(
        self,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        issuer: str = GOOGLE_ISSUER,
        keys: Iterable[tuple[str, rsa.RSAPrivateKey]] = (),
    ) -> None:
        self.client_id = client_id
        self.issuer = issuer
        self.keys: dict[str, rsa.RSAPrivateKey] = dict(keys)
        if not self.keys:
            self.add_key()
        self.active_kid = next(reversed(self.keys))

    # -- keys -------------------------------------------------------------

    def add_key(self, key: rsa.RSAPrivateKey | None = None, kid: str | None = None) -> str:
        """Publish a new key (not yet used for signing); return its kid."""
        key = key or generate_key()
        kid = kid or key_id(key)
        self.keys[kid] = key
        return kid

    def rotate(self, key: rsa.RSAPrivateKey | None = None) -> str:
        """Publish a new key and sign with it from now on (the old one stays
        published until removed); return the new kid."""
        self.active_kid = self.add_key(key)
        return self.active_kid

    def remove_key(self, kid: str) -> None:
        """Stop publishing ``kid``: tokens signed with it become ``unknown_key``."""
        del self.keys[kid]

    def jwks(self) -> dict[str, Any]:
        """The published keys as a JWKS (Google's v3/certs format)."""
        return {"keys": [public_jwk(kid, key) for kid, key in self.keys.items()]}

    def pem_certificates(self) -> dict[str, str]:
        """The published keys as {kid: PEM certificate} (Google's v1/certs format)."""
        return {kid: pem_certificate(key) for kid, key in self.keys.items()}

    # -- tokens -----------------------------------------------------------

    @staticmethod
    def now() -> int:
        """The current time as ID tokens write it (integer epoch seconds)."""
        return int(time.time())

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """Realistic default claims of a Google ID token, with ``overrides`` applied.

        Each call makes a new random ``sub`` (21 digits, like Google's) unless
        one is given; the default email is derived from it.
        """
        now = self.now()
        sub = str(overrides.get("sub", secrets.randbelow(10**20) + 10**20))
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "azp": self.client_id,
            "aud": self.client_id,
            "sub": sub,
            "email": f"user{sub[-6:]}@gmail.com",
            "email_verified": True,
            "at_hash": b64url_encode(secrets.token_bytes(16)),
            "name": "Ada Lovelace",
            "picture": "https://lh3.googleusercontent.com/a/default-user=s96-c",
            "given_name": "Ada",
            "family_name": "Lovelace",
            "iat": now,
            "exp": now + 3600,
        }
        claims.update(overrides)
        return claims

    def mint(
        self,
        *,
        drop: Iterable[str] = (),
        header: Mapping[str, Any] | None = None,
        kid: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
        **overrides: Any,
    ) -> str:
        """A signed token with default claims, ``overrides`` applied and the
        claims in ``drop`` removed. ``header`` adds or replaces header members;
        ``kid``/``key`` pick another signing key (a ``key`` not published here
        makes a forged token)."""
        payload = self.claims(**overrides)
        for name in drop:
            payload.pop(name, None)
        kid = kid or self.active_kid
        signing_key = key or self.keys[kid]
        token_header: dict[str, Any] = {"alg": "RS256", "kid": kid, "typ": "JWT"}
        token_header.update(header or {})
        return encode_token(token_header, payload, signing_key)

    def expired(self, **overrides: Any) -> str:
        """A token that expired an hour ago (refused as ``token_expired``)."""
        now = self.now()
        return self.mint(**{"iat": now - 7200, "exp": now - 3600, **overrides})

    def wrong_audience(self, **overrides: Any) -> str:
        """A token minted for another app's client id (``wrong_audience``)."""
        return self.mint(**{"aud": "someone-else.apps.googleusercontent.com", **overrides})

    def wrong_issuer(self, **overrides: Any) -> str:
        """A token whose ``iss`` is not Google (``wrong_issuer``)."""
        return self.mint(**{"iss": "https://evil.example", **overrides})

    def foreign_key(self, **overrides: Any) -> str:
        """A forgery: signed by a key this issuer does not publish, under a
        kid it does publish (``invalid_signature``)."""
        return self.mint(key=_shared_key("stranger"), **overrides)

    def unknown_key(self, **overrides: Any) -> str:
        """A token signed by a key this issuer does not publish, under that
        key's own kid, as another issuer's token would be (``unknown_key``)."""
        stranger = _shared_key("stranger")
        return self.mint(kid=key_id(stranger), key=stranger, **overrides)


# -- serving keys over loopback HTTP ---------------------------------------

Answer = tuple[int, dict[str, str], bytes]
_MISSING = object()


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A threaded HTTP server for stand-ins on 127.0.0.1 (key servers, verify
    endpoints). A client that gave up (timeout and size tests do) hangs up
    while the answer is written: expected, so no traceback is printed."""

    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class KeyServer:
    """A loopback HTTP server publishing an issuer's keys.

    ``/certs`` serves the JWKS (Google's v3 format) and ``/v1/certs`` the PEM
    map (v1 format), both built from the issuer's current keys, so rotating
    or removing a key is visible on the next fetch. Every answer carries
    ``Cache-Control: max-age`` (``cache_control`` can be changed). For fault
    tests, ``respond`` replaces the answer and ``delay`` slows every answer
    down; ``hits`` counts requests per path.
    """

    #: HTTP/1.1 keeps connections open between requests; a subclass may set
    #: "HTTP/1.0" to close each one after its answer.
    protocol_version: ClassVar[str] = "HTTP/1.1"

    def __init__(self, issuer: FakeIssuer, *, max_age: int = 3600) -> None:
        self.issuer = issuer
        self.hits: Counter[str] = Counter()
        self.cache_control = f"public, max-age={max_age}, must-revalidate, no-transform"
        self.delay = 0.0
        self.respond: Callable[[str], Answer] | None = None
        self._lock = threading.Lock()
        self._rendered: dict[str, tuple[tuple[tuple[str, rsa.RSAPrivateKey], ...], bytes]] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = server.protocol_version

            def do_GET(self) -> None:  # noqa: N802
                with server._lock:
                    server.hits[self.path] += 1
                if server.delay:
                    time.sleep(server.delay)
                status, headers, body = server.answer(self.path)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = LoopbackHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``"""
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def url(self) -> str:
        """The JWKS URL (what ``CERTS_URL`` points at)."""
        return self.base_url + "/certs"

    @property
    def v1_url(self) -> str:
        """The PEM certificate map URL."""
        return self.base_url + "/v1/certs"

    @property
    def fetches(self) -> int:
        """Requests received so far, all paths together."""
        return sum(self.hits.values())

    def snapshot(self) -> Counter[str]:
        """A copy of ``hits``, taken under the server's lock."""
        with self._lock:
            return Counter(self.hits)

    def answer(self, path: str) -> Answer:
        """(status, headers, body) for a GET of ``path``."""
        if self.respond is not None:
            return self.respond(path)
        headers = {
            "Content-Type": "application/json; charset=UTF-8",
            "Cache-Control": self.cache_control,
        }
        if path == "/certs":
            return 200, headers, self._render("jwks")
        if path == "/v1/certs":
            return 200, headers, self._render("pem")
        return 404, {}, b"not found"

    def _render(self, kind: str) -> bytes:
        # Rendered once per key set: certificates are signed when made, and
        # a benchmark may fetch them thousands of times.
        published = tuple(self.issuer.keys.items())
        memo = self._rendered.get(kind)
        if (
            memo is not None
            and len(memo[0]) == len(published)
            and all(a == c and b is d for (a, b), (c, d) in zip(memo[0], published, strict=True))
        ):
            return memo[1]
        document = self.issuer.jwks() if kind == "jwks" else self.issuer.pem_certificates()
        body = json.dumps(document).encode()
        self._rendered[kind] = (published, body)
        return body

    def close(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()


# -- the whole fake ----------------------------------------------------------


class FakeGoogle:
    """A fake Google that the app trusts while it is active.

    Use it as a context manager (``with FakeGoogle() as google:``), through
    the ``fake_google`` pytest fixture, or with :class:`FakeGoogleMixin`.
    While active:

    * ``GOOGLE_IDTOKEN["CERTS_URL"]`` points at this fake, and its client id
      is in ``CLIENT_IDS`` (added if missing); other settings are unchanged;
    * its key set is installed in the app's key store (``KeyStore.load``),
      so verification runs the real code with no network; or, with
      ``http=True``, served by a :class:`KeyServer` on 127.0.0.1 that the
      app fetches from, so the fetch and caching path runs too.

    On exit the settings are restored and the installed keys forgotten.

    ``client_id`` is the audience of minted tokens: by default the first of
    the project's ``CLIENT_IDS``, else :data:`DEFAULT_CLIENT_ID`. ``max_age``
    is how long, in seconds, the app holds the keys fresh. ``settings``
    takes pytest-django's ``settings`` fixture, which then carries the
    setting instead of ``override_settings`` (so that changes a test makes
    through it are undone in order). ``issuer`` uses an existing
    :class:`FakeIssuer` and its keys.

    Minting (``mint``, ``claims``, ``expired``, ``wrong_audience``,
    ``wrong_issuer``, ``foreign_key``, ``unknown_key``) is
    :class:`FakeIssuer`'s; key changes (``rotate``, ``add_key``,
    ``remove_key``) are installed at once (with ``http=True`` the app sees
    them when it next fetches, as it would see Google's).
    """

    def __init__(
        self,
        issuer: FakeIssuer | None = None,
        *,
        client_id: str | None = None,
        http: bool = False,
        max_age: int = 3600,
        settings: Any = None,
    ) -> None:
        self._client_id = client_id
        self._own_issuer = issuer is None
        # Every FakeGoogle starts with the same process-wide key (tests stay
        # fast); rotate() makes new ones.
        self.issuer = issuer or FakeIssuer(
            client_id=client_id or DEFAULT_CLIENT_ID,
            keys=[(key_id(_shared_key("google")), _shared_key("google"))],
        )
        self.http = http
        self.max_age = max_age
        self.server: KeyServer | None = None
        self.certs_url = ""
        self._settings = settings
        self._override: Any = None
        self._previous: Any = _MISSING
        self._closed_port: socket.socket | None = None
        self._active = False

    # -- lifecycle -----------------------------------------------------------

    def __enter__(self) -> FakeGoogle:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> FakeGoogle:
        """Point the settings at this fake and install (or serve) its keys."""
        if self._active:
            raise RuntimeError("this FakeGoogle is already active")
        if self.http:
            self.server = KeyServer(self.issuer, max_age=self.max_age)
            self.certs_url = self.server.url
        else:
            # The URL names a loopback port that is bound but never listens:
            # should anything try to fetch from it (an unknown kid once the
            # cool-down has passed), the connection is refused at once and
            # nothing leaves the machine.
            self._closed_port = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._closed_port.bind(("127.0.0.1", 0))
            port = self._closed_port.getsockname()[1]
            self.certs_url = f"http://127.0.0.1:{port}/fake-google/{secrets.token_hex(4)}/certs"
        try:
            current = dict(raw_settings())
            client_ids = list(current.get("CLIENT_IDS") or [])
            client_id = self._client_id
            if client_id is None and not self._own_issuer:
                client_id = self.issuer.client_id
            client_id = client_id or (client_ids[0] if client_ids else DEFAULT_CLIENT_ID)
            self.issuer.client_id = client_id
            if client_id not in client_ids:
                client_ids.append(client_id)
            value = {**current, "CERTS_URL": self.certs_url, "CLIENT_IDS": client_ids}
            if self._settings is not None:
                from django.conf import settings as django_settings

                self._previous = getattr(django_settings, "GOOGLE_IDTOKEN", _MISSING)
                self._settings.GOOGLE_IDTOKEN = value
            else:
                from django.test.utils import override_settings

                self._override = override_settings(GOOGLE_IDTOKEN=value)
                self._override.enable()
            self._active = True
            # Keys left from an earlier server on the same port must not
            # answer for this one (best effort, as in stop()).
            with contextlib.suppress(Exception):
                self._store().clear()
            self.publish()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Forget the installed keys, restore the settings, stop serving."""
        if self._active:
            # Best effort: a test may have left KEYS_CACHE broken or invalid.
            with contextlib.suppress(Exception):
                self._store().clear()
        reset_stores()
        if self._override is not None:
            self._override.disable()
            self._override = None
        if self._settings is not None and self._previous is not _MISSING:
            # Through the same settings fixture, which undoes every change
            # in order at the end of the test.
            self._settings.GOOGLE_IDTOKEN = self._previous
            self._previous = _MISSING
        if self.server is not None:
            self.server.close()
            self.server = None
        if self._closed_port is not None:
            self._closed_port.close()
            self._closed_port = None
        self._active = False

    def _store(self) -> KeyStore:
        return get_store(self.certs_url)

    def publish(self) -> None:
        """Install the issuer's current key set in the app's key store (done
        for you by ``rotate``, ``add_key`` and ``remove_key``; call it after
        changing ``issuer.keys`` yourself). With ``http=True`` it does
        nothing: the app fetches the keys itself."""
        if self._active and not self.http:
            document = json.dumps(self.issuer.jwks()).encode()
            self._store().load(document, ttl=self.max_age)

    # -- keys -------------------------------------------------------------------

    @property
    def client_id(self) -> str:
        """The audience of minted tokens."""
        return self.issuer.client_id

    @property
    def active_kid(self) -> str:
        """The kid new tokens are signed with."""
        return self.issuer.active_kid

    @property
    def keys(self) -> dict[str, rsa.RSAPrivateKey]:
        """The published keys, kid to private key."""
        return self.issuer.keys

    def rotate(self, key: rsa.RSAPrivateKey | None = None) -> str:
        """Publish a new key and sign with it from now on; the old one stays
        published until :meth:`remove_key`. Returns the new kid."""
        kid = self.issuer.rotate(key)
        self.publish()
        return kid

    def add_key(self, key: rsa.RSAPrivateKey | None = None, kid: str | None = None) -> str:
        """Publish another key without signing with it; return its kid."""
        kid = self.issuer.add_key(key, kid)
        self.publish()
        return kid

    def remove_key(self, kid: str) -> None:
        """Stop publishing ``kid``: tokens signed with it become ``unknown_key``."""
        self.issuer.remove_key(kid)
        self.publish()

    # -- tokens -----------------------------------------------------------------

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """Default claims with ``overrides`` applied (see :meth:`FakeIssuer.claims`)."""
        return self.issuer.claims(**overrides)

    def mint(self, *, drop: Iterable[str] = (), **overrides: Any) -> str:
        """A valid token; any claim can be overridden, or dropped with ``drop``
        (see :meth:`FakeIssuer.mint` for ``header``, ``kid`` and ``key``)."""
        return self.issuer.mint(drop=drop, **overrides)

    def expired(self, **overrides: Any) -> str:
        """A token that expired an hour ago (``token_expired``)."""
        return self.issuer.expired(**overrides)

    def wrong_audience(self, **overrides: Any) -> str:
        """A token for another app's client id (``wrong_audience``)."""
        return self.issuer.wrong_audience(**overrides)

    def wrong_issuer(self, **overrides: Any) -> str:
        """A token whose ``iss`` is not Google (``wrong_issuer``)."""
        return self.issuer.wrong_issuer(**overrides)

    def foreign_key(self, **overrides: Any) -> str:
        """A forgery under a published kid (``invalid_signature``)."""
        return self.issuer.foreign_key(**overrides)

    def unknown_key(self, **overrides: Any) -> str:
        """A token signed by a key this fake does not publish (``unknown_key``)."""
        return self.issuer.unknown_key(**overrides)


class FakeGoogleMixin(_TestCaseBase):
    """For Django's test runner: each test gets ``self.fake_google``, an
    active :class:`FakeGoogle`, stopped after the test.

        class SignInTests(FakeGoogleMixin, TestCase):
            def test_sign_in(self):
                token = self.fake_google.mint(sub="1234")

    ``fake_google_options`` holds :class:`FakeGoogle`'s keyword arguments,
    e.g. ``{"http": True}``.
    """

    fake_google_options: ClassVar[Mapping[str, Any]] = {}
    fake_google: FakeGoogle

    def setUp(self) -> None:
        super().setUp()
        self.fake_google = self.enterContext(FakeGoogle(**self.fake_google_options))
