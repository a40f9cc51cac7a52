"""The example project run for real: ``example_project/manage.py demo`` (the
README's quick start) on a free 127.0.0.1 port, with a database file of its
own. Shared by tests/test_example_project.py and the browser tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MANAGE = ROOT / "example_project" / "manage.py"
#: Bounds on waiting for the server, not expectations of its speed.
STARTUP_LIMIT = 120
SHUTDOWN_LIMIT = 15


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_serving(server: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_LIMIT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the example project exited ({server.returncode}):\n{log.read_text()}")
        try:
            with urllib.request.urlopen(base_url + "/", timeout=5):
                return
        except urllib.error.HTTPError as err:
            err.close()
            pytest.fail(f"the example project answered {err.code}:\n{log.read_text()}")
        except OSError:  # connection refused while it starts (URLError is an OSError)
            pass
        time.sleep(0.2)
    pytest.fail(f"the example project did not answer within {STARTUP_LIMIT}s:\n{log.read_text()}")


@contextmanager
def serve_example_project(workdir: Path) -> Iterator[str]:
    """The example project's ``demo`` command serving; yields its base URL."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "example.settings",  # not the suite's tests.settings
        "EXAMPLE_PORT": str(port),
        "EXAMPLE_DB": str(workdir / "db.sqlite3"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("GOOGLE_CLIENT_ID", None)  # the development issuer, not Google
    log = workdir / "server.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, str(MANAGE), "demo"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_serving(server, base_url, log)
            yield base_url
        finally:
            server.terminate()
            try:
                server.wait(timeout=SHUTDOWN_LIMIT)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=SHUTDOWN_LIMIT)
