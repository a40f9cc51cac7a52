"""Sign in with Google on web pages: what the template tag and the redirect
view share (Google's client library, login URIs, safe ``next`` URLs)."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit, urlunsplit

from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme

from .transport import url_allowed

#: Google Identity Services' client library (the button and One Tap).
GIS_CLIENT_URL = "https://accounts.google.com/gsi/client"

#: The origin of Google's own pages: in redirect mode, the button's sign-in
#: page on this origin posts the ID token to the login URI.
GOOGLE_ORIGIN = "https://accounts.google.com"

#: The popup-mode JavaScript callback the template tag names in data-callback.
POPUP_CALLBACK = "djangoGoogleIdtokenCallback"


def login_uri_allowed(url: str) -> bool:
    """An absolute https URL, or http on a loopback host (development).

    Google posts ID tokens, bearer credentials, to this URL: over plain http
    anyone on the path could take one and sign in as its owner.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return bool(parts.netloc) and not parts.fragment and url_allowed(url)


def safe_next(request: HttpRequest, url: str | None) -> str | None:
    """``url`` if it is safe to redirect to after a sign-in, else None.

    Only this site's own host and, on https, only https: a sign-in that could
    redirect anywhere would be an open redirect, and a phishing page's best
    friend ("sign in with Google, then land on our look-alike").
    """
    if not url:
        return None
    if url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return None


def local_path(request: HttpRequest, url: str | None) -> str | None:
    """A safe ``url`` (see :func:`safe_next`) as a path on this site
    (``/path?query#fragment``), resolved against the request's path.

    The popup script follows only such paths: one test in the browser (a
    leading single "/" and the page's own origin) then covers every URL the
    tag can render.
    """
    if not url:
        return None
    parts = urlsplit(urljoin(request.get_full_path(), url))
    path = parts.path or "/"
    # "//host" and "/\\host" name another host to a browser.
    if not path.startswith("/") or path[1:2] in ("/", "\\"):
        return None
    return urlunsplit(("", "", path, parts.query, parts.fragment))
