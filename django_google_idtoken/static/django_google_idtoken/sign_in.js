// django-google-idtoken: the popup-mode callback of Sign in with Google.
//
// Google's library calls djangoGoogleIdtokenCallback (data-callback on
// #g_id_onload, rendered by {% google_sign_in %}) with the ID token. It is
// posted to the app's sign-in endpoint with Django's CSRF token: the endpoint
// refuses a browser's post without it (login CSRF). Then the page goes to
// data-next, or reloads.
//
// The configuration is read once, from this script's own <script> tag
// (document.currentScript), never looked up by id: a page that shows
// user-written HTML (sanitizers keep id and data-* attributes) could put an
// element with that id above the tag and send the ID token, a bearer
// credential, to another site, or make "next" a javascript: URL. Both URLs
// must also be paths on this origin.
//
// Events on document, both cancelable (preventDefault() to handle them
// yourself): "google-idtoken:signed-in" (detail: the endpoint's answer) and
// "google-idtoken:refused" (detail: {status, code, detail}).
(function () {
  "use strict";

  const script = document.currentScript;

  function fail(message) {
    console.error("django-google-idtoken: " + message);
  }

  // A path on this page's origin ("/..."), as an absolute URL; else null.
  // "//host/", "/\host/" and anything with a scheme (javascript:, data:,
  // https://other.example/) are refused; the URL parser has the last word,
  // so tricks it would resolve elsewhere ("/\t/host") fail the origin test.
  function sameOriginPath(value) {
    if (typeof value !== "string" || value.charAt(0) !== "/" || /^.[\/\\]/.test(value)) {
      return null;
    }
    let url;
    try {
      url = new URL(value, window.location.href);
    } catch (err) {
      return null;
    }
    return url.origin === window.location.origin ? url.href : null;
  }

  if (!script || !script.dataset || !script.dataset.signinUrl) {
    // Loaded some other way (a bundler, a module, a copy without its
    // attributes): there is no configuration that can be trusted.
    fail("sign_in.js must be loaded by the {% google_sign_in %} tag's own <script> tag.");
    return;
  }
  const config = Object.freeze({
    signinUrl: sameOriginPath(script.dataset.signinUrl),
    csrfToken: script.dataset.csrfToken || "",
    next: script.dataset.next ? sameOriginPath(script.dataset.next) : null,
    hasNext: Boolean(script.dataset.next),
  });
  // The tag's own markup, rendered right before this script.
  const root =
    script.previousElementSibling && script.previousElementSibling.classList.contains("google-idtoken")
      ? script.previousElementSibling
      : null;

  function announce(name, detail) {
    return document.dispatchEvent(new CustomEvent(name, { detail: detail, cancelable: true }));
  }

  function showError(text) {
    const box = root && root.querySelector(".google-idtoken-error");
    if (box) {
      box.textContent = text;
      box.hidden = false;
    }
  }

  function refused(refusal) {
    if (announce("google-idtoken:refused", refusal)) {
      showError("Sign-in refused: " + (refusal.code || "HTTP " + refusal.status) + ". " + refusal.detail);
    }
  }

  // Google's library reads the first element with id="g_id_onload": with two
  // (the tag used twice, or such an element in content above it), which one
  // configures Google is not this script's to know, so it signs nobody in.
  function configuredTwice() {
    return document.querySelectorAll('[id="g_id_onload"]').length > 1;
  }

  function checkOnce() {
    if (configuredTwice()) {
      fail(
        'this page has more than one element with id="g_id_onload" ({% google_sign_in %} ' +
          "used twice, or such an element in the page's content): Sign in with Google is off."
      );
      showError("Sign in with Google is configured twice on this page.");
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", checkOnce);
  } else {
    checkOnce();
  }

  async function readJson(response) {
    try {
      return await response.json();
    } catch (err) {
      return {};
    }
  }

  async function signIn(credential) {
    if (configuredTwice()) {
      throw new Error('more than one element with id="g_id_onload" on this page');
    }
    if (!config.signinUrl) {
      throw new Error("the sign-in URL is not a path on this site");
    }
    const response = await fetch(config.signinUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": config.csrfToken },
      body: new URLSearchParams({ idToken: credential }),
    });
    const body = await readJson(response);
    if (!response.ok) {
      refused({ status: response.status, code: body.code || "", detail: body.detail || "" });
      return;
    }
    if (announce("google-idtoken:signed-in", body)) {
      if (config.hasNext && !config.next) {
        fail("next is not a path on this site; reloading the page instead.");
      }
      if (config.next) {
        window.location.assign(config.next);
      } else {
        window.location.reload();
      }
    }
  }

  window.djangoGoogleIdtokenCallback = function (response) {
    signIn(response.credential).catch(function (err) {
      refused({ status: 0, code: "", detail: String(err) });
    });
  };
})();
