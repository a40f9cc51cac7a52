"""Verification of Google ID tokens, rule by rule, through the real code path:
the fake issuer's keys are served over HTTP on 127.0.0.1, tokens are minted or
hand-built with real RS256 signatures, and ``providers.google.verify`` decides.

Hand-built tokens are signed over their exact bytes (canonical or not), so a
refusal can only come from the rule under test, never from a broken signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from django_google_idtoken import jws, keys
from django_google_idtoken.claims import Claims
from django_google_idtoken.errors import Refused
from django_google_idtoken.jws import MAX_KID_LENGTH, MAX_TOKEN_LENGTH, b64url_encode
from django_google_idtoken.providers import google
from django_google_idtoken.testing import (
    FakeIssuer,
    encode_token,
    generate_key,
    pem_certificate,
    public_jwk,
    sign_rs256,
)

if TYPE_CHECKING:
    from django_google_idtoken.testing import KeyServer

#: A fixed "now" for the time rules, so that no test depends on the wall clock.
NOW = 1_750_000_000

# -- fixtures and helpers -----------------------------------------------------


@pytest.fixture
def clock() -> Iterator[int]:
    """Freeze the provider's clock at NOW (an instance attribute shadows the class's)."""
    google.clock = lambda: NOW
    yield NOW
    del google.clock


@pytest.fixture(scope="module")
def attacker_key() -> Any:
    return generate_key()


def refusal(token: object) -> str:
    """The code ``google.verify`` refuses ``token`` with; fails if it verifies."""
    with pytest.raises(Refused) as info:
        google.verify(token)
    return info.value.code


def set_options(settings: Any, **options: Any) -> None:
    settings.GOOGLE_IDTOKEN = {**settings.GOOGLE_IDTOKEN, **options}


def signed(header_segment: str, payload_segment: str, key: Any) -> str:
    """A compact JWS over the exact segments given, with a real RS256 signature."""
    signing_input = f"{header_segment}.{payload_segment}"
    return f"{signing_input}.{b64url_encode(sign_rs256(signing_input.encode('ascii'), key))}"


def hand_built(issuer: FakeIssuer, header: bytes, payload: bytes) -> str:
    """A token whose header and payload JSON are exactly these bytes."""
    return signed(b64url_encode(header), b64url_encode(payload), issuer.keys[issuer.active_kid])


def header_bytes(issuer: FakeIssuer) -> bytes:
    return json.dumps({"alg": "RS256", "kid": issuer.active_kid, "typ": "JWT"}).encode()


def payload_bytes(issuer: FakeIssuer, **claims: Any) -> bytes:
    return json.dumps(issuer.claims(**claims)).encode()


def segments(token: str) -> list[str]:
    return token.split(".")


# -- valid tokens ---------------------------------------------------------------


def test_valid_token_gives_its_claims(issuer: FakeIssuer, key_server: KeyServer) -> None:
    token = issuer.mint(
        sub="110169484474386276334",
        email="ada@example.com",
        hd="Example.COM",
        name="Ada Lovelace",
        given_name="Ada",
        family_name="Lovelace",
        picture="https://lh3.googleusercontent.com/a/ada",
    )
    claims = google.verify(token)
    assert isinstance(claims, Claims)
    assert (claims.provider, claims.issuer, claims.audience) == (
        "google",
        "https://accounts.google.com",
        issuer.client_id,
    )
    assert (claims.sub, claims.email, claims.email_verified) == (
        "110169484474386276334",
        "ada@example.com",
        True,
    )
    # Domain names compare case-insensitively; the claim is kept lowercased.
    assert claims.hosted_domain == "example.com"
    assert (claims.name, claims.given_name, claims.family_name) == (
        "Ada Lovelace",
        "Ada",
        "Lovelace",
    )
    assert claims.picture == "https://lh3.googleusercontent.com/a/ada"
    assert claims.raw == jws.parse(token).payload
    assert key_server.fetches == 1


def test_hand_built_token_verifies(issuer: FakeIssuer, key_server: KeyServer) -> None:
    # The control for every hand-built refusal below: the helper itself is sound.
    token = hand_built(issuer, header_bytes(issuer), payload_bytes(issuer, sub="42"))
    assert google.verify(token).sub == "42"


@pytest.mark.parametrize("iss", ["accounts.google.com", "https://accounts.google.com"])
def test_both_google_issuer_spellings_are_accepted(
    issuer: FakeIssuer, key_server: KeyServer, iss: str
) -> None:
    assert google.verify(issuer.mint(iss=iss)).issuer == iss


def test_second_client_id_is_accepted(
    issuer: FakeIssuer, key_server: KeyServer, settings: Any
) -> None:
    ios = settings.GOOGLE_IDTOKEN["CLIENT_IDS"][1]
    assert ios != issuer.client_id
    assert google.verify(issuer.mint(aud=ios, azp=ios)).audience == ios


@pytest.mark.parametrize(
    "aud",
    [
        ["1234-test.apps.googleusercontent.com"],
        ["someone-else.apps.googleusercontent.com", "1234-test.apps.googleusercontent.com"],
        ["1234-test.apps.googleusercontent.com", "someone-else.apps.googleusercontent.com"],
    ],
)
def test_list_audience_containing_ours_is_accepted(
    issuer: FakeIssuer, key_server: KeyServer, aud: list[str]
) -> None:
    # The matched client id is reported, not whichever comes first in the list.
    assert google.verify(issuer.mint(aud=aud)).audience == issuer.client_id


def test_android_azp_is_not_required_in_client_ids(
    issuer: FakeIssuer, key_server: KeyServer
) -> None:
    # An Android app's token: aud is the server's client id, azp the Android client's.
    token = issuer.mint(azp="1234-android.apps.googleusercontent.com")
    assert google.verify(token).audience == issuer.client_id


@pytest.mark.parametrize("path", ["/certs", "/v1/certs"], ids=["jwks-v3", "pem-v1"])
def test_both_google_key_formats_verify(
    issuer: FakeIssuer, key_server: KeyServer, settings: Any, path: str
) -> None:
    set_options(settings, CERTS_URL=key_server.base_url + path)
    assert google.verify(issuer.mint(sub="7")).sub == "7"
    assert key_server.hits[path] == 1


def test_rotated_key_is_chosen_by_kid(issuer: FakeIssuer, key_server: KeyServer) -> None:
    old = issuer.mint(sub="old")
    issuer.rotate()
    assert google.verify(issuer.mint(sub="new")).sub == "new"
    assert google.verify(old).sub == "old"


# -- structure: a strict compact JWS --------------------------------------------


@pytest.mark.parametrize(
    "token",
    [None, 42, 1.5, True, b"a.b.c", ["a.b.c"], {"id_token": "a.b.c"}],
    ids=["None", "int", "float", "bool", "bytes", "list", "dict"],
)
def test_non_string_is_malformed(key_server: KeyServer, token: object) -> None:
    assert refusal(token) == "malformed_token"


def test_valid_token_as_bytes_is_malformed(issuer: FakeIssuer, key_server: KeyServer) -> None:
    assert refusal(issuer.mint().encode("ascii")) == "malformed_token"


SHAPES: dict[str, Callable[[str, str, str], str]] = {
    "empty string": lambda h, p, s: "",
    "one segment": lambda h, p, s: h + p + s,
    "two segments": lambda h, p, s: f"{h}.{p}",
    "four segments": lambda h, p, s: f"{h}.{p}.{s}.{s}",
    "trailing dot": lambda h, p, s: f"{h}.{p}.{s}.",
    "leading dot": lambda h, p, s: f".{h}.{p}.{s}",
    "only dots": lambda h, p, s: "..",
    "empty header": lambda h, p, s: f".{p}.{s}",
    "empty payload": lambda h, p, s: f"{h}..{s}",
    # What alg "none" tokens carry.
    "empty signature": lambda h, p, s: f"{h}.{p}.",
}


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_not_three_non_empty_segments_is_malformed(
    issuer: FakeIssuer, key_server: KeyServer, shape: Callable[[str, str, str], str]
) -> None:
    assert refusal(shape(*segments(issuer.mint()))) == "malformed_token"


def token_of_length(issuer: FakeIssuer, length: int) -> str:
    """A valid, signed token exactly ``length`` characters long."""
    base = issuer.claims()
    signature_length = len(b64url_encode(sign_rs256(b"", issuer.keys[issuer.active_kid])))
    # base64url lengths are never 1 mod 4, so JSON whitespace in the header
    # supplies the last character or two the filler cannot.
    for spaces in range(4):
        header = b'{"alg":"RS256",' + b" " * spaces + f'"kid":"{issuer.active_kid}"}}'.encode()
        fixed = len(b64url_encode(header)) + 2 + signature_length
        for filler in range(length):
            payload = json.dumps({**base, "filler": "x" * filler}).encode()
            total = fixed + len(b64url_encode(payload))
            if total == length:
                return hand_built(issuer, header, payload)
            if total > length:
                break
    raise AssertionError(f"no token of length {length}")


def test_token_at_size_cap_verifies(issuer: FakeIssuer, key_server: KeyServer) -> None:
    token = token_of_length(issuer, MAX_TOKEN_LENGTH)
    assert len(token) == MAX_TOKEN_LENGTH
    assert google.verify(token).audience == issuer.client_id


def test_token_over_size_cap_is_malformed(issuer: FakeIssuer, key_server: KeyServer) -> None:
    # Signed and otherwise valid: only the size cap refuses it.
    token = token_of_length(issuer, MAX_TOKEN_LENGTH + 1)
    assert refusal(token) == "malformed_token"


@pytest.mark.parametrize(
    "token",
    ["." * 100_000, "." * 1000, "a." * 50_000, "A" * 1_000_000],
    ids=["100k-dots", "1k-dots-under-cap", "50k-segments", "1MB"],
)
def test_huge_or_many_dotted_strings_are_malformed(key_server: KeyServer, token: str) -> None:
    assert refusal(token) == "malformed_token"


# Non-canonical base64url. Each segment is first made long enough to have
# unused bits (length 2 or 3 mod 4) and to contain "-" and "_", so every
# mutation applies to every segment; header and payload mutations are signed
# over their mutated text, and signature mutations decode to the same bytes.


def _suits(segment: str) -> bool:
    return len(segment) % 4 in (2, 3) and "-" in segment and "_" in segment


# "?~?~?~" (3f 7e 3f 7e 3f 7e) holds two whole base64 groups at any alignment,
# one encoding to a "-" and the other to a "_"; the "a"s adjust the length.
_URLSAFE_FILLER = "?~?~?~"


def canonical_parts(issuer: FakeIssuer) -> tuple[str, str, str]:
    key = issuer.keys[issuer.active_kid]
    base = {"alg": "RS256", "kid": issuer.active_kid}
    header = next(
        h
        for n in range(3)
        if _suits(h := b64url_encode(json.dumps({**base, "x": _URLSAFE_FILLER + "a" * n}).encode()))
    )
    claims = issuer.claims()
    # Each new payload gets a new signature, which holds "-" and "_" almost always.
    for n in range(100):
        payload = b64url_encode(json.dumps({**claims, "x": _URLSAFE_FILLER + "a" * n}).encode())
        if _suits(payload):
            signature = segments(signed(header, payload, key))[2]
            if _suits(signature):
                return header, payload, signature
    raise AssertionError("no signature with both '-' and '_' in 100 tries")


def _flip_unused_bit(segment: str) -> str:
    # With length 2 or 3 mod 4, the lowest bit of the last character is padding.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return segment[:-1] + alphabet[alphabet.index(segment[-1]) ^ 1]


MUTATIONS: dict[str, Callable[[str], str]] = {
    "padding": lambda s: s + "=" * (-len(s) % 4),
    "plus": lambda s: s.replace("-", "+"),
    "slash": lambda s: s.replace("_", "/"),
    "space": lambda s: s[:8] + " " + s[8:],
    "newline": lambda s: s[:8] + "\n" + s[8:],
    "trailing-whitespace": lambda s: s + " ",
    "unused-bits": _flip_unused_bit,
    "length-1-mod-4": lambda s: s + "A" * ((1 - len(s)) % 4),
}


def test_canonical_parts_verify(issuer: FakeIssuer, key_server: KeyServer) -> None:
    # The control for the mutations below.
    parts = canonical_parts(issuer)
    for mutate in MUTATIONS.values():
        assert all(mutate(part) != part for part in parts)
    assert google.verify(".".join(parts))


@pytest.mark.parametrize("mutate", MUTATIONS.values(), ids=MUTATIONS.keys())
@pytest.mark.parametrize("which", ["header", "payload", "signature"])
def test_non_canonical_base64_is_malformed(
    issuer: FakeIssuer, key_server: KeyServer, which: str, mutate: Callable[[str], str]
) -> None:
    header, payload, signature = canonical_parts(issuer)
    key = issuer.keys[issuer.active_kid]
    if which == "header":
        token = signed(mutate(header), payload, key)
    elif which == "payload":
        token = signed(header, mutate(payload), key)
    else:
        token = f"{header}.{payload}.{mutate(signature)}"
    assert refusal(token) == "malformed_token"


def _object(kid: str, extra: str = "") -> str:
    return f'{{"alg":"RS256","kid":"{kid}"{extra}}}'


#: Header JSON texts, each refused by one parsing rule; alg and kid are good.
HEADER_CASES: dict[str, Callable[[str], bytes]] = {
    "not-json": lambda kid: f"alg=RS256;kid={kid}".encode(),
    "truncated-json": lambda kid: _object(kid)[:-1].encode(),
    "trailing-data": lambda kid: (_object(kid) + " x").encode(),
    "two-objects": lambda kid: (_object(kid) + "{}").encode(),
    "list": lambda kid: f"[{_object(kid)}]".encode(),
    "string": lambda kid: b'"RS256"',
    "number": lambda kid: b"256",
    "null": lambda kid: b"null",
    "true": lambda kid: b"true",
    # Python's json keeps the last member: without the duplicate rule the
    # second alg (RS256) would win and the token would verify.
    "duplicate-alg": lambda kid: f'{{"alg":"HS256","kid":"{kid}","alg":"RS256"}}'.encode(),
    "duplicate-kid": lambda kid: f'{{"alg":"RS256","kid":"other","kid":"{kid}"}}'.encode(),
    "NaN": lambda kid: _object(kid, ',"x":NaN').encode(),
    "Infinity": lambda kid: _object(kid, ',"x":Infinity').encode(),
    "-Infinity": lambda kid: _object(kid, ',"x":-Infinity').encode(),
    "invalid-utf8": lambda kid: _object(kid, ',"x":"\xff"').encode("latin-1"),
    "utf8-surrogate": lambda kid: _object(kid, ',"x":"\xed\xa0\x80"').encode("latin-1"),
    "utf8-overlong": lambda kid: _object(kid, ',"x":"\xc0\xaf"').encode("latin-1"),
    "bom": lambda kid: b"\xef\xbb\xbf" + _object(kid).encode(),
}


@pytest.mark.parametrize("case", HEADER_CASES.values(), ids=HEADER_CASES.keys())
def test_header_not_a_strict_json_object_is_malformed(
    issuer: FakeIssuer, key_server: KeyServer, case: Callable[[str], bytes]
) -> None:
    header = case(issuer.active_kid)
    assert refusal(hand_built(issuer, header, payload_bytes(issuer))) == "malformed_token"


def _claims_text(issuer: FakeIssuer, extra: str = "") -> str:
    return json.dumps(issuer.claims(sub="victim"))[:-1] + extra + "}"


#: Payload JSON texts, each refused by one parsing rule; the claims are good.
PAYLOAD_CASES: dict[str, Callable[[FakeIssuer], bytes]] = {
    "not-json": lambda issuer: b"sub=victim",
    "truncated-json": lambda issuer: _claims_text(issuer)[:-1].encode(),
    "trailing-data": lambda issuer: (_claims_text(issuer) + " x").encode(),
    "list": lambda issuer: f"[{_claims_text(issuer)}]".encode(),
    "string": lambda issuer: b'"victim"',
    "number": lambda issuer: b"123400",
    "null": lambda issuer: b"null",
    "true": lambda issuer: b"true",
    # Two parsers could read two different users (or apps) out of one token.
    "duplicate-sub": lambda issuer: _claims_text(issuer, ',"sub":"attacker"').encode(),
    "duplicate-aud": lambda issuer: _claims_text(issuer, ',"aud":"someone-else"').encode(),
    "NaN": lambda issuer: _claims_text(issuer, ',"x":NaN').encode(),
    "Infinity": lambda issuer: _claims_text(issuer, ',"x":Infinity').encode(),
    "-Infinity": lambda issuer: _claims_text(issuer, ',"x":-Infinity').encode(),
    "invalid-utf8": lambda issuer: _claims_text(issuer, ',"x":"\xff"').encode("latin-1"),
    "utf8-surrogate": lambda issuer: _claims_text(issuer, ',"x":"\xed\xa0\x80"').encode("latin-1"),
    "utf8-overlong": lambda issuer: _claims_text(issuer, ',"x":"\xc0\xaf"').encode("latin-1"),
    "bom": lambda issuer: b"\xef\xbb\xbf" + _claims_text(issuer).encode(),
}


@pytest.mark.parametrize("case", PAYLOAD_CASES.values(), ids=PAYLOAD_CASES.keys())
def test_payload_not_a_strict_json_object_is_malformed(
    issuer: FakeIssuer, key_server: KeyServer, case: Callable[[FakeIssuer], bytes]
) -> None:
    payload = case(issuer)
    assert refusal(hand_built(issuer, header_bytes(issuer), payload)) == "malformed_token"


def test_deeply_nested_json_is_refused_cleanly(issuer: FakeIssuer, key_server: KeyServer) -> None:
    # Python's JSON recursion limit differs between versions, so the token may
    # parse; what matters is that a RecursionError never escapes as a 500.
    payload = _claims_text(issuer, ',"x":' + "[" * 2000 + "]" * 2000).encode()
    token = hand_built(issuer, header_bytes(issuer), payload)
    assert len(token) <= MAX_TOKEN_LENGTH
    try:
        google.verify(token)
    except Refused as err:
        assert err.code == "malformed_token"


# -- header rules ------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_without_signature_is_malformed(
    issuer: FakeIssuer, key_server: KeyServer, alg: str
) -> None:
    # The empty signature segment is refused by the parser, before alg is read.
    header = json.dumps({"alg": alg, "kid": issuer.active_kid}).encode()
    token = f"{b64url_encode(header)}.{b64url_encode(payload_bytes(issuer))}."
    assert refusal(token) == "malformed_token"


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_with_signature_is_unsupported(
    issuer: FakeIssuer, key_server: KeyServer, alg: str
) -> None:
    # A genuine RS256 signature: only the allow-list can refuse it.
    token = issuer.mint(header={"alg": alg})
    assert refusal(token) == "unsupported_algorithm"


@pytest.mark.parametrize(
    "alg",
    [
        *("HS256", "HS512", "ES256", "PS256", "RS384", "RS512", "EdDSA"),
        # Near misses of the one allowed value are not it.
        *("rs256", "RS256 ", " RS256", "RS256\x00", ""),
    ],
)
def test_other_algorithms_over_a_valid_rs256_signature_are_unsupported(
    issuer: FakeIssuer, key_server: KeyServer, alg: str
) -> None:
    # The token's alg never selects the verification method, even when the
    # signature underneath is a valid RS256 one.
    assert refusal(issuer.mint(header={"alg": alg})) == "unsupported_algorithm"


@pytest.mark.parametrize("alg", [None, 256, ["RS256"], {"RS256": True}, True], ids=repr)
def test_non_string_alg_is_unsupported(
    issuer: FakeIssuer, key_server: KeyServer, alg: object
) -> None:
    assert refusal(issuer.mint(header={"alg": alg})) == "unsupported_algorithm"


def test_missing_alg_is_unsupported(issuer: FakeIssuer, key_server: KeyServer) -> None:
    header = {"kid": issuer.active_kid, "typ": "JWT"}
    token = encode_token(header, issuer.claims(), issuer.keys[issuer.active_kid])
    assert refusal(token) == "unsupported_algorithm"


def _served(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return bytes(response.read())


@pytest.mark.parametrize(
    "secret_form", ["pem-spki", "pem-pkcs1", "der-spki", "jwk-json", "jwks-as-served", "cert-pem"]
)
def test_hs256_with_the_public_key_as_secret_is_unsupported(
    issuer: FakeIssuer, key_server: KeyServer, secret_form: str
) -> None:
    kid = issuer.active_kid
    public = issuer.keys[kid].public_key()
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    secret = {
        "pem-spki": lambda: public.public_bytes(serialization.Encoding.PEM, spki),
        "pem-pkcs1": lambda: public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
        ),
        "der-spki": lambda: public.public_bytes(serialization.Encoding.DER, spki),
        "jwk-json": lambda: json.dumps(public_jwk(kid, issuer.keys[kid])).encode(),
        # The attacker has exactly the bytes the endpoint serves.
        "jwks-as-served": lambda: _served(key_server.base_url + "/certs"),
        "cert-pem": lambda: json.loads(_served(key_server.base_url + "/v1/certs"))[kid].encode(),
    }[secret_form]()
    header_segment = b64url_encode(json.dumps({"alg": "HS256", "kid": kid, "typ": "JWT"}).encode())
    signing_input = f"{header_segment}.{b64url_encode(payload_bytes(issuer))}"
    mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    assert refusal(f"{signing_input}.{b64url_encode(mac)}") == "unsupported_algorithm"


def _embedded_key_header(name: str, kid: str, attacker: Any) -> dict[str, Any]:
    if name == "jwk":
        return {"jwk": public_jwk(kid, attacker)}
    if name == "x5c":
        certificate = x509.load_pem_x509_certificate(pem_certificate(attacker).encode())
        der = certificate.public_bytes(serialization.Encoding.DER)
        return {"x5c": [base64.b64encode(der).decode("ascii")]}
    return {name: f"https://attacker.example/{name}"}


@pytest.mark.parametrize("signer", ["attacker", "issuer"])
@pytest.mark.parametrize("name", ["jwk", "jku", "x5u", "x5c"])
def test_header_naming_its_own_key_is_refused(
    issuer: FakeIssuer, key_server: KeyServer, attacker_key: Any, name: str, signer: str
) -> None:
    # Signed by the attacker's key under a published kid (honouring the header
    # would verify it), or by the real key (nothing else could refuse it).
    extra = _embedded_key_header(name, issuer.active_kid, attacker_key)
    key = attacker_key if signer == "attacker" else issuer.keys[issuer.active_kid]
    assert refusal(issuer.mint(header=extra, key=key)) == "malformed_token"


@pytest.mark.parametrize(
    "crit",
    [{"crit": ["exp"], "exp": NOW}, {"crit": []}, {"crit": ["b64"], "b64": False}, {"crit": "b64"}],
    ids=["exp", "empty", "b64", "string"],
)
def test_crit_header_is_refused(
    issuer: FakeIssuer, key_server: KeyServer, crit: dict[str, Any]
) -> None:
    # RFC 7515 4.1.11: extensions we do not implement make the token invalid.
    assert refusal(issuer.mint(header=crit)) == "malformed_token"


def test_missing_kid_is_malformed(issuer: FakeIssuer, key_server: KeyServer) -> None:
    token = encode_token({"alg": "RS256"}, issuer.claims(), issuer.keys[issuer.active_kid])
    assert refusal(token) == "malformed_token"


BAD_KIDS: dict[str, Callable[[str], object]] = {
    "int": lambda kid: 12345,
    "zero": lambda kid: 0,
    "float": lambda kid: 1.5,
    "bool": lambda kid: True,
    "null": lambda kid: None,
    # The real kid inside a list or dict must not reach the key lookup.
    "list": lambda kid: [kid],
    "dict": lambda kid: {"kid": kid},
    "empty": lambda kid: "",
    "too-long": lambda kid: "x" * (MAX_KID_LENGTH + 1),
}


@pytest.mark.parametrize("bad_kid", BAD_KIDS.values(), ids=BAD_KIDS.keys())
def test_unusable_kid_is_malformed(
    issuer: FakeIssuer, key_server: KeyServer, bad_kid: Callable[[str], object]
) -> None:
    assert refusal(issuer.mint(header={"kid": bad_kid(issuer.active_kid)})) == "malformed_token"


UNKNOWN_KIDS: dict[str, Callable[[str], str]] = {
    "path": lambda kid: "../../etc/passwd",
    "sql": lambda kid: "' OR 1=1 --",
    "urlencoded": lambda kid: "%2e%2e%2f",
    "nul": lambda kid: "\x00",
    "unknown": lambda kid: "not-a-published-kid",
    "max-length": lambda kid: "x" * MAX_KID_LENGTH,
    "upper": lambda kid: kid.upper(),
    "padded": lambda kid: f" {kid}",
}


@pytest.mark.parametrize("unknown", UNKNOWN_KIDS.values(), ids=UNKNOWN_KIDS.keys())
def test_unknown_kid_is_unknown_key(
    issuer: FakeIssuer, key_server: KeyServer, unknown: Callable[[str], str]
) -> None:
    # Signed by the real key: only the key lookup by kid can refuse it.
    assert refusal(issuer.mint(header={"kid": unknown(issuer.active_kid)})) == "unknown_key"


# -- signature -----------------------------------------------------------------


@pytest.mark.parametrize(("byte", "bit"), [(0, 7), (0, 0), (128, 3), (255, 0)])
def test_flipped_signature_bit_is_invalid(
    issuer: FakeIssuer, key_server: KeyServer, byte: int, bit: int
) -> None:
    header, payload, signature_segment = segments(issuer.mint())
    signature = bytearray(jws.b64url_decode(signature_segment))
    signature[byte] ^= 1 << bit
    token = f"{header}.{payload}.{b64url_encode(bytes(signature))}"
    assert refusal(token) == "invalid_signature"


def test_foreign_key_under_published_kid_is_invalid(
    issuer: FakeIssuer, key_server: KeyServer
) -> None:
    assert refusal(issuer.foreign_key()) == "invalid_signature"


def test_signature_of_another_published_key_is_invalid(
    issuer: FakeIssuer, key_server: KeyServer
) -> None:
    # Both keys are published; the kid picks the key, not "any key that verifies".
    first = issuer.active_kid
    second = issuer.add_key()
    assert refusal(issuer.mint(kid=second, key=issuer.keys[first])) == "invalid_signature"


def test_payload_swapped_after_signing_is_invalid(
    issuer: FakeIssuer, key_server: KeyServer
) -> None:
    header, _, signature = segments(issuer.mint(sub="victim"))
    _, attacker_payload, _ = segments(issuer.mint(sub="attacker"))
    assert refusal(f"{header}.{attacker_payload}.{signature}") == "invalid_signature"


def test_header_swapped_after_signing_is_invalid(issuer: FakeIssuer, key_server: KeyServer) -> None:
    _, payload, signature = segments(issuer.mint())
    other_header = segments(issuer.mint(header={"typ": "at+jwt"}))[0]
    assert refusal(f"{other_header}.{payload}.{signature}") == "invalid_signature"


SIGNATURE_EDITS: dict[str, Callable[[bytes], bytes]] = {
    "last-byte-dropped": lambda s: s[:-1],
    "first-byte-dropped": lambda s: s[1:],
    "half": lambda s: s[: len(s) // 2],
    "zero-appended": lambda s: s + b"\x00",
    "zero-prepended": lambda s: b"\x00" + s,
    "one-byte": lambda s: s[:1],
}


@pytest.mark.parametrize("edit", SIGNATURE_EDITS.values(), ids=SIGNATURE_EDITS.keys())
def test_resized_signature_is_invalid(
    issuer: FakeIssuer, key_server: KeyServer, edit: Callable[[bytes], bytes]
) -> None:
    header, payload, signature = segments(issuer.mint())
    token = f"{header}.{payload}.{b64url_encode(edit(jws.b64url_decode(signature)))}"
    assert refusal(token) == "invalid_signature"


def test_signature_segment_cut_mid_character_is_malformed(
    issuer: FakeIssuer, key_server: KeyServer
) -> None:
    # 342 characters for 256 bytes; 341 is 1 mod 4, which no byte string encodes to.
    assert refusal(issuer.mint()[:-1]) == "malformed_token"


@pytest.mark.parametrize("fault", ["expired", "wrong_issuer", "wrong_audience"])
def test_signature_is_checked_before_claims(
    issuer: FakeIssuer, key_server: KeyServer, fault: str
) -> None:
    # Claims are attacker-written text until the signature verifies.
    overrides = {
        "expired": {"exp": issuer.now() - 3600, "iat": issuer.now() - 7200},
        "wrong_issuer": {"iss": "https://evil.example"},
        "wrong_audience": {"aud": "someone-else.apps.googleusercontent.com"},
    }[fault]
    assert refusal(issuer.foreign_key(**overrides)) == "invalid_signature"


# -- claims: iss and aud -----------------------------------------------------------


def test_fake_issuer_shortcuts_are_refused(issuer: FakeIssuer, key_server: KeyServer) -> None:
    assert refusal(issuer.expired()) == "token_expired"
    assert refusal(issuer.wrong_issuer()) == "wrong_issuer"
    assert refusal(issuer.wrong_audience()) == "wrong_audience"


@pytest.mark.parametrize(
    "iss",
    [
        "accounts.google",
        "https://accounts.google",
        "accounts.google.com/",
        "https://accounts.google.com/",
        "xaccounts.google.com",
        "https://Accounts.Google.com",
        "ACCOUNTS.GOOGLE.COM",
        "HTTPS://accounts.google.com",
        "https://accounts.google.com.evil.example",
        "https://evil.example/accounts.google.com",
        "http://accounts.google.com",
        " accounts.google.com",
        "accounts.google.com\n",
        "",
    ],
)
def test_wrong_issuer_is_refused(issuer: FakeIssuer, key_server: KeyServer, iss: str) -> None:
    assert refusal(issuer.mint(iss=iss)) == "wrong_issuer"


@pytest.mark.parametrize(
    "iss",
    [None, 1, True, ["accounts.google.com"], {"iss": "accounts.google.com"}],
    ids=repr,
)
def test_non_string_issuer_is_wrong_issuer(
    issuer: FakeIssuer, key_server: KeyServer, iss: object
) -> None:
    assert refusal(issuer.mint(iss=iss)) == "wrong_issuer"


def test_missing_issuer_is_wrong_issuer(issuer: FakeIssuer, key_server: KeyServer) -> None:
    assert refusal(issuer.mint(drop=["iss"])) == "wrong_issuer"


@pytest.mark.parametrize(
    "aud",
    [
        "someone-else.apps.googleusercontent.com",
        "1234-TEST.apps.googleusercontent.com",
        "1234-test.apps.googleusercontent.com ",
        "1234-test",
        "",
        ["someone-else.apps.googleusercontent.com"],
        ["someone-else.apps.googleusercontent.com", "another.apps.googleusercontent.com"],
    ],
)
def test_audience_of_another_client_is_wrong_audience(
    issuer: FakeIssuer, key_server: KeyServer, aud: object
) -> None:
    # Google signed it, but for another app: it must not sign users in here.
    assert refusal(issuer.mint(aud=aud)) == "wrong_audience"


def test_missing_audience_is_wrong_audience(issuer: FakeIssuer, key_server: KeyServer) -> None:
    assert refusal(issuer.mint(drop=["aud"])) == "wrong_audience"


@pytest.mark.parametrize(
    "aud",
    [
        42,
        True,
        {"aud": "1234-test.apps.googleusercontent.com"},
        ["1234-test.apps.googleusercontent.com", 42],
        ["1234-test.apps.googleusercontent.com", None],
        [["1234-test.apps.googleusercontent.com"]],
    ],
    ids=["int", "bool", "dict", "list-with-int", "list-with-null", "nested-list"],
)
def test_audience_of_wrong_type_is_invalid_claims(
    issuer: FakeIssuer, key_server: KeyServer, aud: object
) -> None:
    assert refusal(issuer.mint(aud=aud)) == "invalid_claims"


# -- claims: times ------------------------------------------------------------------


def test_expired_beyond_leeway_is_refused(
    issuer: FakeIssuer, key_server: KeyServer, clock: int
) -> None:
    assert refusal(issuer.mint(iat=NOW - 3600, exp=NOW - 61)) == "token_expired"


def test_expired_within_leeway_is_accepted_until_leeway_is_zero(
    issuer: FakeIssuer, key_server: KeyServer, clock: int, settings: Any
) -> None:
    token = issuer.mint(iat=NOW - 3600, exp=NOW - 30)
    assert google.verify(token)
    boundary = issuer.mint(iat=NOW - 3600, exp=NOW - 60)
    assert google.verify(boundary)
    # LEEWAY is read live: the same tokens are refused once it is 0.
    set_options(settings, LEEWAY=0)
    assert refusal(token) == "token_expired"
    assert refusal(boundary) == "token_expired"
    assert google.verify(issuer.mint(iat=NOW - 3600, exp=NOW))


def test_iat_in_future_beyond_leeway_is_not_yet_valid(
    issuer: FakeIssuer, key_server: KeyServer, clock: int, settings: Any
) -> None:
    assert refusal(issuer.mint(iat=NOW + 61, exp=NOW + 3600)) == "token_not_yet_valid"
    within = issuer.mint(iat=NOW + 60, exp=NOW + 3600)
    assert google.verify(within)
    set_options(settings, LEEWAY=0)
    assert refusal(within) == "token_not_yet_valid"


def test_nbf_in_future_is_not_yet_valid(
    issuer: FakeIssuer, key_server: KeyServer, clock: int, settings: Any
) -> None:
    assert refusal(issuer.mint(iat=NOW, exp=NOW + 3600, nbf=NOW + 61)) == "token_not_yet_valid"
    assert refusal(issuer.mint(iat=NOW, exp=NOW + 3600, nbf=NOW + 3000)) == "token_not_yet_valid"
    within = issuer.mint(iat=NOW, exp=NOW + 3600, nbf=NOW + 60)
    assert google.verify(within)
    assert google.verify(issuer.mint(iat=NOW, exp=NOW + 3600, nbf=NOW - 10))
    set_options(settings, LEEWAY=0)
    assert refusal(within) == "token_not_yet_valid"


# Valid values for each time claim at NOW, and wrong-typed spellings of them.
_TIMES = {"exp": NOW + 3600, "iat": NOW - 10, "nbf": NOW - 10}
_BAD_TIMES: dict[str, Callable[[int], str]] = {
    "string": lambda t: json.dumps(str(t)),
    "float": lambda t: json.dumps(float(t)),
    "fraction": lambda t: f"{t}.5",
    "exponent": lambda t: f"{t / 1e9}e9",
    "true": lambda t: "true",
    "false": lambda t: "false",
    "null": lambda t: "null",
    "list": lambda t: f"[{t}]",
    "object": lambda t: f'{{"t":{t}}}',
    "1e400": lambda t: "1e400",
    "2**64": lambda t: str(2**64),
    "10**400": lambda t: "1" + "0" * 400,
    "negative": lambda t: "-1",
    "NaN": lambda t: "NaN",
}


@pytest.mark.parametrize("spelling", _BAD_TIMES.values(), ids=_BAD_TIMES.keys())
@pytest.mark.parametrize("name", ["exp", "iat", "nbf"])
def test_time_claim_of_wrong_type_is_refused(
    issuer: FakeIssuer,
    key_server: KeyServer,
    clock: int,
    name: str,
    spelling: Callable[[int], str],
) -> None:
    times = dict(_TIMES)
    raw = spelling(times.pop(name))
    text = json.dumps(issuer.claims(**times, **{name: "__RAW__"})).replace('"__RAW__"', raw)
    token = hand_built(issuer, header_bytes(issuer), text.encode())
    # NaN is not JSON at all, so the parser refuses it before the claim rules.
    expected = "malformed_token" if raw == "NaN" else "invalid_claims"
    assert refusal(token) == expected


def test_time_claims_control(issuer: FakeIssuer, key_server: KeyServer, clock: int) -> None:
    # The control for the wrong-typed times: the same claims as integers verify.
    assert google.verify(issuer.mint(**_TIMES))


@pytest.mark.parametrize("name", ["exp", "iat"])
def test_missing_exp_or_iat_is_invalid_claims(
    issuer: FakeIssuer, key_server: KeyServer, name: str
) -> None:
    assert refusal(issuer.mint(drop=[name])) == "invalid_claims"


# -- claims: sub, hd, email_verified ----------------------------------------------------


@pytest.mark.parametrize("sub", ["", 123, None, True, ["123"], {"id": "123"}, "x" * 256], ids=repr)
def test_unusable_sub_is_invalid_claims(
    issuer: FakeIssuer, key_server: KeyServer, sub: object
) -> None:
    assert refusal(issuer.mint(sub=sub)) == "invalid_claims"


def test_missing_sub_is_invalid_claims(issuer: FakeIssuer, key_server: KeyServer) -> None:
    assert refusal(issuer.mint(drop=["sub"])) == "invalid_claims"


def test_sub_of_255_characters_is_accepted(issuer: FakeIssuer, key_server: KeyServer) -> None:
    assert google.verify(issuer.mint(sub="9" * 255)).sub == "9" * 255


@pytest.fixture
def workspace(settings: Any, key_server: KeyServer) -> None:
    set_options(settings, HOSTED_DOMAINS=["example.com"])


@pytest.mark.parametrize(
    "claims",
    [
        {"email": "ada@example.com"},
        {"hd": "other.example", "email": "ada@example.com"},
        {"hd": "example.com.evil.example", "email": "ada@example.com"},
        {"hd": "sub.example.com", "email": "ada@sub.example.com"},
        {"hd": "", "email": "ada@example.com"},
        {"hd": ["example.com"], "email": "ada@example.com"},
        {"hd": 1, "email": "ada@example.com"},
    ],
    ids=["email-only", "other", "suffix", "subdomain", "empty", "list", "int"],
)
def test_hosted_domain_not_in_list_is_refused(
    issuer: FakeIssuer, workspace: None, claims: dict[str, Any]
) -> None:
    # Only the hd claim proves a Workspace account; the email's domain does not.
    assert refusal(issuer.mint(**claims)) == "hosted_domain_not_allowed"


@pytest.mark.parametrize("hd", ["example.com", "EXAMPLE.COM", "Example.Com"])
def test_matching_hosted_domain_is_accepted(issuer: FakeIssuer, workspace: None, hd: str) -> None:
    assert google.verify(issuer.mint(hd=hd)).hosted_domain == "example.com"


def test_hosted_domains_setting_compares_case_insensitively(
    issuer: FakeIssuer, key_server: KeyServer, settings: Any
) -> None:
    set_options(settings, HOSTED_DOMAINS=["Example.COM"])
    assert google.verify(issuer.mint(hd="example.com")).hosted_domain == "example.com"


def test_without_hosted_domains_any_account_is_accepted(
    issuer: FakeIssuer, key_server: KeyServer
) -> None:
    assert google.verify(issuer.mint(drop=["hd"])).hosted_domain == ""
    assert google.verify(issuer.mint(hd="Other.Example")).hosted_domain == "other.example"


@pytest.mark.parametrize(
    ("overrides", "drop", "expected"),
    [
        ({"email_verified": True}, [], True),
        ({"email_verified": False}, [], False),
        # The string "false" is truthy in Python; only a JSON true counts.
        ({"email_verified": "false"}, [], False),
        ({"email_verified": "true"}, [], False),
        ({"email_verified": 1}, [], False),
        ({}, ["email_verified"], False),
        # Nothing is verified when there is no email.
        ({"email_verified": True}, ["email"], False),
        ({"email_verified": True, "email": ""}, [], False),
    ],
    ids=["true", "false", "string-false", "string-true", "one", "missing", "no-email", "empty"],
)
def test_email_verified_only_for_json_true_with_an_email(
    issuer: FakeIssuer,
    key_server: KeyServer,
    overrides: dict[str, Any],
    drop: list[str],
    expected: bool,
) -> None:
    assert google.verify(issuer.mint(drop=drop, **overrides)).email_verified is expected


# -- Wycheproof conformance ---------------------------------------------------------

VECTORS = Path(__file__).parent / "vectors" / "wycheproof"
RSA_VECTORS = json.loads((VECTORS / "rsa_signature_2048_sha256_test.json").read_text())
JWS_VECTORS = json.loads((VECTORS / "json_web_signature_test.json").read_text())


def _rsa_verifier(group: dict[str, Any]) -> Any:
    # Built by the key store's own JWK parsing, which yields the RSAKey
    # every sign-in uses.
    document = json.dumps({"keys": [group["keyJwk"]]}).encode()
    verifier = keys.parse_document(document)[group["keyJwk"]["kid"]]
    assert isinstance(verifier, keys.RSAKey)
    return verifier


def _rsa_verdict(group: dict[str, Any], case: dict[str, Any]) -> bool:
    return bool(_rsa_verifier(group).verify(bytes.fromhex(case["msg"]), bytes.fromhex(case["sig"])))


RSA_CASES = [
    pytest.param(group, case, id=f"{case['tcId']}-{case['result']}-{'-'.join(case['flags'])}")
    for group in RSA_VECTORS["testGroups"]
    for case in group["tests"]
]


@pytest.mark.parametrize(("group", "case"), RSA_CASES)
def test_wycheproof_rsa_pkcs1_sha256(group: dict[str, Any], case: dict[str, Any]) -> None:
    verified = _rsa_verdict(group, case)
    if case["result"] == "valid":
        assert verified is True
    elif case["result"] == "invalid":
        assert verified is False
    # "acceptable" (a legacy encoding) may go either way; the tally counts it.


def _jws_key_document(group: dict[str, Any]) -> bytes:
    return json.dumps({"keys": [group.get("public") or group["private"]]}).encode()


def _jws_verdict(group: dict[str, Any], token: str) -> str:
    """Return "verified" or the refusal code, through the project's JWS layer.

    Every Wycheproof JWS payload is opaque bytes ("foo", "", "Test", ...), never
    the JSON object an ID token carries, so ``jws.parse`` refuses them all at its
    payload rule (see test_wycheproof_jws_payloads_are_not_id_tokens). To run the
    rest of the layer on them, the payload segment is checked with the same
    strict base64url decoder, and ``jws.parse`` (size, shape, header, signature)
    sees the token with that segment replaced by "{}"; the signature is then
    checked over the vector's own signing input. Keys come from the key
    store's JWK parsing, chosen by kid as the provider does.
    """
    parts = token.split(".")
    try:
        if len(parts) == 3:
            header, payload, signature = parts
            shape = jws.parse(f"{header}.{b64url_encode(b'{}')}.{signature}")
            jws.b64url_decode(payload)
            parsed = jws.ParsedToken(
                header=shape.header,
                payload={},
                signing_input=f"{header}.{payload}".encode("ascii"),
                signature=shape.signature,
            )
        else:
            parsed = jws.parse(token)
        kid = jws.check_header(parsed, {"RS256"})
        try:
            key = keys.parse_document(_jws_key_document(group))[kid]
        except (keys.FetchError, KeyError):
            raise Refused("unknown_key") from None
        jws.verify_signature(parsed, key)
    except Refused as err:
        return err.code
    return "verified"


def _header_alg(token: str) -> object:
    try:
        return json.loads(jws.b64url_decode(token.split(".")[0])).get("alg")
    except (Refused, ValueError, AttributeError):
        return None


JWS_CASES = [
    pytest.param(
        group, case, id=f"{case['tcId']}-{group['comment']}-{case['result']}-{case['comment']}"
    )
    for group in JWS_VECTORS["testGroups"]
    for case in group["tests"]
]


@pytest.mark.parametrize(("group", "case"), JWS_CASES)
def test_wycheproof_jws_under_rs256_allow_list(group: dict[str, Any], case: dict[str, Any]) -> None:
    verdict = _jws_verdict(group, case["jws"])
    if case["result"] == "valid" and _header_alg(case["jws"]) == "RS256":
        assert verdict == "verified"
    else:
        # Invalid vectors, and valid ones for any other algorithm, are refused.
        assert verdict != "verified"


@pytest.mark.parametrize(("group", "case"), JWS_CASES)
def test_wycheproof_jws_payloads_are_not_id_tokens(
    group: dict[str, Any], case: dict[str, Any]
) -> None:
    # Unmodified, no vector is a JWS with a JSON-object payload, so the full
    # parser refuses every one of them.
    with pytest.raises(Refused) as info:
        jws.parse(case["jws"])
    assert info.value.code == "malformed_token"


def wycheproof_tally() -> dict[str, Counter[str]]:
    """Verified / refused counts per vector group (printed by the test below)."""
    tally: dict[str, Counter[str]] = {}
    for group in RSA_VECTORS["testGroups"]:
        counter = tally.setdefault(
            f"rsa-pkcs1-sha256 e={group['publicKey']['publicExponent']}", Counter()
        )
        for case in group["tests"]:
            verdict = "verified" if _rsa_verdict(group, case) else "refused"
            counter[f"{case['result']}:{verdict}"] += 1
    for group in JWS_VECTORS["testGroups"]:
        alg = (group.get("public") or group["private"]).get("alg")
        counter = tally.setdefault(f"jws {group['comment']} ({alg})", Counter())
        for case in group["tests"]:
            verdict = _jws_verdict(group, case["jws"])
            counter[f"{case['result']}:{'verified' if verdict == 'verified' else 'refused'}"] += 1
    return tally


def test_wycheproof_tally_covers_every_vector() -> None:
    tally = wycheproof_tally()
    for name, counter in tally.items():
        print(f"{name:45} {dict(sorted(counter.items()))}")
    rsa = sum(sum(c.values()) for n, c in tally.items() if n.startswith("rsa"))
    jws_total = sum(sum(c.values()) for n, c in tally.items() if n.startswith("jws"))
    # Guards against a truncated or swapped vector file.
    assert rsa == RSA_VECTORS["numberOfTests"] == 259
    assert jws_total == JWS_VECTORS["numberOfTests"] == 401
