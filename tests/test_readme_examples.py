"""README.rst's two downstream test examples, run as a downstream project
would run them: copied verbatim from the README into a new project in a
temporary directory (minimal settings: the README's Installation section),
then run by pytest (with pytest-django and this package's plugin, found
through its entry point) and by Django's own test runner, each in a process
of its own. If an example breaks, these tests fail."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.helpers import REPO_ROOT

README = REPO_ROOT / "README.rst"

SETTINGS = """\
SECRET_KEY = "downstream-tests-only"
USE_TZ = True
ROOT_URLCONF = "downstream_urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "rest_framework",
    "django_google_idtoken",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
AUTHENTICATION_BACKENDS = [
    "django_google_idtoken.backends.GoogleIdTokenBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# The real Google URL: only the fake keeps the tests off the network.
GOOGLE_IDTOKEN = {"CLIENT_IDS": ["1234-web.apps.googleusercontent.com"]}
"""

URLS = """\
from django.urls import include, path

urlpatterns = [path("auth/google/", include("django_google_idtoken.urls"))]
"""


def readme_example(name: str) -> str:
    """The code block that follows the ``.. readme-example: NAME`` comment."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index(f".. readme-example: {name}")
    directive = next(i for i in range(start + 1, len(lines)) if lines[i].strip())
    assert lines[directive] == ".. code-block:: python", lines[directive]
    block: list[str] = []
    for line in lines[directive + 1 :]:
        if line.strip() and not line.startswith("    "):
            break
        block.append(line)
    code = textwrap.dedent("\n".join(block)).strip() + "\n"
    assert code.count("def test_") >= 2, code
    return code


def downstream_project(tmp_path: Path, test_file: str, code: str) -> dict[str, str]:
    """A project directory holding the example; returns its environment."""
    (tmp_path / "downstream_settings.py").write_text(SETTINGS)
    (tmp_path / "downstream_urls.py").write_text(URLS)
    (tmp_path / test_file).write_text(code)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "PYTEST_", "IDTOKEN_TEST_"))
    }
    env["PYTHONPATH"] = str(tmp_path)
    env["DJANGO_SETTINGS_MODULE"] = "downstream_settings"
    return env


def run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    completed = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    return output


def test_pytest_example_runs(tmp_path: Path) -> None:
    code = readme_example("pytest")
    assert "fake_google" in code
    env = downstream_project(tmp_path, "test_google_signin.py", code)
    (tmp_path / "pytest.ini").write_text("[pytest]\nfilterwarnings = error\n")
    output = run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"],
        cwd=tmp_path,
        env=env,
    )
    passed = re.search(r"(\d+) passed", output)
    assert passed is not None, output
    # Two plain tests, the parametrized one's five cases.
    assert int(passed.group(1)) == 7, output
    assert "failed" not in output and "error" not in output.lower()


def test_django_runner_example_runs(tmp_path: Path) -> None:
    code = readme_example("django")
    assert "FakeGoogleMixin" in code and "with " in code
    env = downstream_project(tmp_path, "tests.py", code)
    output = run(
        [sys.executable, "-m", "django", "test", "--pattern", "tests.py", "-v", "2"],
        cwd=tmp_path,
        env=env,
    )
    ran = re.search(r"Ran (\d+) tests?", output)
    assert ran is not None, output
    assert int(ran.group(1)) == code.count("def test_"), output
    assert re.search(r"^OK\s*$", output, re.MULTILINE), output
