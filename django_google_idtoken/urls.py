"""``path("auth/google/", include("django_google_idtoken.urls"))``"""

from django.urls import path

from .rest_framework.views import MeView, SignInView
from .views import google_login

app_name = "google_idtoken"

urlpatterns = [
    path("signin/", SignInView.as_view(), name="signin"),
    # Another configured provider's tokens: signin/nowgg/, signin/apple/...
    path("signin/<str:provider>/", SignInView.as_view(), name="signin-provider"),
    path("me/", MeView.as_view(), name="me"),
    # Sign in with Google's redirect mode posts the ID token here (login_uri).
    path("gis/", google_login, name="gis-login"),
]
