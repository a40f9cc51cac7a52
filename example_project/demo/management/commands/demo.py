"""``manage.py demo``: set up the example project and serve it, in one command.

Migrates the SQLite database, creates (or resets) the demo superuser
admin/admin, prints how to use both, and runs the development server on
127.0.0.1:EXAMPLE_PORT (default 8000). Local development only.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

SUPERUSER_USERNAME = "admin"
SUPERUSER_PASSWORD = "admin"


class Command(BaseCommand):
    help = (
        "Migrate, create the demo superuser admin/admin and run the example project on "
        "127.0.0.1:$EXAMPLE_PORT (default 8000). Local development only."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        self.reset_superuser()
        port = settings.EXAMPLE_PORT
        self.print_banner(port)
        # On the port the settings were built for: the development issuer's
        # key URL (CERTS_URL) names it. Without the autoreloader, one process
        # generates the development key and serves every request. Threaded,
        # because a sign-in request fetches the key set from this same server.
        call_command("runserver", f"127.0.0.1:{port}", use_reloader=False, use_threading=True)

    def reset_superuser(self) -> None:
        """Create the demo superuser, or restore its password and rights."""
        user_model = get_user_model()
        user, _ = user_model._default_manager.get_or_create(
            **{user_model.USERNAME_FIELD: SUPERUSER_USERNAME}
        )
        user.is_active = user.is_staff = user.is_superuser = True
        user.set_password(SUPERUSER_PASSWORD)
        user.save()

    def print_banner(self, port: int) -> None:
        site = f"http://127.0.0.1:{port}/"
        write = self.stdout.write
        write("")
        write(self.style.SUCCESS(f"Demo superuser for {site}admin/"))
        write(f"    username: {SUPERUSER_USERNAME}")
        write(f"    password: {SUPERUSER_PASSWORD}")
        write(
            self.style.WARNING(
                "    Local development only: anyone who can reach this server can log in "
                "with it, and DEBUG is on."
            )
        )
        write("")
        if settings.GOOGLE_CLIENT_ID:
            write(
                f"Open http://localhost:{port}/ and use Google's button. The client's "
                f"authorized JavaScript origins must list http://localhost and "
                f"http://localhost:{port}."
            )
        else:
            write(f'Open {site} and press "Sign in as a demo user".')
        write("")
