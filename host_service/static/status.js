// The status page follows the appliance: the bootstrap's server-sent events and the pollers'
// interval both refresh the live regions in place.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.AlgaLive) { return; }
  var run = window.AlgaLive.refresher("/status", ["live"]);
  if (window.EventSource) {
    var source = new EventSource("/api/events");
    source.addEventListener("status", run);
  }
  window.AlgaLive.every(Number(live.dataset.refresh) || 5, run);
}());
