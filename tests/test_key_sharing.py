"""Key sharing across processes: app servers that share Redis as KEYS_CACHE
fetch Google's keys once between them, not once each.

Each "process" here is a real one: ``tests/_keys_worker.py`` run with
``sys.executable``, set up with tests.settings on the same Redis cache as this
run, fetching from the ``key_server`` fixture on 127.0.0.1 and verifying
tokens through ``providers.google.verify`` from 10 threads of its own. The
test releases the workers together (each prints ``ready`` once Django is set
up, then waits for ``go``), and counts what the key server saw and what each
worker's key store reports. Nothing asserts a duration; every wait is bounded
so that a stuck worker fails the test instead of hanging it.

Only with IDTOKEN_TEST_CACHE=redis (the CI's PostgreSQL + Redis pass): the
default local-memory cache is private to each process by design, so there is
nothing to share.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from django_google_idtoken.testing import KeyServer

pytestmark = pytest.mark.skipif(
    os.environ.get("IDTOKEN_TEST_CACHE") != "redis",
    reason="needs a cache shared between processes (IDTOKEN_TEST_CACHE=redis); the "
    "default local-memory cache is per process by design",
)

REPO_ROOT = Path(__file__).resolve().parent.parent
THREADS = 10
TOKENS_PER_PROCESS = 50
#: Bounds on waiting for a worker, never asserted: a worker that is stuck or
#: died fails the test with its stderr instead of hanging the run.
STARTUP_TIMEOUT = 60.0
RUN_TIMEOUT = 60.0
REDIS_CACHE = "django.core.cache.backends.redis.RedisCache"

_subs = count(8_000_000)


class Worker:
    """One worker process. Its stdout lines arrive on a queue, read by a
    thread, so that every wait for it has a timeout."""

    def __init__(self, name: str, certs_url: str, tokens: list[str], tmp_path: Path) -> None:
        self.name = name
        tokens_file = tmp_path / f"{name}.json"
        # Through a file, not a pipe: 50 tokens would not fit in a pipe's
        # buffer before the worker starts reading.
        tokens_file.write_text(json.dumps(tokens))
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "IDTOKEN_TEST_CACHE": "redis",
            "IDTOKEN_WORKER_CERTS_URL": certs_url,
            "IDTOKEN_WORKER_THREADS": str(THREADS),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests._keys_worker", str(tokens_file)],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self._lines.put)),
            threading.Thread(target=self._read, args=(self.process.stderr, self._stderr.append)),
        ]
        for reader in self._readers:
            reader.daemon = True
            reader.start()

    @staticmethod
    def _read(stream: Any, sink: Any) -> None:
        for line in stream:
            sink(line.rstrip("\n"))
        sink(None)  # end of output

    def _fail(self, why: str) -> AssertionError:
        stderr = "\n".join(line for line in self._stderr if line is not None)
        return AssertionError(f"worker {self.name}: {why}\n--- its stderr:\n{stderr[-4000:]}")

    def next_line(self, timeout: float) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise self._fail(f"no output within {timeout}s") from None
        if line is None:
            raise self._fail(f"exited with {self.process.wait(timeout=5)} before answering")
        return line

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def finish(self) -> None:
        returncode = self.process.wait(timeout=RUN_TIMEOUT)
        if returncode != 0:
            raise self._fail(f"exited with {returncode}")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
        for reader in self._readers:
            reader.join(timeout=5)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def run_together(key_server: KeyServer, tmp_path: Path, batches: list[list[str]]) -> list[dict]:
    """Start one worker per batch of tokens; once every one is set up, release
    them together; return each one's report. Workers are killed on the way
    out whatever happened."""
    workers: list[Worker] = []
    try:
        for tokens in batches:
            name = f"w{next(_subs)}"
            workers.append(Worker(name, key_server.url, tokens, tmp_path))
        for worker in workers:
            assert worker.next_line(STARTUP_TIMEOUT) == "ready"
        for worker in workers:
            worker.go()
        reports = [json.loads(worker.next_line(RUN_TIMEOUT)) for worker in workers]
        for worker in workers:
            worker.finish()
    finally:
        for worker in workers:
            worker.close()
    for report in reports:
        # Guards the test itself: workers on a private cache would prove nothing.
        assert report["cache_backend"] == REDIS_CACHE, report
    return reports


def tokens_for_a_process(issuer: Any, n: int = TOKENS_PER_PROCESS) -> list[str]:
    return [issuer.mint(sub=str(next(_subs))) for _ in range(n)]


# -- a cold, then a warm shared cache ---------------------------------------------


def test_processes_sharing_the_cache_fetch_at_most_once_each_then_never(
    issuer, key_server, tmp_path
):
    """Two workers start together on a cold shared cache, each verifying 50
    tokens from 10 threads: at most one fetch per process (single flight
    inside each; across the two, whoever stores first may spare the other its
    fetch). Once the document is in the shared cache, a third process, and
    both again, verify everything without a single fetch."""
    # The first fetch is still running when the other threads, and possibly
    # the other process, ask for keys: the single flight is what stops them.
    key_server.delay = 0.3
    cold = run_together(key_server, tmp_path, [tokens_for_a_process(issuer) for _ in range(2)])

    for report in cold:
        assert report["outcomes"] == {"verified": TOKENS_PER_PROCESS}, report
        assert report["fetches"] <= 1, report
        assert report["failures"] == 0, report
    assert 1 <= key_server.fetches <= 2, cold
    assert key_server.fetches == sum(report["fetches"] for report in cold)

    key_server.delay = 0.0
    fetched = key_server.fetches
    (third,) = run_together(key_server, tmp_path, [tokens_for_a_process(issuer)])
    again = run_together(key_server, tmp_path, [tokens_for_a_process(issuer) for _ in range(2)])

    for report in [third, *again]:
        assert report["outcomes"] == {"verified": TOKENS_PER_PROCESS}, report
        assert report["fetches"] == 0, report
        # Parsed once from the shared document, not once per token or thread.
        assert report["parses"] == 1, report
    assert key_server.fetches == fetched


# -- rotation across processes -------------------------------------------------------


def rotate_under_two_processes(
    issuer: Any, key_server: KeyServer, tmp_path: Path
) -> tuple[list[dict], int]:
    """Warm the shared cache with the current key, rotate, then release two
    workers together with 20 tokens each under the new kid; return their
    reports and the key server's fetches since the rotation."""
    (warm,) = run_together(key_server, tmp_path, [tokens_for_a_process(issuer, 1)])
    assert warm["outcomes"] == {"verified": 1}, warm
    assert key_server.fetches == 1
    old_kid = issuer.active_kid
    new_kid = issuer.rotate()
    assert new_kid != old_kid
    # The refetch is still in flight when the other process meets the new
    # kid: without the cache-wide cool-down, it would refetch too.
    key_server.delay = 0.5
    reports = run_together(
        key_server, tmp_path, [tokens_for_a_process(issuer, 20) for _ in range(2)]
    )
    key_server.delay = 0.0
    return reports, key_server.fetches - 1


def test_rotation_seen_by_two_processes_costs_one_refetch(issuer, key_server, tmp_path):
    """The guarantee keys.py documents: a token with an unknown kid triggers at
    most one refetch per cool-down period, across every process sharing the
    cache (the cool-down marker is taken with cache.add, SET NX on Redis). One
    refetch there must be, or the rotated key would never be learnt. The
    process that refetched verifies all its tokens; afterwards, new processes
    verify the new kid from the shared cache without fetching."""
    reports, refetches = rotate_under_two_processes(issuer, key_server, tmp_path)

    assert refetches == 1, reports
    assert sum(report["unknown_kid_refetches"] for report in reports) == 1, reports
    for report in reports:
        assert set(report["outcomes"]) <= {"verified", "unknown_key"}, report
        assert sum(report["outcomes"].values()) == 20, report
    (refetcher,) = [report for report in reports if report["unknown_kid_refetches"]]
    assert refetcher["outcomes"] == {"verified": 20}, refetcher

    after = run_together(key_server, tmp_path, [tokens_for_a_process(issuer, 20) for _ in range(2)])
    for report in after:
        assert report["outcomes"] == {"verified": 20}, report
        assert report["fetches"] == 0, report
    assert key_server.fetches == 2


def test_rotation_seen_by_two_processes_accepts_every_genuine_token(issuer, key_server, tmp_path):
    """Both processes accept every token signed with the rotated key, the one
    that lost the cool-down race included: its refetch is being done for it,
    by the other process, and lands in the shared cache within HTTP_TIMEOUT."""
    reports, refetches = rotate_under_two_processes(issuer, key_server, tmp_path)

    assert refetches == 1, reports
    for report in reports:
        assert report["outcomes"] == {"verified": 20}, (
            "a process that lost the cache-wide cool-down race refused genuine tokens "
            f"signed with the rotated key instead of waiting for the other's refetch: {reports}"
        )
