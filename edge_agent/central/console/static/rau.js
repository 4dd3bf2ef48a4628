// Live panels: an element with data-poll="/url" is re-rendered from that URL every
// data-every seconds (the server sends the panel's HTML; no inline script, per the CSP).
(function () {
  "use strict";
  document.querySelectorAll("[data-poll]").forEach(function (panel) {
    var every = Math.max(1, parseFloat(panel.dataset.every || "5")) * 1000;
    function refresh() {
      fetch(panel.dataset.poll, {credentials: "same-origin"}).then(function (response) {
        if (response.ok) { return response.text().then(function (html) { panel.innerHTML = html; }); }
      }).catch(function () {}).then(function () { setTimeout(refresh, every); });
    }
    setTimeout(refresh, every);
  });
})();
