"""Checks on a signature-verified token's claims, and the typed result."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .emails import normalize
from .errors import Refused

#: Claims that are times must be integers in this range (RFC 7519 NumericDate;
#: 2**53 keeps them exact in every JSON parser). Strings, floats, booleans,
#: 1e400 and 2**64 are refused rather than coerced.
MAX_TIMESTAMP = 2**53
#: A time spelt as a string of ASCII digits (now.gg's decodedData only) has
#: at most this many: 2**53 has 16, and int() never sees a huge string.
MAX_TIMESTAMP_DIGITS = 16
MAX_SUB_LENGTH = 255


@dataclass(slots=True)
class Claims:
    """The verified identity in a token. ``raw`` holds every claim as sent.
    Treat it as read-only (it is not frozen only because freezing costs a
    microsecond or two per token)."""

    provider: str
    issuer: str
    sub: str
    audience: str
    email: str = ""
    email_verified: bool = False
    hosted_domain: str = ""
    name: str = ""
    given_name: str = ""
    family_name: str = ""
    picture: str = ""
    #: When the token expires (its exp claim, epoch seconds).
    expires_at: int = 0
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)
    signature: bytes = field(default=b"", repr=False)

    @property
    def token_id(self) -> str:
        """SHA-256 of the decoded signature bytes: one value per token,
        whatever spelling it arrived in (for replay protection)."""
        return hashlib.sha256(self.signature).hexdigest()


def _timestamp(payload: Mapping[str, Any], name: str, digit_strings: bool = False) -> int:
    value = payload.get(name)
    # Only where the caller says so (now.gg's Verify Token answer, whose SDK
    # types times as strings): "1764661200", ASCII digits only, so no sign,
    # space, "1e9", "0x10", "²" or full-width digit (all of which int() or
    # isdigit() would take) is read as a time.
    if (
        digit_strings
        and isinstance(value, str)
        and 0 < len(value) <= MAX_TIMESTAMP_DIGITS
        and value.isascii()
        and value.isdigit()
    ):
        value = int(value)
    # bool is a subclass of int: refuse it explicitly.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TIMESTAMP:
        raise Refused("invalid_claims", f"The ID token's '{name}' claim is not a valid time.")
    return value


def _optional_str(payload: Mapping[str, Any], name: str, limit: int = 2048) -> str:
    value = payload.get(name)
    if isinstance(value, str) and len(value) <= limit:
        return value
    return ""


#: What a URL may be made of (RFC 3986: unreserved, reserved and "%"):
#: no spaces, control characters, quotes, angle brackets or backslashes.
_URL_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")


def _https_url(payload: Mapping[str, Any], name: str, limit: int = 2048) -> str:
    """The claim if it is an absolute https URL with a host, else "".

    A profile picture ends up in projects' templates as an ``href`` or
    ``src``: a ``javascript:`` or ``data:`` URL there runs script or shows
    content the project never chose. Anything but https is dropped.
    """
    value = _optional_str(payload, name, limit)
    if not _URL_CHARACTERS.fullmatch(value):
        return ""
    try:
        parts = urlsplit(value)
        host, _ = parts.hostname, parts.port
    except ValueError:  # an invalid IPv6 literal or port
        return ""
    return value if parts.scheme.lower() == "https" and host else ""


def check_claims(
    payload: Mapping[str, Any],
    *,
    provider: str,
    issuers: Collection[str],
    client_ids: Collection[str],
    hosted_domains: Collection[str],
    leeway: float,
    now: float,
    signature: bytes = b"",
    digit_string_times: bool = False,
) -> Claims:
    """Apply every claim rule of Google's backend-auth guide; return the claims.

    Order matters only for which code a token with several faults gets; every
    rule is applied before anything is returned. Times are JSON integers;
    ``digit_string_times`` also takes strings of ASCII digits (for claims
    that a provider verified and answered itself, never for a token verified
    here, whose claims are held to RFC 7519).
    """
    iss = payload.get("iss")
    # Exact match only: a prefix or suffix match would let
    # "https://accounts.google.com.evil.example" through.
    if not isinstance(iss, str) or iss not in issuers:
        raise Refused("wrong_issuer", iss=iss if isinstance(iss, str) else None)

    aud = payload.get("aud")
    if isinstance(aud, str):
        audiences = [aud]
    elif isinstance(aud, list) and aud and all(isinstance(item, str) for item in aud):
        audiences = aud
    elif aud is None:
        audiences = []
    else:
        raise Refused("invalid_claims", "The ID token's 'aud' claim is of the wrong type.")
    # A token minted for another app (another client ID) must not sign users
    # in here, even though Google signed it. azp is deliberately not checked:
    # an Android client's token has aud = the server's client ID and azp = the
    # Android client ID.
    matched = next((item for item in audiences if item in client_ids), None)
    if matched is None:
        raise Refused("wrong_audience", iss=iss, aud=aud if isinstance(aud, str) else None)

    exp = _timestamp(payload, "exp", digit_string_times)
    iat = _timestamp(payload, "iat", digit_string_times)
    nbf = _timestamp(payload, "nbf", digit_string_times) if "nbf" in payload else None
    if now > exp + leeway:
        raise Refused("token_expired", iss=iss, aud=matched)
    if iat > now + leeway or (nbf is not None and nbf > now + leeway):
        raise Refused("token_not_yet_valid", iss=iss, aud=matched)

    sub = payload.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > MAX_SUB_LENGTH:
        raise Refused("invalid_claims", "The ID token's 'sub' claim is missing or invalid.")

    hd = payload.get("hd")
    # ASCII case only (see emails.normalize): "K" must not become "k".
    hosted_domain = normalize(hd) if isinstance(hd, str) else ""
    # Workspace restriction: only the hd claim counts. The email's domain is
    # not proof: a consumer account can carry any address as its email.
    if hosted_domains and hosted_domain not in hosted_domains:
        raise Refused("hosted_domain_not_allowed", iss=iss, aud=matched)

    email = _optional_str(payload, "email", 254)
    return Claims(
        provider=provider,
        issuer=iss,
        sub=sub,
        audience=matched,
        email=email,
        # Only a JSON true counts: the string "false" is truthy in Python.
        email_verified=bool(email) and payload.get("email_verified") is True,
        hosted_domain=hosted_domain,
        name=_optional_str(payload, "name", 255),
        given_name=_optional_str(payload, "given_name", 150),
        family_name=_optional_str(payload, "family_name", 150),
        picture=_https_url(payload, "picture"),
        expires_at=exp,
        raw=payload,
        signature=signature,
    )
