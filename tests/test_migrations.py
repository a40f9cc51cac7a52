"""The migrations match the models, apply and unapply, and put the (provider,
sub) unique constraint, which settles racing first sign-ins, in the database."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from django_google_idtoken.models import LinkedAccount


@pytest.mark.django_db
def test_no_missing_migrations():
    out = StringIO()
    # --check exits non-zero (SystemExit, failing the test) if a migration is missing.
    call_command(
        "makemigrations", "django_google_idtoken", "--check", "--dry-run", stdout=out, stderr=out
    )
    assert "No changes detected in app 'django_google_idtoken'" in out.getvalue()


@pytest.mark.django_db
def test_unique_provider_sub_constraint_is_in_the_database():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, LinkedAccount._meta.db_table)
    unique_columns = [
        info["columns"]
        for info in constraints.values()
        if info["unique"] and not info["primary_key"]
    ]
    assert ["provider", "sub"] in unique_columns


@pytest.mark.django_db(transaction=True)
def test_migrations_unapply_and_reapply():
    table = LinkedAccount._meta.db_table
    call_command("migrate", "django_google_idtoken", "zero", verbosity=0)
    assert table not in connection.introspection.table_names()
    call_command("migrate", "django_google_idtoken", verbosity=0)
    assert table in connection.introspection.table_names()
