// The live view refreshes itself: poll the JSON API the page was rendered from and rebuild the
// tables with textContent only (nothing from the server is ever parsed as HTML).
"use strict";
(function () {
  var root = document.getElementById("live");
  if (!root) return;
  var source = root.getAttribute("data-source");
  function cells(tbody, rows, empty, width) {
    while (tbody.firstChild) tbody.removeChild(tbody.firstChild);
    if (!rows.length) rows = [[empty]];
    rows.forEach(function (row) {
      var tr = document.createElement("tr");
      row.forEach(function (value) {
        var td = document.createElement("td");
        td.textContent = value === null || value === undefined ? "" : String(value);
        if (row.length === 1) td.colSpan = width;
        tr.appendChild(td);
      });
      tbody.appendChild(tr);
    });
  }
  function render(data) {
    cells(document.querySelector("#sessions tbody"), data.sessions.map(function (s) {
      return [s.device, s.tuner, s.channel + " " + s.name, s.client, s.account,
              s.upstream_viewers, s.bitrate_kbps + " kb/s", s.duration_s + " s", s.failovers];
    }), "Nobody is watching.", 9);
    cells(document.querySelector("#upstreams tbody"), data.upstreams.map(function (u) {
      return [u.id, u.channel, u.account, u.state, u.viewers];
    }), "No upstream open.", 5);
    cells(document.querySelector("#budgets tbody"), data.budgets.map(function (b) {
      return [b.account, b.limit, b.in_use, b.viewers, b.probes, b.viewers_waiting];
    }), "No provider connection used yet.", 6);
    document.getElementById("failovers").textContent = String(data.failovers);
    cells(document.querySelector("#recent tbody"), data.recent_failovers.map(function (f) {
      return [f.ago_s + " s ago", f.channel + " " + f.name, f.reason, f.host, f.viewers];
    }), "None.", 5);
    root.setAttribute("data-updated", String(data.at));
  }
  function poll() {
    fetch(source, { headers: { "Accept": "application/json" }, cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) render(data); })
      .catch(function () {})
      .then(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 2000);
})();
