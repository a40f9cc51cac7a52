"""Optional replay protection (``REPLAY_PROTECTION``): each ID token signs in once.

A stolen token (from a log, a proxy, a compromised client) is otherwise good
for a sign-in until it expires. With protection on, the first sign-in marks
the token as used in the shared cache until it expires, and any later
sign-in with it is refused.
"""

from __future__ import annotations

import time

from django.core.cache import caches

from .claims import Claims
from .conf import conf
from .errors import Refused


def mark_used(claims: Claims, now: float | None = None) -> None:
    """Refuse ``token_replayed`` if this token already signed in; else mark it."""
    if not conf.REPLAY_PROTECTION:
        return
    now = time.time() if now is None else now
    # Keep the mark for as long as the token could still verify.
    timeout = max(1, int(claims.expires_at + conf.LEEWAY - now) + 1)
    # The key is the hash of the decoded signature bytes, not of the token
    # string: a re-encoded spelling of the same signature must not pass.
    # cache.add is atomic, so two racing uses cannot both win.
    if not caches[conf.KEYS_CACHE].add(_mark(claims), 1, timeout=timeout):
        raise Refused("token_replayed", iss=claims.issuer, aud=claims.audience)


def check_unused(claims: Claims) -> None:
    """Refuse ``token_replayed`` if this token already signed in, without
    marking it (``idtoken_check`` must not spend the token it inspects)."""
    if conf.REPLAY_PROTECTION and caches[conf.KEYS_CACHE].get(_mark(claims)) is not None:
        raise Refused("token_replayed", iss=claims.issuer, aud=claims.audience)


def _mark(claims: Claims) -> str:
    return f"django_google_idtoken:used:{claims.token_id}"
