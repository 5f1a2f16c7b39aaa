// Live pages, shared by the status, workloads and update pages: fetch the page again and
// swap the named regions in place. The server renders every view once (no second renderer
// in JavaScript); open <details> stay open, and nothing runs without the page's nonce.
(function () {
  "use strict";
  if (!window.fetch || !window.DOMParser) { return; }
  function openKeys(root) {
    var keys = [];
    root.querySelectorAll("details[open]").forEach(function (d) {
      var key = d.id || d.dataset.key;
      if (key) { keys.push(key); }
    });
    return keys;
  }
  function reopen(root, keys) {
    root.querySelectorAll("details").forEach(function (d) {
      var key = d.id || d.dataset.key;
      if (key && keys.indexOf(key) >= 0) { d.open = true; }
    });
  }
  function swap(doc, ids) {
    ids.forEach(function (id) {
      var fresh = doc.getElementById(id);
      var old = document.getElementById(id);
      if (!fresh || !old) { return; }
      var keys = openKeys(old);
      var node = document.importNode(fresh, true);
      old.replaceWith(node);
      reopen(node, keys);
    });
  }
  function refresh(url, ids) {
    return fetch(url, {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (response) {
        if (response.redirected && response.url.indexOf("/login") >= 0) {
          window.location.assign("/login");
          throw new Error("logged out");
        }
        if (!response.ok) { throw new Error("status " + response.status); }
        return response.text();
      })
      .then(function (text) {
        // The page's own style and script carry another nonce: parsing them would be
        // reported as CSP violations (nothing in a parsed document runs anyway).
        var body = text.replace(/<style[^>]*>[\s\S]*?<\/style>/g, "")
          .replace(/<script[^>]*>[\s\S]*?<\/script>/g, "");
        swap(new DOMParser().parseFromString(body, "text/html"), ids);
      });
  }
  // One refresh at a time; a request while one runs is folded into one more afterwards.
  function refresher(url, ids) {
    var busy = false;
    var again = false;
    function run() {
      if (busy) { again = true; return; }
      busy = true;
      refresh(typeof url === "function" ? url() : url, ids)
        .catch(function () { return null; })
        .then(function () {
          busy = false;
          if (again) { again = false; run(); }
        });
    }
    return run;
  }
  // Every ``seconds`` while the tab is visible.
  function every(seconds, run) {
    window.setInterval(function () {
      if (!document.hidden) { run(); }
    }, Math.max(1, seconds) * 1000);
  }
  window.AlgaLive = {refresh: refresh, refresher: refresher, every: every};
}());
