"""Settings of the benchmark project (not a template for production).

Like a production deployment and unlike the example project: DEBUG off (no
query log), persistent database connections, quiet logging. Environment:

``BENCH_DB``            ``sqlite`` (default) or ``postgres``
``BENCH_SQLITE_PATH``   the SQLite file (default: benchmarks/bench.sqlite3)
``BENCH_PG_NAME``       the PostgreSQL database on 127.0.0.1 (user ``postgres``)
``BENCH_CACHE``         ``locmem`` (default) or ``redis`` (127.0.0.1:6379)
``BENCH_CERTS_URL``     the JWKS URL of the local key server (the package's ``CERTS_URL``)
``BENCH_NAIVE_CERTS_URL``  the v1 (PEM) URL the naive view fetches on every call
"""

import os
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "benchmarks-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "benchsite.urls"
WSGI_APPLICATION = "benchsite.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "rest_framework",
    "django_google_idtoken",
]

# The example project's middleware stack.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

TEMPLATES: list[dict[str, object]] = []

AUTHENTICATION_BACKENDS = [
    "django_google_idtoken.backends.GoogleIdTokenBackend",
    "django.contrib.auth.backends.ModelBackend",
]

BENCH_DB = os.environ.get("BENCH_DB", "sqlite")
if BENCH_DB == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("BENCH_PG_NAME", "idtoken_bench"),
            "USER": os.environ.get("PGUSER", "postgres"),
            "HOST": "127.0.0.1",
            "PORT": "5432",
            # Persistent connections, as any production deployment has (or a
            # pooler): a connect per request would dwarf what is measured.
            "CONN_MAX_AGE": 600,
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("BENCH_SQLITE_PATH") or str(BENCH_DIR / "bench.sqlite3"),
            # Two worker processes write sessions concurrently: wait, do not fail.
            "OPTIONS": {"timeout": 30},
            "CONN_MAX_AGE": 600,
        }
    }

if os.environ.get("BENCH_CACHE") == "redis":
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/14",
            "KEY_PREFIX": "idtoken-bench",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

BENCH_CLIENT_ID = "1234-bench.apps.googleusercontent.com"

GOOGLE_IDTOKEN = {
    "CLIENT_IDS": [BENCH_CLIENT_ID],
    "CERTS_URL": os.environ.get("BENCH_CERTS_URL", "http://127.0.0.1:9/certs"),
}

BENCH_NAIVE_CERTS_URL = os.environ.get("BENCH_NAIVE_CERTS_URL", "http://127.0.0.1:9/v1/certs")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"django_google_idtoken": {"level": "WARNING"}},
}
