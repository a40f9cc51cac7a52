from django.conf import settings
from django.contrib.auth.views import LogoutView
from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("logout/", LogoutView.as_view(next_page="home"), name="logout"),
]

# DEVELOPMENT ONLY: the offline issuer behind "Sign in as a demo user".
if settings.DEBUG and settings.DEV_ISSUER_ENABLED:
    from . import dev_issuer

    urlpatterns += [
        path("demo/certs/", dev_issuer.certs, name="dev-issuer-certs"),
        path("demo/token/", dev_issuer.token, name="dev-issuer-token"),
    ]
