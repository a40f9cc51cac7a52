"""Login CSRF defences for sign-ins from web pages.

A sign-in opens a session. Without a defence, a hostile page could make a
visitor's browser post the attacker's own ID token and sign the visitor into
the attacker's account ("login CSRF"): whatever the visitor then saves or
types lands in an account the attacker can read.

``signin/`` (popup mode, and native clients): native clients cannot hold
Django's CSRF token, so every request must pass the Origin rule
(:func:`~django_google_idtoken.origin.origin_allowed`), and a request sent by
a browser must also pass Django's own CSRF check (the ``X-CSRFToken`` header
or ``csrfmiddlewaretoken`` field against the CSRF cookie).

``gis/`` (redirect mode): Google's own page posts there, so Django's CSRF token
cannot be present; Google's double-submit token (``g_csrf_token``, set as a
cookie on this site by Google's library and posted as a field) stands in.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.crypto import constant_time_compare

from .errors import Refused
from .origin import origin_allowed

logger = logging.getLogger("django_google_idtoken")

#: Headers that browsers add to every POST a page makes and that page scripts
#: can neither set nor remove ("forbidden header names" in the Fetch
#: standard). Native HTTP clients (OkHttp, URLSession, curl) send neither.
BROWSER_HEADERS = ("HTTP_ORIGIN", "HTTP_SEC_FETCH_SITE")

CSRF_TOKEN_DETAIL = (
    "This sign-in came from a web page without Django's CSRF token: send it in the "
    "X-CSRFToken header (the google_sign_in template tag does)."
)

#: Google's double-submit token: the cookie its library sets, and the field.
G_CSRF_TOKEN = "g_csrf_token"


class _CsrfCheck(CsrfViewMiddleware):
    """Django's CSRF middleware, answering with the reason instead of a 403 page."""

    def _reject(self, request: HttpRequest, reason: str) -> Any:
        return reason


def _no_response(request: HttpRequest) -> HttpResponse:
    """The "view" the check is given: it is never called."""
    raise AssertionError("the CSRF check never calls the view")  # pragma: no cover


def from_browser(request: HttpRequest) -> bool:
    """True if a browser sent the request on behalf of a page."""
    return any(name in request.META for name in BROWSER_HEADERS)


def check_login_csrf(request: HttpRequest) -> None:
    """Raise ``Refused("csrf_failed")`` unless ``request`` may sign in at ``signin/``."""
    # Every request: a browser always sends Origin on a cross-site POST, so a
    # hostile page is refused here even where the token check below is not
    # reached (a browser too old to send Sec-Fetch-Site and Origin).
    if not origin_allowed(request):
        raise Refused("csrf_failed")
    if not from_browser(request):
        # A native client: it has no page, and so no CSRF token to send. It
        # may still carry Django's CSRF cookie (login() sets one and cookie
        # jars keep it), which is why the cookie cannot mark a browser.
        return
    # A browser: the page must prove it is one of ours with Django's CSRF
    # token, which a page of another site cannot read. The Origin rule alone
    # would trust every page of every origin in CSRF_TRUSTED_ORIGINS.
    check = _CsrfCheck(_no_response)
    check.process_request(request)
    try:
        # _CsrfCheck answers with the reason (a str), or None to accept.
        reason: object = check.process_view(request, _no_response, (), {})
    except Exception as err:  # noqa: BLE001
        # The check reads request.POST: a hostile body (too large, too many
        # fields, an undecodable charset) fails there, and is answered as in
        # extract_token rather than with a 500.
        logger.info("unparsable sign-in body (%s)", type(err).__name__)
        raise Refused("missing_token", "The request body could not be parsed.") from None
    if reason:
        logger.info("sign-in refused by the CSRF check: %s", reason)
        raise Refused("csrf_failed", CSRF_TOKEN_DETAIL)


def check_g_csrf_token(request: HttpRequest) -> None:
    """Raise ``Refused("csrf_failed")`` unless Google's double-submit token checks out.

    Google's library sets the ``g_csrf_token`` cookie on this site and posts
    the same value as a field. A page of another site can post any field but
    cannot set a cookie here, so the two match only when the post comes
    through Google's flow for this site.
    """
    cookie = request.COOKIES.get(G_CSRF_TOKEN, "")
    field = request.POST.get(G_CSRF_TOKEN, "")
    if not cookie:
        raise Refused(
            "csrf_failed",
            "The g_csrf_token cookie is missing: this sign-in did not come through "
            "Sign in with Google on this site.",
        )
    if not field:
        raise Refused("csrf_failed", "The g_csrf_token field is missing.")
    # Constant time: the cookie is a secret of the visitor's browser.
    if not constant_time_compare(cookie, field):
        raise Refused("csrf_failed", "The g_csrf_token cookie and field do not match.")
