"use strict";
// Starts Redoc on the API docs page from the container's data attributes (no inline script, so a strict
// Content-Security-Policy allows the page).
(function () {
  const container = document.getElementById("redoc-container");
  const options = JSON.parse(container.dataset.options || "{}");
  window.Redoc.init(container.dataset.specUrl, options, container);
})();
