// django-google-idtoken: the popup-mode callback of Sign in with Google.
//
// Google's library calls djangoGoogleIdtokenCallback (data-callback on
// #g_id_onload, rendered by {% google_sign_in %}) with the ID token. It is
// posted to the app's sign-in endpoint with Django's CSRF token: the endpoint
// refuses a browser's post without it (login CSRF). Then the page goes to
// data-next, or reloads.
//
// Events on document, both cancelable (preventDefault() to handle them
// yourself): "google-idtoken:signed-in" (detail: the endpoint's answer) and
// "google-idtoken:refused" (detail: {status, code, detail}).
(function () {
  "use strict";

  function root() {
    return document.getElementById("google-idtoken");
  }

  function announce(name, detail) {
    return document.dispatchEvent(new CustomEvent(name, { detail: detail, cancelable: true }));
  }

  function showError(text) {
    const box = root() && root().querySelector(".google-idtoken-error");
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

  async function readJson(response) {
    try {
      return await response.json();
    } catch (err) {
      return {};
    }
  }

  async function signIn(credential) {
    const config = root().dataset;
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
