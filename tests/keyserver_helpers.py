"""Helpers for the key store tests: misbehaving endpoints and caches that the
toolkit's well-behaved ``KeyServer`` cannot imitate, and a way to observe
network access without mocking it. Everything listens on 127.0.0.1 only."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from django.core.cache.backends.base import BaseCache


class RawServer:
    """A loopback TCP server that hands each connection, once the request
    head has been read, to ``handler(conn)``: for answers an HTTP server
    library will not produce (headers dripped one per second, bodies without
    a Content-Length, ...)."""

    def __init__(self, handler: Callable[[socket.socket], None]) -> None:
        self.handler = handler
        self.connections = 0
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        # A timeout so that close() can stop the accept loop reliably.
        self._sock.settimeout(0.05)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"http://{host}:{port}/certs"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(10)
                head = b""
                while b"\r\n\r\n" not in head:
                    data = conn.recv(4096)
                    if not data:
                        return
                    head += data
                self.handler(conn)
            except OSError:
                pass  # the client gave up (which is what several tests want)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()


def drip(conn: socket.socket, pieces: list[bytes], interval: float) -> None:
    """Send ``pieces`` one at a time, ``interval`` seconds apart: each socket
    read on the client's side succeeds quickly, but the whole answer takes
    ``len(pieces) * interval`` seconds."""
    for piece in pieces:
        conn.sendall(piece)
        time.sleep(interval)


@contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (so nobody else can
    take it while the test runs) but not listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


class BrokenCache(BaseCache):
    """A cache backend whose every operation fails, like Redis being down."""

    def __init__(self, location: str, params: dict[str, Any]) -> None:
        super().__init__(params)

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("cache is down")

    add = get = set = touch = delete = has_key = clear = _fail
    get_many = set_many = delete_many = incr = decr = _fail


def stop_quickly(httpd: Any) -> None:
    """Stop a ``socketserver`` loop without waiting out its 0.5 s poll
    interval: ask it to shut down, and wake its ``select`` with connections
    until it has. (A later ``shutdown()`` on the stopped server returns at once.)"""
    stopper = threading.Thread(target=httpd.shutdown, daemon=True)
    stopper.start()
    while stopper.is_alive():
        with suppress(OSError):
            socket.create_connection(httpd.server_address[:2], timeout=1).close()
        stopper.join(0.01)


# -- observing network access ----------------------------------------------

_NETWORK_EVENTS = frozenset({"socket.connect", "socket.getaddrinfo", "socket.gethostbyname"})
_recorders: dict[int, list[tuple[str, tuple[Any, ...]]]] = {}
_hook_installed = False
_hook_lock = threading.Lock()


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event in _NETWORK_EVENTS:
        recorder = _recorders.get(threading.get_ident())
        if recorder is not None:
            recorder.append((event, args))


@contextmanager
def network_calls() -> Iterator[list[tuple[str, tuple[Any, ...]]]]:
    """Record the name lookups and connections this thread makes, through
    Python's audit hooks (nothing is patched: the calls still happen)."""
    global _hook_installed
    with _hook_lock:
        if not _hook_installed:
            # Audit hooks cannot be removed; this one is idle unless recording.
            sys.addaudithook(_audit)
            _hook_installed = True
    calls: list[tuple[str, tuple[Any, ...]]] = []
    _recorders[threading.get_ident()] = calls
    try:
        yield calls
    finally:
        _recorders.pop(threading.get_ident(), None)
