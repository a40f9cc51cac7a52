"""The account policy: the only place that creates, links or updates users and
linked accounts.

Users are found by (provider, sub), never by email; an email links to an
existing user, or refuses a sign-in as already in use, only where it is
trusted (see :mod:`.emails`). Every write
happens in one transaction, and the unique constraint on (provider, sub)
settles races.
"""

from __future__ import annotations

import datetime
import re
import secrets
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from .claims import Claims
from .conf import conf
from .emails import local_checks_enabled, local_email_verified, normalize, trusted_address
from .errors import Refused
from .models import LinkedAccount, ProvisionedUser
from .signals import account_created, account_linked, account_unlinked

_USERNAME_UNSAFE = re.compile(r"[^\w.@+-]")


@dataclass(frozen=True)
class SignInResult:
    """What a successful sign-in produced."""

    user: Any
    account: LinkedAccount
    created: bool


def sign_in(claims: Claims, request: HttpRequest | None = None) -> SignInResult:
    """Find the user linked to ``claims`` (updating the profile snapshot), or
    link or create one per the settings. Raises :class:`Refused`."""
    return _linked_user(claims, request, first_sign_in=True, signed_in=True)


def _linked_user(
    claims: Claims, request: HttpRequest | None, *, first_sign_in: bool, signed_in: bool
) -> SignInResult:
    """The user linked to ``claims``. An unknown ``sub`` goes through the
    first sign-in policy if ``first_sign_in``, else is ``account_not_linked``;
    ``signed_in`` records a sign-in (``last_signed_in_at``)."""
    # get(), not first(): no ORDER BY (and no sort step) for the one row the
    # unique (provider, sub) index finds.
    try:
        account = LinkedAccount.objects.select_related("user").get(
            provider=claims.provider, sub=claims.sub
        )
    except LinkedAccount.DoesNotExist:
        if not first_sign_in:
            raise Refused("account_not_linked") from None
        return _first_sign_in(claims, request)
    _check_active(account.user)
    _save_snapshot(account, claims, signed_in=signed_in)
    return SignInResult(user=account.user, account=account, created=False)


def _check_active(user: AbstractBaseUser) -> None:
    if not getattr(user, "is_active", True):
        raise Refused("user_inactive")


def _snapshot(claims: Claims) -> dict[str, Any]:
    return {
        "email": claims.email,
        "email_verified": claims.email_verified,
        "verified_email": trusted_address(claims),
        "hosted_domain": claims.hosted_domain,
        "name": claims.name,
        "picture": claims.picture,
    }


def _save_snapshot(account: LinkedAccount, claims: Claims, *, signed_in: bool) -> None:
    """Write the fields of the profile snapshot that changed. With
    ``signed_in``, also record the time of this sign-in, but only when the
    recorded one is older than ``LAST_SIGNIN_INTERVAL`` or the snapshot
    changed anyway: a returning user's sign-in then costs no write at all.
    API requests and links are not sign-ins: with nothing changed they write
    nothing."""
    snapshot = _snapshot(claims)
    changed = [name for name, value in snapshot.items() if getattr(account, name) != value]
    for name in changed:
        setattr(account, name, snapshot[name])
    if signed_in:
        now = timezone.now()
        interval = datetime.timedelta(seconds=conf.LAST_SIGNIN_INTERVAL)
        if changed or account.last_signed_in_at <= now - interval:
            account.last_signed_in_at = now
            changed.append("last_signed_in_at")
    if changed:
        account.save(update_fields=changed)


def _owners(address: str, email: str) -> list[Any]:
    """The users who own the trusted ``address`` (normalised ``email``): those
    with a linked account whose provider is authoritative for it, and local
    users whose own address the project vouches for (LOCAL_EMAIL_VERIFIED).

    An address nobody verified appears in neither: it can neither pull an
    account into a user nor stop anyone from signing in."""
    user_model = get_user_model()
    # Indexed: the cost of a first sign-in does not grow with the tables.
    user_ids = set(
        LinkedAccount.objects.filter(verified_email=address)
        .values_list("user_id", flat=True)
        .distinct()[:2]
    )
    email_field = user_model.get_email_field_name()
    if local_checks_enabled() and _has_field(user_model, email_field):
        # iexact (UPPER() on PostgreSQL) finds a superset of the ASCII-only
        # matches; the exact rule is applied to each candidate below. Users
        # this package created never count through User.email: it may hold an
        # address copied from an unverified token before trust was recorded.
        candidates = (
            user_model._default_manager.filter(**{f"{email_field}__iexact": email})
            .exclude(pk__in=ProvisionedUser.objects.values("user_id"))
            .order_by("pk")[:20]
        )
        for user in candidates:
            if normalize(getattr(user, email_field) or "") == address and local_email_verified(
                user
            ):
                user_ids.add(user.pk)
    if not user_ids:
        return []
    return list(user_model._default_manager.filter(pk__in=user_ids).order_by("pk"))


def _first_sign_in(claims: Claims, request: HttpRequest | None) -> SignInResult:
    # Only an address the provider is authoritative for may link this account
    # to an existing user or refuse it as "in use": anything else is text the
    # account's creator chose, and trusting it would let an attacker who signs
    # in first with the victim's address (now.gg, an unverified Google
    # address, an OpenID Connect issuer that does not vouch for emails) either
    # receive the victim's account later or lock the victim out.
    address = trusted_address(claims)
    owners = _owners(address, claims.email) if address else []
    if owners:
        if LinkedAccount.objects.filter(provider=claims.provider, sub=claims.sub).exists():
            # A racing first sign-in for this same sub committed its new user
            # (with this address) after our lookup: that user is this account's.
            return _winner(claims)
        # Taking an existing user over by email needs LINK_BY_EMAIL and one
        # owner: of two users with the address, which one would it be?
        if not conf.LINK_BY_EMAIL or len(owners) > 1:
            raise Refused("email_in_use")
        return _link(owners[0], claims, request)
    if not conf.CREATE_USERS:
        raise Refused("signup_disabled")
    return _create(claims, request, address)


def _create_link(user: Any, claims: Claims, request: HttpRequest | None) -> LinkedAccount:
    """Link ``claims``'s account to ``user`` and send ``account_linked``, in
    one transaction (a receiver that raises undoes the link). Raises
    IntegrityError if the (provider, sub) is already linked."""
    with transaction.atomic():
        account = LinkedAccount.objects.create(
            user=user, provider=claims.provider, sub=claims.sub, **_snapshot(claims)
        )
        account_linked.send(
            sender=LinkedAccount, user=user, account=account, claims=claims, request=request
        )
    return account


def _link(user: Any, claims: Claims, request: HttpRequest | None) -> SignInResult:
    _check_active(user)
    try:
        account = _create_link(user, claims, request)
    except IntegrityError:
        return _winner(claims)
    return SignInResult(user=user, account=account, created=False)


def _create(claims: Claims, request: HttpRequest | None, address: str) -> SignInResult:
    for attempt in range(3):
        try:
            with transaction.atomic():
                user = _new_user(claims, address, randomize=attempt > 0)
                ProvisionedUser.objects.create(user=user)
                account = LinkedAccount.objects.create(
                    user=user, provider=claims.provider, sub=claims.sub, **_snapshot(claims)
                )
                account_created.send(
                    sender=LinkedAccount, user=user, account=account, claims=claims, request=request
                )
            return SignInResult(user=user, account=account, created=True)
        except IntegrityError:
            # Either another request created this sub's account first (read
            # theirs), or another user took the generated username or the
            # email (for email-as-username models) in the meantime.
            if LinkedAccount.objects.filter(provider=claims.provider, sub=claims.sub).exists():
                return _winner(claims)
            if _email_taken(claims.email):
                raise Refused("email_in_use") from None
    raise Refused("signup_disabled", "A unique username could not be chosen; try again.")


def _email_taken(email: str) -> bool:
    """Whether a user holds exactly ``email`` (what a unique email column refuses)."""
    user_model = get_user_model()
    email_field = user_model.get_email_field_name()
    return bool(email) and user_model._default_manager.filter(**{email_field: email}).exists()


def _winner(claims: Claims) -> SignInResult:
    account = LinkedAccount.objects.select_related("user").get(
        provider=claims.provider, sub=claims.sub
    )
    _check_active(account.user)
    return SignInResult(user=account.user, account=account, created=False)


def _has_field(model: Any, name: str) -> bool:
    try:
        model._meta.get_field(name)
    except Exception:  # noqa: BLE001 - FieldDoesNotExist
        return False
    return True


def _new_user(claims: Claims, address: str, *, randomize: bool) -> Any:
    user_model = get_user_model()
    fields: dict[str, Any] = {}
    email_field = user_model.get_email_field_name()
    # User.email is where projects (and Django's password reset) look for the
    # user's address: only a trusted one goes there. Any other stays in the
    # linked account's snapshot, so it can never be read back as this user's.
    if _has_field(user_model, email_field) and address:
        fields[email_field] = claims.email
    for name, value in (("first_name", claims.given_name), ("last_name", claims.family_name)):
        if _has_field(user_model, name):
            limit = getattr(user_model._meta.get_field(name), "max_length", None) or 150
            fields[name] = value[:limit]
    username_field = user_model.USERNAME_FIELD
    if username_field != email_field:
        fields[username_field] = _username(user_model, claims, randomize=randomize)
    elif not claims.email:
        raise Refused("invalid_claims", "The ID token carries no email, which accounts here need.")
    elif not address:
        # The address would be the new user's username, unique: an account
        # created with an address its provider does not vouch for would
        # pre-claim it and lock out its real owner.
        raise Refused("email_not_verified")
    user = user_model(**fields)
    # Signing in with Google needs no password; an unusable one keeps the
    # password login closed until the user sets one.
    user.set_unusable_password()
    user.save()
    return user


def _username(user_model: Any, claims: Claims, *, randomize: bool) -> str:
    field = user_model._meta.get_field(user_model.USERNAME_FIELD)
    limit = field.max_length or 150
    base = _USERNAME_UNSAFE.sub("", claims.email.split("@", 1)[0])[: limit - 7] or "user"
    if (
        not randomize
        and not user_model._default_manager.filter(**{user_model.USERNAME_FIELD: base}).exists()
    ):
        return base
    return f"{base}-{secrets.token_hex(3)}"


# -- API requests (Authorization: Bearer) and account linking ---------------


def find_user(
    claims: Claims, request: HttpRequest | None = None, *, create: bool = False
) -> SignInResult:
    """The user linked to ``claims``, for an API request authenticated by the
    token itself rather than a sign-in. Raises :class:`Refused`.

    Unlike :func:`sign_in` it records no sign-in (``last_signed_in_at`` is
    left alone) and writes the profile snapshot only when it changed, so a
    returning user's API request costs one indexed read and no write. An
    unknown ``sub`` is refused with ``account_not_linked`` unless ``create``,
    which applies the first sign-in policy (``CREATE_USERS``,
    ``LINK_BY_EMAIL``)."""
    return _linked_user(claims, request, first_sign_in=create, signed_in=False)


def link_account(
    user: Any, claims: Claims, request: HttpRequest | None = None
) -> tuple[LinkedAccount, bool]:
    """Link the account in ``claims`` to the signed-in ``user``; return it and
    whether it was newly linked (False: it already was, to this user).
    Raises ``account_linked_elsewhere`` if its ``sub`` belongs to another user.

    The caller must have proved that ``user`` is the one making the request
    (a session with Django's CSRF check, or a bearer token): linking lets the
    account's owner sign in as ``user`` from then on."""
    try:
        account = LinkedAccount.objects.get(provider=claims.provider, sub=claims.sub)
    except LinkedAccount.DoesNotExist:
        try:
            return _create_link(user, claims, request), True
        except IntegrityError:
            # A racing link or first sign-in for this sub committed first:
            # the unique (provider, sub) constraint decided; judge its row.
            account = LinkedAccount.objects.get(provider=claims.provider, sub=claims.sub)
    if account.user_id != user.pk:
        # Never move an account between users: its sub signs in to the user
        # it is linked to, and only unlinking it there (by that user) frees it.
        raise Refused("account_linked_elsewhere")
    _save_snapshot(account, claims, signed_in=False)
    return account, False


def unlink_account(user: Any, account_id: str, request: HttpRequest | None = None) -> LinkedAccount:
    """Unlink the account with primary key ``account_id`` from ``user``.

    Raises ``LinkedAccount.DoesNotExist`` if ``user`` has no such account
    (another user's account is "not found" too: ids are not secrets, but
    whether one exists is none of this user's business), and
    ``last_login_method`` if the user would be left with no way to sign in:
    no other linked account and no usable password."""
    with transaction.atomic():
        # Lock the user's linked-account rows, in a fixed order: of two
        # concurrent unlinks of a user's last two accounts, the second waits
        # for the first to commit, then sees one account left and refuses.
        # Without the lock both would see two accounts and both delete.
        accounts = list(
            LinkedAccount.objects.select_for_update().filter(user_id=user.pk).order_by("pk")
        )
        # Compared as text, in memory: the id comes from the URL and is never
        # handed to the database (no lookup by another user's id, no overflow).
        account = next((a for a in accounts if str(a.pk) == account_id), None)
        if account is None:
            raise LinkedAccount.DoesNotExist(account_id)
        if len(accounts) == 1:
            fresh = get_user_model()._default_manager.get(pk=user.pk)
            if not fresh.has_usable_password():
                raise Refused("last_login_method")
        LinkedAccount.objects.filter(pk=account.pk).delete()
        account_unlinked.send(sender=LinkedAccount, user=user, account=account, request=request)
    return account
