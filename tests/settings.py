"""Settings for the test suite (separate from the example project).

SQLite and local-memory cache by default, so a newcomer needs nothing.
IDTOKEN_TEST_DB=postgres and IDTOKEN_TEST_CACHE=redis switch to the services
on 127.0.0.1 (what .ci/run does on its second pass). IDTOKEN_TEST_DB_NAME and
IDTOKEN_TEST_REDIS_DB let two checkouts run that pass side by side.
"""

import datetime
import os

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
ROOT_URLCONF = "tests.urls"
# pytest-django's live_server serves static files and needs this set.
STATIC_URL = "/static/"
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "rest_framework",
    # For SIGNIN_TOKEN "authtoken" and the OpenAPI schema tests (the test
    # extra installs drf-spectacular and simplejwt).
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_google_idtoken",
    "tests.emailuser",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
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

AUTHENTICATION_BACKENDS = [
    "django_google_idtoken.backends.GoogleIdTokenBackend",
    "django.contrib.auth.backends.ModelBackend",
]

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if os.environ.get("IDTOKEN_TEST_DB") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("IDTOKEN_TEST_DB_NAME", "django_google_idtoken"),
            "USER": os.environ.get("PGUSER", "postgres"),
            "HOST": "127.0.0.1",
            "PORT": "5432",
        }
    }
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}

if os.environ.get("IDTOKEN_TEST_CACHE") == "redis":
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            # A database of its own: the tests clear the cache between tests.
            "LOCATION": f"redis://127.0.0.1:6379/{os.environ.get('IDTOKEN_TEST_REDIS_DB', '15')}",
            "KEY_PREFIX": "idtoken-tests",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

GOOGLE_IDTOKEN = {
    "CLIENT_IDS": ["1234-test.apps.googleusercontent.com", "1234-ios.apps.googleusercontent.com"],
    # Replaced per test by the loopback key server's URL (see conftest.py).
    "CERTS_URL": "http://127.0.0.1:9/unused",
}

REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}

# simplejwt signs with SECRET_KEY by default; PyJWT warns on HMAC keys
# shorter than the hash, and the suite runs with warnings as errors. The
# lifetimes keep its "exp" claims far from the test ID tokens' (an hour):
# the leak guard would otherwise see the same base64 text (","exp":17...)
# in both and report the ID token as leaked.
SIMPLE_JWT = {
    "SIGNING_KEY": "tests-only-simplejwt-signing-key-not-secret-0123456789",
    "ACCESS_TOKEN_LIFETIME": datetime.timedelta(days=100),
    "REFRESH_TOKEN_LIFETIME": datetime.timedelta(days=200),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"django_google_idtoken": {"level": "DEBUG"}},
}
