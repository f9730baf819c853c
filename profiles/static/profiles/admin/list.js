"use strict";
// The profiles list's agreement filter: a choice applies at once, and agreements left at "any" stay out of the URL.
document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form[data-autosubmit]")) {
    form.addEventListener("submit", () => {
      for (const select of form.querySelectorAll("select")) {
        if (!select.value) select.disabled = true;
      }
    });
    for (const select of form.querySelectorAll("select")) {
      select.addEventListener("change", () => form.requestSubmit());
    }
  }
});
// Back to a list page kept in the browser's cache: the selects disabled on submit work again.
window.addEventListener("pageshow", () => {
  for (const select of document.querySelectorAll("form[data-autosubmit] select:disabled")) select.disabled = false;
});
