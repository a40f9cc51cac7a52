"""``path("auth/google/", include("django_google_idtoken.urls"))``"""

from django.urls import path

from .rest_framework.views import (
    LinkedAccountDetailView,
    LinkedAccountsView,
    MeView,
    ProviderSignInView,
    SignInView,
)
from .views import google_login

app_name = "google_idtoken"

urlpatterns = [
    path("signin/", SignInView.as_view(), name="signin"),
    # Another configured provider's tokens: signin/nowgg/, signin/apple/...
    path("signin/<str:provider>/", ProviderSignInView.as_view(), name="signin-provider"),
    path("me/", MeView.as_view(), name="me"),
    # Sign in with Google's redirect mode posts the ID token here (login_uri).
    path("gis/", google_login, name="gis-login"),
    path("accounts/", LinkedAccountsView.as_view(), name="accounts"),
    # str, not int: every id reaches the view, which answers 404 not_found
    # in the refusal shape (and never hands the id to the database).
    path("accounts/<str:account_id>/", LinkedAccountDetailView.as_view(), name="account-detail"),
]
