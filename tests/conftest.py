"""Shared fixtures: a fake Google (the package's own testing toolkit) whose
keys are served over real HTTP on 127.0.0.1, so the real fetching, caching and
verification code runs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import caches
from django.test import Client
from django.views.decorators.debug import sensitive_variables

from django_google_idtoken.keys import reset_stores
from django_google_idtoken.nowgg import NowggProvider
from django_google_idtoken.providers import GoogleProvider, OIDCProvider
from django_google_idtoken.testing import FakeGoogle, FakeIssuer, KeyServer

from .leakcheck import find_leaks

CLIENT_ID = "1234-test.apps.googleusercontent.com"


@pytest.fixture(scope="session")
def _session_issuer() -> FakeIssuer:
    return FakeIssuer(client_id=CLIENT_ID)


@pytest.fixture
def issuer(_session_issuer: FakeIssuer) -> Iterator[FakeIssuer]:
    """The fake Google; its key list is restored after each test."""
    keys, active = dict(_session_issuer.keys), _session_issuer.active_kid
    yield _session_issuer
    _session_issuer.keys, _session_issuer.active_kid = keys, active


@pytest.fixture
def key_server(issuer: FakeIssuer, settings: Any) -> Iterator[KeyServer]:
    """Serves ``issuer``'s keys on 127.0.0.1 and points CERTS_URL at them
    (the toolkit's ``FakeGoogle`` in its HTTP mode)."""
    with FakeGoogle(issuer, http=True, settings=settings) as google:
        assert google.server is not None
        yield google.server


@pytest.fixture(autouse=True)
def _fresh_key_stores() -> Iterator[None]:
    """No test sees keys another test fetched."""
    for alias in caches:
        caches[alias].clear()
    reset_stores()
    yield
    reset_stores()


class LeakGuard(logging.Handler):
    """Collects every log record (formatted, tracebacks included: exception
    messages are where tokens usually slip into logs), every response body
    the test client receives, and every token that reaches verification."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.texts: list[str] = []
        self.tokens: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))

    def leaks(self) -> list[str]:
        return find_leaks(self.texts, self.tokens)


@pytest.fixture(autouse=True)
def leak_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[LeakGuard]:
    """Suite-wide: every logger at DEBUG, and after each test, no part of any
    token that reached verification may appear in a log record or in a
    response the test client received."""
    guard = LeakGuard()

    def recorder(real_verify: Callable[[Any, object], Any]) -> Callable[[Any, object], Any]:
        # Its frame sits between the backend and verify: like the backend's,
        # it hides its own "token" and nothing more, so that error-report
        # tests see what verify's own frames would show without it.
        @sensitive_variables("token")
        def recording_verify(self: Any, token: object) -> Any:
            if isinstance(token, str):
                guard.tokens.append(token)
            return real_verify(self, token)

        return recording_verify

    real_request = Client.request

    def recording_request(self: Client, **request: Any) -> Any:
        response = real_request(self, **request)
        if not getattr(response, "streaming", False):
            guard.texts.append(response.content.decode("utf-8", "replace"))
        return response

    # Pass-through recorders: the real verification and client still run.
    for provider_class in (GoogleProvider, OIDCProvider, NowggProvider):
        monkeypatch.setattr(provider_class, "verify", recorder(provider_class.verify))
    monkeypatch.setattr(Client, "request", recording_request)

    root = logging.getLogger()
    loggers = [root] + [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    saved = [(logger, logger.level) for logger in loggers]
    hooked = [logger for logger in loggers if logger is root or not logger.propagate]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    for logger in hooked:
        logger.addHandler(guard)
    try:
        yield guard
    finally:
        for logger in hooked:
            logger.removeHandler(guard)
        for logger, level in saved:
            logger.setLevel(level)
    leaks = guard.leaks()
    assert not leaks, f"token material in logs or responses: {leaks}"
