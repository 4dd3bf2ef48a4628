// Live panels. An element with data-events="/url" is re-rendered from that URL's
// server-sent events (console/live.py: each "panel" event carries the panel's HTML);
// when the stream cannot be had (refused with 429, an old proxy, the console gone) the
// panel falls back to polling data-poll="/url" every data-every seconds.
// No inline script, per the CSP; the server sends the panels' HTML.
(function () {
  "use strict";
  function poll(panel) {
    var every = Math.max(1, parseFloat(panel.dataset.every || "5")) * 1000;
    function refresh() {
      fetch(panel.dataset.poll, {credentials: "same-origin"}).then(function (response) {
        if (response.ok) { return response.text().then(function (html) { panel.innerHTML = html; }); }
      }).catch(function () {}).then(function () { setTimeout(refresh, every); });
    }
    setTimeout(refresh, every);
  }
  function listen(panel) {
    var source = new EventSource(panel.dataset.events);
    panel.dataset.live = "connecting";
    source.addEventListener("open", function () { panel.dataset.live = "events"; });
    source.addEventListener("panel", function (event) { panel.innerHTML = event.data; });
    source.addEventListener("closing", function () { source.close(); panel.dataset.live = "closed"; poll(panel); });
    source.addEventListener("error", function () {
      // A refusal (429, 401) closes the source for good; a dropped stream reconnects by itself.
      if (source.readyState === EventSource.CLOSED) { panel.dataset.live = "polling"; poll(panel); }
    });
  }
  document.querySelectorAll("[data-poll]").forEach(function (panel) {
    if (panel.dataset.events && window.EventSource) { listen(panel); } else { poll(panel); }
  });
})();
