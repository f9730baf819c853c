"use strict";
// The card's custom attributes: the set ones are shown; the others wait, hidden inside the form, behind
// "Add an attribute", whose search filters them by name. Choosing one moves its input up among the set ones.
document.addEventListener("DOMContentLoaded", () => {
  const panel = document.querySelector("[data-card-attributes]");
  if (!panel) return;
  const firstInput = (row) => row.querySelector("input:not([type=hidden]), textarea, select");

  // × empties a value (inputs, and a select back to "not set"): Save then deletes the attribute.
  for (const button of panel.querySelectorAll("[data-attribute-clear]")) {
    button.addEventListener("click", () => {
      const row = button.closest("[data-attribute]");
      for (const input of row.querySelectorAll("input:not([type=hidden]), textarea")) input.value = "";
      for (const select of row.querySelectorAll("select")) select.selectedIndex = 0;
      firstInput(row)?.focus();
    });
  }

  const add = panel.querySelector("[data-attribute-add]");
  if (!add) return;
  const list = panel.querySelector("[data-attribute-list]");
  const unset = panel.querySelector("[data-attribute-unset]");
  const empty = panel.querySelector("[data-attribute-empty]");
  const open = add.querySelector("[data-attribute-open]");
  const picker = document.getElementById(open.getAttribute("aria-controls"));
  const search = picker.querySelector("input[type=search]");
  const nomatch = picker.querySelector("[data-attribute-nomatch]");
  const choices = [...picker.querySelectorAll("[data-attribute-choice]")];
  const available = () => choices.filter((choice) => !choice.closest("li").hidden);

  function filter() {
    const wanted = search.value.trim().toLowerCase();
    for (const choice of choices) {
      choice.closest("li").hidden = choice.dataset.chosen === "true" || !choice.dataset.search.includes(wanted);
    }
    nomatch.hidden = available().length > 0;
  }

  function show(visible) {
    picker.hidden = !visible;
    open.setAttribute("aria-expanded", String(visible));
    if (visible) {
      search.value = "";
      filter();
      search.focus();
    }
  }

  function choose(choice) {
    const row = unset.querySelector(`[data-attribute="${CSS.escape(choice.dataset.attributeChoice)}"]`);
    list.append(row);
    choice.dataset.chosen = "true";
    empty.hidden = true;
    show(false);
    if (choices.every((c) => c.dataset.chosen === "true")) add.hidden = true;
    firstInput(row)?.focus();
  }

  open.addEventListener("click", () => show(picker.hidden));
  search.addEventListener("input", filter);
  search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault(); // not the admin form's Save
      const [first] = available();
      if (first) choose(first);
    } else if (event.key === "Escape") {
      event.preventDefault();
      show(false);
      open.focus();
    }
  });
  for (const choice of choices) choice.addEventListener("click", () => choose(choice));
});
