// Relocator dashboard: refreshes the page's data every 2 seconds (the page fetched again, its
// <main> swapped in) and runs the action buttons as POSTs with the API token when one is needed
// (asked once, kept in sessionStorage for this tab).
(function () {
  "use strict";
  var busy = false;

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

  function token(forceAsk) {
    if (document.body.dataset.tokenRequired !== "true") { return ""; }
    var saved = sessionStorage.getItem("relocator-token");
    if (saved && !forceAsk) { return saved; }
    var entered = window.prompt("API token (kept for this tab only)") || "";
    if (entered) { sessionStorage.setItem("relocator-token", entered); }
    return entered;
  }

  function act(button, retried) {
    var headers = { "Content-Type": "application/json" };
    var secret = token(retried);
    if (secret) { headers["Authorization"] = "Bearer " + secret; }
    var result = document.getElementById("action-result");
    fetch(button.dataset.action, { method: "POST", headers: headers, body: button.dataset.body || "{}" })
      .then(function (response) {
        if (response.status === 401 && !retried) { sessionStorage.removeItem("relocator-token"); return act(button, true); }
        return response.json().then(function (body) {
          result.textContent = response.ok ? "done: " + JSON.stringify(body) : (body.message || ("error " + response.status));
          result.className = response.ok ? "" : "error";
          refresh();
        });
      })
      .catch(function (error) { result.textContent = String(error); result.className = "error"; });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-action]");
    if (!button) { return; }
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) { return; }
    act(button, false);
  });

  setInterval(refresh, 2000);
})();
