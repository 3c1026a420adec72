// Run page: live state, progress, loss chart and log over ws/runs/<id>/.
// Reconnects with back-off and resumes after the last log seq it has (no gap, no repeat).
(function () {
  "use strict";
  var root = document.getElementById("run");
  if (!root || !window.WebSocket) return;
  var logEl = document.getElementById("log");
  var followBtn = document.getElementById("log-follow");
  var live = document.getElementById("run-live");
  var lastSeq = 0, attempts = 0, follow = true, finished = false;
  var wasTerminal = ["succeeded", "failed", "cancelled"].indexOf(root.dataset.status) >= 0;
  var points = JSON.parse(document.getElementById("loss-points").textContent || "[]") || [];
  var MAX_LOG_CHARS = 2000000;

  function text(id, value) { var el = document.getElementById(id); if (el) el.textContent = value; }
  function fraction(a, b) { return b ? a + "/" + b : String(a); }

  function atBottom() { return logEl.scrollTop + logEl.clientHeight >= logEl.scrollHeight - 24; }
  logEl.addEventListener("scroll", function () {
    follow = atBottom();
    followBtn.hidden = follow;
  });
  followBtn.addEventListener("click", function () {
    follow = true; followBtn.hidden = true; logEl.scrollTop = logEl.scrollHeight;
  });

  function appendLog(chunks) {
    var added = "";
    chunks.forEach(function (c) {
      if (c[0] > lastSeq) { added += c[1]; lastSeq = c[0]; }
    });
    if (!added) return;
    var keep = follow;
    logEl.appendChild(document.createTextNode(added));
    if (logEl.textContent.length > MAX_LOG_CHARS) {
      logEl.textContent = logEl.textContent.slice(-MAX_LOG_CHARS / 2);
      document.getElementById("log-truncated").hidden = false;
    }
    if (keep) logEl.scrollTop = logEl.scrollHeight;
  }

  function drawChart() {
    var line = document.getElementById("loss-line");
    if (!points.length) { line.setAttribute("points", ""); return; }
    var xs = points.map(function (p) { return p[0]; }), ys = points.map(function (p) { return p[1]; });
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    var w = 600, h = 200, pad = 8;
    var coords = points.map(function (p) {
      var x = x1 > x0 ? pad + (w - 2 * pad) * (p[0] - x0) / (x1 - x0) : w / 2;
      var y = y1 > y0 ? h - pad - (h - 2 * pad) * (p[1] - y0) / (y1 - y0) : h / 2;
      return x.toFixed(1) + "," + y.toFixed(1);
    });
    line.setAttribute("points", coords.join(" "));
    line.setAttribute("data-count", String(points.length));
    text("loss-range", "loss " + y0.toFixed(4) + " – " + y1.toFixed(4) + " over steps " + x0 + "–" + x1);
  }

  function showState(s) {
    var badge = document.getElementById("run-status");
    badge.textContent = s.status_display;
    badge.className = "badge status-" + s.status;
    root.dataset.status = s.status;
    var pct = Math.max(0, Math.min(100, s.progress_pct || 0));
    var bar = document.getElementById("run-bar");
    bar.firstElementChild.style.width = pct + "%";
    bar.setAttribute("aria-valuenow", String(Math.round(pct)));
    text("run-step", fraction(s.step, s.total_steps));
    text("run-epoch", fraction(s.epoch, s.total_epochs));
    if (s.loss !== null && s.loss !== undefined) {
      text("run-loss", Number(s.loss).toFixed(4));
      var last = points.length ? points[points.length - 1][0] : -1;
      if (s.step > last) { points.push([s.step, s.loss]); drawChart(); }
    }
    text("run-speed", s.speed ? Number(s.speed).toFixed(2) + " it/s" : "—");
    if (s.status === "running" && s.eta_seconds) showReady(s.eta_seconds);
    var msg = (s.failure_reason ? s.failure_reason + ": " : "") + (s.status_message || "");
    if (msg) text("run-message", msg);
    if (s.is_terminal) {
      finished = true;
      // Files (and samples missed while offline) come from the server: reload once at the end.
      if (!wasTerminal) { wasTerminal = true; setTimeout(function () { location.reload(); }, 800); }
    }
  }

  // "Ready at about 14:35": the trainer's own remaining time while it runs; while the run
  // waits, the server's estimate (queue and history) is asked for every 20 s.
  var readyEl = document.getElementById("run-ready");
  function about(seconds) {
    var minutes = Math.round(seconds / 60);
    if (seconds < 60) return "under a minute";
    if (minutes < 60) return "about " + minutes + " min";
    var h = Math.floor(minutes / 60), m = minutes % 60;
    return "about " + h + " h" + (m ? " " + m + " min" : "");
  }
  function clock(when) { return when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }); }
  function localTimes() {
    readyEl.querySelectorAll("time[data-local]").forEach(function (t) {
      var when = new Date(t.getAttribute("datetime"));
      if (!isNaN(when)) t.textContent = clock(when);
    });
  }
  function showReady(seconds) {
    var when = new Date(Date.now() + seconds * 1000);
    readyEl.textContent = "ready at about " + clock(when) + " (in " + about(seconds) + ")";
  }
  function askReady() {
    if (["draft", "pending_approval", "queued", "assigned", "preparing"].indexOf(root.dataset.status) < 0) return;
    fetch(readyEl.dataset.url, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) { readyEl.innerHTML = html; localTimes(); })
      .catch(function () {});
  }
  localTimes();
  setInterval(askReady, 20000);

  // A sample the runner recorded while the trainer runs (each once; the page may have it).
  function addSample(m) {
    var box = document.getElementById("samples");
    if (!box || box.querySelector('[data-sample-id="' + m.id + '"]')) return;
    var none = document.getElementById("samples-none");
    if (none) none.remove();
    var fig = document.createElement("figure");
    fig.dataset.sampleId = String(m.id);
    var link = document.createElement("a");
    link.href = m.url;
    var img = document.createElement("img");
    img.src = m.url;
    img.alt = "Sample " + m.index;
    link.appendChild(img);
    var cap = document.createElement("figcaption");
    cap.className = "small muted";
    var where = [];
    if (m.epoch !== null && m.epoch !== undefined) where.push("epoch " + m.epoch);
    if (m.step !== null && m.step !== undefined) where.push("step " + m.step);
    cap.appendChild(document.createTextNode(where.join(" · ")));
    cap.appendChild(document.createElement("br"));
    var prompt = m.prompt || "";
    cap.appendChild(document.createTextNode(prompt.length > 80 ? prompt.slice(0, 79) + "…" : prompt));
    fig.appendChild(link);
    fig.appendChild(cap);
    box.appendChild(fig);
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var url = scheme + location.host + root.dataset.ws + (lastSeq ? "?after=" + lastSeq : "");
    var ws = new WebSocket(url);
    ws.onopen = function () { attempts = 0; live.classList.add("on"); };
    ws.onmessage = function (e) {
      var m = JSON.parse(e.data);
      if (m.type === "log") {
        if (m.truncated) document.getElementById("log-truncated").hidden = false;
        appendLog(m.chunks);
      } else if (m.type === "state" || m.type === "progress") {
        showState(m.state);
      } else if (m.type === "sample") {
        addSample(m);
      }
      // Other parts of the page (the evaluation grid) listen for what concerns them.
      root.dispatchEvent(new CustomEvent("run:message", { detail: m }));
    };
    ws.onclose = function (e) {
      live.classList.remove("on");
      // 4401: the login behind the socket ended (logged out); a new one would be refused.
      if ((finished && !root.dataset.evaluating) || e.code === 4401) return;
      var delay = Math.min(30000, 500 * Math.pow(2, attempts++)) * (0.75 + Math.random() / 2);
      setTimeout(connect, delay);
    };
    root._ws = ws;  // lets the browser test drop the connection
  }

  drawChart();
  connect();
})();
