"""pytest plugin (registered through the ``pytest11`` entry point, so it is
active once the package is installed): the ``fake_google`` fixture.

It defines no autouse fixture and imports nothing from Django until a test
asks for ``fake_google``, so projects that do not use it are unaffected
(``-p no:django_google_idtoken`` turns it off altogether).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .testing import FakeGoogle


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "fake_google(**options): keyword arguments for the fake_google fixture's "
        "FakeGoogle (e.g. http=True, client_id=...)",
    )


@pytest.fixture
def fake_google(request: pytest.FixtureRequest) -> Iterator[FakeGoogle]:
    """An active :class:`django_google_idtoken.testing.FakeGoogle`: the app
    trusts its keys for the duration of the test. Options come from a
    ``@pytest.mark.fake_google(...)`` marker on the test, class or module.

    With pytest-django, the setting is carried by its ``settings`` fixture,
    so it is restored in order with the test's own setting changes (change
    ``GOOGLE_IDTOKEN`` by copying it: ``{**settings.GOOGLE_IDTOKEN, ...}``).
    """
    from .testing import FakeGoogle

    marker = request.node.get_closest_marker("fake_google")
    options = dict(marker.kwargs) if marker is not None else {}
    if request.config.pluginmanager.hasplugin("django"):
        options.setdefault("settings", request.getfixturevalue("settings"))
    with FakeGoogle(**options) as google:
        yield google
