// DEVELOPMENT ONLY: a stand-in for Google's client library
// (https://accounts.google.com/gsi/client), which cannot be reached offline.
//
// It reads the same #g_id_onload configuration that {% google_sign_in %}
// renders for Google, puts a "Sign in as a demo user" button where Google's
// button would be, and on a click does what Google's library does, with an
// ID token from the development issuer (demo/dev_issuer.py) instead:
// - popup mode (data-callback): calls the callback with {credential}, so the
//   app's sign_in.js posts the token to signin/ with Django's CSRF token;
// - redirect mode (data-login_uri): sets the g_csrf_token cookie and posts
//   credential and g_csrf_token to the login URI, so the app's gis/ view
//   checks the pair, signs in and redirects.
// The app's code is the same in both cases as with Google.
(function () {
  "use strict";

  const tokenUrl = document.currentScript.dataset.tokenUrl;

  function csrfToken() {
    return document.querySelector("input[name=csrfmiddlewaretoken]").value;
  }

  async function mintToken() {
    const response = await fetch(tokenUrl, {
      method: "POST",
      headers: { "X-CSRFToken": csrfToken() },
      credentials: "same-origin",
    });
    const body = response.ok ? await response.json() : {};
    if (!body.id_token) {
      throw new Error("The development issuer failed: HTTP " + response.status);
    }
    return body.id_token;
  }

  function randomHex() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  // What Google's page does in redirect mode: the same random value as a
  // cookie on this site and as a field of the POST (the double-submit token).
  function postToLoginUri(loginUri, credential) {
    const gCsrfToken = randomHex();
    document.cookie = "g_csrf_token=" + gCsrfToken + "; path=/; SameSite=Lax";
    const form = document.createElement("form");
    form.method = "POST";
    form.action = loginUri;
    const fields = { credential: credential, g_csrf_token: gCsrfToken, select_by: "btn" };
    Object.keys(fields).forEach(function (name) {
      const input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = fields[name];
      form.appendChild(input);
    });
    document.body.appendChild(form);
    form.submit();
  }

  async function signIn(config) {
    const credential = await mintToken();
    if (config.callback) {
      window[config.callback]({ credential: credential, select_by: "btn" });
    } else {
      postToLoginUri(config.login_uri, credential);
    }
  }

  const onload = document.getElementById("g_id_onload");
  if (!onload) {
    return;
  }
  document.querySelectorAll(".g_id_signin").forEach(function (container) {
    const button = document.createElement("button");
    button.type = "button";
    button.id = "demo-sign-in";
    button.textContent = "Sign in as a demo user";
    const message = document.createElement("p");
    message.className = "error";
    message.hidden = true;
    button.addEventListener("click", function () {
      signIn(onload.dataset).catch(function (err) {
        message.textContent = String(err);
        message.hidden = false;
      });
    });
    container.append(button, message);
  });
})();
