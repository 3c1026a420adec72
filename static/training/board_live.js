// Dashboard: the lab board and my runs, re-rendered by the server over ws/lab/.
(function () {
  "use strict";
  var board = document.getElementById("lab-board");
  if (!board || !window.WebSocket) return;
  var runs = document.getElementById("my-runs");
  var live = document.getElementById("board-live");
  var attempts = 0;
  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(scheme + location.host + board.dataset.ws);
    ws.onopen = function () { attempts = 0; live.classList.add("on"); };
    ws.onmessage = function (e) {
      var m = JSON.parse(e.data);
      if (m.type !== "board") return;
      board.innerHTML = m.board;  // rendered and escaped by Django templates
      if (runs) runs.innerHTML = m.runs;
    };
    ws.onclose = function (e) {
      live.classList.remove("on");
      // 4401: the login behind the socket ended (logged out); a new one would be refused.
      if (e.code === 4401) return;
      var delay = Math.min(30000, 500 * Math.pow(2, attempts++)) * (0.75 + Math.random() / 2);
      setTimeout(connect, delay);
    };
  }
  connect();
})();
