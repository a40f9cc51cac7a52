"""The demo's home page: who is signed in, and ways to sign in and out."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie


@ensure_csrf_cookie  # the page's script sends the CSRF token with its POSTs
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    linked_accounts = user.linked_accounts.order_by("pk") if user.is_authenticated else []
    return render(
        request,
        "demo/home.html",
        {
            "linked_accounts": linked_accounts,
            "dev_issuer": settings.DEBUG and settings.DEV_ISSUER_ENABLED,
            "google_client_id": settings.GOOGLE_CLIENT_ID,
        },
    )
