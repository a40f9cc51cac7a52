from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("auth/google/", include("django_google_idtoken.urls")),
    path("", include("demo.urls")),
]
