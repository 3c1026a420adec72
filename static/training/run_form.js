// New-run form: reload for another base model or preset; fetch the plan once per edit; fill
// in what the chosen dataset proposes (fields the student has not typed in); "Use this" takes
// a trade-off the plan offers; times are shown in the browser's own time zone.
(function () {
  "use strict";
  var form = document.getElementById("run-form");
  if (!form) return;
  var plan = document.getElementById("plan");
  // Not form.dataset: a form's field named "dataset" hides the element's data attributes.
  var planUrl = form.getAttribute("data-plan-url"), createUrl = form.getAttribute("data-create-url");
  // The knobs the dataset proposes (sdscripts.labels.FROM_DATASET); empty ones take it.
  var FROM_DATASET = ["p_class_tokens", "p_max_train_epochs", "p_num_repeats", "p_resolution"];
  var summary = document.getElementById("ready-summary");
  var touched = {};
  var timer = null, counter = 0;

  function localTimes(root) {
    root.querySelectorAll("time[data-local]").forEach(function (t) {
      var when = new Date(t.getAttribute("datetime"));
      if (!isNaN(when)) t.textContent = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    });
  }
  function fillProposals() {
    var el = document.getElementById("proposals");
    if (!el) return;
    var values = JSON.parse(el.textContent || "{}") || {};
    Object.keys(values).forEach(function (name) {
      var input = form.elements["p_" + name];
      if (input && !touched[input.name] && input.value === "" && values[name] !== null) {
        input.value = values[name];
      }
    });
  }
  function refresh() {
    clearTimeout(timer);
    var params = new URLSearchParams(new FormData(form));
    params.delete("csrfmiddlewaretoken");
    var mine = ++counter;
    fetch(planUrl + "?" + params.toString(), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        if (mine !== counter) return;
        plan.innerHTML = html;
        fillProposals();
        localTimes(plan);
        // The same words beside the submit button: on a phone the plan is far below.
        var ready = plan.querySelector("#timing .ready");
        if (summary) summary.innerHTML = ready ? ready.innerHTML : "";
      })
      .catch(function () { plan.textContent = "Could not compute the plan right now."; });
  }
  function later() { clearTimeout(timer); timer = setTimeout(refresh, 300); }

  // Typing and ticking: "input"; choosing from a list: "change" (one request per edit).
  form.addEventListener("input", function (e) {
    if (e.target.tagName === "SELECT") return;
    if (e.target.name) touched[e.target.name] = true;
    later();
  });
  form.addEventListener("change", function (e) {
    if (e.target.tagName !== "SELECT") return;
    var name = e.target.name;
    if (name === "preset" || name === "base_model") {
      var q = new URLSearchParams();
      ["dataset", "base_model", "preset", "name"].forEach(function (key) {
        var field = form.elements[key];
        if (field && field.value) q.set(key, field.value);
      });
      location.href = createUrl + "?" + q.toString();
      return;
    }
    if (name === "dataset") {
      FROM_DATASET.forEach(function (key) {
        var input = form.elements[key];
        if (input && !touched[key]) input.value = "";
      });
      refresh();
      return;
    }
    later();
  });
  plan.addEventListener("click", function (e) {
    var button = e.target.closest("button[data-set-field]");
    if (!button) return;
    var input = form.elements[button.dataset.setField];
    if (!input) return;
    input.value = button.dataset.setValue;
    touched[input.name] = true;
    var section = input.closest("details");
    if (section) section.open = true;
    refresh();
  });
  localTimes(document);
  if (form.elements.dataset && form.elements.dataset.value) refresh();
})();
