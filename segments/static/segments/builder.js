/* The segment builder: edits the condition tree as controls, keeps it in the form's "Conditions" field
   (#id_tree) and asks the admin for a live count and the first profiles while the marketer edits.
   Built with DOM calls only (no innerHTML, no eval), so it runs under the admin's Content-Security-Policy. */
(function () {
  "use strict";

  var meta, textarea, root, countEl, noteEl, errorEl, previewEl, timer, requestNo = 0;
  var KINDS = [
    ["field", "Profile field"], ["attribute", "Custom attribute"], ["tag", "Tag"], ["agreement", "Agreement"],
    ["event", "Event"], ["commerce", "Commerce"], ["segment", "Another segment"]
  ];
  var OP_LABELS = {
    eq: "is", not: "is not", gt: "greater than", gte: "at least", lt: "less than", lte: "at most",
    contains: "contains", startsWith: "starts with", "in": "is one of", between: "between",
    exists: "has a value", inLastDays: "in the last N days"
  };
  var EVENT_OP_LABELS = { eq: "exactly", gte: "at least", gt: "more than", lte: "at most", lt: "fewer than" };

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") { node.textContent = attrs[key]; } else { node.setAttribute(key, attrs[key]); }
    });
    (children || []).forEach(function (child) { node.appendChild(child); });
    return node;
  }

  function select(cls, options, value, label) {
    var node = el("select", { "class": cls, "aria-label": label });
    options.forEach(function (option) {
      var opt = el("option", { value: String(option[0]), text: option[1] });
      if (String(option[0]) === String(value)) { opt.selected = true; }
      node.appendChild(opt);
    });
    return node;
  }

  // --- the tree <-> the editable model -------------------------------------------------------------------

  function groupFrom(tree) {
    if (tree && Array.isArray(tree.all)) { return { mode: "all", items: tree.all.map(itemFrom) }; }
    if (tree && Array.isArray(tree.any)) { return { mode: "any", items: tree.any.map(itemFrom) }; }
    if (tree && tree.not && Array.isArray(tree.not.any)) { return { mode: "none", items: tree.not.any.map(itemFrom) }; }
    if (tree && tree.not) { return { mode: "none", items: [itemFrom(tree.not)] }; }
    return { mode: "all", items: tree ? [itemFrom(tree)] : [] };
  }

  function itemFrom(node) {
    if (node && (node.all || node.any || node.not)) { return groupFrom(node); }
    var c = { kind: "raw", raw: node };
    if (!node || typeof node !== "object") { return c; }
    if ("field" in node) { return { kind: "field", name: node.field, op: node.op, value: node.value }; }
    if ("attribute" in node) { return { kind: "attribute", name: node.attribute, op: node.op, value: node.value }; }
    if ("tagId" in node) { return { kind: "tag", tagId: node.tagId }; }
    if ("tag" in node) {
      var tag = meta.tags.filter(function (t) { return t.name.toLowerCase() === String(node.tag).toLowerCase(); })[0];
      return { kind: "tag", tagId: tag ? tag.id : "" };
    }
    if ("agreement" in node) { return { kind: "agreement", agreement: node.agreement, state: node.state }; }
    if ("event" in node) {
      return { kind: "event", action: node.event, op: node.op || "gte", count: node.count === undefined ? 1 : node.count,
               withinDays: node.withinDays || "" };
    }
    if ("commerce" in node) { return { kind: "commerce", name: node.commerce, op: node.op, value: node.value }; }
    if ("segment" in node) { return { kind: "segment", segment: node.segment }; }
    return c;
  }

  function treeOf(group) {
    var items = group.items.map(function (item) { return item.items ? treeOf(item) : conditionTree(item); });
    if (group.mode === "any") { return { any: items }; }
    if (group.mode === "none") { return { not: { any: items } }; }
    return { all: items };
  }

  function conditionTree(c) {
    switch (c.kind) {
      case "field": return { field: c.name, op: c.op, value: c.value };
      case "attribute": return { attribute: c.name, op: c.op, value: c.value };
      case "tag": return { tagId: Number(c.tagId) };
      case "agreement": return { agreement: c.agreement, state: c.state };
      case "event":
        var e = { event: c.action || "", op: c.op, count: Number(c.count) };
        if (c.withinDays !== "" && c.withinDays !== undefined) { e.withinDays = Number(c.withinDays); }
        return e;
      case "commerce": return { commerce: c.name, op: c.op, value: c.value };
      case "segment": return { segment: Number(c.segment) };
      default: return c.raw;
    }
  }

  function fresh(kind) {
    switch (kind) {
      case "field": return { kind: kind, name: meta.fields[0].name, op: meta.fields[0].ops[0], value: "" };
      case "attribute":
        var a = meta.attributes[0];
        return a ? { kind: kind, name: a.name, op: a.ops[0], value: "" } : fresh("field");
      case "tag": return { kind: kind, tagId: meta.tags.length ? meta.tags[0].id : "" };
      case "agreement": return { kind: kind, agreement: meta.agreements.length ? meta.agreements[0].key : "", state: "granted" };
      case "event": return { kind: kind, action: "", op: "gte", count: 1, withinDays: 30 };
      case "commerce": return { kind: kind, name: meta.commerce[0].name, op: meta.commerce[0].ops[2] || "gt", value: "" };
      case "segment": return { kind: kind, segment: meta.segments.length ? meta.segments[0].id : "" };
    }
    return fresh("field");
  }

  // --- values by type and op ------------------------------------------------------------------------------

  function typeOf(c) {
    var list = c.kind === "field" ? meta.fields : c.kind === "attribute" ? meta.attributes : meta.commerce;
    var found = list.filter(function (f) { return f.name === c.name; })[0];
    return found || { type: "text", ops: ["eq"] };
  }

  function typed(type, raw) {
    if (type === "number" || type === "clientId") {
      var n = Number(raw);
      return raw !== "" && !isNaN(n) ? n : raw;
    }
    if (type === "boolean") { return raw === "true"; }
    return raw;
  }

  function valueControls(c, changed) {
    var spec = typeOf(c), type = spec.type, op = c.op, out = [];
    if (op === "exists") {
      var yes = select("sb-value", [["true", "yes"], ["false", "no"]], c.value === false ? "false" : "true", "has a value");
      c.value = c.value !== false;
      yes.addEventListener("change", function () { c.value = yes.value === "true"; changed(); });
      return [yes];
    }
    if (type === "boolean") {
      var b = select("sb-value", [["true", "true"], ["false", "false"]], c.value === false ? "false" : "true", "value");
      c.value = c.value !== false;
      b.addEventListener("change", function () { c.value = b.value === "true"; changed(); });
      return [b];
    }
    if (op === "between") {
      var pair = Array.isArray(c.value) ? c.value : ["", ""];
      c.value = pair;
      [0, 1].forEach(function (i) {
        var input = el("input", { type: "text", "class": "sb-value sb-value-" + i, "aria-label": i ? "to" : "from" });
        input.value = pair[i] === undefined ? "" : pair[i];
        input.addEventListener("input", function () { c.value[i] = typed(type, input.value.trim()); changed(); });
        out.push(input);
      });
      return out;
    }
    var input = el("input", { type: op === "inLastDays" ? "number" : "text", "class": "sb-value", "aria-label": "value" });
    if (op === "in") {
      input.value = Array.isArray(c.value) ? c.value.join(", ") : (c.value || "");
      input.placeholder = "a, b, c";
    } else {
      input.value = c.value === undefined || c.value === null ? "" : c.value;
    }
    input.addEventListener("input", function () {
      var raw = input.value.trim();
      if (op === "in") {
        c.value = raw ? raw.split(",").map(function (s) { return typed(type, s.trim()); }) : [];
      } else if (op === "inLastDays") {
        c.value = raw === "" ? "" : Number(raw);
      } else {
        c.value = typed(type, raw);
      }
      changed();
    });
    return [input];
  }

  // --- rendering ------------------------------------------------------------------------------------------

  function renderCondition(c, remove, changed) {
    var row = el("div", { "class": "sb-condition" });
    var kind = select("sb-kind", KINDS, c.kind, "condition kind");
    kind.addEventListener("change", function () {
      var next = fresh(kind.value);
      Object.keys(c).forEach(function (k) { delete c[k]; });
      Object.assign(c, next);
      changed(true);
    });
    row.appendChild(kind);
    if (c.kind === "field" || c.kind === "attribute" || c.kind === "commerce") {
      var list = c.kind === "field" ? meta.fields : c.kind === "attribute" ? meta.attributes : meta.commerce;
      var name = select("sb-field", list.map(function (f) { return [f.name, f.name]; }), c.name, "field");
      name.addEventListener("change", function () {
        c.name = name.value;
        var ops = typeOf(c).ops;
        if (ops.indexOf(c.op) < 0) { c.op = ops[0]; }
        c.value = "";
        changed(true);
      });
      var spec = typeOf(c);
      if (spec.ops.indexOf(c.op) < 0) { c.op = spec.ops[0]; }
      var op = select("sb-op", spec.ops.map(function (o) { return [o, OP_LABELS[o] || o]; }), c.op, "operator");
      op.addEventListener("change", function () {
        var before = c.op;
        c.op = op.value;
        if (["in", "between", "exists", "inLastDays"].indexOf(before) >= 0 || ["in", "between", "exists", "inLastDays"].indexOf(c.op) >= 0) {
          c.value = "";
        }
        changed(true);
      });
      row.appendChild(name);
      row.appendChild(op);
      valueControls(c, changed).forEach(function (node) { row.appendChild(node); });
    } else if (c.kind === "tag") {
      var tag = select("sb-tag", meta.tags.map(function (t) { return [t.id, t.name]; }), c.tagId, "tag");
      c.tagId = tag.value;
      tag.addEventListener("change", function () { c.tagId = tag.value; changed(); });
      row.appendChild(tag);
    } else if (c.kind === "agreement") {
      var agreement = select("sb-agreement", meta.agreements.map(function (a) { return [a.key, a.title]; }), c.agreement, "agreement");
      var state = select("sb-state", meta.states.map(function (s) { return [s, s]; }), c.state, "state");
      agreement.addEventListener("change", function () { c.agreement = agreement.value; changed(); });
      state.addEventListener("change", function () { c.state = state.value; changed(); });
      row.appendChild(agreement);
      row.appendChild(state);
    } else if (c.kind === "event") {
      var action = el("input", { type: "text", "class": "sb-event", "aria-label": "event action", placeholder: "page.visit" });
      action.value = c.action || "";
      action.addEventListener("input", function () { c.action = action.value.trim(); changed(); });
      var eop = select("sb-op", meta.eventOps.map(function (o) { return [o, EVENT_OP_LABELS[o] || o]; }), c.op, "operator");
      eop.addEventListener("change", function () { c.op = eop.value; changed(); });
      var count = el("input", { type: "number", min: "0", "class": "sb-count", "aria-label": "times" });
      count.value = c.count;
      count.addEventListener("input", function () { c.count = count.value; changed(); });
      var days = el("input", { type: "number", min: "1", "class": "sb-days", "aria-label": "within days", placeholder: "any time" });
      days.value = c.withinDays || "";
      days.addEventListener("input", function () { c.withinDays = days.value; changed(); });
      [action, eop, count, el("span", { text: "times, in the last" }), days, el("span", { text: "days" })].forEach(function (n) { row.appendChild(n); });
    } else if (c.kind === "segment") {
      var seg = select("sb-segment", meta.segments.map(function (s) { return [s.id, s.name]; }), c.segment, "segment");
      c.segment = seg.value;
      seg.addEventListener("change", function () { c.segment = seg.value; changed(); });
      row.appendChild(seg);
    } else {
      row.appendChild(el("code", { text: JSON.stringify(c.raw) }));
    }
    var drop = el("button", { type: "button", "class": "sb-remove", "aria-label": "remove condition", text: "✕" });
    drop.addEventListener("click", function () { remove(); changed(true); });
    row.appendChild(drop);
    return row;
  }

  function renderGroup(group, remove, changed) {
    var box = el("div", { "class": "sb-group" });
    var head = el("div", { "class": "sb-group-head" });
    var mode = select("sb-mode", [["all", "All of these"], ["any", "Any of these"], ["none", "None of these"]], group.mode, "group");
    mode.addEventListener("change", function () { group.mode = mode.value; changed(); });
    head.appendChild(mode);
    if (remove) {
      var drop = el("button", { type: "button", "class": "sb-remove-group", text: "remove group" });
      drop.addEventListener("click", function () { remove(); changed(true); });
      head.appendChild(drop);
    }
    box.appendChild(head);
    group.items.forEach(function (item, index) {
      var removeItem = function () { group.items.splice(index, 1); };
      box.appendChild(item.items ? renderGroup(item, removeItem, changed) : renderCondition(item, removeItem, changed));
    });
    var actions = el("div", { "class": "sb-actions" });
    var add = el("button", { type: "button", "class": "sb-add-condition", text: "+ condition" });
    add.addEventListener("click", function () { group.items.push(fresh("field")); changed(true); });
    var nest = el("button", { type: "button", "class": "sb-add-group", text: "+ group" });
    nest.addEventListener("click", function () { group.items.push({ mode: "any", items: [fresh("field")] }); changed(true); });
    actions.appendChild(add);
    actions.appendChild(nest);
    box.appendChild(actions);
    return box;
  }

  // --- wiring ---------------------------------------------------------------------------------------------

  var model;

  function render() {
    root.textContent = "";
    root.appendChild(renderGroup(model, null, changed));
  }

  function changed(rerender) {
    textarea.value = JSON.stringify(treeOf(model));
    if (rerender) { render(); }
    clearTimeout(timer);
    timer = setTimeout(count, 350);
  }

  function csrf() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function count() {
    var mine = ++requestNo;
    noteEl.textContent = "counting…";
    fetch(meta.countUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
      body: textarea.value
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    }).then(function (answer) {
      if (mine !== requestNo) { return; }
      previewEl.textContent = "";
      if (!answer.ok) {
        countEl.textContent = "–";
        noteEl.textContent = "";
        errorEl.hidden = false;
        errorEl.textContent = (answer.body.field ? answer.body.field + ": " : "") + answer.body.error;
        return;
      }
      errorEl.hidden = true;
      countEl.textContent = answer.body.count.toLocaleString() + (answer.body.count === 1 ? " profile" : " profiles");
      countEl.setAttribute("data-count", String(answer.body.count));
      noteEl.textContent = "counted in " + Math.round(answer.body.tookMs) + " ms";
      answer.body.preview.forEach(function (row) {
        previewEl.appendChild(el("li", {}, [el("a", { href: row.url, text: row.label })]));
      });
    }).catch(function () {
      if (mine === requestNo) { noteEl.textContent = "could not count"; }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var metaNode = document.getElementById("segment-builder-meta");
    textarea = document.getElementById("id_tree");
    root = document.getElementById("sb-root");
    if (!metaNode || !textarea || !root) { return; }
    meta = JSON.parse(metaNode.textContent);
    // The builder goes right above the JSON field it edits (after name and description).
    var row = textarea.closest(".form-row");
    var section = document.getElementById("segment-builder");
    if (row && section) { row.parentNode.insertBefore(section, row); }
    countEl = document.getElementById("sb-count");
    noteEl = document.getElementById("sb-count-note");
    errorEl = document.getElementById("sb-error");
    previewEl = document.getElementById("sb-preview");
    var initial = null;
    try { initial = textarea.value.trim() ? JSON.parse(textarea.value) : null; } catch (e) { initial = null; }
    model = groupFrom(initial);
    if (!model.items.length) { model.items.push(fresh("field")); }
    render();
    changed();
  });
})();
