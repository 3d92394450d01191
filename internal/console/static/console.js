// simwatch console: the little JavaScript the pages need. Forms marked
// data-api send their fields as JSON to the API (same origin, session
// cookie), then reload the page or show the API's error.
"use strict";
(function () {
  function fields(form) {
    var out = {};
    new FormData(form).forEach(function (v, k) {
      var input = form.elements[k];
      if (input && input.dataset && input.dataset.type === "number") { v = Number(v); }
      if (input && input.dataset && input.dataset.type === "list") { v = v ? String(v).split(",").map(function (s) { return s.trim(); }).filter(Boolean) : []; }
      if (input && input.dataset && input.dataset.type === "bool") { v = v === "true" || v === "on"; }
      if (v !== "" || (input && input.dataset && input.dataset.keepEmpty)) { out[k] = v; }
    });
    return out;
  }
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.dataset || !form.dataset.api) { return; }
    ev.preventDefault();
    var out = form.querySelector(".result");
    var method = form.dataset.method || "POST";
    fetch(form.dataset.api, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: method === "DELETE" ? undefined : JSON.stringify(fields(form)),
    }).then(function (resp) {
      if (resp.ok) { window.location.reload(); return; }
      return resp.json().then(function (b) { throw new Error(b.error || resp.statusText); });
    }).catch(function (err) {
      if (out) { out.textContent = err.message; out.className = "result error"; }
    });
  });
})();
