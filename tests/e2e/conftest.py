"""Browser tests: headless Chromium from Debian's packages, driven by Playwright.

They need ``/usr/bin/chromium`` (``apt-get install chromium chromium-driver``)
and the ``playwright`` package (in the ``test`` extra); Playwright's own
browser download is never used. Without either, they skip, and the run ends
with a line saying so. With ``IDTOKEN_E2E_REQUIRED=1`` (set by .ci/run) a
missing browser fails them instead: CI must not pass by skipping them.

Screenshots of each step go to ``artifacts/screenshots/`` (gitignored).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..example_server import ROOT, serve_example_project

CHROMIUM = Path(os.environ.get("IDTOKEN_E2E_CHROMIUM", "/usr/bin/chromium"))
REQUIRED = os.environ.get("IDTOKEN_E2E_REQUIRED") == "1"
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
#: A bound on each browser step (milliseconds), not an expectation of speed.
STEP_LIMIT_MS = 30_000
ENABLE_HINT = (
    "to run them: apt-get install chromium chromium-driver, and "
    '.venv/bin/pip install -e ".[test]" (which brings playwright)'
)

_skipped: list[str] = []


def missing_prerequisite() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is not installed"
    return None


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _skipped:
        terminalreporter.write_sep("=", "browser tests SKIPPED", yellow=True, bold=True)
        terminalreporter.write_line(f"The browser tests (tests/e2e/) did not run: {_skipped[0]}.")
        terminalreporter.write_line(ENABLE_HINT[0].upper() + ENABLE_HINT[1:] + ".")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium, launched by Playwright (never a downloaded browser)."""
    reason = missing_prerequisite()
    if reason is not None:
        if REQUIRED:
            pytest.fail(f"IDTOKEN_E2E_REQUIRED=1 but {reason}; {ENABLE_HINT}")
        _skipped.append(reason)
        pytest.skip(f"browser tests skipped: {reason}; {ENABLE_HINT}")
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            # No sandbox (CI runs as root); and no background traffic to
            # Google's services, which this machine's network refuses.
            chromium_sandbox=False,
            args=[
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def expect(browser: Any) -> Any:
    """Playwright's ``expect`` (imported only once the browser is known to run)."""
    from playwright.sync_api import expect

    expect.set_options(timeout=STEP_LIMIT_MS)
    return expect


@pytest.fixture(scope="module")
def site(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The example project, served for real; its base URL."""
    with serve_example_project(tmp_path_factory.mktemp("e2e_site")) as base_url:
        yield base_url


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page in a fresh browser context: no cookies from another test."""
    context = browser.new_context(viewport={"width": 1000, "height": 1000})
    context.set_default_timeout(STEP_LIMIT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def shot(page: Any) -> Any:
    """``shot("01-step")`` saves a full-page screenshot as artifacts/screenshots/01-step.png."""

    def save(name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save
