// The workloads page refreshes its pods at the pollers' interval, in place.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.AlgaLive) { return; }
  var run = window.AlgaLive.refresher(function () {
    return window.location.pathname + window.location.search;
  }, ["groups", "read-age", "workloads-status"]);
  window.AlgaLive.every(Number(live.dataset.refresh) || 5, run);
}());
