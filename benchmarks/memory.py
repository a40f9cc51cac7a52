"""memory: a worker's resident memory after 1,000 and after 50,000 sign-ins.

One process plays a worker: Django's WSGI handler called directly (the whole
middleware stack), each request a ``POST /auth/google/signin/`` with a fresh
token for a distinct new Google account (so each sign-in creates a user and
its linked account), keys fetched once from a loopback key server. Tokens are
minted in a separate process, a couple of hundred ahead, so neither minting
nor a big pool of tokens sits in the measured process.

At each checkpoint (after a full garbage collection): the resident set size
(``/proc/self/statm``), the number of objects the garbage collector tracks,
and the size of the package's in-process caches. A cache without a bound, or
anything kept per sign-in, shows as growth that goes on with the count.

    python benchmarks/memory.py [--quick] [--db sqlite|postgres] [--replay]
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    KeyServer,
    TokenStream,
    configure_django,
    create_pg_database,
    drop_pg_database,
    machine_note,
    migrate,
    new_issuer,
    pg_settings,
    print_table,
    sqlite_settings,
    utc_now,
)

PG_NAME = "idtoken_bench_memory"
#: Resident growth from the first checkpoint to the last that still counts as
#: bounded (allocator noise, Django's lazily built caches), and the allowed
#: growth of tracked objects (no per-sign-in retention).
MAX_RSS_GROWTH_MB = 8.0
MAX_OBJECT_GROWTH = 2000


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def cache_sizes() -> str:
    from django.core.cache import caches

    from django_google_idtoken import jws, keys

    parts = [f"key stores {len(keys._stores)}"]
    headers = getattr(jws, "_HEADERS", None)
    if headers is not None:
        parts.append(f"header cache {len(headers)}")
    locmem = getattr(caches["default"], "_cache", None)
    if locmem is not None:
        parts.append(f"locmem entries {len(locmem)}")
    return ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--replay", action="store_true", help="REPLAY_PROTECTION on (a mark per token in the cache)"
    )
    parser.add_argument("--total", type=int, help="sign-ins in all (default 50000; quick 3000)")
    args = parser.parse_args()
    total = args.total or (3000 if args.quick else 50_000)
    base = 1000 if total >= 5000 else max(100, total // 10)
    checkpoints = sorted(
        {c for c in (base, 5000, 10_000, 25_000, total // 2, total) if base <= c <= total}
    )

    issuer = new_issuer()
    key_server = KeyServer(issuer)
    workdir = Path(tempfile.mkdtemp(prefix="idtoken-memory-"))
    stream: TokenStream | None = None
    try:
        if args.db == "postgres":
            create_pg_database(PG_NAME)
            database = pg_settings(PG_NAME)
        else:
            database = sqlite_settings(workdir / "memory.sqlite3")
        overrides: dict[str, Any] = {}
        if args.replay:
            import benchsite.settings as bench_settings

            overrides["GOOGLE_IDTOKEN"] = {
                **bench_settings.GOOGLE_IDTOKEN,
                "CERTS_URL": key_server.url,
                "REPLAY_PROTECTION": True,
            }
        configure_django({"default": database}, key_server.url, **overrides)
        fast_sqlite()
        migrate()
        stream = TokenStream(issuer, range(1, total + 1))
        rows = run(stream, checkpoints)
        report(args, total, rows)
    finally:
        if stream is not None:
            stream.close()
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001 - Django may not be configured yet
            pass
        if args.db == "postgres":
            drop_pg_database(PG_NAME)
        for path in workdir.iterdir():
            path.unlink()
        workdir.rmdir()
        key_server.close()


def fast_sqlite() -> None:
    """Durability is beside the point here: skip the fsyncs so 50,000
    sign-ins take minutes, not more."""
    from django.db.backends.signals import connection_created

    def pragmas(sender: Any, connection: Any, **kwargs: Any) -> None:
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=OFF")

    connection_created.connect(pragmas, weak=False)


def run(stream: TokenStream, checkpoints: list[int]) -> list[list[Any]]:
    from django.core.handlers.wsgi import WSGIHandler

    handler = WSGIHandler()
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        statuses.append(status)

    rows: list[list[Any]] = []
    first: tuple[float, int] | None = None
    started = time.monotonic()
    for done, token in enumerate(stream, 1):
        body = json.dumps({"id_token": token}).encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/auth/google/signin/",
            "SCRIPT_NAME": "",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "http",
            "wsgi.version": (1, 0),
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        response = handler(environ, start_response)
        content = b"".join(response)
        response.close()
        status = statuses.pop()
        if not status.startswith("200") or b'"created":true' not in content:
            raise RuntimeError(f"sign-in {done} answered {status}: {content[:300]!r}")
        if done in checkpoints:
            gc.collect()
            rss, objects = rss_mb(), len(gc.get_objects())
            if first is None:
                first = (rss, objects)
            rows.append(
                [
                    f"{done:,}",
                    f"{rss:.1f}",
                    f"{rss - first[0]:+.1f}",
                    f"{objects:,}",
                    f"{objects - first[1]:+,}",
                    f"{time.monotonic() - started:.0f}",
                    cache_sizes(),
                ]
            )
            print(f"  {done:,} sign-ins: {rss:.1f} MB, {objects:,} objects", file=sys.stderr)
    return rows


def report(args: argparse.Namespace, total: int, rows: list[list[Any]]) -> None:
    print(f"\nmemory [{args.db}]: {utc_now()}; {machine_note()}")
    print(
        f"{total:,} sign-ins of distinct new users through Django's WSGI handler in one process"
        + ("; REPLAY_PROTECTION on (locmem cache)" if args.replay else "")
    )
    print_table(
        "Resident memory and tracked objects (after gc.collect())",
        ["sign-ins", "RSS MB", "vs first", "objects", "vs first", "elapsed s", "caches"],
        rows,
        left=1,
    )
    growth = float(rows[-1][2])
    objects = int(rows[-1][4].replace(",", ""))
    ok = growth <= MAX_RSS_GROWTH_MB and objects <= MAX_OBJECT_GROWTH
    print(
        f"growth from {rows[0][0]} to {rows[-1][0]} sign-ins: {growth:+.1f} MB resident, "
        f"{objects:+,} objects: {'ok (bounded)' if ok else 'MISSED'} "
        f"(target: <= {MAX_RSS_GROWTH_MB:g} MB and <= {MAX_OBJECT_GROWTH:,} objects)"
    )


if __name__ == "__main__":
    main()
