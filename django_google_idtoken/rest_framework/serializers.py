"""Serializers for the sign-in answer and the linked-account listing."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from ..models import LinkedAccount


class UserSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """The signed-in user: works with any user model, including ones whose
    USERNAME_FIELD is the email and that have no username or name fields."""

    def to_representation(self, user: Any) -> dict[str, Any]:
        email_field = user.get_email_field_name()
        return {
            "id": user.pk,
            "username": user.get_username(),
            "email": getattr(user, email_field, "") or "",
            "first_name": getattr(user, "first_name", "") or "",
            "last_name": getattr(user, "last_name", "") or "",
        }


class LinkedAccountSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """The linked account's public fields. A plain Serializer: a
    ModelSerializer rebuilds its fields on every response (about 250 us,
    several times the cost of verifying the token)."""

    FIELDS = ("provider", "sub", "email", "email_verified", "hosted_domain", "name", "picture")

    def to_representation(self, account: LinkedAccount) -> dict[str, Any]:
        return {name: getattr(account, name) for name in self.FIELDS}


class LinkedAccountDetailSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """One of the signed-in user's linked accounts, as ``accounts/`` lists it:
    the public fields, its ``id`` (for ``DELETE accounts/<id>/``) and dates."""

    id = serializers.IntegerField(read_only=True)
    provider = serializers.CharField(read_only=True)
    sub = serializers.CharField(read_only=True)
    email = serializers.CharField(read_only=True)
    email_verified = serializers.BooleanField(read_only=True)
    hosted_domain = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    picture = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    last_signed_in_at = serializers.DateTimeField(read_only=True)
