"""A custom user model whose USERNAME_FIELD is the email and that has no
username field, to prove the account policy does not assume auth.User.
Selected per test with override_settings(AUTH_USER_MODEL="emailuser.EmailUser")."""

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models


class EmailUserManager(BaseUserManager):
    def create_user(self, email, password=None):
        user = self.model(email=self.normalize_email(email))
        user.set_password(password)
        user.save()
        return user


class EmailUser(AbstractBaseUser):
    email = models.EmailField(unique=True)
    is_active = models.BooleanField(default=True)

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"

    objects = EmailUserManager()
