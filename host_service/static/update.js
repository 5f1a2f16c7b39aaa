// Live progress of an update run: long-poll /api/update; the page reloads when the run ends.
(function () {
  "use strict";
  var section = document.getElementById("run");
  // Only a run in progress is watched; its end (or a stop) reloads the page once.
  if (!section || !window.fetch || section.dataset.phase !== "running") { return; }
  function text(id, value) {
    var el = document.getElementById(id);
    if (el) { el.textContent = value == null ? "" : String(value); }
  }
  function render(view) {
    var run = view.run;
    if (!run) { return; }
    if (section.dataset.phase !== run.phase) {
      // Started, finished or stopped: the server renders the blocker, history and selection.
      window.location.reload();
      return;
    }
    text("run-phase", run.phase);
    run.steps.forEach(function (step) {
      var row = document.getElementById("ustep-" + step.step);
      if (!row) { return; }
      row.dataset.status = step.status;
      row.className = "status-" + step.status;
      row.querySelector(".state").textContent =
        step.status + (step.already_done ? " (already done)" : "");
      var message = row.querySelector(".message");
      message.firstChild.textContent = step.message + " ";
      var list = message.querySelector(".details");
      list.textContent = "";
      step.details.forEach(function (d) {
        var li = document.createElement("li");
        li.textContent = d;
        list.appendChild(li);
      });
    });
  }
  function poll(version) {
    fetch("/api/update?wait=" + version + "&timeout=25", {credentials: "same-origin"})
      .then(function (response) {
        if (!response.ok) { throw new Error("status " + response.status); }
        return response.json();
      })
      .then(function (view) {
        render(view);
        section.dataset.version = view.version;
        poll(view.version);
      })
      .catch(function () { window.setTimeout(function () { poll(section.dataset.version); }, 3000); });
  }
  poll(section.dataset.version);
}());
