"""LOCAL_EMAIL_VERIFIED callables for the tests: the project's own say on
whether a local user's address was verified."""

from __future__ import annotations

from typing import Any

#: Usernames whose address the "project" has verified (tests fill it).
VERIFIED_USERNAMES: set[str] = set()

#: Not a function: E012 must say so.
NOT_CALLABLE = "verified"


def verified(user: Any) -> bool:
    return bool(user.get_username() in VERIFIED_USERNAMES)


def always(user: Any) -> bool:
    return True


def truthy_but_not_true(user: Any) -> Any:
    # Only True counts: a callable answering "yes" or 1 by mistake trusts nobody.
    return "yes"
