// The demo page's sign-in: get an ID token (from Google's button, or from the
// development issuer), post it to the app's sign-in endpoint, reload the page.
(function () {
  "use strict";

  const root = document.getElementById("demo");
  const urls = root.dataset;
  // The sign-in answer is shown again after the reload.
  const LAST_ANSWER = "django-google-idtoken:last-sign-in";

  function csrfToken() {
    return document.querySelector("input[name=csrfmiddlewaretoken]").value;
  }

  function show(text, isError) {
    const result = document.getElementById("result");
    result.textContent = text;
    result.classList.toggle("error", Boolean(isError));
    result.hidden = false;
  }

  async function readJson(response) {
    try {
      return await response.json();
    } catch (err) {
      return {};
    }
  }

  function refusal(response, body) {
    return "Refused: HTTP " + response.status + " " + (body.code || "") + "\n" + (body.detail || "");
  }

  // Posted as the form field "idToken", as in Google's own client examples.
  // The endpoint needs no CSRF token: it checks the Origin header instead.
  async function signIn(idToken) {
    const response = await fetch(urls.signinUrl, {
      method: "POST",
      body: new URLSearchParams({ idToken: idToken }),
      credentials: "same-origin",
    });
    const body = await readJson(response);
    if (!response.ok) {
      show(refusal(response, body), true);
      return;
    }
    sessionStorage.setItem(LAST_ANSWER, JSON.stringify(body, null, 2));
    window.location.reload();
  }

  // Called by Google Identity Services (data-callback on #g_id_onload).
  window.onGoogleCredential = function (response) {
    signIn(response.credential).catch(function (err) { show(String(err), true); });
  };

  async function demoSignIn() {
    const response = await fetch(urls.devTokenUrl, {
      method: "POST",
      headers: { "X-CSRFToken": csrfToken() },
      credentials: "same-origin",
    });
    const body = await readJson(response);
    if (!response.ok || !body.id_token) {
      show("The development issuer failed: HTTP " + response.status, true);
      return;
    }
    await signIn(body.id_token);
  }

  async function showMe() {
    const response = await fetch(urls.meUrl, { credentials: "same-origin" });
    const body = await readJson(response);
    document.getElementById("me").textContent =
      "HTTP " + response.status + "\n" + JSON.stringify(body, null, 2);
  }

  const demoButton = document.getElementById("demo-sign-in");
  if (demoButton) {
    demoButton.addEventListener("click", function () {
      demoSignIn().catch(function (err) { show(String(err), true); });
    });
  }

  const lastAnswer = sessionStorage.getItem(LAST_ANSWER);
  if (lastAnswer) {
    sessionStorage.removeItem(LAST_ANSWER);
    show("Signed in. The endpoint answered:\n" + lastAnswer, false);
  }
  showMe().catch(function (err) {
    document.getElementById("me").textContent = String(err);
  });
})();
