"""Refusals with stable, machine-readable codes.

Verification and the account policy raise :class:`Refused`; the authentication
backend records it on the request and returns ``None``; the HTTP layer turns
it into ``{"code": ..., "detail": ...}`` with the status below. The codes are
part of the public interface: never rename one.
"""

from __future__ import annotations

import logging
from typing import Any

#: code -> (HTTP status, human-readable detail). Details never quote the token.
REFUSALS: dict[str, tuple[int, str]] = {
    "missing_token": (400, "No ID token was sent: post it as id_token (JSON) or idToken (form)."),
    "malformed_token": (401, "The ID token is not a well-formed signed JWT."),
    "unsupported_algorithm": (401, "The ID token is signed with an algorithm that is not allowed."),
    "unknown_key": (401, "The ID token is signed with a key the issuer does not publish."),
    "invalid_signature": (401, "The ID token's signature does not verify."),
    "wrong_issuer": (401, "The ID token was not issued by the expected issuer."),
    "wrong_audience": (401, "The ID token was issued for another application."),
    "token_expired": (401, "The ID token has expired."),
    "token_not_yet_valid": (401, "The ID token is not valid yet."),
    "invalid_claims": (401, "The ID token's claims are missing or of the wrong type."),
    "token_replayed": (401, "This ID token was already used to sign in; get a new one."),
    "hosted_domain_not_allowed": (403, "This Google account's domain is not allowed to sign in."),
    "unknown_provider": (404, "No identity provider of that name is configured here."),
    "user_inactive": (403, "This user account is disabled."),
    "signup_disabled": (403, "No user is linked to this account and sign-up is closed."),
    "csrf_failed": (
        403,
        "This sign-in came from a page of another site (Origin not trusted).",
    ),
    "email_in_use": (
        403,
        "Another account here already has this verified email address. Sign in to it the way "
        "you did before (its password or the other sign-in provider), then link this account "
        "to it there; or ask this site's administrators for help.",
    ),
    "email_not_verified": (
        403,
        "Accounts here need an email address that your sign-in provider has verified, and it "
        "has not verified this one. Sign in with a provider that vouches for your address.",
    ),
    "keys_unavailable": (
        503,
        "The issuer's signing keys cannot be fetched right now; try again shortly.",
    ),
    "key_refresh_pending": (
        503,
        "The ID token is signed with a key not among the issuer's keys fetched so far, "
        "which can be fetched again shortly; try again after Retry-After seconds.",
    ),
    "replay_check_unavailable": (
        503,
        "Whether this ID token was already used cannot be checked right now, so it is not "
        "accepted; try again shortly.",
    ),
    "provider_unavailable": (
        503,
        "The identity provider cannot verify tokens right now; try again shortly.",
    ),
    "provider_error": (
        502,
        "The identity provider's answer could not be understood, so the token was not accepted.",
    ),
    # API requests (Authorization: Bearer) and account linking.
    "account_not_linked": (
        401,
        "No user here is linked to this account; sign in first.",
    ),
    "account_linked_elsewhere": (409, "This account is linked to another user."),
    "last_login_method": (
        409,
        "This is the user's last way to sign in; set a password or link another account first.",
    ),
}


#: Server-side refusals logged at INFO, like a 4xx, not at WARNING: any
#: client can cause them at will (a made-up kid), or what causes them (an
#: outage) is logged where it is detected, once, not once per request. A
#: flood of them must not flood the log.
QUIET_REFUSALS = frozenset({"key_refresh_pending", "keys_unavailable", "replay_check_unavailable"})


class Refused(Exception):
    """A token or sign-in was refused, with a stable ``code``.

    ``context`` holds only values that are safe to log (the token's ``kid``,
    ``iss`` and ``aud``), never the token or any part of its signature.
    """

    def __init__(
        self,
        code: str,
        detail: str | None = None,
        *,
        retry_after: int | None = None,
        **context: Any,
    ) -> None:
        if code not in REFUSALS:
            raise ValueError(f"unknown refusal code {code!r}")
        self.code = code
        self.status, default_detail = REFUSALS[code]
        self.detail = detail or default_detail
        self.retry_after = retry_after
        self.context: dict[str, Any] = context
        super().__init__(f"{code}: {self.detail}")

    def as_dict(self) -> dict[str, str]:
        """The JSON body of the refusal."""
        return {"code": self.code, "detail": self.detail}

    def context_text(self) -> str:
        """The context as ``kid='...' iss='...'``: safe to log or print (it
        holds only the token's kid/iss/aud), repr() keeping any control
        characters in them inert."""
        return " ".join(f"{k}={v!r}" for k, v in sorted(self.context.items()) if v is not None)

    def log(self, logger: logging.Logger, what: str = "ID token refused") -> None:
        """Log the refusal: WARNING for the server-side ones (5xx) but
        ``QUIET_REFUSALS``, else INFO.
        Only the code and the context (the token's kid/iss/aud) are logged,
        never the token, a segment of it or its signature: it is a bearer
        credential."""
        logger.log(
            logging.WARNING
            if self.status >= 500 and self.code not in QUIET_REFUSALS
            else logging.INFO,
            "%s: %s %s",
            what,
            self.code,
            self.context_text(),
        )


class KeysUnavailable(Refused):
    """No usable signing keys: the key endpoint failed and nothing usable is cached."""

    def __init__(self, detail: str | None = None, *, retry_after: int = 30) -> None:
        super().__init__("keys_unavailable", detail, retry_after=retry_after)
