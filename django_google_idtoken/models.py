"""The link between a provider's account (``provider`` + ``sub``) and a local user."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class LinkedAccount(models.Model):
    """A Google (or other provider's) account linked to a local user.

    ``sub`` is the provider's stable identifier for the account and the only
    thing users are found by; the other fields are a snapshot of the profile
    from the last sign-in, for display and admin search.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="linked_accounts",
        verbose_name=_("user"),
    )
    provider = models.CharField(_("provider"), max_length=32)
    sub = models.CharField(_("subject (sub)"), max_length=255)
    email = models.EmailField(_("email"), max_length=254, blank=True, db_index=True)
    email_verified = models.BooleanField(_("email verified"), default=False)
    #: The snapshot's email, normalised (emails.normalize), if the provider is
    #: authoritative for it, else "". Only these addresses (and local users'
    #: the project vouches for) ever link an account or refuse a sign-in with
    #: email_in_use; the index keeps that lookup flat as the tables grow.
    verified_email = models.CharField(
        _("verified email"), max_length=254, blank=True, default="", db_index=True
    )
    hosted_domain = models.CharField(_("hosted domain"), max_length=255, blank=True)
    name = models.CharField(_("name"), max_length=255, blank=True)
    picture = models.URLField(_("picture"), max_length=2048, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    last_signed_in_at = models.DateTimeField(_("last sign-in"), default=timezone.now)

    class Meta:
        verbose_name = _("linked account")
        verbose_name_plural = _("linked accounts")
        ordering = ["-last_signed_in_at"]
        constraints = [
            # One sub is one account: the constraint, not application code,
            # is what makes two racing first sign-ins end in one user.
            models.UniqueConstraint(
                fields=["provider", "sub"], name="django_google_idtoken_provider_sub_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.email or self.sub}"


class ProvisionedUser(models.Model):
    """A user this package created at a first sign-in.

    Such a user's own ``User.email`` is never trusted, whatever the project's
    ``LOCAL_EMAIL_VERIFIED`` says: only addresses an authoritative provider
    verified (``LinkedAccount.verified_email``) count for it. Users created
    before this record existed were all copied their token's email, verified
    or not, which is why the migration marks every user that had a linked
    account then.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="+",
        verbose_name=_("user"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("provisioned user")
        verbose_name_plural = _("provisioned users")

    def __str__(self) -> str:
        return str(self.user_id)
