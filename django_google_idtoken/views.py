"""The login URI of Sign in with Google's redirect mode: a plain Django view.

In redirect mode (and for One Tap without a JavaScript callback), Google's
library or Google's own sign-in page POSTs the ID token to the site's
``login_uri`` as the form fields ``credential`` and ``g_csrf_token``, with a
``g_csrf_token`` cookie. This view checks that double-submit token, verifies
the credential through the authentication backend, logs the user in and
redirects. Refusals render ``django_google_idtoken/refused.html``.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import authenticate, login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from .backends import get_refusal
from .csrf import G_CSRF_TOKEN, check_g_csrf_token
from .errors import Refused
from .origin import origin_allowed
from .web import GOOGLE_ORIGIN, safe_next

logger = logging.getLogger("django_google_idtoken")

#: The field Google posts the ID token in.
CREDENTIAL_FIELD = "credential"

REFUSED_TEMPLATE = "django_google_idtoken/refused.html"

METHOD_NOT_ALLOWED = (
    "method_not_allowed",
    "Sign in with Google posts the ID token here; ID tokens are never accepted in URLs.",
)


SAME_SITE_DETAIL = (
    "This sign-in was posted by a page of another subdomain of this site "
    "(Sec-Fetch-Site: same-site); Sign in with Google posts from Google's page or this one."
)


def redirect_origin_allowed(request: HttpRequest) -> bool:
    """The Origin rule of the redirect view: looser than signin/'s, by necessity.

    Google's own sign-in page posts the form (Origin https://accounts.google.com);
    One Tap and the FedCM prompt post it from this site's page (its own Origin).
    Browsers send ``Origin: null`` when the posting page's Referrer-Policy hides
    it, and when an https page posts to an http site (local development), so
    "null" cannot be refused: the g_csrf_token check is the defence. This rule
    still refuses a post that names another site, such as a sibling subdomain
    that planted a g_csrf_token cookie for the parent domain ("cookie tossing").
    """
    origin = request.META.get("HTTP_ORIGIN")
    return origin in (None, "null", GOOGLE_ORIGIN) or origin_allowed(request)


def posted_by_sibling(request: HttpRequest) -> bool:
    """True if a browser says a page of a sibling subdomain made the post.

    A sibling subdomain (evil.example.com next to www.example.com) can set a
    g_csrf_token cookie for the parent domain ("cookie tossing") and hide its
    Origin with ``Referrer-Policy: no-referrer`` (Origin: null): the
    double-submit check then passes and the visitor is signed in to the
    attacker's account (login CSRF). Browsers still tell such a post apart with
    ``Sec-Fetch-Site: same-site``, which a page cannot set or remove. Google's
    page posts ``cross-site`` and this site's own pages ``same-origin``: no
    real flow posts ``same-site``.
    """
    return str(request.META.get("HTTP_SEC_FETCH_SITE", "")).lower() == "same-site"


def refused_page(
    request: HttpRequest,
    code: str,
    detail: str,
    status: int,
    *,
    retry_after: int | None = None,
) -> HttpResponse:
    """The HTML answer to a refused sign-in: the code and detail, never the token."""
    back_url = safe_next(request, _next_url(request)) or "/"
    response = render(
        request,
        REFUSED_TEMPLATE,
        {"code": code, "detail": detail, "status": status, "back_url": back_url},
        status=status,
    )
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def _refusal_page(request: HttpRequest, refusal: Refused) -> HttpResponse:
    return refused_page(
        request, refusal.code, refusal.detail, refusal.status, retry_after=refusal.retry_after
    )


def _next_url(request: HttpRequest) -> str | None:
    # The query string of the login URI (the template tag puts next there,
    # since Google's post carries only its own fields), or a form field.
    try:
        return request.POST.get("next") or request.GET.get("next")
    except Exception:  # noqa: BLE001 - an unparsable body has no next either
        return request.GET.get("next")


# Exempt from Django's CSRF middleware: Google's page makes this POST, so
# Django's CSRF token cannot be in it. check_g_csrf_token, Google's own
# double-submit check, stands in for it, with the Origin rule above.
@csrf_exempt
# Error reports (500 mails, Sentry) must not carry the token or the CSRF value.
@sensitive_post_parameters(CREDENTIAL_FIELD, G_CSRF_TOKEN)
# A sign-in answer (a session cookie, a refusal) must never be cached.
@never_cache
@sensitive_variables("credential")
def google_login(request: HttpRequest) -> HttpResponse:
    """Sign in with the ID token Google posts in redirect mode; redirect to ``next``.

    ``next`` (from the login URI's query string or a form field) is followed
    only if it is on this site; otherwise ``LOGIN_REDIRECT_URL``.
    """
    if request.method != "POST":
        code, detail = METHOD_NOT_ALLOWED
        response = refused_page(request, code, detail, 405)
        response["Allow"] = "POST"
        return response
    if posted_by_sibling(request):
        logger.info("redirect sign-in refused: csrf_failed (Sec-Fetch-Site: same-site)")
        return _refusal_page(request, Refused("csrf_failed", SAME_SITE_DETAIL))
    if not redirect_origin_allowed(request):
        return _refusal_page(request, Refused("csrf_failed"))
    try:
        check_g_csrf_token(request)
        credential = request.POST.get(CREDENTIAL_FIELD, "")
    except Refused as refusal:
        logger.info("redirect sign-in refused: %s", refusal.code)
        return _refusal_page(request, refusal)
    except Exception as err:  # noqa: BLE001
        # A hostile body (too large, too many fields, an undecodable charset)
        # fails in request.POST: no usable token, never a 500.
        logger.info("unparsable redirect sign-in body (%s)", type(err).__name__)
        return _refusal_page(
            request, Refused("missing_token", "The request body could not be parsed.")
        )
    if not credential.strip():
        return _refusal_page(
            request, Refused("missing_token", "No ID token was sent in the credential field.")
        )
    user = authenticate(request, id_token=credential.strip())
    if user is None:
        # Another backend declined (ours is not configured): refused all the same.
        return _refusal_page(request, get_refusal(request) or Refused("malformed_token"))
    # login() rotates the session key (no session fixation) and Django's CSRF
    # token; authenticate() has set user.backend.
    login(request, user)
    target = safe_next(request, _next_url(request)) or resolve_url(settings.LOGIN_REDIRECT_URL)
    return HttpResponseRedirect(target)
