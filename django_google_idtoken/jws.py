"""Strict parsing of compact JWS tokens (RFC 7515) and their signature check.

This module and :mod:`django_google_idtoken.keys` are the only places that
touch cryptography. Everything here is written against an attacker who
controls every byte of the token.
"""

from __future__ import annotations

import base64
import binascii
import json
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

# Header parameters that let the token name its own key or demand extensions
# we do not implement. Honouring jwk/jku/x5u/x5c would let an attacker sign
# with a key of their own choosing; RFC 7515 section 4.1.11 says a "crit" we do
# not understand makes the token invalid.
_FORBIDDEN_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "crit"})


class Verifier(Protocol):
    """What a parsed public key must offer (:class:`.keys.RSAKey` does)."""

    #: The JWS algorithms the key was published for.
    algorithms: frozenset[str]

    def verify(self, message: bytes, signature: bytes, alg: str = ...) -> bool:
        """True only if ``signature`` verifies under ``alg``, and ``alg`` is
        an algorithm this key was published for."""
        ...


@dataclass(slots=True)
class ParsedToken:
    """A compact JWS split and decoded, not yet verified. ``header`` may be
    shared with other tokens that have the same header: never modify it.
    (Not frozen: a frozen dataclass costs a microsecond per token.)"""

    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes

    @property
    def kid(self) -> str | None:
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) else None


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_VALUE = {char: value for value, char in enumerate(_ALPHABET)}
# For a segment of length 4k+2 (one trailing byte) the last character's low
# 4 bits are unused; for 4k+3 (two trailing bytes), its low 2 bits.
_UNUSED_BITS = {2: 0b1111, 3: 0b11}


# base64url to standard base64 for binascii. "+", "/" and "=" are not
# base64url: they become "!", which strict decoding refuses, as it refuses
# whitespace and every other stray byte.
_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/!!!")


def b64url_decode(segment: str) -> bytes:
    """Decode one canonical, unpadded base64url segment, or refuse the token."""
    remainder = len(segment) % 4
    if remainder == 1:
        raise Refused("malformed_token")
    # Non-zero unused bits in the last character decode to the same bytes as
    # the canonical spelling: refusing them gives one token one spelling.
    if remainder and _VALUE.get(segment[-1], 0) & _UNUSED_BITS[remainder]:
        raise Refused("malformed_token")
    try:
        data = segment.encode("ascii").translate(_TO_STANDARD) + b"=" * (-remainder % 4)
        return binascii.a2b_base64(data, strict_mode=True)
    except (UnicodeEncodeError, binascii.Error) as err:
        raise Refused("malformed_token") from err


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url, as JWS uses."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two "sub" (or "alg") members could be read differently by two parsers;
    # RFC 7515 section 5.2 lets us refuse them, and we do.
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member")
    return result


def _no_constants(name: str) -> Any:
    # NaN and Infinity are not JSON (RFC 8259); Python accepts them by default.
    raise ValueError("non-standard JSON constant")


# One decoder for all tokens: json.loads with hooks would build a new one
# (and its scanner) on every call.
_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constants)


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        value = _DECODER.decode(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise Refused("malformed_token") from err
    if not isinstance(value, dict):
        raise Refused("malformed_token")
    return value


#: Decoded headers by their encoded form. An issuer signs every token with
#: one of a few headers (Google: one per key), so most tokens skip decoding
#: theirs. Bounded: a flood of distinct headers only empties it.
_HEADERS: dict[str, dict[str, Any]] = {}
_MAX_HEADERS = 64


def _header(segment: str) -> dict[str, Any]:
    header = _HEADERS.get(segment)
    if header is None:
        header = _json_object(b64url_decode(segment))
        if len(_HEADERS) >= _MAX_HEADERS:
            _HEADERS.clear()
        _HEADERS[segment] = header
    return header


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
    header = _header(header_b64)
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
    """Check the signature over ``header.payload`` with an already-chosen key,
    under the header's ``alg`` (which :func:`check_header` has already held
    against the provider's allow-list)."""
    if not key.verify(parsed.signing_input, parsed.signature, parsed.header["alg"]):
        raise Refused("invalid_signature", kid=parsed.kid)


def _loggable_kid(kid: object) -> str | None:
    if isinstance(kid, str) and len(kid) <= MAX_KID_LENGTH:
        return kid
    return None
