"""Email addresses: how two are compared, and which ones decide who is who.

An address takes part in a trust decision (linking an account to an existing
user by email, or refusing a sign-in with ``email_in_use``) only if it is
*trusted*:

* for a provider's account, the provider is authoritative for the address
  (Google for Gmail and for a Workspace domain named by ``hd``; an OpenID
  Connect provider only with ``TRUST_EMAIL``; now.gg never). Such addresses
  are recorded, normalised, in ``LinkedAccount.verified_email`` (indexed);
* for a local user (one this package did not create), the project says so
  through ``LOCAL_EMAIL_VERIFIED``; by default, once ``LINK_BY_EMAIL`` is on.

Anything else (now.gg's addresses, Google's ``email_verified: false``, an
OpenID Connect issuer without ``TRUST_EMAIL``) is attacker-chosen text: it
is kept in the linked account's profile snapshot for display and never
copied onto ``User.email``, so nobody can pre-claim a victim's address
before the victim first signs in (pre-account takeover) or lock them out.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.utils.module_loading import import_string

from .conf import conf

if TYPE_CHECKING:
    from .claims import Claims

# str.lower() and the databases' UPPER()/LOWER() fold far more than ASCII:
# "K" (Kelvin sign) lowers to "k", and PostgreSQL upper-cases the dotless
# "ı" to "I" and the long "ſ" to "S", so "admın@" would equal "admin@" there
# but not on SQLite. Only A-Z fold here: every other character, fullwidth
# ones included, must match exactly, the same on every database.
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def normalize(address: str) -> str:
    """``address`` as compared here: ASCII letters lower-cased, nothing else
    changed (no Unicode case folding or compatibility normalisation)."""
    return address.translate(_ASCII_LOWER)


def domain_of(address: str) -> str:
    """The normalised domain of ``address`` ('' without an ``@``)."""
    return normalize(address.rpartition("@")[2]) if "@" in address else ""


def trusted_address(claims: Claims) -> str:
    """The normalised ``claims.email`` if its provider is authoritative for it
    (it vouches that this account owns the address today), else ''."""
    from .providers import get_provider  # providers imports this module

    if claims.email and get_provider(claims.provider).email_is_authoritative(claims):
        return normalize(claims.email)
    return ""


@functools.lru_cache(maxsize=8)
def _import_check(path: str) -> Callable[[Any], bool]:
    check = import_string(path)
    if not callable(check):
        raise TypeError(f"{path} is not callable")
    return check  # type: ignore[no-any-return]


def local_checks_enabled() -> bool:
    """Whether local users' addresses can be trusted at all right now (and so
    whether a first sign-in needs to look for them)."""
    return conf.LOCAL_EMAIL_VERIFIED is not None or conf.LINK_BY_EMAIL


def local_email_verified(user: Any) -> bool:
    """Does the project vouch for ``user``'s own address (``User.email``)?

    ``LOCAL_EMAIL_VERIFIED`` names a callable taking the user; without it,
    today's rule for local users stands: their address counts once the
    project has turned ``LINK_BY_EMAIL`` on (a project whose signup does not
    verify addresses must set the callable, or an attacker who signs up
    locally with a victim's address first gets the victim's Google account
    linked into it: system check W003)."""
    path = conf.LOCAL_EMAIL_VERIFIED
    if path is None:
        return conf.LINK_BY_EMAIL
    return _import_check(path)(user) is True
