"""Signals sent by the account policy.

Both are sent inside the database transaction that writes the account, with
``sender=LinkedAccount`` and the keyword arguments ``user``, ``account``,
``claims`` (a :class:`~django_google_idtoken.claims.Claims`) and ``request``
(or None). A receiver that raises rolls the whole sign-in back.
"""

from __future__ import annotations

from django.dispatch import Signal

#: A first sign-in created a new user and its linked account.
account_created = Signal()

#: A provider account was linked to an existing user (by verified email).
account_linked = Signal()
