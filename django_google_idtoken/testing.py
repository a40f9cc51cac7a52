"""A fake Google for tests and development: its own RSA keys, realistic ID
tokens, and its key set in both of Google's formats.

Nothing here is used by the sign-in code itself. Tokens minted here verify
only where this issuer's keys are served or installed, which a production
configuration never does.

    issuer = FakeIssuer(client_id="my-client.apps.googleusercontent.com")
    token = issuer.mint(sub="1234", email="ada@example.com")
    expired = issuer.mint(exp=issuer.now() - 3600)
    no_email = issuer.mint(drop=["email"])
"""

from __future__ import annotations

import datetime
import hashlib
import json
import secrets
import time
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from .jws import b64url_encode

GOOGLE_ISSUER = "https://accounts.google.com"
DEFAULT_CLIENT_ID = "1234-test.apps.googleusercontent.com"


def generate_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """A new RSA private key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


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


class FakeIssuer:
    """An ID token issuer with its own keys, minting Google-style tokens."""

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
        kid = (
            kid
            or hashlib.sha1(  # noqa: S324 - a key id, not a security hash
                key.public_key().public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            ).hexdigest()
        )
        self.keys[kid] = key
        return kid

    def rotate(self, key: rsa.RSAPrivateKey | None = None) -> str:
        """Publish a new key and sign with it from now on (the old one stays published)."""
        self.active_kid = self.add_key(key)
        return self.active_kid

    def remove_key(self, kid: str) -> None:
        """Stop publishing ``kid``."""
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
        return int(time.time())

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """Realistic default claims of a Google ID token, with ``overrides`` applied."""
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
        claims in ``drop`` removed. ``kid``/``key`` pick another signing key
        (a ``key`` not published here makes a "foreign key" token)."""
        payload = self.claims(**overrides)
        for name in drop:
            payload.pop(name, None)
        kid = kid or self.active_kid
        signing_key = key or self.keys[kid]
        token_header: dict[str, Any] = {"alg": "RS256", "kid": kid, "typ": "JWT"}
        token_header.update(header or {})
        return encode_token(token_header, payload, signing_key)

    def expired(self, **overrides: Any) -> str:
        """A token that expired an hour ago."""
        now = self.now()
        return self.mint(**{"iat": now - 7200, "exp": now - 3600, **overrides})

    def wrong_audience(self, **overrides: Any) -> str:
        return self.mint(**{"aud": "someone-else.apps.googleusercontent.com", **overrides})

    def wrong_issuer(self, **overrides: Any) -> str:
        return self.mint(**{"iss": "https://evil.example", **overrides})

    def foreign_key(self, **overrides: Any) -> str:
        """A token signed by a key this issuer does not publish, under a published kid."""
        return self.mint(key=generate_key(), **overrides)
