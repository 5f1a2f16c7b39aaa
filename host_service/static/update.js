// Live progress of an update run: long-poll /api/update; each change refreshes the run, the
// selection and the history in place (AlgaLive, shared with the status page).
(function () {
  "use strict";
  var section = document.getElementById("run");
  // Only a run in progress is watched.
  if (!section || !window.fetch || !window.AlgaLive || section.dataset.phase !== "running") {
    return;
  }
  var regions = ["run", "selected", "history"];
  function version() {
    var run = document.getElementById("run");
    return run ? run.dataset.version : "0";
  }
  function phase() {
    var run = document.getElementById("run");
    return run ? run.dataset.phase : "";
  }
  function poll() {
    fetch("/api/update?wait=" + version() + "&timeout=25", {credentials: "same-origin"})
      .then(function (response) {
        if (!response.ok) { throw new Error("status " + response.status); }
        return response.json();
      })
      .then(function (view) {
        if (String(view.version) === version()) { return null; }
        return window.AlgaLive.refresh("/update", regions);
      })
      .then(function () {
        if (phase() === "running") { poll(); }
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  poll();
}());
