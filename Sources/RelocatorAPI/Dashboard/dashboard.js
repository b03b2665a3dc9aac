// Relocator dashboard: refreshes the page's data every 2 seconds (the page fetched again, its
// <main> swapped in) and runs the action buttons as POSTs. When an administrator credential is
// set the page is read-only: its buttons show once this tab has given the credential (asked by
// "Unlock administration", checked with GET /v1/access, kept in sessionStorage for this tab).
(function () {
  "use strict";
  var busy = false;
  var key = "relocator-token";

  function refresh() {
    if (busy || document.hidden) { return; }
    busy = true;
    fetch(location.href, { headers: { "Accept": "text/html" }, cache: "no-store" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        var page = new DOMParser().parseFromString(html, "text/html");
        var fresh = page.getElementById("content"), current = document.getElementById("content");
        if (fresh && current) { current.innerHTML = fresh.innerHTML; }
        var stamp = page.getElementById("refreshed");
        if (stamp) { document.getElementById("refreshed").textContent = stamp.textContent; }
      })
      .catch(function () { /* the next tick tries again */ })
      .then(function () { busy = false; });
  }

  function adminRequired() { return document.body.dataset.adminRequired === "true"; }

  function say(text, failed) {
    var result = document.getElementById("action-result");
    result.textContent = text;
    result.className = failed ? "error" : "";
  }

  // True when `secret` is the administrator credential.
  function isAdmin(secret) {
    return fetch("/v1/access", { headers: { "Authorization": "Bearer " + secret }, cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : { admin: false }; })
      .then(function (body) { return body.admin === true; });
  }

  function unlocked(yes, secret) {
    if (yes) { sessionStorage.setItem(key, secret); } else { sessionStorage.removeItem(key); }
    document.body.classList.toggle("admin", yes);
  }

  function unlock() {
    var entered = window.prompt("Administrator credential (kept for this tab only)") || "";
    if (!entered) { return; }
    isAdmin(entered).then(function (yes) {
      unlocked(yes, entered);
      say(yes ? "administration unlocked for this tab" : "that is not the administrator credential", !yes);
    }).catch(function (error) { say(String(error), true); });
  }

  function act(button) {
    var headers = { "Content-Type": "application/json" };
    var secret = sessionStorage.getItem(key);
    if (adminRequired() && secret) { headers["Authorization"] = "Bearer " + secret; }
    fetch(button.dataset.action, { method: "POST", headers: headers, body: button.dataset.body || "{}" })
      .then(function (response) {
        if (response.status === 401 || response.status === 403) { unlocked(false); }
        return response.json().then(function (body) {
          say(response.ok ? "done: " + JSON.stringify(body) : (body.message || ("error " + response.status)), !response.ok);
          refresh();
        });
      })
      .catch(function (error) { say(String(error), true); });
  }

  document.addEventListener("click", function (event) {
    if (event.target.closest("#unlock")) { unlock(); return; }
    var button = event.target.closest("button[data-action]");
    if (!button) { return; }
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) { return; }
    act(button);
  });

  if (adminRequired() && sessionStorage.getItem(key)) {
    var saved = sessionStorage.getItem(key);
    isAdmin(saved).then(function (yes) { unlocked(yes, saved); }).catch(function () { /* stays read-only */ });
  }
  setInterval(refresh, 2000);
})();
