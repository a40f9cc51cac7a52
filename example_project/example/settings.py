"""Settings of the example project: a local demo, NOT a template for production.

DEBUG is on, the secret key is public, and unless GOOGLE_CLIENT_ID is set, a
development issuer (``demo/dev_issuer.py``) signs ID tokens this site accepts.

Environment variables:

``EXAMPLE_PORT`` (default 8000)
    The port ``manage.py demo`` serves on. The development issuer's key set is
    fetched from this same server, so the key URL must name the real port.
``EXAMPLE_DB`` (default ``example_project/db.sqlite3``)
    The SQLite database file. Always SQLite: the test suite's
    ``IDTOKEN_TEST_DB`` does not apply here.
``GOOGLE_CLIENT_ID``
    A real OAuth web client ID. When set, the home page shows Google's own
    button, tokens are checked against Google's real keys, and the development
    issuer is switched off.
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "django-insecure-example-project-only-never-use-in-production"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

try:
    EXAMPLE_PORT = int(os.environ.get("EXAMPLE_PORT", "8000"))
except ValueError:
    raise ImproperlyConfigured("EXAMPLE_PORT must be a port number.") from None

GOOGLE_CLIENT_ID = os.environ.get("GOOGLE_CLIENT_ID", "").strip()

#: The development issuer ("Sign in as a demo user") runs only in DEBUG and
#: only while no real client ID is given: with Google's real keys configured,
#: the tokens it mints could not verify anyway.
DEV_ISSUER_ENABLED = DEBUG and not GOOGLE_CLIENT_ID
#: The audience of development tokens; not a real Google client.
DEV_ISSUER_CLIENT_ID = "0000-example-project-dev-issuer.apps.googleusercontent.com"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_google_idtoken",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example.urls"
WSGI_APPLICATION = "example.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EXAMPLE_DB") or BASE_DIR / "db.sqlite3",
    }
}

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTHENTICATION_BACKENDS = [
    "django_google_idtoken.backends.GoogleIdTokenBackend",
    "django.contrib.auth.backends.ModelBackend",  # the admin logs in with a password
]

if GOOGLE_CLIENT_ID:
    GOOGLE_IDTOKEN = {
        "CLIENT_IDS": [GOOGLE_CLIENT_ID],
        "CERTS_URL": "https://www.googleapis.com/oauth2/v3/certs",
    }
    # Google's button on http://localhost needs the full referrer to check the
    # page against the client's authorized JavaScript origins.
    SECURE_REFERRER_POLICY = "no-referrer-when-downgrade"
else:
    GOOGLE_IDTOKEN = {
        "CLIENT_IDS": [DEV_ISSUER_CLIENT_ID],
        # This very server publishes the development key set; plain http is
        # allowed for loopback hosts only.
        "CERTS_URL": f"http://127.0.0.1:{EXAMPLE_PORT}/demo/certs/",
    }

# Google's sign-in popup reports back to the page that opened it.
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin-allow-popups"

# Where the redirect-mode view goes when the sign-in names no (safe) next page.
LOGIN_REDIRECT_URL = "home"

# A demo: admin/admin must be accepted.
AUTH_PASSWORD_VALIDATORS: list[dict[str, str]] = []

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    # Show why a sign-in was refused, and each key fetch, in the console.
    "loggers": {"django_google_idtoken": {"handlers": ["console"], "level": "INFO"}},
}
