// Live progress for the status page: server-sent events replace the no-JS meta refresh.
(function () {
  "use strict";
  if (!window.EventSource) { return; }
  function text(id, value) {
    var el = document.getElementById(id);
    if (el) { el.textContent = value == null ? "" : String(value); }
  }
  function render(view) {
    var summary = document.getElementById("summary");
    summary.dataset.phase = view.phase;
    summary.dataset.version = view.version;
    text("phase", view.phase);
    document.getElementById("running").hidden = !view.running;
    document.getElementById("write-error").hidden = !view.state_write_error;
    text("write-error-text", view.state_write_error);
    var app = document.getElementById("app-url");
    app.hidden = !view.app_url;
    if (view.app_url) {
      var link = document.getElementById("app-link");
      link.href = view.app_url;
      link.textContent = view.app_url;
    }
    var blocker = document.getElementById("blocker");
    blocker.hidden = !view.blocker;
    if (view.blocker) {
      text("blocker-step", view.blocker.step);
      text("blocker-message", view.blocker.message);
      text("blocker-cause", view.blocker.cause);
      text("blocker-next", view.blocker.next_step);
      text("blocker-output", view.blocker.output);
      document.getElementById("blocker-details").open = Boolean(view.blocker.output);
    }
    view.steps.forEach(function (step) {
      var row = document.getElementById("step-" + step.name);
      if (!row) { return; }
      row.dataset.status = step.status;
      row.className = "status-" + step.status;
      row.querySelector(".state").textContent =
        step.status + (step.already_done ? " (already done)" : "");
      row.querySelector(".time").textContent = step.seconds == null ? "" : step.seconds + " s";
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
  var source = new EventSource("/api/events");
  source.addEventListener("status", function (event) {
    render(JSON.parse(event.data));
  });
}());
