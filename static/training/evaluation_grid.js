// Run page, evaluation part: fills grid cells as images arrive over the run's socket
// (run_live.js re-dispatches every message as a "run:message" event), enlarges on click.
(function () {
  "use strict";
  var section = document.getElementById("evaluation");
  var root = document.getElementById("run");
  if (!section || !root) return;
  var lightbox = document.getElementById("eval-lightbox");
  var reloading = false;

  // Keeps run_live.js reconnecting after the run ended while an evaluation still renders.
  function markActive() {
    var active = section.querySelector('.eval[data-terminal=""]');
    if (active) root.dataset.evaluating = "1"; else delete root.dataset.evaluating;
  }

  function reloadSoon() {
    if (reloading) return;
    reloading = true;
    setTimeout(function () { location.reload(); }, 800);
  }

  function fill(m) {
    var cell = section.querySelector('[data-cell="' + m.evaluation + "/" + m.cell + '"]');
    if (!cell) { reloadSoon(); return; }  // an evaluation this page does not show yet
    if (cell.querySelector("img")) return;
    var link = document.createElement("a");
    link.href = m.url;
    var img = document.createElement("img");
    img.src = m.url;
    img.alt = (m.epoch ? "epoch " + m.epoch + ", strength " + m.strength : "base model") + ", seed " + m.seed;
    link.appendChild(img);
    cell.appendChild(link);
  }

  function state(m) {
    var box = section.querySelector('.eval[data-evaluation="' + m.id + '"]');
    if (!box) { reloadSoon(); return; }
    var badge = box.querySelector("[data-eval-status]");
    badge.textContent = m.status_display;
    badge.className = "badge status-" + m.status;
    var progress = m.done + "/" + m.total + " images";
    if (m.step && !m.is_terminal) progress += " (step " + m.step[0] + "/" + m.step[1] + ")";
    box.querySelector("[data-eval-progress]").textContent = progress;
    var message = (m.failure_reason ? m.failure_reason + ": " : "") + (m.status_message || "");
    if (message) box.querySelector("[data-eval-message]").textContent = message;
    var was = box.dataset.terminal === "1";
    box.dataset.terminal = m.is_terminal ? "1" : "";
    markActive();
    if (m.is_terminal && !was) reloadSoon();  // its cancel button and the published marks
  }

  root.addEventListener("run:message", function (e) {
    var m = e.detail;
    if (m.type === "eval_image") fill(m);
    else if (m.type === "evaluation") state(m);
  });

  section.addEventListener("click", function (e) {
    var img = e.target.closest(".eval-grid img");
    if (!img || !lightbox || !lightbox.showModal) return;
    e.preventDefault();
    lightbox.querySelector("img").src = img.src;
    lightbox.querySelector("[data-caption]").textContent = img.alt;
    lightbox.showModal();
  });
  if (lightbox) lightbox.addEventListener("click", function (e) { if (e.target === lightbox) lightbox.close(); });
  markActive();
})();
