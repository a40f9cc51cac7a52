"""Shared helpers of the benchmark scripts (not a benchmark itself).

* a loopback key server publishing a fake issuer's keys in Google's two formats,
  counting fetches;
* token minting (in worker processes, so minting never runs in a measured
  process or period);
* Django configuration from ``benchsite.settings`` with overrides, database
  creation and bulk population (users + linked accounts in one SQL statement
  each, generated server-side);
* statistics and table printing.

``python benchmarks/_common.py setup-db --users N`` migrates and populates the
database named by the ``BENCH_*`` environment (see ``benchsite/settings.py``);
``signin.py`` runs it before starting gunicorn.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import itertools
import json
import math
import multiprocessing
import os
import platform
import socket
import statistics
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
for _path in (str(BENCH_DIR), str(REPO_ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from cryptography.hazmat.primitives import serialization  # noqa: E402

from django_google_idtoken import testing  # noqa: E402
from django_google_idtoken.testing import FakeIssuer  # noqa: E402

CLIENT_ID = "1234-bench.apps.googleusercontent.com"
GOOGLE_ISSUER = "https://accounts.google.com"
PG_HOST = "127.0.0.1"
PG_USER = os.environ.get("PGUSER", "postgres")

#: The profile every benchmark account has, in the database and in its tokens,
#: so a returning sign-in finds nothing changed in the snapshot.
NAME, GIVEN_NAME, FAMILY_NAME = "Ada Lovelace", "Ada", "Lovelace"
PICTURE = "https://lh3.googleusercontent.com/a/default-user=s96-c"


def sub_for(i: int) -> str:
    """The Google ``sub`` of benchmark account number ``i`` (21 digits, like Google's)."""
    return f"1{i:020d}"


def email_for(i: int) -> str:
    return f"u{i}@gmail.com"


def machine_note() -> str:
    return (
        f"{os.cpu_count()}-core shared machine, Python {platform.python_version()}; "
        "figures are ratios measured side by side in one run, not guarantees"
    )


# -- tokens ----------------------------------------------------------------

_worker_issuer: FakeIssuer | None = None


def _init_minter(key_pem: bytes, kid: str) -> None:
    global _worker_issuer
    key = serialization.load_pem_private_key(key_pem, password=None)
    _worker_issuer = FakeIssuer(client_id=CLIENT_ID, keys=[(kid, key)])


def mint_one(issuer: FakeIssuer, i: int, **overrides: Any) -> str:
    """A token for benchmark account number ``i`` with its stored profile."""
    iat, exp = token_times()
    claims: dict[str, Any] = {
        "sub": sub_for(i),
        "email": email_for(i),
        "name": NAME,
        "given_name": GIVEN_NAME,
        "family_name": FAMILY_NAME,
        "picture": PICTURE,
        "iat": iat,
        "exp": exp,
    }
    claims.update(overrides)
    return issuer.mint(**claims)


def _mint_chunk(args: tuple[list[int], int, int]) -> list[str]:
    indices, iat, exp = args
    assert _worker_issuer is not None
    return [mint_one(_worker_issuer, i, iat=iat, exp=exp) for i in indices]


def _issuer_args(issuer: FakeIssuer) -> tuple[bytes, str]:
    key = issuer.keys[issuer.active_kid]
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem, issuer.active_kid


def new_issuer() -> FakeIssuer:
    """A fake Google publishing two keys, as Google does (the current one and
    the next or previous), signing with one of them."""
    issuer = FakeIssuer(client_id=CLIENT_ID, issuer=GOOGLE_ISSUER)
    issuer.add_key()
    return issuer


def token_times(valid_for: int = 3 * 3600) -> tuple[int, int]:
    """iat a minute ago (google-auth allows no clock skew by default), exp in hours."""
    now = int(time.time())
    return now - 60, now + valid_for


def mint_tokens(issuer: FakeIssuer, indices: Sequence[int], processes: int = 2) -> list[str]:
    """One token per account number in ``indices`` (in order), minted in worker processes."""
    iat, exp = token_times()
    chunk = 500
    jobs = [(list(indices[i : i + chunk]), iat, exp) for i in range(0, len(indices), chunk)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes, initializer=_init_minter, initargs=_issuer_args(issuer)) as pool:
        tokens: list[str] = []
        for part in pool.imap(_mint_chunk, jobs):
            tokens.extend(part)
    return tokens


class TokenStream:
    """Tokens for account numbers ``indices``, minted in a worker process a
    couple of chunks ahead of use (memory.py: tens of thousands of tokens
    never sit in the measured process at once, and minting never runs in it)."""

    def __init__(self, issuer: FakeIssuer, indices: Iterable[int], chunk: int = 200) -> None:
        iat, exp = token_times()
        indices = list(indices)
        self._jobs = [(indices[i : i + chunk], iat, exp) for i in range(0, len(indices), chunk)]
        context = multiprocessing.get_context("spawn")
        self._pool = context.Pool(1, initializer=_init_minter, initargs=_issuer_args(issuer))

    def __iter__(self) -> Iterator[str]:
        pending: list[Any] = []
        jobs = iter(self._jobs)
        for job in itertools.islice(jobs, 2):
            pending.append(self._pool.apply_async(_mint_chunk, (job,)))
        while pending:
            tokens = pending.pop(0).get(timeout=600)
            job = next(jobs, None)
            if job is not None:
                pending.append(self._pool.apply_async(_mint_chunk, (job,)))
            yield from tokens

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()


# -- the key server ----------------------------------------------------------


class KeyServer(testing.KeyServer):
    """The package's loopback key server (``django_google_idtoken.testing``):
    ``/certs`` is the JWKS (Google's v3 format, what the package fetches),
    ``/v1/certs`` the map of kid to PEM certificate (Google's v1 format, what
    google-auth fetches); ``hits``/``snapshot()`` count requests per path.
    Each connection is closed after its answer, as the benchmarks always did."""

    protocol_version = "HTTP/1.0"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- Django and databases -------------------------------------------------------


def sqlite_settings(path: str | Path) -> dict[str, Any]:
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": {"timeout": 30},
        "CONN_MAX_AGE": None,
    }


def pg_settings(name: str) -> dict[str, Any]:
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": PG_USER,
        "HOST": PG_HOST,
        "PORT": "5432",
        "CONN_MAX_AGE": None,
    }


def configure_django(databases: dict[str, Any], certs_url: str, **overrides: Any) -> None:
    """Configure Django in this process from ``benchsite.settings``, with the
    given databases and the key server's URL."""
    import benchsite.settings as base
    import django
    from django.conf import settings

    values = {name: getattr(base, name) for name in dir(base) if name.isupper()}
    values["DATABASES"] = databases
    values["GOOGLE_IDTOKEN"] = {**values["GOOGLE_IDTOKEN"], "CERTS_URL": certs_url}
    values.update(overrides)
    settings.configure(**values)
    django.setup()


@contextlib.contextmanager
def use_database(alias: str) -> Iterator[None]:
    """Make ``alias`` this thread's default database for the duration (sessions,
    transactions and the package's queries all follow), so one process can
    measure two databases interleaved."""
    from django.db import connections

    default = connections["default"]
    connections["default"] = connections[alias]
    try:
        yield
    finally:
        connections["default"] = default


def migrate(alias: str = "default") -> None:
    from django.core.management import call_command

    call_command("migrate", database=alias, verbosity=0, interactive=False)


def pg_admin() -> Any:
    import psycopg

    return psycopg.connect(host=PG_HOST, user=PG_USER, dbname="postgres", autocommit=True)


def create_pg_database(name: str) -> None:
    """(Re)create an empty database (benchmark databases only: idtoken_bench*)."""
    assert name.startswith("idtoken_bench"), name
    with pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_pg_database(name: str) -> None:
    assert name.startswith("idtoken_bench"), name
    with pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def populate(first: int, last: int, alias: str = "default") -> None:
    """Create users and linked accounts number ``first`` to ``last`` (inclusive),
    generated by the database itself (a million rows take seconds)."""
    from django.db import connections
    from django.utils import timezone

    from django_google_idtoken.models import LinkedAccount, ProvisionedUser

    connection = connections[alias]
    user_table = "auth_user"
    account_table = LinkedAccount._meta.db_table
    # Joined a month ago, last signed in a week ago: a returning user's sign-in
    # finds last_signed_in_at (and last_login) old, as it mostly is in production.
    now = timezone.now()
    joined = connection.ops.adapt_datetimefield_value(now - datetime.timedelta(days=30))
    last_seen = connection.ops.adapt_datetimefield_value(now - datetime.timedelta(days=7))
    if connection.vendor == "postgresql":
        numbers = "generate_series(%s, %s) AS g(i)"
        prefix = ""
        sub = "'1' || lpad(i::text, 20, '0')"
    else:
        numbers = "g"
        prefix = "WITH RECURSIVE g(i) AS (SELECT %s UNION ALL SELECT i + 1 FROM g WHERE i < %s) "
        sub = "'1' || substr('00000000000000000000' || i, -20, 20)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {user_table} (password, last_login, is_superuser, username, "
            "first_name, last_name, email, is_staff, is_active, date_joined) "
            f"{prefix}SELECT '!bench', %s, %s, {sub}, %s, %s, 'u' || i || '@gmail.com', "
            f"%s, %s, %s FROM {numbers}",
            [first, last, last_seen, False, GIVEN_NAME, FAMILY_NAME, False, True, joined]
            if prefix
            else [last_seen, False, GIVEN_NAME, FAMILY_NAME, False, True, joined, first, last],
        )
        cursor.execute(
            f"INSERT INTO {account_table} (user_id, provider, sub, email, email_verified, "
            "verified_email, hosted_domain, name, picture, created_at, last_signed_in_at) "
            "SELECT id, 'google', username, email, %s, email, '', %s, %s, %s, %s "
            f"FROM {user_table} WHERE username >= %s AND username <= %s",
            [True, NAME, PICTURE, joined, last_seen, sub_for(first), sub_for(last)],
        )
        # Users the package created (their Gmail addresses are verified above).
        cursor.execute(
            f"INSERT INTO {ProvisionedUser._meta.db_table} (user_id, created_at) "
            f"SELECT id, %s FROM {user_table} WHERE username >= %s AND username <= %s",
            [joined, sub_for(first), sub_for(last)],
        )
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {user_table}")
            cursor.execute(f"ANALYZE {account_table}")
        else:
            cursor.execute("ANALYZE")


def user_id_range(alias: str = "default") -> tuple[int, int]:
    from django.db import connections

    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT min(id), max(id) FROM auth_user WHERE password = '!bench'")
        low, high = cursor.fetchone()
    return int(low), int(high)


# -- statistics and tables -------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def spread(values: Sequence[float]) -> str:
    """min-max of per-round figures, to show the noise."""
    if not values:
        return "-"
    return f"{min(values):.2f}-{max(values):.2f}"


def verdict(value: float, target: float, at_most: bool) -> str:
    ok = value <= target if at_most else value >= target
    return ("ok" if ok else "MISSED") + f" ({'<=' if at_most else '>='} {target:g})"


def print_table(
    title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]], left: int = 1
) -> None:
    """A plain-text table; the first ``left`` columns are left-aligned."""
    rows = [[str(cell) for cell in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(widths[i]) if i < left else cell.rjust(widths[i])
            for i, cell in enumerate(cells)
        ).rstrip()

    print(f"\n{title}")
    print(line(headers))
    print(line(["-" * w for w in widths]))
    for row in rows:
        print(line(row))
    sys.stdout.flush()


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


# -- setup-db (run by signin.py in a child process) ---------------------------------


def _setup_db_main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="_common.py setup-db")
    parser.add_argument("--users", type=int, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")
    import django

    django.setup()
    from django.db import connection

    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            # Persistent: concurrent readers and a writer across worker processes.
            cursor.execute("PRAGMA journal_mode=WAL")
    migrate()
    populate(1, args.users)
    low, high = user_id_range()
    print(json.dumps({"user_ids": [low, high]}))


if __name__ == "__main__":
    if sys.argv[1:2] == ["setup-db"]:
        _setup_db_main(sys.argv[2:])
    else:
        sys.exit("usage: python benchmarks/_common.py setup-db --users N")
