// The log viewer: follows live lines, pauses when scrolled up, loads older chunks at the
// top, keeps a bounded window of lines. Without this script the page shows the tail.
(function () {
  "use strict";
  var root = document.getElementById("logs");
  if (!root || !window.fetch) { return; }
  var MAX_LINES = 5000; // lines kept in the page; the far end is dropped past it
  var CHUNK = 500; // lines per older chunk
  var box = document.getElementById("log-box");
  var list = document.getElementById("log-lines");
  var topEdge = document.getElementById("log-top");
  var stateText = document.getElementById("log-state");
  var note = document.getElementById("log-note");
  var marker = document.getElementById("new-lines");
  var params = new URLSearchParams();
  params.set("namespace", root.dataset.namespace);
  params.set("pod", root.dataset.pod);
  params.set("container", root.dataset.container);
  if (root.dataset.previous === "1") { params.set("previous", "1"); }
  if (root.dataset.all === "1") { params.set("all", "1"); }
  var query = params.toString();
  var previous = root.dataset.previous === "1";
  var atStart = root.dataset.start === "1";
  var loaded = list.querySelectorAll(".line").length;
  var following = true; // at the bottom: live lines are shown as they come
  var detached = false; // the newest lines were dropped (far up): the tail is read again
  var pending = []; // live lines (arrays) and gap notes (strings) held while paused
  var pendingLines = 0;
  var pendingLost = false;
  var source = null;
  var ended = null;
  var loadingOlder = false;
  var filterText = "";

  function setState(text) { stateText.textContent = text; }
  function say(text) { note.textContent = text; note.hidden = !text; }
  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }
  function followingText() {
    return "Following: new lines appear at the bottom (" + plural(loaded, "line") + " loaded).";
  }

  function matches(div) {
    var text = div.lastChild ? div.lastChild.textContent : "";
    return filterText === "" || text.toLowerCase().indexOf(filterText) >= 0;
  }
  function lineElement(wire) {
    var div = document.createElement("div");
    div.className = "line";
    div.dataset.cursor = wire[0];
    var time = document.createElement("time");
    time.textContent = wire[1];
    var span = document.createElement("span");
    span.textContent = wire[2];
    div.appendChild(time);
    div.appendChild(document.createTextNode(" "));
    div.appendChild(span);
    if (!matches(div)) { div.classList.add("hidden"); }
    return div;
  }
  function gapElement(text) {
    var div = document.createElement("div");
    div.className = "gap";
    div.textContent = text;
    return div;
  }
  function fragment(items) {
    var frag = document.createDocumentFragment();
    items.forEach(function (item) {
      frag.appendChild(typeof item === "string" ? gapElement(item) : lineElement(item));
    });
    return frag;
  }
  function lineCount(items) {
    return items.filter(function (item) { return typeof item !== "string"; }).length;
  }
  function edgeLine(last) {
    var node = last ? list.lastElementChild : list.firstElementChild;
    while (node && !node.classList.contains("line")) {
      node = last ? node.previousElementSibling : node.nextElementSibling;
    }
    return node;
  }
  function cursorAt(last) { var node = edgeLine(last); return node ? node.dataset.cursor : null; }
  function atBottom() { return box.scrollHeight - box.scrollTop - box.clientHeight < 24; }
  function toBottom() { box.scrollTop = box.scrollHeight; }
  function removeEmpty() { var empty = document.getElementById("log-empty"); if (empty) { empty.remove(); } }

  // The window: past MAX_LINES the end away from the reader goes, and the page says so.
  function dropOldest() {
    var dropped = 0;
    while (loaded > MAX_LINES) {
      var first = list.firstElementChild;
      if (first.classList.contains("line")) { loaded -= 1; dropped += 1; }
      first.remove();
    }
    if (dropped) {
      atStart = false;
      topEdge.textContent = "Older lines: scroll up to load them";
      say(plural(dropped, "older line") + " left the view to keep the page fast (it keeps " +
          MAX_LINES + "); scroll up to load them again.");
    }
  }
  function dropNewest() {
    var dropped = 0;
    while (loaded > MAX_LINES) {
      var last = list.lastElementChild;
      if (last.classList.contains("line")) { loaded -= 1; dropped += 1; }
      last.remove();
    }
    if (dropped) {
      detached = true;
      say(plural(dropped, "newer line") + " left the view (it keeps " + MAX_LINES +
          "); scroll to the bottom to see the latest lines again.");
    }
  }

  function append(items) {
    list.appendChild(fragment(items));
    loaded += lineCount(items);
    removeEmpty();
    dropOldest();
  }
  function showPaused() {
    root.dataset.following = "0";
    marker.hidden = pendingLines === 0;
    marker.textContent = plural(pendingLines, "new line") + " \u2193";
    marker.dataset.count = String(pendingLines);
    if (!ended) {
      setState("Paused: you scrolled up. " + plural(pendingLines, "new line") +
               " since; scroll to the bottom (or press the button) to follow again.");
    }
  }
  function receive(items) {
    if (following && !detached) {
      append(items);
      toBottom();
      setState(followingText());
      return;
    }
    pending = pending.concat(items);
    pendingLines += lineCount(items);
    if (pending.length > MAX_LINES) {
      pending = pending.slice(-MAX_LINES);
      pendingLost = true; // more came than the page keeps: the tail is read again on resume
    }
    showPaused();
  }
  function resume() {
    following = true;
    root.dataset.following = "1";
    marker.hidden = true;
    if (detached || pendingLost) { reloadTail(); return; }
    if (pending.length) { append(pending); }
    pending = [];
    pendingLines = 0;
    marker.dataset.count = "0";
    toBottom();
    if (!ended) { setState(followingText()); }
  }

  function getJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) { throw new Error(body.error || ("HTTP " + response.status)); }
          return body;
        });
      });
  }

  function loadOlder() {
    var first = cursorAt(false);
    if (loadingOlder || atStart || !first) { return; }
    loadingOlder = true;
    topEdge.textContent = "Loading older lines\u2026";
    getJson("/api/logs?" + query + "&before=" + encodeURIComponent(first) + "&limit=" + CHUNK)
      .then(function (data) {
        var height = box.scrollHeight;
        var top = box.scrollTop;
        list.insertBefore(fragment(data.lines), list.firstChild);
        loaded += data.lines.length;
        box.scrollTop = top + (box.scrollHeight - height); // the reader's line stays put
        atStart = data.start || data.lines.length === 0;
        if (data.start) {
          topEdge.textContent = "Beginning of the log.";
        } else if (data.lines.length === 0) {
          topEdge.textContent = "Older lines are further back than the viewer reads; " +
            "use the download link below for the whole log.";
        } else {
          topEdge.textContent = "Older lines: scroll up to load them";
        }
        root.dataset.older = String(Number(root.dataset.older || "0") + data.lines.length);
        // Past the window the end away from the reader goes: the newest while reading up
        // here, the oldest if the reader went back to following meanwhile.
        if (following && !detached) { dropOldest(); toBottom(); } else { dropNewest(); }
      })
      .catch(function (error) {
        topEdge.textContent = "Loading older lines failed: " + error.message + " Scroll up to try again.";
      })
      .then(function () { loadingOlder = false; });
  }

  function reloadTail() {
    if (source) { source.close(); source = null; }
    setState("Reading the latest lines\u2026");
    getJson("/api/logs?" + query + "&tail=" + CHUNK)
      .then(function (data) {
        list.textContent = "";
        loaded = 0;
        append(data.lines);
        atStart = data.start;
        topEdge.textContent = data.start ? "Beginning of the log." : "Older lines: scroll up to load them";
        detached = false;
        pending = [];
        pendingLines = 0;
        pendingLost = false;
        marker.dataset.count = "0";
        say("");
        toBottom();
        follow();
      })
      .catch(function (error) { setState("Reading the log failed: " + error.message + " Reload the page."); });
  }

  function follow() {
    if (previous) {
      setState("Previous instance: " + plural(loaded, "line") + ". It no longer changes.");
      return;
    }
    var after = cursorAt(true);
    source = new EventSource("/api/logs/follow?" + query + (after ? "&after=" + encodeURIComponent(after) : ""));
    source.addEventListener("lines", function (event) { receive(JSON.parse(event.data)); });
    source.addEventListener("missed", function (event) {
      var data = JSON.parse(event.data);
      var text = data.count ?
        plural(data.count, "line") + " skipped here: this page fell behind the log. Reload to read them." :
        "Lines may be missing here: the service no longer keeps them. Reload to read them.";
      receive([text]);
    });
    source.addEventListener("end", function (event) {
      ended = JSON.parse(event.data).reason;
      source.close();
      root.dataset.ended = "1";
      setState("Not following any more: " + ended + ". Reload to read the log again.");
    });
    source.onopen = function () { if (following && !detached) { setState(followingText()); } };
    source.onerror = function () {
      if (ended) { return; }
      if (source.readyState === EventSource.CLOSED) {
        setState("Live lines stopped: the service refused or ended the stream. Reload to try again.");
      } else {
        setState("Connection lost; reconnecting\u2026");
      }
    };
  }

  box.addEventListener("scroll", function () {
    // Only a box the reader can scroll loads older lines at its top: a filter leaving a
    // few lines (or a short log) is "at the top" without anyone asking for more.
    if (box.scrollTop < 40 && box.scrollHeight > box.clientHeight + 40) { loadOlder(); }
    if (atBottom()) {
      if (!following) { resume(); }
    } else if (following) {
      following = false;
      showPaused();
    }
  });
  marker.addEventListener("click", function () { toBottom(); resume(); });
  topEdge.addEventListener("click", loadOlder);

  document.getElementById("opt-timestamps").addEventListener("change", function (event) {
    box.classList.toggle("stamps", event.target.checked);
  });
  document.getElementById("opt-wrap").addEventListener("change", function (event) {
    box.classList.toggle("wrap", event.target.checked);
  });
  document.getElementById("opt-filter").addEventListener("input", function (event) {
    filterText = event.target.value.toLowerCase();
    var shown = 0;
    list.querySelectorAll(".line").forEach(function (div) {
      var match = matches(div);
      div.classList.toggle("hidden", !match);
      if (match) { shown += 1; }
    });
    say(filterText ? (shown + " of " + plural(loaded, "loaded line") + " contain \u201c" + event.target.value + "\u201d.") : "");
    if (following) { toBottom(); }
  });
  document.getElementById("download-loaded").addEventListener("click", function () {
    var text = [];
    list.querySelectorAll(".line").forEach(function (div) {
      text.push(div.firstChild.textContent + " " + div.lastChild.textContent);
    });
    var blob = new Blob([text.join("\n") + "\n"], { type: "text/plain" });
    var link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = [root.dataset.namespace, root.dataset.pod, root.dataset.container].join("_") +
      (previous ? "_previous" : "") + ".log";
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(link.href); }, 1000);
  });

  document.getElementById("log-tools").hidden = false;
  root.dataset.following = "1";
  toBottom();
  follow();
}());
