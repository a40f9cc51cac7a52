"""A person signs in with the example project's home page, in a real browser.

The example project runs for real (``manage.py demo``) with its development
issuer, and headless Chromium clicks through its home page. The page carries
``{% google_sign_in %}``'s configuration for Google, and the demo's stand-in
for Google's library (demo/dev_gis.js) hands over a development ID token the
way Google's library would, so the app's own script, views, CSRF checks,
verification and session run as they do with Google.

Each step is saved as artifacts/screenshots/NN-step.png.
"""

from __future__ import annotations

from typing import Any

DEMO_EMAIL = "demo@example.com"
DEMO_SUB = "100000000000000000001"

MINT_TOKEN = """async () => {
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  const response = await fetch("/demo/token/", {method: "POST", headers: {"X-CSRFToken": csrf}});
  return (await response.json()).id_token;
}"""

POST_FORM = """([action, fields]) => {
  const form = document.createElement("form");
  form.method = "POST";
  form.action = action;
  for (const [name, value] of Object.entries(fields)) {
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    form.appendChild(input);
  }
  document.body.appendChild(form);
  form.submit();
}"""


def expect_signed_in(page: Any, expect: Any) -> None:
    expect(page.locator("#signed-in")).to_contain_text(f"({DEMO_EMAIL})")
    expect(page.locator(".linked-account")).to_contain_text(DEMO_SUB)
    # The page's script asks GET /auth/google/me/ with the session cookie.
    expect(page.locator("#me")).to_contain_text("HTTP 200")
    expect(page.locator("#me")).to_contain_text(f'"email": "{DEMO_EMAIL}"')


def expect_signed_out(page: Any, expect: Any) -> None:
    expect(page.locator("#signed-out")).to_have_text("Nobody is signed in.")
    expect(page.locator("#me")).to_contain_text("HTTP 401")


def sign_out(page: Any, expect: Any) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect_signed_out(page, expect)


def test_popup_mode_sign_in_reload_and_sign_out(site: str, page: Any, expect: Any, shot: Any):
    page.goto(site + "/")
    expect(page.locator("#ux-mode")).to_have_text("popup")
    expect_signed_out(page, expect)
    expect(page.locator("#demo-sign-in")).to_be_visible()
    shot("01-popup-home-signed-out")

    # The stand-in calls the popup callback; the app's sign_in.js posts the
    # token to signin/ with Django's CSRF token, then follows next.
    page.locator("#demo-sign-in").click()
    expect_signed_in(page, expect)
    expect(page).to_have_url(site + "/?mode=popup")
    expect(page.locator("#result")).to_contain_text("Signed in. The endpoint answered")
    shot("02-popup-signed-in")

    page.reload()
    expect_signed_in(page, expect)
    shot("03-popup-reloaded-still-signed-in")

    sign_out(page, expect)
    shot("04-popup-signed-out")


def test_redirect_mode_sign_in_reload_and_sign_out(site: str, page: Any, expect: Any, shot: Any):
    page.goto(site + "/?mode=redirect")
    expect(page.locator("#ux-mode")).to_have_text("redirect")
    expect_signed_out(page, expect)
    login_uri = page.locator("#g_id_onload").get_attribute("data-login_uri")
    assert login_uri == f"{site}/auth/google/gis/?next=%2F%3Fmode%3Dredirect"
    shot("05-redirect-home-signed-out")

    # The stand-in does what Google does in redirect mode: the g_csrf_token
    # cookie, and a form post of credential + g_csrf_token to the login URI,
    # which signs in and redirects to next.
    with page.expect_navigation(url=site + "/?mode=redirect"):
        page.locator("#demo-sign-in").click()
    expect_signed_in(page, expect)
    cookies = {cookie["name"] for cookie in page.context.cookies()}
    assert {"g_csrf_token", "sessionid"} <= cookies
    shot("06-redirect-signed-in")

    page.reload()
    expect_signed_in(page, expect)
    shot("07-redirect-reloaded-still-signed-in")

    sign_out(page, expect)
    shot("08-redirect-signed-out")


def test_forged_posts_to_the_login_uri_are_refused(site: str, page: Any, expect: Any, shot: Any):
    page.goto(site + "/")
    # A genuine ID token for the demo account: an attacker can hold one of
    # their own. What the forgeries lack is Google's g_csrf_token cookie.
    token = page.evaluate(MINT_TOKEN)
    assert token.count(".") == 2

    # 1. A form posted from this site's own page, without the cookie.
    with page.expect_navigation():
        page.evaluate(
            POST_FORM, ["/auth/google/gis/", {"credential": token, "g_csrf_token": "forged"}]
        )
    expect(page.locator("#refusal-code")).to_have_text("csrf_failed")
    expect(page.locator("#refusal-detail")).to_contain_text("g_csrf_token cookie is missing")
    shot("09-forged-post-without-cookie-refused")

    # 2. Another site's page (served by Playwright's router, no network)
    #    posting the token to this site's login URI: login CSRF.
    attacker_page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>attacker.example</title></head>
<body><h1>attacker.example</h1><p>A page of another site.</p>
<form method="post" action="{site}/auth/google/gis/">
<input type="hidden" name="credential" value="{token}">
<input type="hidden" name="g_csrf_token" value="forged">
<button type="submit">Claim your prize</button></form></body></html>"""
    page.route(
        "http://attacker.example/**",
        lambda route: route.fulfill(status=200, content_type="text/html", body=attacker_page),
    )
    page.goto("http://attacker.example/")
    shot("10-attacker-page")
    with page.expect_navigation(url=site + "/auth/google/gis/"):
        page.get_by_role("button", name="Claim your prize").click()
    expect(page.locator("#refusal-code")).to_have_text("csrf_failed")
    expect(page.locator("#refusal-detail")).to_contain_text("a page of another site")
    shot("11-forged-post-from-another-site-refused")

    page.goto(site + "/")
    expect_signed_out(page, expect)
    shot("12-after-forgeries-nobody-signed-in")
