"""WSGI entry point of the example project (used by ``runserver``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ["DJANGO_SETTINGS_MODULE"] = "example.settings"

application = get_wsgi_application()
