"""``manage.py idtoken_check TOKEN``: why can't this user sign in?

Verifies an ID token exactly as a sign-in would (same keys, settings and
checks) and prints its claims and the user its ``sub`` is linked to, or the
refusal code and reason. It never creates, links or changes anything, does
not spend the token under ``REPLAY_PROTECTION`` (but reports one that was
already used), and never prints the token.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.views.decorators.debug import sensitive_variables

from ...errors import Refused
from ...models import LinkedAccount
from ...providers import get_provider, provider_names
from ...replay import check_unused

#: More than any token can be (they are refused past 8 KiB); reading stops there.
MAX_STDIN = 64 * 1024


class Command(BaseCommand):
    help = (
        "Verify an ID token as a sign-in would and print its claims and linked user, "
        "or the refusal code and reason. Pass - to read the token from standard input."
    )
    # call_command(..., stdin=...) for tests, as Django's createsuperuser does.
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "token",
            help="the ID token, or - to read it from standard input (which keeps it out of "
            "the shell history and the process list)",
        )
        parser.add_argument(
            "--provider",
            metavar="NAME",
            default=None,
            help="the identity provider that issued the token (default: google)",
        )

    @sensitive_variables("token", "options")
    def handle(self, *args: Any, **options: Any) -> None:
        token: str = options["token"]
        if token == "-":
            stdin = options.get("stdin") or sys.stdin
            token = stdin.read(MAX_STDIN)
        token = token.strip()
        if not token:
            raise CommandError("no token given")
        try:
            provider = get_provider(options["provider"])
        except Refused:
            names = ", ".join(provider_names())
            raise CommandError(
                f"unknown provider {options['provider']!r} (configured: {names})"
            ) from None
        try:
            claims = provider.verify(token)
            check_unused(claims)
        except Refused as refusal:
            # The refusal's context holds only the token's kid/iss/aud, never the token.
            context = refusal.context_text()
            message = f"refused: {refusal.code}: {refusal.detail}"
            raise CommandError(f"{message} ({context})" if context else message) from None

        account = (
            LinkedAccount.objects.select_related("user")
            .filter(provider=claims.provider, sub=claims.sub)
            .first()
        )
        linked_user = None
        if account is not None:
            user = account.user
            linked_user = {
                "id": user.pk,
                "username": user.get_username(),
                "email": getattr(user, "email", ""),
                "is_active": getattr(user, "is_active", True),
            }
        report = {
            "provider": claims.provider,
            "claims": dict(claims.raw),
            "linked_user": linked_user,
        }
        # JSON escapes control characters: claims cannot drive the terminal.
        self.stdout.write(json.dumps(report, indent=2, sort_keys=True, default=str))
