"""``{% load google_idtoken %}``: Sign in with Google on a page.

``{% google_sign_in %}`` renders Google Identity Services' configuration
(``g_id_onload``), its button, and the scripts, from ``GOOGLE_IDTOKEN``:

* popup mode: Google's library hands the ID token to this app's script, which
  posts it to ``signin/`` with Django's CSRF token;
* redirect mode: Google posts the ID token to the login URI (this app's
  ``gis/`` view, with ``?next=`` when one is given).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import template
from django.core.exceptions import ImproperlyConfigured
from django.middleware.csrf import get_token
from django.urls import reverse

from ..conf import CHOICES, conf
from ..web import GIS_CLIENT_URL, POPUP_CALLBACK, local_path, safe_next

register = template.Library()

#: Set on the request once the tag has rendered for it.
_RENDERED_ATTR = "_google_idtoken_sign_in_rendered"


@register.inclusion_tag("django_google_idtoken/sign_in.html", takes_context=True)
def google_sign_in(
    context: template.Context,
    *,
    ux_mode: str | None = None,
    one_tap: bool | None = None,
    next: str | None = None,  # the name Django uses for it everywhere
    nonce: str | None = None,
    button: bool = True,
    load_gis: bool = True,
    theme: str = "outline",
    size: str = "large",
    text: str = "signin_with",
    shape: str = "rectangular",
) -> dict[str, Any]:
    """Google's button (and One Tap, if on), wired to this app.

    ``ux_mode`` ("popup" or "redirect") and ``one_tap`` default to the
    ``UX_MODE`` and ``ONE_TAP`` settings. ``next`` is where to go after
    signing in (dropped unless it is on this site). ``nonce`` goes on the
    ``<script>`` tags for a Content-Security-Policy; by default the
    template's ``csp_nonce`` or ``request.csp_nonce`` (django-csp), if any.
    ``button=False`` renders One Tap alone; ``load_gis=False`` leaves out
    Google's client library (a page that loads it itself, or a stand-in).
    ``theme``, ``size``, ``text`` and ``shape`` style Google's button.
    """
    request = context.get("request")
    if request is None:
        raise ImproperlyConfigured(
            "{% google_sign_in %} needs the request: add "
            "'django.template.context_processors.request' to the template context processors."
        )
    # Google's library reads one element with id="g_id_onload" per page
    # ("Don't put this ID on multiple elements"), and the page's script one
    # configuration: a second use would be silently ignored, or worse, used.
    if getattr(request, _RENDERED_ATTR, False):
        raise template.TemplateSyntaxError(
            "{% google_sign_in %} is used twice for one request: render it once per page "
            "(Google's library reads a single g_id_onload configuration)."
        )
    setattr(request, _RENDERED_ATTR, True)
    mode = conf.UX_MODE if ux_mode is None else ux_mode
    if mode not in CHOICES["UX_MODE"]:
        raise template.TemplateSyntaxError(
            f"google_sign_in: ux_mode must be 'popup' or 'redirect', not {mode!r}."
        )
    client_id = conf.WEB_CLIENT_ID
    if not client_id:
        raise ImproperlyConfigured(
            "{% google_sign_in %} needs a client ID: set GOOGLE_IDTOKEN['CLIENT_IDS']."
        )
    next_url = safe_next(request, next)
    values: dict[str, Any] = {
        "ux_mode": mode,
        "client_id": client_id,
        "one_tap": conf.ONE_TAP if one_tap is None else bool(one_tap),
        "button": button,
        "button_style": {"theme": theme, "size": size, "text": text, "shape": shape},
        "load_gis": load_gis,
        "gis_client_url": GIS_CLIENT_URL,
        "nonce": nonce or context.get("csp_nonce") or getattr(request, "csp_nonce", None) or "",
        "next_url": next_url or "",
    }
    if mode == "popup":
        values["callback"] = POPUP_CALLBACK
        # sign_in.js follows only a path on the page's own origin.
        values["next_url"] = local_path(request, next_url) or ""
        values["signin_url"] = reverse("google_idtoken:signin")
        # get_token also makes the response set Django's CSRF cookie, which
        # the token is checked against.
        values["signin_csrf_token"] = get_token(request)
    else:
        # Google posts to an absolute URL, which it checks against the
        # client's Authorized redirect URIs. Google's post carries only its
        # own fields, so next travels in the query string.
        login_uri = conf.LOGIN_URI or request.build_absolute_uri(
            reverse("google_idtoken:gis-login")
        )
        if next_url:
            login_uri += ("&" if "?" in login_uri else "?") + urlencode({"next": next_url})
        values["login_uri"] = login_uri
    return values
