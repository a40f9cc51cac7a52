"""Admin for linked accounts, and an inline of them on the User admin page."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .models import LinkedAccount

_SNAPSHOT_READONLY = (
    # An account never moves between users (the account policy's rule): a
    # staff user able to change linked accounts could otherwise point their
    # own Google account at a superuser and sign in as that superuser, and
    # the move would send neither account_linked nor account_unlinked.
    "user",
    "provider",
    # sub is the identity itself: editing it would hand this user someone
    # else's Google account.
    "sub",
    "email",
    "email_verified",
    # Whether the provider vouches for the address: editing it would let a
    # staff user hand this account's user someone else's address.
    "verified_email",
    "hosted_domain",
    "name",
    "picture",
    "created_at",
    "last_signed_in_at",
)


@admin.register(LinkedAccount)
class LinkedAccountAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("user", "provider", "email", "hosted_domain", "created_at", "last_signed_in_at")
    list_filter = ("provider", "hosted_domain", "email_verified")
    list_select_related = ("user",)
    readonly_fields = _SNAPSHOT_READONLY
    date_hierarchy = "created_at"
    actions = ["unlink"]

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        # The user model may be custom: search whatever it names as its
        # username and email fields.
        user_model = get_user_model()
        fields = ["email", "=sub", f"user__{user_model.USERNAME_FIELD}"]
        email_field = user_model.get_email_field_name()
        if email_field != user_model.USERNAME_FIELD and any(
            f.name == email_field for f in user_model._meta.get_fields()
        ):
            fields.append(f"user__{email_field}")
        return fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Accounts are linked by signing in with a verified token, never typed in.
        return False

    @admin.action(description=_("Unlink selected accounts"), permissions=["delete"])
    def unlink(self, request: HttpRequest, queryset: QuerySet[LinkedAccount]) -> None:
        count = queryset.count()
        queryset.delete()
        self.message_user(
            request,
            ngettext("Unlinked %d account.", "Unlinked %d accounts.", count) % count,
            messages.SUCCESS,
        )


class LinkedAccountInline(admin.TabularInline):  # type: ignore[type-arg]
    model = LinkedAccount
    extra = 0
    fields = ("provider", "sub", "email", "hosted_domain", "created_at", "last_signed_in_at")
    readonly_fields = fields
    show_change_link = True
    can_delete = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def add_user_admin_inline(site: admin.AdminSite | None = None) -> None:
    """Show linked accounts on the User admin page, whatever the user model.

    Replaces the registered ModelAdmin of the user model with a subclass that
    adds the inline; does nothing if the user model is not registered, or if
    the inline is already there.
    """
    site = site or admin.site
    user_model = get_user_model()
    registered = site._registry.get(user_model)
    if registered is None or LinkedAccountInline in (registered.inlines or ()):
        return
    base = type(registered)
    patched = type(
        base.__name__,
        (base,),
        {"inlines": [*(base.inlines or ()), LinkedAccountInline], "__module__": base.__module__},
    )
    site.unregister(user_model)
    site.register(user_model, patched)


add_user_admin_inline()
