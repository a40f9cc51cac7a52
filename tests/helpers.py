"""Helpers shared by the sign-in test modules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth import get_user_model

from django_google_idtoken.models import LinkedAccount

SIGNIN = "/auth/google/signin/"
REPO_ROOT = Path(__file__).resolve().parent.parent


def sign_in(client: Any, token: str) -> Any:
    return client.post(SIGNIN, {"id_token": token}, content_type="application/json")


def post_form(client: Any, url: str, data: dict[str, str], **extra: Any) -> Any:
    """POST ``data`` as an urlencoded form, as Google's and now.gg's client
    examples do (the test client's default, multipart, is refused by sign-in)."""
    return client.post(
        url, urlencode(data), content_type="application/x-www-form-urlencoded", **extra
    )


def db_state() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every user and linked account row, to prove a refusal wrote nothing."""
    return (
        list(get_user_model().objects.order_by("pk").values()),
        list(LinkedAccount.objects.order_by("pk").values()),
    )


def assert_refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "detail"}
    assert body["code"] == code
    assert isinstance(body["detail"], str)
    assert body["detail"]


def run_pytest_under_email_user(*args: str) -> str:
    """Run pytest in a subprocess with the email-as-username user model
    (AUTH_USER_MODEL cannot change inside one process); return its output
    after asserting it passed. The environment passes through, so
    IDTOKEN_TEST_DB and IDTOKEN_TEST_CACHE select the same services."""
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", *args, "-q", "--ds=tests.settings_emailuser"]
        + ["-p", "no:cacheprovider"],
        cwd=REPO_ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    return output
