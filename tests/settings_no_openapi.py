"""The test settings without drf-spectacular (see test_openapi.py)."""

from .settings import *  # noqa: F403

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "drf_spectacular"]  # noqa: F405
REST_FRAMEWORK: dict[str, str] = {}
