"""Sign in with Google ID tokens for Django and Django REST framework."""

__version__ = "0.1.0.dev0"
