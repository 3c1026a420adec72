// New-run form: reload for another preset; fetch the plan and lint while the user edits.
(function () {
  "use strict";
  var form = document.getElementById("run-form");
  if (!form) return;
  var plan = document.getElementById("plan");
  var timer = null, counter = 0;
  function refresh() {
    var params = new URLSearchParams(new FormData(form));
    params.delete("csrfmiddlewaretoken");
    var mine = ++counter;
    fetch(form.dataset.planUrl + "?" + params.toString(), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) { if (mine === counter) plan.innerHTML = html; })
      .catch(function () { plan.textContent = "Could not compute the plan right now."; });
  }
  function later() { clearTimeout(timer); timer = setTimeout(refresh, 300); }
  form.addEventListener("input", later);
  form.addEventListener("change", function (e) {
    if (e.target.name === "preset") {
      var q = new URLSearchParams({ preset: e.target.value });
      var ds = form.elements.dataset && form.elements.dataset.value;
      if (ds) q.set("dataset", ds);
      location.href = form.dataset.createUrl + "?" + q.toString();
      return;
    }
    later();
  });
  if (form.elements.dataset && form.elements.dataset.value) refresh();
})();
