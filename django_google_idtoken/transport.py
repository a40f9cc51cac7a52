"""The one HTTP client of the package: key documents, discovery documents and
remote token verification (now.gg) all go through :func:`request`.

* https only, except to loopback hosts (tests, development): whatever comes
  back over plain http from elsewhere could have been swapped in transit.
* Bounded in size, and in total time rather than per socket operation: a
  server that drips its headers or body a byte at a time cannot hold a worker
  past ``timeout``.
* Redirects are not followed: the configured URL is the trust anchor, and a
  redirect could point at an http:// or attacker-chosen host.
* HTTPS_PROXY / NO_PROXY from the environment are honoured (never for loopback).
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

USER_AGENT = "django-google-idtoken"


class TransportError(Exception):
    """The server could not be reached, timed out, or sent too much. The
    message never holds a request body (which may carry a token)."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: http.client.HTTPMessage

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


def is_loopback_url(url: str) -> bool:
    """True if the URL's host is a loopback name or address."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:  # "https://[oops/": not a URL at all
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_allowed(url: str) -> bool:
    """Keys and verdicts must come over https, except from loopback (tests,
    development): a key or a "success" answer fetched over plain http from
    elsewhere could be swapped in transit, and whoever swaps it can sign in
    as anyone."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        # A URL can come from the network (a discovery document's
        # jwks_uri): one that cannot be parsed is refused, not a 500.
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and is_loopback_url(url))


def _proxy_for(url: str) -> tuple[str, int] | None:
    """The proxy from the environment (HTTPS_PROXY/NO_PROXY), if any.
    Loopback URLs never go through a proxy."""
    host = urlsplit(url).hostname or ""
    if is_loopback_url(url) or urllib.request.proxy_bypass(host):
        return None
    proxy = urllib.request.getproxies().get(urlsplit(url).scheme)
    if not proxy:
        return None
    parsed = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if not parsed.hostname:
        return None
    return parsed.hostname, parsed.port or 80


def _connection(url: str, timeout: float) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    proxy = _proxy_for(url)
    connect_host, connect_port = proxy or (host, port)
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        # Certificates and host names are verified (the default context):
        # what comes back is only as trustworthy as the connection.
        connection = http.client.HTTPSConnection(
            connect_host, connect_port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(connect_host, connect_port, timeout=timeout)
    if proxy:
        connection.set_tunnel(host, port)
    return connection


def _printable(text: object) -> str:
    # Messages from the OS or OpenSSL, kept to one printable line.
    return "".join(c if c.isprintable() else "?" for c in str(text))


def _in_words(err: BaseException, connection: http.client.HTTPConnection | None) -> str:
    """Why a request failed, for a log line or an operator: the host it was
    talking to (repr(): a URL may come from the network) and the reason in
    words, never an exception's bare class name, never a request body."""
    if connection is None or isinstance(err, (http.client.InvalidURL, ValueError)):
        # A port out of range, control characters in the path, ...
        return f"not a usable URL ({type(err).__name__})"
    # Through a proxy, the connection (and any failure to make it) is the proxy's.
    host = ("the proxy " if getattr(connection, "_tunnel_host", None) else "host ") + repr(
        connection.host
    )
    where = f"{host} port {connection.port}"
    if isinstance(err, socket.gaierror):
        return f"cannot resolve {host} ({_printable(err.strerror or 'name lookup failed')})"
    if isinstance(err, TimeoutError):
        return f"timed out talking to {where}"
    if isinstance(err, ConnectionRefusedError):
        return f"connection refused by {where}"
    if isinstance(err, http.client.RemoteDisconnected):
        return f"{where} closed the connection without answering"
    if isinstance(err, ConnectionResetError):
        return f"connection reset by {where}"
    if isinstance(err, ssl.SSLCertVerificationError):
        return f"the TLS certificate of {where} was not accepted ({_printable(err.verify_message)})"
    if isinstance(err, ssl.SSLError):
        return f"TLS failed with {where} ({_printable(err.reason or type(err).__name__)})"
    if isinstance(err, http.client.HTTPException):
        return f"{where} did not answer in HTTP ({type(err).__name__})"
    if isinstance(err, OSError):
        return f"cannot talk to {where} ({_printable(err.strerror or type(err).__name__)})"
    return f"cannot talk to {where} ({type(err).__name__})"


def request(
    method: str,
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Send one request; return the response, whatever its status.

    Raises :class:`TransportError` if the URL is not allowed, the server
    cannot be reached, the whole exchange takes longer than ``timeout``, or
    the body is larger than ``max_bytes``.
    """
    if not url_allowed(url):
        raise TransportError("the URL is not https")
    deadline = time.monotonic() + timeout
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    timed_out = threading.Event()
    watchdog: threading.Timer | None = None
    connection: http.client.HTTPConnection | None = None
    try:
        connection = _connection(url, timeout)
        connection.connect()
        sock = connection.sock
        if sock is None:
            raise TransportError("no connection")

        def hang_up() -> None:
            timed_out.set()
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

        watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), hang_up)
        watchdog.daemon = True
        watchdog.start()
        connection.request(
            method,
            path,
            body=body,
            headers={"Accept": "application/json", "User-Agent": USER_AGENT, **(headers or {})},
        )
        response = connection.getresponse()
        length = response.getheader("Content-Length")
        if length and length.isdigit() and int(length) > max_bytes:
            raise TransportError("response too large")
        # Read one byte past the cap, so a body without Content-Length that
        # is too large is caught without holding more than the cap in memory.
        data = response.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise TransportError("response too large")
        if timed_out.is_set():
            raise TransportError("timed out")
        return Response(status=response.status, body=data, headers=response.headers)
    except TransportError:
        raise
    except (http.client.HTTPException, OSError, ValueError) as err:
        reason = "timed out" if timed_out.is_set() else _in_words(err, connection)
        raise TransportError(reason) from None
    finally:
        if watchdog is not None:
            watchdog.cancel()
        if connection is not None:
            connection.close()
