"""queries: the SQL statements of one sign-in, listed.

Each sign-in is a real ``POST /auth/google/signin/`` through Django's test
client (the whole middleware stack, a fresh client without a session), with
its statements captured by ``CaptureQueriesContext``. Statements are marked
``session`` (the session's own reads and writes: ``django_session``),
``login`` (``django.contrib.auth.login``'s ``last_login`` update, which every
login does) or ``sign-in`` (the package's own).

Scenarios: a returning user (nothing changed), a returning user whose profile
changed, a new user; the returning sign-in again after the tables grew, to
show that no statement's count depends on the number of users or accounts.
On PostgreSQL, EXPLAIN ANALYZE of the account lookup (and of the new user's
email lookup) on the grown tables.

    python benchmarks/queries.py [--quick] [--db sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import (
    KeyServer,
    configure_django,
    create_pg_database,
    drop_pg_database,
    machine_note,
    migrate,
    mint_one,
    new_issuer,
    pg_settings,
    populate,
    print_table,
    sqlite_settings,
    use_database,
    utc_now,
    verdict,
)

PG_NAME = "idtoken_bench_queries"
TARGET_RETURNING = 4
NEW_USER = 10**9 + 1
SIGN_IN = "/auth/google/signin/"
#: benchsite's login floor (loads the user by pk and logs in), for comparison
FLOOR = "/bench/floor/"


_CONTROL = re.compile(r"(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE SAVEPOINT|ROLLBACK TO)\b")


def _part(sql: str) -> str:
    if "django_session" in sql:
        return "session"
    if re.match(r'UPDATE "auth_user" SET "last_login"', sql):
        return "login"
    return "sign-in"


def parts_of(statements: list[dict[str, str]]) -> list[str]:
    """Each statement's part; transaction control (BEGIN, COMMIT, savepoints)
    belongs to the statements it encloses (the session's own blocks are the
    session's)."""
    sqls = [q["sql"] for q in statements]
    parts = [_part(sql) for sql in sqls]
    depth, opened = 0, [0]
    for i, sql in enumerate(sqls):
        if _CONTROL.match(sql):
            if sql.startswith(("BEGIN", "SAVEPOINT")):
                opened.append(i)
                depth += 1
                continue
            start = opened.pop() if depth else i
            depth = max(0, depth - 1)
            inner = {parts[j] for j in range(start + 1, i) if not _CONTROL.match(sqls[j])}
            part = inner.pop() if len(inner) == 1 else "sign-in"
            parts[start] = parts[i] = part
    return parts


def commits_of(statements: list[dict[str, str]]) -> int:
    """Transactions committed: explicit COMMITs plus writes run in autocommit."""
    depth, commits = 0, 0
    for q in statements:
        sql = q["sql"]
        if sql.startswith("BEGIN"):
            depth += 1
        elif sql.startswith("COMMIT"):
            depth, commits = depth - 1, commits + 1
        elif depth == 0 and sql.startswith(("INSERT", "UPDATE", "DELETE")):
            commits += 1
    return commits


def sign_in(
    token: str, path: str = SIGN_IN, **extra: Any
) -> tuple[list[dict[str, str]], dict[str, Any]]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    with CaptureQueriesContext(connection) as captured:
        response = client.post(
            path, json.dumps({"id_token": token, **extra}), content_type="application/json"
        )
    if response.status_code != 200:
        raise RuntimeError(f"sign-in answered {response.status_code}: {response.content[:300]!r}")
    return list(captured.captured_queries), response.json()


def shorten(sql: str, width: int = 150) -> str:
    sql = " ".join(sql.split())
    # The column lists say nothing here; FROM, JOIN and WHERE do.
    sql = re.sub(r"^SELECT (.{60,}?) FROM ", "SELECT ... FROM ", sql)
    sql = re.sub(r"^(INSERT INTO \S+) \(.{60,}?\) VALUES", r"\1 (...) VALUES", sql)
    return sql if len(sql) <= width else sql[: width - 3] + "..."


def report_statements(title: str, statements: list[dict[str, str]]) -> None:
    print_table(
        title,
        ["#", "part", "statement"],
        [
            [i, part, shorten(q["sql"])]
            for i, (part, q) in enumerate(zip(parts_of(statements), statements, strict=True), 1)
        ],
        left=3,
    )


def run_database(db: str, alias: str, args: argparse.Namespace, issuer: Any) -> dict[str, Any]:
    from django.db import connection

    migrate(alias)
    populate(1, args.small, alias)
    results: dict[str, Any] = {}
    with use_database(alias):
        sign_in(mint_one(issuer, 1))  # warm-up: fetches the keys, fills Django's caches
        statements, answer = sign_in(mint_one(issuer, 2))
        assert answer["created"] is False
        results["returning user"] = statements
        statements, answer = sign_in(mint_one(issuer, 3, name="Ada King", picture=""))
        assert answer["created"] is False
        results["returning user, profile changed"] = statements
        statements, answer = sign_in(mint_one(issuer, 4), FLOOR, user_id=4)
        results["(login floor: user by pk + login)"] = statements
        statements, answer = sign_in(mint_one(issuer, NEW_USER))
        assert answer["created"] is True
        results["new user"] = statements

        populate(args.small + 1, args.large, alias)
        statements, answer = sign_in(mint_one(issuer, args.large - 7))
        assert answer["created"] is False
        results[f"returning user, {args.large:,} accounts"] = statements

        plans: dict[str, str] = {}
        if connection.vendor == "postgresql":
            lookup = next(
                q["sql"]
                for q in statements
                if q["sql"].startswith("SELECT") and "linkedaccount" in q["sql"]
            )
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + lookup)
                plans["account lookup (returning user)"] = "\n".join(r[0] for r in cursor)
            new_user_email = next(
                (
                    q["sql"]
                    for q in results["new user"]
                    if q["sql"].startswith("SELECT")
                    and '"auth_user"' in q["sql"]
                    and "email" in q["sql"].split("WHERE", 1)[-1]
                ),
                None,
            )
            if new_user_email:
                new_user_email = new_user_email.replace(f"u{NEW_USER}@", "u123456789@")
                with connection.cursor() as cursor:
                    cursor.execute(
                        "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + new_user_email
                    )
                    plans["email lookup (new user)"] = "\n".join(r[0] for r in cursor)
        results["plans"] = plans
    return results


def report(db: str, args: argparse.Namespace, results: dict[str, Any]) -> None:
    print(f"\nqueries [{db}]: {utc_now()}; {machine_note()}")
    print(
        f"{args.small:,} users with linked accounts, then {args.large:,}; "
        "POST /auth/google/signin/ through the test client, no prior session"
    )
    scenarios = [k for k in results if k != "plans"]
    for name in scenarios:
        report_statements(f"{name} [{db}]", results[name])
    rows = []
    counts = {}
    for name in scenarios:
        parts = parts_of(results[name])
        besides = len(parts) - parts.count("session")
        counts[name] = len(parts)
        target = "reported"
        if name.startswith("returning user") and "changed" not in name:
            target = verdict(besides, TARGET_RETURNING, True)
        rows.append(
            [
                name,
                len(parts),
                parts.count("session"),
                parts.count("login"),
                besides,
                commits_of(results[name]),
                target,
            ]
        )
    print_table(
        f"Statement counts [{db}] (transaction control counted with what it encloses)",
        ["sign-in", "total", "session", "login", "besides session", "commits", "target"],
        rows,
    )
    grown = f"returning user, {args.large:,} accounts"
    same = counts["returning user"] == counts[grown]
    print(
        f"statements with {args.small:,} vs {args.large:,} accounts: "
        f"{counts['returning user']} vs {counts[grown]} "
        f"({'ok: no statement count grows with the tables' if same else 'MISSED: it grew'})"
    )
    for name, plan in results["plans"].items():
        scan = "index scan" if "Index" in plan and "Seq Scan" not in plan else "NO index scan"
        print(f"\nEXPLAIN ANALYZE, {name}, {args.large:,} rows [{db}]: {scan}")
        print("    " + plan.replace("\n", "\n    "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--small", type=int, default=100, help="accounts at first")
    parser.add_argument("--large", type=int, help="accounts after growing (default 100000)")
    args = parser.parse_args()
    args.large = args.large or (5000 if args.quick else 100_000)
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]

    issuer = new_issuer()
    key_server = KeyServer(issuer)
    workdir = Path(tempfile.mkdtemp(prefix="idtoken-queries-"))
    databases: dict[str, Any] = {"default": sqlite_settings(workdir / "queries.sqlite3")}
    if "postgres" in dbs:
        databases["postgres"] = pg_settings(PG_NAME)
        create_pg_database(PG_NAME)
    try:
        configure_django(databases, key_server.url)
        for db in dbs:
            alias = "default" if db == "sqlite" else "postgres"
            report(db, args, run_database(db, alias, args, issuer))
    finally:
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001 - Django may not be configured yet
            pass
        if "postgres" in dbs:
            drop_pg_database(PG_NAME)
        for path in workdir.iterdir():
            path.unlink()
        workdir.rmdir()
        key_server.close()


if __name__ == "__main__":
    sys.exit(main())
