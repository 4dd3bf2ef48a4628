// Live panels: each element with data-live="URL" is replaced by the HTML its
// server-sent event stream sends. Hidden crossing fields follow the truck in the lane,
// so a form never acts on a truck the officer did not see (the server checks it too).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const panel of document.querySelectorAll("[data-live]")) {
    const source = new EventSource(panel.dataset.live);
    source.addEventListener("panel", (e) => {
      panel.innerHTML = e.data;
      const status = panel.querySelector("[data-crossing]");
      if (status) {
        const crossing = status.dataset.crossing;
        for (const field of document.querySelectorAll("input[data-crossing-field]")) {
          field.value = crossing;
        }
        const select = document.getElementById("control-crossing");
        if (select && crossing && ![...select.options].some((o) => o.value === crossing)) {
          const plate = status.querySelector("[data-plate=tractor]");
          select.prepend(new Option("current: " + (plate ? plate.textContent : crossing), crossing, true, true));
        }
      }
      document.body.dataset.liveUpdates = String(Number(document.body.dataset.liveUpdates || 0) + 1);
    });
  }
});
