from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("auth/google/", include("django_google_idtoken.urls")),
    # A project's own API views, authenticated by the app's Bearer class
    # and the credentials SIGNIN_TOKEN hands back.
    path("api/whoami/", views.WhoAmI.as_view()),
    path("api/whoami-token/", views.WhoAmIByToken.as_view()),
    path("api/whoami-jwt/", views.WhoAmIByJWT.as_view()),
]
