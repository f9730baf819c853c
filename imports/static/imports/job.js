// The import job page: poll the job's status while it is queued or running and update the figures in place.
(function () {
  "use strict";
  const page = document.querySelector(".import-job-page");
  if (!page) return;
  const url = page.dataset.statusUrl;
  function set(name, value) {
    page.querySelectorAll('[data-field="' + name + '"]').forEach(function (el) { el.textContent = value; });
  }
  function apply(doc) {
    page.dataset.status = doc.status;
    set("status", doc.status);
    set("phase", doc.phase);
    set("percent", doc.progress.percent);
    set("rowsPerSecond", doc.progress.rowsPerSecond);
    set("lines", doc.lines);
    set("errorCount", doc.errorCount);
    set("warningCount", doc.warningCount);
    document.getElementById("import-progress").value = doc.progress.percent;
    Object.keys(doc.counts).forEach(function (name) {
      const cell = page.querySelector('[data-count="' + name + '"]');
      if (cell) cell.textContent = doc.counts[name];
    });
    const message = page.querySelector('[data-field="message"]');
    message.textContent = doc.message;
    message.hidden = !doc.message;
  }
  function poll() {
    if (page.dataset.status === "done" || page.dataset.status === "failed") return;
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (doc) { if (doc) apply(doc); })
      .finally(function () { window.setTimeout(poll, 1000); });
  }
  window.setTimeout(poll, 500);
})();
