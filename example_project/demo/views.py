"""The demo's home page: who is signed in, and ways to sign in and out."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie

from django_google_idtoken.conf import conf

UX_MODES = ("popup", "redirect")


@ensure_csrf_cookie  # the page's scripts send the CSRF token with their POSTs
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    linked_accounts = user.linked_accounts.order_by("pk") if user.is_authenticated else []
    # ?mode=popup or ?mode=redirect: Google's library takes one configuration
    # per page, so the page shows one mode at a time.
    ux_mode = request.GET.get("mode")
    if ux_mode not in UX_MODES:
        ux_mode = conf.UX_MODE
    return render(
        request,
        "demo/home.html",
        {
            "linked_accounts": linked_accounts,
            "dev_issuer": settings.DEBUG and settings.DEV_ISSUER_ENABLED,
            "google_client_id": settings.GOOGLE_CLIENT_ID,
            "ux_mode": ux_mode,
            # Back to this page, in the same mode, after signing in.
            "next_url": f"{reverse('home')}?mode={ux_mode}",
        },
    )
