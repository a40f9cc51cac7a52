"""signin: sign-ins per second under a real WSGI server, against the floor.

The bench project (``benchmarks/benchsite``: the package's URLs plus three
comparison views, DEBUG off) runs under gunicorn (2 workers, gthread) on
127.0.0.1; the keys come from a loopback key server that counts fetches; the
load comes from a separate process (threads, keep-alive connections). After a
warm-up, the endpoints are measured in interleaved windows (the order rotates
each round), so a shared machine's noise hits all of them alike:

(a) the package's sign-in, ``POST /auth/google/signin/``, for returning users:
    each request a fresh pre-minted token for one of many existing accounts;
(b) the login floor: a DRF view parsing the same body, loading a user by pk
    and calling ``django.contrib.auth.login``;
(c) a plain Django view answering ``{}``;
(d) the naive sign-in: google-auth's ``verify_oauth2_token`` way, fetching and
    parsing the certificates on every call, then ``get_or_create`` and login.

    python benchmarks/signin.py [--quick] [--db sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from _common import (
    BENCH_DIR,
    REPO_ROOT,
    KeyServer,
    create_pg_database,
    drop_pg_database,
    free_port,
    machine_note,
    median,
    mint_tokens,
    new_issuer,
    percentile,
    print_table,
    spread,
    utc_now,
    verdict,
)

PG_NAME = "idtoken_bench_signin"
TARGET_A_OVER_B = 0.8

ENDPOINTS = {
    "a": ("package sign-in, returning user", "/auth/google/signin/"),
    "b": ("login floor (DRF, user by pk, login)", "/bench/floor/"),
    "c": ("plain Django view", "/bench/plain/"),
    "d": ("naive verify_oauth2_token sign-in", "/bench/naive/"),
}


# -- the load generator (a separate process) ------------------------------------


def _window(
    port: int, path: str, pool: list[bytes], cursor: Any, seconds: float, connections: int
) -> dict[str, Any]:
    """POST the bodies of ``pool`` in turn (from ``cursor``) over ``connections``
    keep-alive connections for ``seconds``; the counts and latencies."""
    headers = {"Content-Type": "application/json"}
    first_index = next(cursor)
    latencies: list[list[float]] = [[] for _ in range(connections)]
    statuses: list[Counter[Any]] = [Counter() for _ in range(connections)]
    samples: list[bytes] = []
    start = time.perf_counter()
    deadline = start + seconds

    def worker(slot: int) -> None:
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        lat, stat = latencies[slot], statuses[slot]
        while time.perf_counter() < deadline:
            body = pool[next(cursor) % len(pool)]
            t0 = time.perf_counter()
            try:
                client.request("POST", path, body=body, headers=headers)
                response = client.getresponse()
                data = response.read()
                status: Any = response.status
            except (http.client.HTTPException, OSError) as err:
                client.close()
                client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status, data = type(err).__name__, b""
            lat.append((time.perf_counter() - t0) * 1000)
            stat[status] += 1
            if status != 200 and len(samples) < 3:
                samples.append(data[:300])
        client.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    last_index = next(cursor)
    total: Counter[Any] = Counter()
    for stat in statuses:
        total.update(stat)
    return {
        "elapsed": elapsed,
        "latencies": [x for lat in latencies for x in lat],
        "statuses": dict(total),
        "samples": samples,
        "bodies_used": last_index - first_index,
        "wrapped": last_index > len(pool),
    }


def _loadgen(conn: Any, port: int, bodies: dict[str, list[bytes]]) -> None:
    """The load generator's process: runs a window per ("run", name, path,
    seconds, connections) received, until anything else arrives. Each
    endpoint's bodies are used in turn across windows."""
    cursors = {name: itertools.count() for name in bodies}
    while True:
        command = conn.recv()
        if command[0] != "run":
            break
        _, name, path, seconds, connections = command
        conn.send(_window(port, path, bodies[name], cursors[name], seconds, connections))


class LoadGenerator:
    def __init__(self, port: int, bodies: dict[str, list[bytes]]) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_loadgen, args=(child, port, bodies), daemon=True)
        self.process.start()

    def run(self, name: str, seconds: float, connections: int) -> dict[str, Any]:
        self.conn.send(("run", name, ENDPOINTS[name][1], seconds, connections))
        if not self.conn.poll(seconds + 120):
            raise RuntimeError("the load generator stopped answering")
        result: dict[str, Any] = self.conn.recv()
        return result

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(("stop",))
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


# -- the server --------------------------------------------------------------------


WORKERS = 2


class Server:
    """gunicorn serving benchsite, 2 workers, on 127.0.0.1."""

    def __init__(self, env: dict[str, str], port: int, threads: int, log: Path, app: str) -> None:
        self.port = port
        self.log = log
        self._log_file = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                app,
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(WORKERS),
                "--worker-class",
                "gthread",
                "--threads",
                str(threads),
                "--keep-alive",
                "30",
                "--backlog",
                "256",
                "--log-level",
                "warning",
                "--chdir",
                str(BENCH_DIR),
            ],
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.log}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(  # noqa: S310 - loopback only
                    f"http://127.0.0.1:{self.port}/bench/plain/", timeout=2
                ) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer in {timeout}s:\n{self.tail()}")

    def tail(self) -> str:
        self._log_file.flush()
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log_file.close()


def post_json(port: int, path: str, body: bytes) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, err.read()[:300]


# -- one database ----------------------------------------------------------------


def bench_database(
    db: str, args: argparse.Namespace, server_keys: KeyServer, tokens: dict[str, list[str]]
) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="idtoken-bench-"))
    env = {
        **os.environ,
        "BENCH_DB": db,
        "BENCH_SQLITE_PATH": str(workdir / "bench.sqlite3"),
        "BENCH_PG_NAME": PG_NAME,
        "BENCH_CACHE": args.cache,
        "BENCH_CERTS_URL": server_keys.url,
        "BENCH_NAIVE_CERTS_URL": server_keys.v1_url,
        "PYTHONPATH": os.pathsep.join(
            [str(BENCH_DIR), str(REPO_ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]
        ),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    server: Server | None = None
    loadgen: LoadGenerator | None = None
    try:
        if db == "postgres":
            create_pg_database(PG_NAME)
        if args.cache == "redis":
            import redis

            redis.Redis(host="127.0.0.1", port=6379, db=14).flushdb()
        setup = subprocess.run(
            [sys.executable, str(BENCH_DIR / "_common.py"), "setup-db", "--users", str(args.users)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if setup.returncode != 0:
            raise RuntimeError(f"setting up the database failed:\n{setup.stderr[-3000:]}")
        low, high = json.loads(setup.stdout.strip().splitlines()[-1])["user_ids"]

        rng = random.Random(4)
        bodies = {
            "a": [json.dumps({"id_token": t}).encode() for t in tokens["a"]],
            "b": [
                json.dumps({"id_token": t, "user_id": rng.randint(low, high)}).encode()
                for t in tokens["a"]
            ],
            "c": [json.dumps({"id_token": t}).encode() for t in tokens["a"]],
            "d": [json.dumps({"id_token": t}).encode() for t in tokens["d"]],
        }
        port = free_port()
        server = Server(env, port, args.threads, workdir / "gunicorn.log", args.wsgi)
        server.wait_ready()

        fetched_before = server_keys.snapshot()["/certs"]
        # Sanity: every endpoint answers 200, and nobody is created.
        for name in ENDPOINTS:
            status, answer = post_json(port, ENDPOINTS[name][1], bodies[name][-1])
            if status != 200 or (isinstance(answer, dict) and answer.get("created")):
                raise RuntimeError(f"({name}) answered {status}: {answer!r}")

        # Every worker fetches its keys once (with a per-process cache), on
        # its first sign-in. Fresh connections until both have, so that no
        # first fetch falls in the measured period by luck of the accept().
        if args.cache == "locmem":
            for body in bodies["a"][-200:]:
                if server_keys.snapshot()["/certs"] - fetched_before >= WORKERS:
                    break
                post_json(port, ENDPOINTS["a"][1], body)

        loadgen = LoadGenerator(port, bodies)
        names = list(ENDPOINTS)
        for name in names:
            loadgen.run(name, args.warmup, args.connections)

        windows: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        fetches = {name: Counter[str]() for name in names}
        measured_start = server_keys.snapshot()
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                before = server_keys.snapshot()
                result = loadgen.run(name, args.window, args.connections)
                after = server_keys.snapshot()
                after.subtract(before)
                fetches[name].update(after)
                windows[name].append(result)
        measured_total = server_keys.snapshot()
        measured_total.subtract(measured_start)
        return {
            "windows": windows,
            "fetches": fetches,
            "all_fetches": measured_total,
            "log": server.tail()
            if any(w["statuses"].keys() - {200} for ws in windows.values() for w in ws)
            else "",
        }
    finally:
        if loadgen is not None:
            loadgen.close()
        if server is not None:
            server.stop()
        if db == "postgres":
            try:
                drop_pg_database(PG_NAME)
            except Exception as err:  # noqa: BLE001
                print(f"could not drop {PG_NAME}: {err}", file=sys.stderr)
        for path in sorted(workdir.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        workdir.rmdir()


def report(db: str, args: argparse.Namespace, result: dict[str, Any]) -> None:
    windows, fetches = result["windows"], result["fetches"]
    names = list(ENDPOINTS)
    stats: dict[str, dict[str, Any]] = {}
    for name in names:
        ws = windows[name]
        ok = sum(w["statuses"].get(200, 0) for w in ws)
        total = sum(sum(w["statuses"].values()) for w in ws)
        elapsed = sum(w["elapsed"] for w in ws)
        latencies = [x for w in ws for x in w["latencies"]]
        stats[name] = {
            "ok": ok,
            "errors": total - ok,
            "rps": ok / elapsed,
            "round_rps": [w["statuses"].get(200, 0) / w["elapsed"] for w in ws],
            "p50": percentile(latencies, 50),
            "p99": percentile(latencies, 99),
            # (b) and (c) do not verify their tokens: reusing them is harmless.
            "wrapped": name in ("a", "d") and any(w["wrapped"] for w in ws),
        }
    print(f"\nsignin [{db}]: {utc_now()}; {machine_note()}")
    print(
        f"gunicorn 2 workers x {args.threads} threads (gthread); {args.connections} keep-alive "
        f"connections from a separate process; {args.users:,} existing users; cache "
        f"{args.cache}; {args.rounds} rounds x {args.window:g}s per endpoint after "
        f"{args.warmup:g}s warm-up each"
    )
    print_table(
        f"Throughput and latency [{db}]",
        ["endpoint", "what", "ok", "errors", "req/s", "p50 ms", "p99 ms", "key fetches"],
        [
            [
                name,
                ENDPOINTS[name][0],
                stats[name]["ok"],
                stats[name]["errors"],
                f"{stats[name]['rps']:.0f}",
                f"{stats[name]['p50']:.1f}",
                f"{stats[name]['p99']:.1f}",
                sum(fetches[name].values()),
            ]
            for name in names
        ],
        left=2,
    )
    rows = []
    for label, a, b, target in (
        ("a/b", "a", "b", TARGET_A_OVER_B),
        ("a/c", "a", "c", None),
        ("a/d", "a", "d", None),
    ):
        pairs = zip(stats[a]["round_rps"], stats[b]["round_rps"], strict=True)
        per_round = [x / y for x, y in pairs]
        overall = stats[a]["rps"] / stats[b]["rps"]
        rows.append(
            [
                f"{label} req/s",
                f"{overall:.2f}",
                f"{median(per_round):.2f}",
                spread(per_round),
                verdict(median(per_round), target, False) if target else "reported",
            ]
        )
    d_requests = sum(sum(w["statuses"].values()) for w in windows["d"])
    a_fetches = sum(fetches["a"].values())
    rows.append(["(a) key fetches", str(a_fetches), "", "", verdict(a_fetches, 0, True)])
    rows.append(
        [
            "(d) key fetches/request",
            f"{sum(fetches['d'].values()) / max(1, d_requests):.2f}",
            "",
            "",
            "reported (expected 1)",
        ]
    )
    print_table(
        f"Ratios [{db}] (overall; median and min-max of per-round ratios; "
        "targets judged on the median)",
        ["ratio", "overall", "median", "min-max", "target"],
        rows,
    )
    all_fetches = dict(result["all_fetches"])
    print(
        f"key server hits during the whole measured period: {all_fetches or 'none'} "
        "(/certs: the package; /v1/certs: the naive view)"
    )
    if any(stats[n]["wrapped"] for n in names):
        print("note: a token pool ran out and was reused (raise --pool)")
    for name in names:
        samples = [s for w in windows[name] for s in w["samples"]]
        if stats[name]["errors"]:
            statuses: Counter[Any] = Counter()
            for w in windows[name]:
                statuses.update(w["statuses"])
            print(f"({name}) answers: {dict(statuses)}")
            print(f"     first answers: {samples[:2]}")
    if result["log"]:
        print("gunicorn log tail:\n" + result["log"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--cache", choices=["locmem", "redis"], default="locmem")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 8; quick 2)")
    parser.add_argument("--window", type=float, help="seconds per endpoint per round (3)")
    parser.add_argument("--warmup", type=float, help="warm-up seconds per endpoint (2)")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections")
    parser.add_argument("--threads", type=int, default=2, help="gunicorn threads per worker")
    parser.add_argument("--users", type=int, help="existing users (default 10000; quick 1000)")
    parser.add_argument("--pool", type=int, help="distinct tokens for (a) and for (d)")
    parser.add_argument(
        "--wsgi",
        default="benchsite.wsgi:application",
        help="the WSGI app gunicorn serves (to try a change before it lands: a module on "
        "PYTHONPATH that wraps benchsite.wsgi)",
    )
    args = parser.parse_args()
    args.rounds = args.rounds or (2 if args.quick else 8)
    args.window = args.window or (1.5 if args.quick else 3.0)
    args.warmup = args.warmup or (1.0 if args.quick else 2.0)
    args.users = args.users or (1000 if args.quick else 10000)
    # Enough for 1,000 sign-ins a second over the measured and warm-up time.
    args.pool = args.pool or int(1000 * (args.rounds * args.window + args.warmup)) + 100

    issuer = new_issuer()
    rng = random.Random(1)
    started = time.monotonic()
    minted = mint_tokens(issuer, [rng.randint(1, args.users) for _ in range(2 * args.pool)])
    tokens = {"a": minted[: args.pool], "d": minted[args.pool :]}
    print(f"minted {len(minted)} tokens in {time.monotonic() - started:.1f}s", file=sys.stderr)

    key_server = KeyServer(issuer)
    try:
        for db in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
            print(f"running [{db}]...", file=sys.stderr)
            result = bench_database(db, args, key_server, tokens)
            report(db, args, result)
    finally:
        key_server.close()


if __name__ == "__main__":
    main()
