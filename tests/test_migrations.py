"""Migration 0002 back-fills what the trust rules need for accounts and users
that existed before them, so that upgrading does not keep the pre-account
takeover open for data already written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from django_google_idtoken.models import LinkedAccount, ProvisionedUser

from .helpers import sign_in

APP = "django_google_idtoken"
BEFORE = [(APP, "0001_initial")]
AFTER = [(APP, "0002_verified_email")]


@pytest.fixture
def executor(transactional_db: None) -> Iterator[MigrationExecutor]:
    executor = MigrationExecutor(connection)
    yield executor
    # Leave the schema as every other test expects it.
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def migrate(executor: MigrationExecutor, targets: list[tuple[str, str]]) -> Any:
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_backfill(executor: MigrationExecutor, settings: Any) -> None:
    settings.GOOGLE_IDTOKEN = {
        **settings.GOOGLE_IDTOKEN,
        "PROVIDERS": {
            "corp": {
                "TYPE": "oidc",
                "ISSUER": "https://corp",
                "CLIENT_IDS": ["c"],
                "TRUST_EMAIL": True,
            },
            "apple": {"TYPE": "oidc", "ISSUER": "https://apple", "CLIENT_IDS": ["a"]},
        },
    }
    old = migrate(executor, BEFORE)
    user_model = old.get_model(settings.AUTH_USER_MODEL)
    account_model = old.get_model(APP, "LinkedAccount")
    rows = {
        # (provider, email, email_verified, hd) -> verified_email expected
        ("google", "Ada@Gmail.com", True, ""): "ada@gmail.com",
        ("google", "bob@gmail.com", False, ""): "",
        ("google", "ceo@company.example", True, "company.example"): "ceo@company.example",
        ("google", "cfo@company.example", True, ""): "",
        ("google", "cto@company.example", True, "other.example"): "",
        ("nowgg", "victim@gmail.com", True, ""): "",
        ("corp", "dan@corp.example", True, ""): "dan@corp.example",
        ("corp", "eve@corp.example", False, ""): "",
        ("apple", "fay@example.org", True, ""): "",
    }
    for number, (provider, email, verified, hd) in enumerate(rows):
        user = user_model.objects.create(username=f"u{number}", email=email)
        account_model.objects.create(
            user=user,
            provider=provider,
            sub=f"s{number}",
            email=email,
            email_verified=verified,
            hosted_domain=hd,
        )
    local = user_model.objects.create(username="local", email="local@gmail.com")

    migrate(executor, AFTER)

    for number, expected in enumerate(rows.values()):
        assert LinkedAccount.objects.get(sub=f"s{number}").verified_email == expected, number
    provisioned = set(ProvisionedUser.objects.values_list("user_id", flat=True))
    assert provisioned == set(LinkedAccount.objects.values_list("user_id", flat=True))
    assert local.pk not in provisioned


def test_an_old_attackers_user_does_not_receive_the_victim(
    executor: MigrationExecutor, settings: Any, issuer: Any, key_server: Any
) -> None:
    # Before the upgrade, an attacker signed in through now.gg with the
    # victim's Gmail address, which was copied onto their User.email. After
    # it, even with LINK_BY_EMAIL and a project callable trusting every local
    # address, the victim's Google account gets a user of its own.
    old = migrate(executor, BEFORE)
    user_model = old.get_model(settings.AUTH_USER_MODEL)
    attacker = user_model.objects.create(username="victim", email="victim@gmail.com")
    old.get_model(APP, "LinkedAccount").objects.create(
        user=attacker, provider="nowgg", sub="n1", email="victim@gmail.com"
    )
    migrate(executor, AFTER)
    settings.GOOGLE_IDTOKEN = {
        **settings.GOOGLE_IDTOKEN,
        "LINK_BY_EMAIL": True,
        "LOCAL_EMAIL_VERIFIED": "tests.email_policy.always",
    }

    response = sign_in(Client(), issuer.mint(sub="victim-google", email="victim@gmail.com"))

    assert response.status_code == 200, response.content
    assert response.json()["created"] is True
    assert response.json()["user"]["id"] != attacker.pk
