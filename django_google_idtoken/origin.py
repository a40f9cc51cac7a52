"""Login CSRF defence for the sign-in endpoint.

The sign-in view opens a session, and it cannot require Django's CSRF token
(native clients have none). Without a check, a hostile page could POST its
own ID token from the victim's browser and sign the victim into the
attacker's account ("login CSRF"). Browsers send an Origin header on every
cross-site POST; native clients send none. So: no Origin is allowed, an
Origin equal to this site or listed in CSRF_TRUSTED_ORIGINS is allowed, and
any other (including "null", sent by sandboxed frames) is refused.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest
from django.utils.http import is_same_domain


def origin_allowed(request: HttpRequest) -> bool:
    """True if the request has no Origin header or a trusted one."""
    origin = request.META.get("HTTP_ORIGIN")
    if origin is None:
        return True
    try:
        own = f"{'https' if request.is_secure() else 'http'}://{request.get_host()}"
    except DisallowedHost:
        own = None
    if origin == own:
        return True
    trusted = getattr(settings, "CSRF_TRUSTED_ORIGINS", [])
    if origin in trusted:
        return True
    try:
        parsed = urlsplit(origin)
    except ValueError:
        return False
    # Entries like "https://*.example.com" trust every subdomain, as in Django.
    return any(
        "*" in entry
        and urlsplit(entry).scheme == parsed.scheme
        and is_same_domain(parsed.netloc, urlsplit(entry).netloc.replace("*", "", 1))
        for entry in trusted
    )
