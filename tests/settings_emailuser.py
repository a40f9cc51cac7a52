"""The test settings with a custom user model (email as USERNAME_FIELD, no
username field). tests/test_custom_user.py runs its cases under these."""

from .settings import *  # noqa: F403

AUTH_USER_MODEL = "emailuser.EmailUser"
