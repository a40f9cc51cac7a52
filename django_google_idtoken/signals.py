"""Signals sent by the account policy.

Each is sent inside the database transaction that writes the account, with
``sender=LinkedAccount`` and the keyword arguments ``user``, ``account``,
``claims`` (a :class:`~django_google_idtoken.claims.Claims`) and ``request``
(or None). A receiver that raises rolls the whole sign-in (or link, or
unlink) back.
"""

from __future__ import annotations

from django.dispatch import Signal

#: A first sign-in created a new user and its linked account.
account_created = Signal()

#: A provider account was linked to an existing user: by verified email at
#: sign-in, or by the signed-in user (``POST accounts/``).
account_linked = Signal()

#: A signed-in user unlinked one of their accounts (``DELETE accounts/<id>/``).
#: Sent with ``user``, ``account`` (no longer in the database; its ``pk`` is
#: kept) and ``request``, but no ``claims``.
account_unlinked = Signal()
