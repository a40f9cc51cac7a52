"""Login with now.gg: tokens checked by now.gg's Verify Token API.

now.gg publishes no keys. Its guide: the client sends the ID token (never a
plain user id such as ``userData.getUserId()``, which anyone can type) to the
server over HTTPS; the server POSTs ``{"token_type": "id_token", "token": ...,
"client_id": ...}`` as JSON to the Verify Token API and gets back
``{"success": true, "code": "VERIFICATION_SUCCESS", "decodedData": {...}}``
or ``success: false`` with a code such as ``INVALID_TOKEN`` or
``EXPIRED_TOKEN``.

Its own sample treats any answer that did not raise as verified. Here every
answer is held to the letter, and anything else fails closed: the HTTP
status, the JSON, ``success`` being exactly ``true``, the code, and then the
decoded claims themselves (iss, aud, exp, sub) as if we had verified a
signature ourselves.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from typing import Any

from django.views.decorators.debug import sensitive_variables

from .claims import Claims, check_claims
from .conf import conf
from .errors import Refused
from .jws import parse
from .providers import Provider
from .transport import TransportError, request

logger = logging.getLogger("django_google_idtoken")

NOWGG_ISSUER = "https://now.gg"
#: now.gg's refusal codes and ours. Any other refusal is "malformed_token":
#: the token did not verify, whatever the reason.
REFUSAL_CODES = {
    "INVALID_TOKEN": "malformed_token",
    "EXPIRED_TOKEN": "token_expired",
}
#: Verify Token answers larger than this are refused (a real one is under 2 KB).
MAX_ANSWER_BYTES = 64 * 1024
#: How many verified tokens are remembered at most (per process); as many
#: refused ones, apart, so that a flood of forgeries cannot evict them.
CACHE_SIZE = 1024
#: How long now.gg's refusal of a token is remembered (never longer than the
#: provider's CACHE_SECONDS): the same forged token sent again and again
#: costs one call per this period, not one per request.
REFUSAL_CACHE_SECONDS = 10
#: Verify Token calls in flight at once, per process, across providers.
#: Beyond it a sign-in is refused at once (503 provider_unavailable) rather
#: than held up to HTTP_TIMEOUT: forged tokens, which anyone can mint, then
#: hold at most this many workers' threads, and a slow now.gg cannot take
#: every worker with it.
MAX_CONCURRENT_CALLS = 4
#: Seconds clients are asked to wait when now.gg cannot be reached.
RETRY_AFTER = 5
#: Seconds clients are asked to wait when MAX_CONCURRENT_CALLS are in flight.
BUSY_RETRY_AFTER = 1
BUSY_DETAIL = "Too many sign-ins are being verified with this identity provider; try again shortly."


class Verdict(Refused):
    """now.gg refused the token (``success: false``): a refusal of the token
    itself, which asking again would not change."""


class _CallSlots:
    """How many Verify Token calls this process has in flight."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy = 0

    def take(self) -> bool:
        """Take a slot if one is free (never waits)."""
        with self._lock:
            if self._busy >= MAX_CONCURRENT_CALLS:
                return False
            self._busy += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self._busy -= 1


_slots = _CallSlots()


class NowggProvider(Provider):
    """Verifies now.gg ID tokens by a POST to its Verify Token API."""

    verifies_remotely = True

    def __init__(
        self,
        name: str,
        *,
        client_ids: tuple[str, ...],
        verify_url: str,
        cache_seconds: float = 60,
    ) -> None:
        self.name = name
        self.issuers = frozenset({NOWGG_ISSUER})
        self.client_ids = client_ids
        self.verify_url = verify_url
        self.cache_seconds = cache_seconds
        #: Counters for tests and monitoring.
        self.calls = 0
        # sha256(client id, token) -> (claims, usable until). Bounded, so a
        # flood of distinct tokens only evicts the oldest entries.
        self._verified: OrderedDict[bytes, tuple[Claims, float]] = OrderedDict()
        # sha256(client id, token) -> (our code, now.gg's code, until): the
        # verdicts of now.gg's refusals, never the token.
        self._refused: OrderedDict[bytes, tuple[str, str, float]] = OrderedDict()
        self._lock = threading.Lock()

    # Every local below (the token, its parsed parts, the request body)
    # stays out of Django's error reports, in this frame and every frame it calls.
    @sensitive_variables()
    def verify(self, token: object) -> Claims:
        # An ID token is a signed JWT (OIDC Core 2). Checking its shape here
        # costs no network call for garbage, and gives replay protection the
        # decoded signature bytes: one value per token, however it is spelled.
        parsed = parse(token)
        assert isinstance(token, str)
        client_id = self._client_id_for(parsed.payload)
        digest = hashlib.sha256(f"{client_id}\0{token}".encode()).digest()
        now = self.clock()
        cached = self._cached(digest, now)
        if cached is not None:
            return cached
        # Anyone can mint a well-formed JWT naming now.gg, and each one asked
        # about costs a call: the same one again is answered from memory,
        # and the calls in flight are bounded.
        self._raise_if_refused(digest, now)
        if not _slots.take():
            raise Refused("provider_unavailable", BUSY_DETAIL, retry_after=BUSY_RETRY_AFTER)
        try:
            decoded = self._ask(token, client_id)
        except Verdict as refusal:
            self._remember_refusal(digest, refusal, now)
            raise
        finally:
            _slots.give_back()
        claims = check_claims(
            decoded,
            provider=self.name,
            issuers=self.issuers,
            client_ids=self.client_ids,
            hosted_domains=(),
            leeway=conf.LEEWAY,
            now=now,
            signature=parsed.signature,
            # now.gg's SDK types exp and iat as strings: its answer may spell
            # them "1764661200". It comes over TLS from now.gg, after now.gg
            # checked the signature, so the spelling is its, not a forger's.
            digit_string_times=True,
        )
        # now.gg documents no email_verified and no hosted domain: its
        # addresses are never taken as proof of anything (see accounts.py).
        claims.email_verified = False
        claims.hosted_domain = ""
        self._remember(digest, claims, now)
        return claims

    def _client_id_for(self, payload: dict[str, Any]) -> str:
        """The client id to send. With several, the one the (unverified)
        token names: now.gg checks it against the token, and we check the
        verified aud against ours again afterwards, so a lie gains nothing."""
        aud = payload.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        for candidate in audiences:
            if candidate in self.client_ids:
                return str(candidate)
        return self.client_ids[0]

    def _cached(self, digest: bytes, now: float) -> Claims | None:
        entry = self._verified.get(digest)
        if entry is None:
            return None
        claims, until = entry
        if now >= until:
            with self._lock:
                self._verified.pop(digest, None)
            return None
        return claims

    def _remember(self, digest: bytes, claims: Claims, now: float) -> None:
        # A client that retries (a lost response, a double tap) does not
        # double the calls; never past the token's own expiry.
        until = min(now + self.cache_seconds, claims.expires_at)
        if until <= now:
            return
        with self._lock:
            self._verified[digest] = (claims, until)
            self._verified.move_to_end(digest)
            while len(self._verified) > CACHE_SIZE:
                self._verified.popitem(last=False)

    def _raise_if_refused(self, digest: bytes, now: float) -> None:
        entry = self._refused.get(digest)
        if entry is None:
            return
        code, provider_code, until = entry
        if now >= until:
            with self._lock:
                self._refused.pop(digest, None)
            return
        raise Verdict(code, provider_code=provider_code or None)

    def _remember_refusal(self, digest: bytes, refusal: Verdict, now: float) -> None:
        # Only now.gg's own verdicts (success: false) are remembered: a token
        # it refused stays refused. Failures to get a verdict (unreachable,
        # 5xx, a broken answer) are not, and neither are our own claim checks.
        seconds = min(self.cache_seconds, REFUSAL_CACHE_SECONDS)
        if seconds <= 0:
            return
        provider_code = refusal.context.get("provider_code") or ""
        with self._lock:
            self._refused[digest] = (refusal.code, provider_code, now + seconds)
            self._refused.move_to_end(digest)
            while len(self._refused) > CACHE_SIZE:
                self._refused.popitem(last=False)

    def _ask(self, token: str, client_id: str) -> dict[str, Any]:
        """POST the token to the Verify Token API; return decodedData if,
        and only if, the answer is a success by every letter of the contract."""
        body = json.dumps({"token_type": "id_token", "token": token, "client_id": client_id})
        self.calls += 1
        try:
            response = request(
                "POST",
                self.verify_url,
                timeout=conf.HTTP_TIMEOUT,
                max_bytes=MAX_ANSWER_BYTES,
                body=body.encode("utf-8"),
                headers={"Content-Type": "application/json"},
            )
        except TransportError as err:
            # The message says why (refused, timed out...), never the body.
            logger.warning("now.gg Verify Token API unreachable: %s", err)
            raise Refused("provider_unavailable", retry_after=RETRY_AFTER) from None
        if response.status >= 500 or response.status == 429:
            logger.warning("now.gg Verify Token API answered HTTP %s", response.status)
            raise Refused("provider_unavailable", retry_after=RETRY_AFTER)
        try:
            answer = json.loads(response.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            answer = None
        if not isinstance(answer, dict):
            logger.warning("now.gg answered HTTP %s with no JSON object", response.status)
            raise Refused("provider_error")
        success = answer.get("success")
        code = answer.get("code")
        if success is False:
            # A verdict, well-formed by the letter (success exactly false):
            # the token did not verify, whatever the code says. A code we do
            # not know (or none) is still a refusal of the token, not a
            # broken answer: 401, so a client gets a new token instead of
            # retrying this one. It is logged, since it may be about us (a
            # client id now.gg does not know) or a code now.gg added.
            ours = REFUSAL_CODES.get(code) if isinstance(code, str) else None
            if ours is None:
                logger.warning(
                    "now.gg refused a token with %s; answered malformed_token", _describe(code)
                )
                raise Verdict("malformed_token")
            raise Verdict(ours, provider_code=code)
        decoded = answer.get("decodedData")
        # Only a 200 with success exactly true (not "true", not 1), the
        # documented code and an object of claims is a verified token.
        if (
            response.status != 200
            or success is not True
            or code != "VERIFICATION_SUCCESS"
            or not isinstance(decoded, dict)
        ):
            logger.warning("now.gg answered HTTP %s without a well-formed success", response.status)
            raise Refused("provider_error")
        return decoded


#: How much of an unknown now.gg code is logged.
MAX_LOGGED_CODE = 64


def _describe(code: object) -> str:
    """An unknown ``code`` of now.gg's, for a log line: bounded, and escaped
    (repr) so that no control character or newline reaches the log. A code
    is now.gg's text, never token material."""
    if code is None:
        return "no code"
    if isinstance(code, str):
        cut = "..." if len(code) > MAX_LOGGED_CODE else ""
        return f"the unknown code {code[:MAX_LOGGED_CODE]!r}{cut}"
    return f"a code of type {type(code).__name__}"
