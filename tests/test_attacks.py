"""The threat model's attack catalogue, through the real sign-in URL.

Every case is posted to ``/auth/google/signin/`` with Django's test client;
the fake issuer's keys are served over HTTP on 127.0.0.1, so the real
parsing, key fetching, signature and claim checks and account policy decide.
Each case asserts the exact status and code, that no user, linked account or
session was written, and that the answer quotes no part of the token.

Tokens are signed with a real RS256 signature wherever the attack allows it
(over their exact, possibly non-canonical, bytes), so that a refusal comes
from the rule under test: without that rule most of these tokens would sign
someone in. ``tests/test_verification.py`` covers the same rules one level
down, at the verification function.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.test.client import MULTIPART_CONTENT

from django_google_idtoken.jws import b64url_encode
from django_google_idtoken.models import LinkedAccount
from django_google_idtoken.testing import (
    FakeIssuer,
    KeyServer,
    generate_key,
    pem_certificate,
    public_jwk,
    sign_rs256,
)

pytestmark = pytest.mark.django_db

SIGNIN = "/auth/google/signin/"
#: Any run of this many characters of a token segment in an answer is a leak
#: (the threat model allows nothing longer than 16).
LEAK_WINDOW = 17
ATTACKER_KID = "attacker-kid-0001"
LOCAL_EMAIL = "victim@gmail.com"


# -- the attacker's kit -------------------------------------------------------


@pytest.fixture(scope="module")
def attacker_key() -> Any:
    return generate_key()


@dataclass
class Kit:
    """What the cases build tokens from: the real issuer (whose keys are
    served) and an attacker with a key of their own, served on a loopback
    server of their own for the jku/x5u cases."""

    issuer: FakeIssuer
    attacker_key: Any
    attacker_server: KeyServer

    @property
    def kid(self) -> str:
        return self.issuer.active_kid

    @property
    def key(self) -> Any:
        return self.issuer.keys[self.issuer.active_kid]


@pytest.fixture(scope="module")
def attacker_server(attacker_key: Any) -> Iterator[KeyServer]:
    """The attacker's own key server on 127.0.0.1: a JWKS at /certs (for jku)
    and a PEM certificate at /cert.pem (for x5u). Shared by the module, so
    its request count covers every case: it must stay at zero."""
    attacker = FakeIssuer(keys=[(ATTACKER_KID, attacker_key)])
    server = KeyServer(attacker)
    pem = pem_certificate(attacker_key).encode()

    def answer(path: str) -> tuple[int, dict[str, str], bytes]:
        if path == "/cert.pem":
            return 200, {"Content-Type": "application/pem-certificate-chain"}, pem
        return 200, {"Content-Type": "application/json"}, json.dumps(attacker.jwks()).encode()

    server.respond = answer
    yield server
    server.close()


@pytest.fixture
def kit(
    issuer: FakeIssuer, key_server: KeyServer, attacker_key: Any, attacker_server: KeyServer
) -> Kit:
    return Kit(issuer=issuer, attacker_key=attacker_key, attacker_server=attacker_server)


# -- building tokens ------------------------------------------------------------


def signed(header_segment: str, payload_segment: str, key: Any) -> str:
    """A compact JWS over exactly these segments, with a real RS256 signature."""
    signing_input = f"{header_segment}.{payload_segment}"
    return f"{signing_input}.{b64url_encode(sign_rs256(signing_input.encode('ascii'), key))}"


def header_json(kit: Kit, **members: Any) -> bytes:
    return json.dumps({"alg": "RS256", "kid": kit.kid, "typ": "JWT", **members}).encode()


def payload_json(kit: Kit, **claims: Any) -> bytes:
    return json.dumps(kit.issuer.claims(**claims)).encode()


def from_json(kit: Kit, header: bytes, payload: bytes) -> str:
    """A token whose header and payload JSON are exactly these bytes, signed
    by the issuer's published key."""
    return signed(b64url_encode(header), b64url_encode(payload), kit.key)


def with_raw_claim(name: str, spell: Callable[[int], str]) -> Callable[[Kit], str]:
    """A signed token whose time claim ``name`` is the JSON text ``spell``
    makes of a currently valid value for it (text json.dumps could not
    produce: 1e400, a bare 2**64...). Were the type rule lax, the token
    would be within its validity period and sign in."""

    def make(kit: Kit) -> str:
        now = kit.issuer.now()
        good = {"exp": now + 3600, "iat": now, "nbf": now}[name]
        claims = kit.issuer.claims(**{name: "__RAW__"})
        text = json.dumps(claims).replace('"__RAW__"', spell(good))
        return from_json(kit, header_json(kit), text.encode())

    return make


BAD_TIMES: dict[str, Callable[[int], str]] = {
    "string": lambda t: f'"{t}"',
    "float": lambda t: f"{t}.0",
    "bool": lambda t: "true",
    "null": lambda t: "null",
    "list": lambda t: f"[{t}]",
    "1e400": lambda t: "1e400",
    "2**64": lambda t: str(2**64),
}


def minted(drop: tuple[str, ...] = (), **overrides: Any) -> Callable[[Kit], str]:
    return lambda kit: kit.issuer.mint(drop=drop, **overrides)


def alg_none(alg: str, ending: str) -> Callable[[Kit], str]:
    def make(kit: Kit) -> str:
        if ending == "rs256-signature":
            # A genuine signature: only the algorithm allow-list can refuse it.
            return kit.issuer.mint(header={"alg": alg})
        header = b64url_encode(json.dumps({"alg": alg, "kid": kit.kid, "typ": "JWT"}).encode())
        unsigned = f"{header}.{b64url_encode(payload_json(kit))}"
        return unsigned + "." if ending == "trailing-dot" else unsigned

    return make


def hs256_with_public_key(form: str) -> Callable[[Kit], str]:
    """HS256 with the RSA public key as the HMAC secret: a verifier that lets
    the token's alg choose the method would check this MAC and accept it."""

    def make(kit: Kit) -> str:
        public = kit.key.public_key()
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        secret = {
            "pem": lambda: public.public_bytes(serialization.Encoding.PEM, spki),
            "der": lambda: public.public_bytes(serialization.Encoding.DER, spki),
            "jwk-json": lambda: json.dumps(public_jwk(kit.kid, kit.key)).encode(),
        }[form]()
        header = b64url_encode(json.dumps({"alg": "HS256", "kid": kit.kid, "typ": "JWT"}).encode())
        signing_input = f"{header}.{b64url_encode(payload_json(kit))}"
        mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
        return f"{signing_input}.{b64url_encode(mac)}"

    return make


def embedded_key(name: str, kid_choice: str) -> Callable[[Kit], str]:
    """A header that names the attacker's own key, the token signed by it."""

    def make(kit: Kit) -> str:
        kid = kit.kid if kid_choice == "published-kid" else ATTACKER_KID
        certificate = x509.load_pem_x509_certificate(pem_certificate(kit.attacker_key).encode())
        der = certificate.public_bytes(serialization.Encoding.DER)
        member = {
            "jwk": lambda: public_jwk(kid, kit.attacker_key),
            "jku": lambda: kit.attacker_server.url,
            "x5u": lambda: kit.attacker_server.base_url + "/cert.pem",
            "x5c": lambda: [base64.b64encode(der).decode("ascii")],
        }[name]()
        return kit.issuer.mint(kid=kid, key=kit.attacker_key, header={name: member})

    return make


def reshaped(shape: Callable[[str, str, str], str]) -> Callable[[Kit], str]:
    def make(kit: Kit) -> str:
        header, payload, signature = kit.issuer.mint().split(".")
        return shape(header, payload, signature)

    return make


# Non-canonical base64url. Each mutation is applied to a payload segment
# (signed over its mutated text, so only the decoder can refuse it) or to a
# signature segment (where a lenient decoder yields the very same signature
# bytes, so the token would verify). Segments are chosen to be 2 or 3 mod 4
# long (so they have unused bits and room for "=" padding) and to hold both
# "-" and "_" (so that "+" and "/" have something to replace).


def _suits(segment: str) -> bool:
    return len(segment) % 4 in (2, 3) and "-" in segment and "_" in segment


def canonical_parts(kit: Kit) -> tuple[str, str, str]:
    header = b64url_encode(header_json(kit))
    claims = kit.issuer.claims()
    # "?~?~?~" (3f 7e 3f 7e 3f 7e) encodes to both "-" and "_" at any alignment.
    for n in range(200):
        payload = b64url_encode(json.dumps({**claims, "x": "?~?~?~" + "a" * n}).encode())
        if _suits(payload):
            signature = signed(header, payload, kit.key).split(".")[2]
            if _suits(signature):
                return header, payload, signature
    raise AssertionError("no suitable segments in 200 tries")


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

BASE64_MUTATIONS: dict[str, Callable[[str], str]] = {
    "padding": lambda s: s + "=" * (-len(s) % 4),
    "plus": lambda s: s.replace("-", "+"),
    "slash": lambda s: s.replace("_", "/"),
    "space-inside": lambda s: s[:10] + " " + s[10:],
    "newline-inside": lambda s: s[:10] + "\n" + s[10:],
    "tab-inside": lambda s: s[:10] + "\t" + s[10:],
    # With a length of 2 or 3 mod 4, the last character's lowest bit is unused.
    "unused-bits": lambda s: s[:-1] + _ALPHABET[_ALPHABET.index(s[-1]) ^ 1],
}


def non_canonical(which: str, mutation: str) -> Callable[[Kit], str]:
    mutate = BASE64_MUTATIONS[mutation]

    def make(kit: Kit) -> str:
        header, payload, signature = canonical_parts(kit)
        if which == "payload":
            return signed(header, mutate(payload), kit.key)
        return f"{header}.{payload}.{mutate(signature)}"

    return make


def claims_text(kit: Kit, extra: str) -> bytes:
    """The default claims as JSON text with ``extra`` members appended."""
    return (json.dumps(kit.issuer.claims(sub="victim"))[:-1] + extra + "}").encode()


def one_megabyte(kit: Kit) -> str:
    # Signed and otherwise valid: only the size cap stands between it and a sign-in.
    token = kit.issuer.mint(filler="x" * (3 * 2**20 // 4))
    assert len(token) >= 2**20
    return token


# -- the catalogue ----------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    make: Callable[[Kit], str]
    status: int
    code: str
    #: Overrides of settings.GOOGLE_IDTOKEN for this case.
    options: tuple[tuple[str, Any], ...] = ()
    #: A local user (no linked account) with this email exists beforehand.
    local_email: str = ""


def case(
    name: str,
    make: Callable[[Kit], str],
    status: int,
    code: str,
    *,
    options: dict[str, Any] | None = None,
    local_email: str = "",
) -> Any:
    attack = Attack(make, status, code, tuple((options or {}).items()), local_email)
    return pytest.param(attack, id=name)


WORKSPACE = {"HOSTED_DOMAINS": ["example.com"]}

ATTACKS = [
    # alg "none": no signature at all, or a real one that must not matter.
    *(
        case(f"alg-{alg}-{ending}", alg_none(alg, ending), 401, code)
        for alg in ("none", "None", "NONE", "nOnE")
        for ending, code in (
            ("trailing-dot", "malformed_token"),
            ("no-dot", "malformed_token"),
            ("rs256-signature", "unsupported_algorithm"),
        )
    ),
    *(
        case(f"hs256-public-key-{form}", hs256_with_public_key(form), 401, "unsupported_algorithm")
        for form in ("pem", "der", "jwk-json")
    ),
    *(
        case(
            f"{alg}-header-rs256-signature",
            minted(header={"alg": alg}),
            401,
            "unsupported_algorithm",
        )
        for alg in ("ES256", "PS256")
    ),
    # Headers that name the attacker's own key, signed by that key.
    *(
        case(
            f"embedded-{name}-{kid_choice}", embedded_key(name, kid_choice), 401, "malformed_token"
        )
        for name in ("jwk", "jku", "x5u", "x5c")
        for kid_choice in ("published-kid", "attacker-kid")
    ),
    case("crit-header", minted(header={"crit": ["exp"], "exp": 0}), 401, "malformed_token"),
    # kid values: lookups must be exact and bounded, never a path or a query.
    case("kid-path-traversal", minted(header={"kid": "../../etc/passwd"}), 401, "unknown_key"),
    case("kid-sql", minted(header={"kid": "' OR 1=1 --"}), 401, "unknown_key"),
    case("kid-10kb", minted(header={"kid": "k" * 10 * 1024}), 401, "malformed_token"),
    case("kid-number", minted(header={"kid": 123}), 401, "malformed_token"),
    case("kid-null", minted(header={"kid": None}), 401, "malformed_token"),
    case("kid-list", minted(header={"kid": []}), 401, "malformed_token"),
    case("kid-object", minted(header={"kid": {}}), 401, "malformed_token"),
    # Shape.
    case("two-segments", reshaped(lambda h, p, s: f"{h}.{p}"), 401, "malformed_token"),
    case("four-segments", reshaped(lambda h, p, s: f"{h}.{p}.{s}.{s}"), 401, "malformed_token"),
    case("empty-header", reshaped(lambda h, p, s: f".{p}.{s}"), 401, "malformed_token"),
    case("empty-payload", reshaped(lambda h, p, s: f"{h}..{s}"), 401, "malformed_token"),
    case("empty-signature", reshaped(lambda h, p, s: f"{h}.{p}."), 401, "malformed_token"),
    case("only-dots", lambda kit: "..", 401, "malformed_token"),
    *(
        case(
            f"base64-{mutation}-in-{which}", non_canonical(which, mutation), 401, "malformed_token"
        )
        for which in ("payload", "signature")
        for mutation in BASE64_MUTATIONS
    ),
    # JSON.
    case(
        "payload-not-json",
        lambda kit: from_json(kit, header_json(kit), b"sub=victim"),
        401,
        "malformed_token",
    ),
    case(
        "payload-json-array",
        lambda kit: from_json(kit, header_json(kit), b"[" + payload_json(kit) + b"]"),
        401,
        "malformed_token",
    ),
    case(
        "payload-json-string",
        lambda kit: from_json(kit, header_json(kit), b'"victim"'),
        401,
        "malformed_token",
    ),
    # Two parsers could read two different users out of one token; Python's
    # json would silently keep the last "sub".
    case(
        "payload-duplicate-sub",
        lambda kit: from_json(kit, header_json(kit), claims_text(kit, ',"sub":"attacker"')),
        401,
        "malformed_token",
    ),
    # Python's json keeps the last member: the second alg (RS256) would win.
    case(
        "header-duplicate-alg",
        lambda kit: from_json(
            kit, f'{{"alg":"HS256","kid":"{kit.kid}","alg":"RS256"}}'.encode(), payload_json(kit)
        ),
        401,
        "malformed_token",
    ),
    # Size: refused before any decoding work.
    case("token-1mb", one_megabyte, 401, "malformed_token"),
    case("token-100000-dots", lambda kit: "." * 100_000, 401, "malformed_token"),
    # Times of the wrong type or out of range.
    *(
        case(f"{name}-{label}", with_raw_claim(name, spell), 401, "invalid_claims")
        for name in ("exp", "iat", "nbf")
        for label, spell in BAD_TIMES.items()
    ),
    # Issuer: exact match only.
    *(
        case(f"iss-{label}", minted(iss=iss), 401, "wrong_issuer")
        for label, iss in (
            ("prefix", "accounts.google.com.evil"),
            ("suffix", "evilaccounts.google.com"),
            ("upper-case", "HTTPS://ACCOUNTS.GOOGLE.COM"),
            ("evil-example", "https://accounts.google.com.evil.example"),
            ("http", "http://accounts.google.com"),
        )
    ),
    case("iss-missing", minted(drop=("iss",)), 401, "wrong_issuer"),
    # Audience: a token Google minted for another app.
    case(
        "aud-other-client",
        minted(aud="someone-else.apps.googleusercontent.com"),
        401,
        "wrong_audience",
    ),
    case(
        "aud-list-without-ours",
        minted(
            aud=["someone-else.apps.googleusercontent.com", "another.apps.googleusercontent.com"]
        ),
        401,
        "wrong_audience",
    ),
    case("aud-missing", minted(drop=("aud",)), 401, "wrong_audience"),
    # Subject.
    case("sub-missing", minted(drop=("sub",)), 401, "invalid_claims"),
    case("sub-empty", minted(sub=""), 401, "invalid_claims"),
    case("sub-number", minted(sub=110169484474386276334), 401, "invalid_claims"),
    case("sub-256-chars", minted(sub="9" * 256), 401, "invalid_claims"),
    # Workspace restriction: only the hd claim counts, never the email's domain.
    case(
        "hd-missing",
        minted(drop=("hd",)),
        403,
        "hosted_domain_not_allowed",
        options=WORKSPACE,
    ),
    case(
        "hd-different",
        minted(hd="other.example", email="eve@other.example"),
        403,
        "hosted_domain_not_allowed",
        options=WORKSPACE,
    ),
    case(
        "email-in-domain-without-hd",
        minted(drop=("hd",), email="eve@example.com"),
        403,
        "hosted_domain_not_allowed",
        options=WORKSPACE,
    ),
    # Keys.
    case(
        "foreign-key-published-kid", lambda kit: kit.issuer.foreign_key(), 401, "invalid_signature"
    ),
    case("unknown-kid", minted(header={"kid": "0" * 40}), 401, "unknown_key"),
    case("expired", lambda kit: kit.issuer.expired(), 401, "token_expired"),
    # email_verified "false" (a string, truthy in Python) is not a refusal:
    # the token signs in as a user of its own, never the local user's
    # (test_accounts.test_link_by_email_needs_google_authority).
]


# -- assertions -------------------------------------------------------------------


def rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every user and linked account row."""
    return (
        list(get_user_model().objects.order_by("pk").values()),
        list(LinkedAccount.objects.order_by("pk").values()),
    )


def leaked(body: str, texts: list[str]) -> list[str]:
    """The runs of LEAK_WINDOW characters of ``body`` found in any of
    ``texts`` (the token's segments, or a raw request body)."""
    grams = {body[i : i + LEAK_WINDOW] for i in range(len(body) - LEAK_WINDOW + 1)}
    return sorted(gram for gram in grams if any(gram in text for text in texts))


def assert_refused(response: Any, status: int, code: str, sent: list[str]) -> None:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"code", "detail"}
    assert body["code"] == code
    assert isinstance(body["detail"], str)
    assert body["detail"]
    # No session was opened (and so no session cookie handed out).
    assert django_settings.SESSION_COOKIE_NAME not in response.cookies
    assert leaked(response.content.decode("utf-8", "replace"), sent) == []


def set_options(settings: Any, options: Any) -> None:
    settings.GOOGLE_IDTOKEN = {**settings.GOOGLE_IDTOKEN, **dict(options)}


# -- the tests ----------------------------------------------------------------------


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_is_refused(client: Any, kit: Kit, settings: Any, attack: Attack) -> None:
    set_options(settings, attack.options)
    if attack.local_email:
        get_user_model().objects.create_user("victim", attack.local_email)
    before = rows()
    token = attack.make(kit)

    response = client.post(SIGNIN, {"id_token": token}, content_type="application/json")

    assert_refused(response, attack.status, attack.code, token.split("."))
    users, accounts = rows()
    assert users == before[0]
    assert accounts == []
    # Honouring jku or x5u would mean fetching the attacker's keys: the
    # attacker's server must never have been asked for anything.
    assert kit.attacker_server.fetches == 0


CONTROLS = [
    pytest.param(minted(), {}, "", id="valid-token"),
    pytest.param(minted(hd="example.com"), WORKSPACE, "", id="workspace-hd"),
    # The email_in_use case's setup would link with a JSON true.
    pytest.param(
        minted(email=LOCAL_EMAIL, email_verified=True),
        {"LINK_BY_EMAIL": True},
        LOCAL_EMAIL,
        id="link-by-verified-gmail",
    ),
]


@pytest.mark.parametrize(("make", "options", "local_email"), CONTROLS)
def test_control_signs_in(
    client: Any,
    kit: Kit,
    settings: Any,
    make: Callable[[Kit], str],
    options: dict[str, Any],
    local_email: str,
) -> None:
    # The control for the catalogue: the same harness, settings and setup
    # with an honest token signs in, so each refusal above is the rule's doing.
    set_options(settings, options)
    if local_email:
        local = get_user_model().objects.create_user("victim", local_email)
    response = client.post(SIGNIN, {"id_token": make(kit)}, content_type="application/json")
    assert response.status_code == 200, response.content
    assert django_settings.SESSION_COOKIE_NAME in response.cookies
    account = LinkedAccount.objects.get()
    if local_email:
        assert account.user == local


# -- the request around the token ------------------------------------------------


def _multipart_fields(count: int) -> dict[str, str]:
    return {**{f"f{i}": "1" for i in range(count)}, "idToken": "a.b.c"}


BODIES = [
    pytest.param("application/json", b"{not json", id="json-garbage"),
    pytest.param("application/json", b"\xff\xfe\x00garbage\x80", id="json-invalid-utf8"),
    pytest.param("application/json", b'{"id_token": 12345}', id="token-number"),
    pytest.param("application/json", b'{"id_token": {"token": "a.b.c"}}', id="token-object"),
    pytest.param("application/json", b'{"id_token": ["a.b.c"]}', id="token-list"),
    pytest.param("application/json", b'{"id_token": null}', id="token-null"),
    pytest.param("application/json", b'{"id_token": ""}', id="token-empty"),
    pytest.param("application/json", b'{"idToken": 1e400}', id="token-1e400"),
    # Python's JSON parser raises RecursionError (not ValueError) on deep
    # nesting, which DRF's JSONParser does not turn into a parse error.
    pytest.param("application/json", b"[" * 100_000, id="json-nested-100k"),
    pytest.param("application/json", b'{"a":' * 100_000, id="json-nested-objects-100k"),
    # Also found by the fuzzer, on Django 4.2: bytes-to-bytes codecs named as
    # a charset fail with TypeError or zlib.error while decoding the body.
    pytest.param("application/json;charset=zlib", b"\x00", id="json-charset-zlib"),
    pytest.param(
        "application/json;charset=rot13", b'{"id_token": "a.b.c"}', id="json-charset-rot13"
    ),
    # Django refuses bodies over its limits (DATA_UPLOAD_MAX_NUMBER_FIELDS,
    # DATA_UPLOAD_MAX_MEMORY_SIZE) with SuspiciousOperation: the answer must
    # still be the endpoint's JSON refusal, not Django's HTML error page.
    pytest.param(
        "application/x-www-form-urlencoded",
        urlencode(_multipart_fields(1000)).encode(),
        id="form-1001-fields",
    ),
    pytest.param(
        "application/json",
        json.dumps({"id_token": "a" * 2_700_000}).encode(),
        id="json-over-upload-limit",
    ),
]

# Sign-in takes no multipart (its file parts would be spooled to disk before
# the token is looked at): each of these is 415, whatever its content.
MULTIPART_BODIES = [
    # Found by the fuzzer (tests/test_fuzz.py) when multipart was parsed:
    # Django's multipart parser decodes field names with errors="replace",
    # which the idna codec does not support.
    pytest.param(
        "multipart/form-data; boundary=b; charset=idna",
        b'--b\r\nContent-Disposition: form-data; name="idToken"\r\n\r\na.b.c\r\n--b--\r\n',
        id="multipart-charset-idna",
    ),
    pytest.param(MULTIPART_CONTENT, _multipart_fields(1000), id="multipart-1001-fields"),
    pytest.param(MULTIPART_CONTENT, {"idToken": "a" * 2_700_000}, id="multipart-over-upload-limit"),
    pytest.param("multipart/mixed; boundary=b", b"--b--\r\n", id="multipart-mixed"),
]


@pytest.mark.parametrize(("content_type", "body"), BODIES)
def test_unusable_request_body_is_400_missing_token(
    client: Any, key_server: KeyServer, content_type: str, body: Any
) -> None:
    if isinstance(body, dict):
        response = client.post(SIGNIN, body)
        sent = list(body.values())
    else:
        response = client.post(SIGNIN, body, content_type=content_type)
        sent = [body.decode("latin-1")]
    assert_refused(response, 400, "missing_token", sent)
    assert rows() == ([], [])
    # Refused before any verification work.
    assert key_server.fetches == 0


@pytest.mark.parametrize(("content_type", "body"), MULTIPART_BODIES)
def test_multipart_request_body_is_415(
    client: Any, key_server: KeyServer, content_type: str, body: Any
) -> None:
    if isinstance(body, dict):
        response = client.post(SIGNIN, body)
        sent = list(body.values())
    else:
        response = client.post(SIGNIN, body, content_type=content_type)
        sent = [body.decode("latin-1")]
    assert_refused(response, 415, "unsupported_media_type", sent)
    assert rows() == ([], [])
    assert key_server.fetches == 0


@pytest.mark.parametrize("field", ["id_token", "idToken"])
def test_token_in_query_string_is_405(
    client: Any, issuer: FakeIssuer, key_server: KeyServer, field: str
) -> None:
    # Tokens in URLs end up in access logs, history and Referer headers.
    token = issuer.mint()
    response = client.get(SIGNIN, {field: token})
    assert_refused(response, 405, "method_not_allowed", token.split("."))
    assert rows() == ([], [])
    assert key_server.fetches == 0
