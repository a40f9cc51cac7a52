"""Only the app's URLs, as a project includes them: what the OpenAPI tests describe."""

from django.urls import include, path

urlpatterns = [path("auth/google/", include("django_google_idtoken.urls"))]
