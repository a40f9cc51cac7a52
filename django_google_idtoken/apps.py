from __future__ import annotations

from importlib.util import find_spec

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GoogleIdTokenConfig(AppConfig):
    name = "django_google_idtoken"
    label = "django_google_idtoken"
    verbose_name = _("Google sign-in")
    # Fixed here so the project's DEFAULT_AUTO_FIELD never makes our migrations drift.
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.apps import apps

        from . import checks  # noqa: F401  (registers the system checks)

        if apps.is_installed("django.contrib.admin"):
            # Also done when admin.py is autodiscovered; whichever runs after
            # the user model's admin is registered adds the inline.
            from .admin import add_user_admin_inline

            add_user_admin_inline()

        if find_spec("drf_spectacular") is not None:
            # OpenAPI descriptions of our views (the optional "openapi" extra).
            from .rest_framework import schema  # noqa: F401
