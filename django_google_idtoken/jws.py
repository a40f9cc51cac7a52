"""Strict parsing of compact JWS tokens (RFC 7515) and their signature check.

This module and :mod:`django_google_idtoken.keys` are the only places that
touch cryptography. Everything here is written against an attacker who
controls every byte of the token.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Protocol

from .errors import Refused

#: Tokens longer than this are refused before any decoding work. Google's ID
#: tokens are about 1.2 KB; the cap stops memory and CPU being spent on huge inputs.
MAX_TOKEN_LENGTH = 8 * 1024

#: A kid longer than this cannot be one of Google's (40 hex digits); it is
#: refused before it is used as a lookup key or logged.
MAX_KID_LENGTH = 256

# The base64url alphabet without padding (RFC 7515 section 2). Padding, "+",
# "/" and whitespace are all refused: one signature must have one spelling.
_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")

# Header parameters that let the token name its own key or demand extensions
# we do not implement. Honouring jwk/jku/x5u/x5c would let an attacker sign
# with a key of their own choosing; RFC 7515 section 4.1.11 says a "crit" we do
# not understand makes the token invalid.
_FORBIDDEN_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "crit"})


class Verifier(Protocol):
    """What a parsed public key must offer (google.auth.crypt.Verifier does)."""

    def verify(self, message: bytes, signature: bytes) -> bool: ...


@dataclass(frozen=True)
class ParsedToken:
    """A compact JWS split and decoded, not yet verified."""

    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes

    @property
    def kid(self) -> str | None:
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) else None


def b64url_decode(segment: str) -> bytes:
    """Decode one canonical, unpadded base64url segment, or refuse the token."""
    if not _SEGMENT.fullmatch(segment) or len(segment) % 4 == 1:
        raise Refused("malformed_token")
    try:
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as err:
        raise Refused("malformed_token") from err
    # Non-zero unused bits in the last character decode to the same bytes as
    # the canonical spelling; re-encoding catches them, so one token has one
    # spelling (which replay protection relies on).
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii") != segment:
        raise Refused("malformed_token")
    return data


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url, as JWS uses."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two "sub" (or "alg") members could be read differently by two parsers;
    # RFC 7515 section 5.2 lets us refuse them, and we do.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError("duplicate member")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    # NaN and Infinity are not JSON (RFC 8259); Python accepts them by default.
    raise ValueError("non-standard JSON constant")


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise Refused("malformed_token") from err
    if not isinstance(value, dict):
        raise Refused("malformed_token")
    return value


def parse(token: object) -> ParsedToken:
    """Split and decode a compact JWS, refusing anything not strictly well-formed."""
    if not isinstance(token, str):
        raise Refused("malformed_token")
    # Size and shape first: no decoding work for a 1 MB token or 100,000 dots.
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        raise Refused("malformed_token")
    header_b64, payload_b64, signature_b64 = token.split(".")
    if not header_b64 or not payload_b64 or not signature_b64:
        # An empty signature is what alg "none" tokens carry.
        raise Refused("malformed_token")
    header = _json_object(b64url_decode(header_b64))
    payload = _json_object(b64url_decode(payload_b64))
    signature = b64url_decode(signature_b64)
    return ParsedToken(
        header=header,
        payload=payload,
        signing_input=f"{header_b64}.{payload_b64}".encode("ascii"),
        signature=signature,
    )


def check_header(parsed: ParsedToken, allowed_algorithms: Collection[str]) -> str:
    """Check the header against the provider's allow-list; return the kid.

    The allow-list is the provider's, never the token's: reading ``alg`` from
    the token to pick the verification method is how "alg: none" and "HS256
    with the RSA public key as the HMAC secret" attacks work.
    """
    alg = parsed.header.get("alg")
    if not isinstance(alg, str) or alg not in allowed_algorithms:
        raise Refused("unsupported_algorithm", kid=_loggable_kid(parsed.header.get("kid")))
    if _FORBIDDEN_HEADERS.intersection(parsed.header):
        raise Refused(
            "malformed_token",
            "The ID token's header names its own key or critical extensions.",
        )
    kid = parsed.header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_LENGTH:
        raise Refused("malformed_token", "The ID token's header has no usable key id (kid).")
    return kid


def verify_signature(parsed: ParsedToken, key: Verifier) -> None:
    """Check the signature over ``header.payload`` with an already-chosen key."""
    if not key.verify(parsed.signing_input, parsed.signature):
        raise Refused("invalid_signature", kid=parsed.kid)


def _loggable_kid(kid: object) -> str | None:
    if isinstance(kid, str) and len(kid) <= MAX_KID_LENGTH:
        return kid
    return None
