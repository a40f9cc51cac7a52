"""``{% google_sign_in %}``: what it renders from the settings and its
arguments, and that a page it renders signs in through signin/ with the
CSRF token it carries."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.template import Context, RequestContext, Template, TemplateSyntaxError
from django.test import Client, RequestFactory
from django.urls import include, path

from .helpers import SIGNIN, post_form

WEB_CLIENT = "1234-test.apps.googleusercontent.com"  # the first of the test CLIENT_IDS
TAG = "{% load google_idtoken %}{% google_sign_in " + "ARGS" + " %}"


def page_view(request: HttpRequest) -> HttpResponse:
    """A page with the tag, its arguments from the query string."""
    template = Template("{% load google_idtoken %}{% google_sign_in ux_mode=mode next=next %}")
    context = RequestContext(
        request, {"mode": request.GET.get("mode", "popup"), "next": request.GET.get("next")}
    )
    return HttpResponse(template.render(context))


urlpatterns = [
    path("auth/google/", include("django_google_idtoken.urls")),
    path("page/", page_view),
]


def render(args: str = "", *, request: HttpRequest | None = None, **context: Any) -> str:
    request = request or RequestFactory().get("/page/")
    return Template(TAG.replace("ARGS", args)).render(RequestContext(request, context))


def attribute(text: str, name: str) -> str | None:
    match = re.search(rf'\s{name}="([^"]*)"', text)
    return html.unescape(match.group(1)) if match else None


# -- popup mode (the default) ----------------------------------------------------------------


@pytest.mark.urls(__name__)
def test_popup_mode_by_default() -> None:
    page = render()
    assert attribute(page, "data-client_id") == WEB_CLIENT
    assert attribute(page, "data-ux_mode") == "popup"
    assert attribute(page, "data-callback") == "djangoGoogleIdtokenCallback"
    assert attribute(page, "data-login_uri") is None
    assert attribute(page, "data-auto_prompt") == "false"
    assert attribute(page, "data-signin-url") == "/auth/google/signin/"
    assert attribute(page, "data-csrf-token")
    assert attribute(page, "data-next") is None
    assert 'class="g_id_signin"' in page
    assert '<script src="/static/django_google_idtoken/sign_in.js" data-signin-url=' in page
    assert '<script src="https://accounts.google.com/gsi/client" async></script>' in page


def script_tag(page: str) -> str:
    match = re.search(r'<script src="/static/django_google_idtoken/sign_in\.js"[^>]*>', page)
    assert match, page
    return match.group(0)


@pytest.mark.urls(__name__)
def test_popup_script_carries_its_own_configuration() -> None:
    # The script reads its configuration from its own tag
    # (document.currentScript): no element id that HTML placed above the tag
    # could take over (issue 12, item 1).
    page = render('next="/after/"')
    tag = script_tag(page)
    assert attribute(tag, "data-signin-url") == "/auth/google/signin/"
    assert attribute(tag, "data-csrf-token")
    assert attribute(tag, "data-next") == "/after/"
    assert 'id="google-idtoken"' not in page
    assert page.count("data-signin-url") == page.count("data-next") == 1


@pytest.mark.urls(__name__)
@pytest.mark.parametrize(
    ("next_url", "expected"),
    [
        ("/after/", "/after/"),
        ("http://testserver/after/?tab=2#top", "/after/?tab=2#top"),
        ("after/", "/page/after/"),
        ("?tab=2", "/page/?tab=2"),
        ("http://testserver//evil.example/", None),
        ("http://testserver/\\evil.example/", None),
    ],
)
def test_popup_next_is_rendered_as_a_path_on_this_site(next_url: str, expected: str | None) -> None:
    # sign_in.js follows only "/..." paths on the page's own origin.
    assert attribute(render("next=next", next=next_url), "data-next") == expected


@pytest.mark.urls(__name__)
@pytest.mark.parametrize("mode", ["popup", "redirect"])
def test_the_tag_twice_for_one_request_is_an_error(mode: str) -> None:
    # Google's library reads one g_id_onload per page; a second is a mistake
    # a developer must see, not a configuration silently ignored or used.
    request = RequestFactory().get("/page/")
    template = Template(
        "{% load google_idtoken %}{% google_sign_in ux_mode=mode %}"
        "<p>Comments</p>{% google_sign_in ux_mode=mode button=False %}"
    )
    with pytest.raises(TemplateSyntaxError, match="used twice"):
        template.render(RequestContext(request, {"mode": mode}))
    # Once per request is fine, the same template included by another request too.
    assert render(f'ux_mode="{mode}"').count('id="g_id_onload"') == 1


@pytest.mark.urls(__name__)
def test_popup_mode_next_is_kept_only_when_safe() -> None:
    assert attribute(render('next="/after/"'), "data-next") == "/after/"
    assert attribute(render('next="https://evil.example/"'), "data-next") is None
    assert attribute(render('next="//evil.example/"'), "data-next") is None


@pytest.mark.urls(__name__)
def test_values_are_escaped() -> None:
    page = render("next=next", next='/x" onload="alert(1)')
    assert 'onload="alert' not in page
    assert attribute(page, "data-next") == '/x" onload="alert(1)'


# -- redirect mode ---------------------------------------------------------------------------


@pytest.mark.urls(__name__)
def test_redirect_mode_posts_to_the_login_uri() -> None:
    page = render('ux_mode="redirect"')
    assert attribute(page, "data-ux_mode") == "redirect"
    assert attribute(page, "data-login_uri") == "http://testserver/auth/google/gis/"
    assert attribute(page, "data-callback") is None
    # No popup script, no Django CSRF token: Google's post is checked otherwise.
    assert "sign_in.js" not in page
    assert attribute(page, "data-csrf-token") is None
    assert "gsi/client" in page


@pytest.mark.urls(__name__)
def test_redirect_mode_carries_next_in_the_login_uri() -> None:
    page = render('ux_mode="redirect" next="/after/?tab=2"')
    expected = "http://testserver/auth/google/gis/?next=%2Fafter%2F%3Ftab%3D2"
    assert attribute(page, "data-login_uri") == expected
    page = render('ux_mode="redirect" next="https://evil.example/"')
    assert attribute(page, "data-login_uri") == "http://testserver/auth/google/gis/"


@pytest.mark.urls(__name__)
def test_redirect_mode_login_uri_follows_the_request() -> None:
    request = RequestFactory().get("/page/", secure=True, HTTP_HOST="localhost:8443")
    page = render('ux_mode="redirect"', request=request)
    assert attribute(page, "data-login_uri") == "https://localhost:8443/auth/google/gis/"


@pytest.mark.urls(__name__)
def test_login_uri_setting(settings: Any) -> None:
    settings.GOOGLE_IDTOKEN = {
        **settings.GOOGLE_IDTOKEN,
        "LOGIN_URI": "https://www.example.com/google/?src=gis",
    }
    page = render('ux_mode="redirect" next="/after/"')
    expected = "https://www.example.com/google/?src=gis&next=%2Fafter%2F"
    assert attribute(page, "data-login_uri") == expected


# -- settings and arguments ------------------------------------------------------------------


@pytest.mark.urls(__name__)
def test_settings_choose_client_mode_and_one_tap(settings: Any) -> None:
    settings.GOOGLE_IDTOKEN = {
        **settings.GOOGLE_IDTOKEN,
        "WEB_CLIENT_ID": "1234-ios.apps.googleusercontent.com",
        "UX_MODE": "redirect",
        "ONE_TAP": True,
    }
    page = render()
    assert attribute(page, "data-client_id") == "1234-ios.apps.googleusercontent.com"
    assert attribute(page, "data-ux_mode") == "redirect"
    assert attribute(page, "data-auto_prompt") == "true"
    # Arguments win over settings.
    page = render('ux_mode="popup" one_tap=False')
    assert attribute(page, "data-ux_mode") == "popup"
    assert attribute(page, "data-auto_prompt") == "false"


@pytest.mark.urls(__name__)
def test_one_tap_alone_and_button_style() -> None:
    page = render("one_tap=True button=False")
    assert attribute(page, "data-auto_prompt") == "true"
    assert "g_id_signin" not in page
    page = render('theme="filled_blue" size="medium" text="continue_with" shape="pill"')
    assert attribute(page, "data-theme") == "filled_blue"
    assert attribute(page, "data-size") == "medium"
    assert attribute(page, "data-text") == "continue_with"
    assert attribute(page, "data-shape") == "pill"


@pytest.mark.urls(__name__)
def test_load_gis_false_leaves_out_googles_library() -> None:
    page = render("load_gis=False")
    assert "accounts.google.com" not in page
    assert "sign_in.js" in page


# -- Content-Security-Policy nonce -------------------------------------------------------------


@pytest.mark.urls(__name__)
def test_nonce_argument_goes_on_every_script() -> None:
    page = render('nonce="n0nce"')
    scripts = re.findall(r"<script [^>]*>", page)
    assert len(scripts) == 2
    assert all('nonce="n0nce"' in script for script in scripts)


@pytest.mark.urls(__name__)
def test_nonce_from_the_context_or_the_request() -> None:
    assert 'nonce="from-context"' in render(csp_nonce="from-context")
    request = RequestFactory().get("/page/")
    request.csp_nonce = "from-request"  # type: ignore[attr-defined]  # django-csp's attribute
    page = render(request=request)
    assert page.count('nonce="from-request"') == 2
    assert "nonce" not in render()


# -- misuse ----------------------------------------------------------------------------------


@pytest.mark.urls(__name__)
def test_unknown_ux_mode_is_an_error() -> None:
    with pytest.raises(TemplateSyntaxError, match="ux_mode"):
        render('ux_mode="modal"')


@pytest.mark.urls(__name__)
def test_no_request_in_the_context_is_an_error() -> None:
    template = Template(TAG.replace("ARGS", ""))
    with pytest.raises(ImproperlyConfigured, match="context_processors.request"):
        template.render(Context({}))


@pytest.mark.urls(__name__)
def test_no_client_id_is_an_error(settings: Any) -> None:
    settings.GOOGLE_IDTOKEN = {**settings.GOOGLE_IDTOKEN, "CLIENT_IDS": []}
    with pytest.raises(ImproperlyConfigured, match="CLIENT_IDS"):
        render()


# -- a rendered page signs in -------------------------------------------------------------------


def csrf_token_of(page: str) -> str:
    token = attribute(page, "data-csrf-token")
    assert token
    return token


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_popup_page_token_signs_in_through_signin(issuer: Any, key_server: Any) -> None:
    # What the page's script does: post the ID token with the page's CSRF
    # token, from a browser (Origin), with the cookie the page response set.
    browser = Client(enforce_csrf_checks=True)
    response = browser.get("/page/")
    assert "csrftoken" in response.cookies  # set because the tag asked for a token
    token = csrf_token_of(response.content.decode())
    signed_in = post_form(
        browser,
        SIGNIN,
        {"idToken": issuer.mint()},
        HTTP_ORIGIN="http://testserver",
        HTTP_X_CSRFTOKEN=token,
    )
    assert signed_in.status_code == 200, signed_in.content


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_popup_page_without_the_token_is_refused(issuer: Any, key_server: Any) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.get("/page/")
    refused = post_form(
        browser, SIGNIN, {"idToken": issuer.mint()}, HTTP_ORIGIN="http://testserver"
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "csrf_failed"


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_redirect_page_login_uri_signs_in(issuer: Any, key_server: Any) -> None:
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/page/", {"mode": "redirect", "next": "/after/"}).content.decode()
    login_uri = attribute(page, "data-login_uri")
    assert login_uri
    browser.cookies["g_csrf_token"] = "abc123"
    response = browser.post(login_uri, {"credential": issuer.mint(), "g_csrf_token": "abc123"})
    assert response.status_code == 302, response.content
    assert response["Location"] == "/after/"


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_popup_page_token_with_csrf_in_the_session(
    issuer: Any, key_server: Any, settings: Any
) -> None:
    # CSRF_USE_SESSIONS keeps the secret in the session instead of a cookie.
    settings.CSRF_USE_SESSIONS = True
    browser = Client(enforce_csrf_checks=True)
    token = csrf_token_of(browser.get("/page/").content.decode())
    signed_in = post_form(
        browser,
        SIGNIN,
        {"idToken": issuer.mint()},
        HTTP_ORIGIN="http://testserver",
        HTTP_X_CSRFTOKEN=token,
    )
    assert signed_in.status_code == 200, signed_in.content
