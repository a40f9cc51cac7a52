from django.urls import include, path

from . import views

urlpatterns = [
    # (a) the package's sign-in, mounted as the README says
    path("auth/google/", include("django_google_idtoken.urls")),
    # (b) the login floor, (c) a plain view, (d) the naive sign-in
    path("bench/floor/", views.LoginFloorView.as_view()),
    path("bench/plain/", views.plain),
    path("bench/naive/", views.NaiveSignInView.as_view()),
]
