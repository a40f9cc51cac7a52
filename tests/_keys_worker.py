"""A worker process for tests/test_key_sharing.py: one more app server sharing
the key cache.

Run as ``python -m tests._keys_worker TOKENS_FILE`` from the repository root,
with the test run's environment (IDTOKEN_TEST_CACHE=redis selects the shared
Redis cache in tests.settings) and IDTOKEN_WORKER_CERTS_URL pointing at the
test's key server. It sets Django up, prints ``ready``, waits for a ``go`` line
on stdin (so that the test can release several workers together), verifies
the tokens in TOKENS_FILE (a JSON list) through
``django_google_idtoken.providers.google.verify`` from THREADS threads
released together, and prints one JSON line: how each verification ended and
this process's key store counters. Nothing here is mocked: the process
fetches, caches and verifies as a real worker would.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections import Counter
from pathlib import Path


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()

    from django.conf import settings

    certs_url = os.environ["IDTOKEN_WORKER_CERTS_URL"]
    # Settings are read live, as the test's own `settings` fixture relies on.
    settings.GOOGLE_IDTOKEN = {**settings.GOOGLE_IDTOKEN, "CERTS_URL": certs_url}

    from django_google_idtoken.errors import Refused
    from django_google_idtoken.keys import get_store
    from django_google_idtoken.providers import google

    tokens: list[str] = json.loads(Path(sys.argv[1]).read_text())
    threads = int(os.environ.get("IDTOKEN_WORKER_THREADS", "10"))

    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 2

    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def work(i: int) -> None:
        barrier.wait()
        for token in tokens[i::threads]:
            try:
                google.verify(token)
                outcome = "verified"
            except Refused as refusal:
                outcome = refusal.code
            with lock:
                outcomes[outcome] += 1

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    store = get_store(certs_url)
    report = {
        "outcomes": dict(outcomes),
        "fetches": store.stats.fetches,
        "failures": store.stats.failures,
        "parses": store.stats.parses,
        "unknown_kid_refetches": store.stats.extra.get("unknown_kid_refetches", 0),
        "cache_backend": settings.CACHES[settings.GOOGLE_IDTOKEN.get("KEYS_CACHE", "default")][
            "BACKEND"
        ],
    }
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
