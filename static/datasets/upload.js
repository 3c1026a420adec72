// Drag-and-drop for the dataset upload page: dropped files go into the form's file input.
(function () {
  "use strict";
  const zone = document.getElementById("dropzone");
  const input = zone && zone.querySelector("input[type=file]");
  const list = document.getElementById("chosen");
  if (!zone || !input) return;

  function showChosen() {
    list.replaceChildren();
    let total = 0;
    for (const file of input.files) {
      total += file.size;
      const item = document.createElement("li");
      item.textContent = file.name + " (" + (file.size / 1e6).toFixed(1) + " MB)";
      list.appendChild(item);
    }
    if (input.files.length) {
      const sum = document.createElement("li");
      sum.textContent = input.files.length + " file(s), " + (total / 1e6).toFixed(1) + " MB in all";
      list.appendChild(sum);
    }
  }

  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (event) {
      event.preventDefault();
      zone.classList.add("ds-dragover");
    });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function () {
      zone.classList.remove("ds-dragover");
    });
  });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    const merged = new DataTransfer();
    for (const file of input.files) merged.items.add(file);
    for (const file of event.dataTransfer.files) merged.items.add(file);
    input.files = merged.files;
    showChosen();
  });
  input.addEventListener("change", showChosen);
})();
