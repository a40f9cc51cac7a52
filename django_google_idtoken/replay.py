"""Optional replay protection (``REPLAY_PROTECTION``): each ID token signs in once.

A stolen token (from a log, a proxy, a compromised client) is otherwise good
for a sign-in until it expires. With protection on, the first sign-in marks
the token as used in the shared cache until it expires, and any later
sign-in with it is refused.

Without the cache, whether a token was used cannot be known: the check
fails closed (503 ``replay_check_unavailable``), logged once per outage.
"""

from __future__ import annotations

import logging
import time

from django.core.cache import caches

from .claims import Claims
from .conf import conf
from .errors import Refused
from .outages import Outage

logger = logging.getLogger("django_google_idtoken.replay")

#: Seconds a client is told to wait (Retry-After) while the cache is down.
RETRY_AFTER = 10

_outage = Outage(logger)


def mark_used(claims: Claims, now: float | None = None) -> None:
    """Refuse ``token_replayed`` if this token already signed in; else mark it.
    Refuses ``replay_check_unavailable`` if the cache cannot say."""
    if not conf.REPLAY_PROTECTION:
        return
    now = time.time() if now is None else now
    # Keep the mark for as long as the token could still verify.
    timeout = max(1, int(claims.expires_at + conf.LEEWAY - now) + 1)
    # The key is the hash of the decoded signature bytes, not of the token
    # string: a re-encoded spelling of the same signature must not pass.
    # cache.add is atomic, so two racing uses cannot both win.
    try:
        added = caches[conf.KEYS_CACHE].add(_mark(claims), 1, timeout=timeout)
    except Exception as err:  # noqa: BLE001 - any cache backend's failure
        raise _unavailable(claims, err) from None
    _outage.clear(time.time())
    if not added:
        raise Refused("token_replayed", iss=claims.issuer, aud=claims.audience)


def check_unused(claims: Claims) -> None:
    """Refuse ``token_replayed`` if this token already signed in, without
    marking it (``idtoken_check`` must not spend the token it inspects)."""
    if not conf.REPLAY_PROTECTION:
        return
    try:
        used = caches[conf.KEYS_CACHE].get(_mark(claims)) is not None
    except Exception as err:  # noqa: BLE001
        raise _unavailable(claims, err) from None
    if used:
        raise Refused("token_replayed", iss=claims.issuer, aud=claims.audience)


def _unavailable(claims: Claims, err: Exception) -> Refused:
    # Fail closed: letting the token through unchecked would let a stolen
    # token sign in again during the outage (one an attacker may be able to
    # cause). Expected while the cache is down, so no traceback, and one
    # line per outage rather than one per sign-in.
    _outage.report(
        time.time(),
        f"replay protection: the {conf.KEYS_CACHE!r} cache is unreachable",
        logging.WARNING,
        f"{repr(err)[:200]}; sign-ins are refused replay_check_unavailable meanwhile",
    )
    return Refused(
        "replay_check_unavailable",
        retry_after=RETRY_AFTER,
        iss=claims.issuer,
        aud=claims.audience,
    )


def _mark(claims: Claims) -> str:
    return f"django_google_idtoken:used:{claims.token_id}"
