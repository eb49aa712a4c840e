// fasttrack-gitops console: keeps an open page live. Served from /static (the CSP allows no inline script).
// Pages name what they follow in data- attributes on <body>; without JavaScript they are still whole, only not live.
"use strict";
(function () {
  var body = document.body;
  var page = body.dataset.page;
  var liveBadge = document.getElementById("live");
  var ENDED = ["succeeded", "reused", "failed", "skipped", "cancelled"];

  function setState(el, prefix, state) {
    if (!el) return;
    el.className = el.className.split(" ").filter(function (c) { return c.indexOf(prefix) !== 0; }).join(" ") + " " + prefix + state;
    el.textContent = state;
  }

  function seconds(s) { return s < 1 ? Math.round(s * 1000) + "ms" : s < 120 ? s.toFixed(1) + "s" : Math.round(s / 60) + "m"; }

  function onTask(data) {
    if (page === "job") {
      var node = null, row = null;
      document.querySelectorAll(".dag .node").forEach(function (n) { if (n.dataset.task === data.task) node = n; });
      document.querySelectorAll("#tasks tr[data-task]").forEach(function (r) { if (r.dataset.task === data.task) row = r; });
      if (node) {
        node.setAttribute("class", "node state-" + data.state);
        node.setAttribute("aria-label", data.task + ": " + data.state);
        var label = node.querySelector("text.state"); if (label) label.textContent = data.state;
        var title = node.querySelector("title"); if (title) title.textContent = data.task + ": " + data.state;
      }
      if (row) {
        setState(row.querySelector("[data-field=state]"), "state-", data.state);
        row.querySelector("[data-field=attempts]").textContent = data.attempts;
        row.querySelector("[data-field=exit_code]").textContent = data.exit_code === null ? "" : data.exit_code;
        row.querySelector("[data-field=reason]").textContent = data.reason || "";
        if (data.duration !== null) row.querySelector("[data-field=duration]").textContent = seconds(data.duration);
      }
    } else if (page === "task" && data.task === body.dataset.task) {
      setState(document.getElementById("task-state"), "state-", data.state);
      var code = document.getElementById("task-exit-code"); if (code) code.textContent = data.exit_code === null ? "" : data.exit_code;
      var took = document.getElementById("task-duration"); if (took && data.duration !== null) took.textContent = seconds(data.duration);
      if (!body.dataset.follow && data.attempts > 0 && ENDED.indexOf(data.state) < 0) location.reload(); // its first attempt began
    }
  }

  function onJob(data) {
    if (page === "job" && data.job === body.dataset.job && data.status) {
      setState(document.getElementById("job-status"), "status-", data.status);
      var cancel = document.getElementById("cancel-form");
      if (cancel && ["succeeded", "failed", "cancelled", "invalid"].indexOf(data.status) >= 0) cancel.hidden = true;
    } else if (page === "jobs") {
      var row = null;
      document.querySelectorAll("tr[data-job]").forEach(function (r) { if (r.dataset.job === data.job) row = r; });
      if (row) { if (data.status) setState(row.querySelector("[data-status]"), "status status-", data.status); }
      else { var notice = document.getElementById("new-jobs"); if (notice) notice.hidden = false; }
    }
  }

  if (body.dataset.events && window.EventSource) {
    // From the last event before the page's data was read: what changed since then is replayed first.
    var url = body.dataset.events + (body.dataset.events.indexOf("?") < 0 ? "?" : "&") + "last_event_id=" + body.dataset.since;
    var source = new EventSource(url);
    source.addEventListener("open", function () { if (liveBadge) liveBadge.textContent = "live"; });
    source.addEventListener("error", function () { if (liveBadge) liveBadge.textContent = "reconnecting…"; });
    source.addEventListener("task", function (e) { onTask(JSON.parse(e.data)); });
    source.addEventListener("job", function (e) { onJob(JSON.parse(e.data)); });
    source.addEventListener("reset", function () { location.reload(); });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  // Follow a running task's log: its new whole lines, rendered and masked by the daemon, every second.
  var log = document.getElementById("log");
  if (page === "task" && body.dataset.follow && log) {
    var offset = Number(body.dataset.offset || 0);
    var status = document.getElementById("follow");
    var stuck = true;
    log.addEventListener("scroll", function () { stuck = log.scrollTop + log.clientHeight >= log.scrollHeight - 8; });
    log.scrollTop = log.scrollHeight;
    var poll = function () {
      fetch(body.dataset.follow + "&offset=" + offset, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (data) {
          if (data.html) { log.insertAdjacentHTML("beforeend", data.html); if (stuck) log.scrollTop = log.scrollHeight; }
          offset = data.offset;
          if (data.ended && !data.html) { if (status) status.textContent = "(ended)"; return; }
          setTimeout(poll, data.html ? 200 : 1000);
        })
        .catch(function () { if (status) status.textContent = "(not following: reload the page)"; });
    };
    poll();
  }
})();
