// The demo page's own script: shows what GET /auth/google/me/ answers, and
// the outcome of a popup-mode sign-in, through the events of the app's
// sign_in.js ({% google_sign_in %} renders it with Google's button).
(function () {
  "use strict";

  const urls = document.getElementById("demo").dataset;
  // The sign-in answer is shown again after the page reloads.
  const LAST_ANSWER = "django-google-idtoken:last-sign-in";

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

  // Not cancelled: sign_in.js goes on to reload the page (or follow next).
  document.addEventListener("google-idtoken:signed-in", function (event) {
    sessionStorage.setItem(LAST_ANSWER, JSON.stringify(event.detail, null, 2));
  });

  // Cancelled: this page shows refusals its own way.
  document.addEventListener("google-idtoken:refused", function (event) {
    event.preventDefault();
    const refusal = event.detail;
    show("Refused: HTTP " + refusal.status + " " + refusal.code + "\n" + refusal.detail, true);
  });

  async function showMe() {
    const response = await fetch(urls.meUrl, { credentials: "same-origin" });
    const body = await readJson(response);
    document.getElementById("me").textContent =
      "HTTP " + response.status + "\n" + JSON.stringify(body, null, 2);
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
