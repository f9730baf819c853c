/*
 * Customer profiles tracker: page visits and tagged forms, sent to the collect endpoint next to this script.
 * No dependencies. Include it once per page:
 *   <script async src="https://t.shop.example/tracker.js" data-site-key="SITE_KEY"></script>
 * Options on the tag: data-require-consent (send nothing until crm('consent', true)), data-endpoint (another
 * collect address). Commands: crm('consent', true|false), crm('page') (a visit, for single-page apps); calls
 * made before the script loads are queued with:
 *   window.crm = window.crm || function () { (crm.q = crm.q || []).push(arguments); };
 * The browser's uuid lives in an HttpOnly cookie the server sets; this script never reads or writes it.
 */
(function (w, d) {
  'use strict';
  var script = d.currentScript || d.querySelector('script[data-site-key]');
  if (!script || w.__crmTracker) return;
  w.__crmTracker = true;

  var key = script.getAttribute('data-site-key');
  var endpoint = script.getAttribute('data-endpoint') || new URL('t/collect', script.src).href;
  var needsConsent = script.hasAttribute('data-require-consent');
  var STORE = 'crm:consent';
  var FIELDS = { email: 1, firstName: 1, lastName: 1, phone: 1 };
  var started = false;

  function stored() {
    try { return w.localStorage.getItem(STORE); } catch (e) { return null; }
  }
  function store(value) {
    try { w.localStorage.setItem(STORE, value); } catch (e) { /* storage blocked: this page only */ }
    memory = value;
  }
  var memory = stored();
  // With data-require-consent: only after a yes. Without: unless the visitor said no.
  function allowed() {
    return needsConsent ? memory === '1' : memory !== '0';
  }

  function send(body, always) {
    if (!key || (!always && !allowed())) return;
    body.siteKey = key;
    if (needsConsent && allowed()) body.consent = true;
    var json = JSON.stringify(body);
    if (w.fetch) {
      // keepalive: the request outlives the page (a form that navigates away).
      w.fetch(endpoint, {
        method: 'POST', body: json, credentials: 'include', keepalive: true, mode: 'cors',
        headers: { 'Content-Type': 'application/json' }
      })['catch'](function () {});
      return;
    }
    var xhr = new XMLHttpRequest();
    xhr.open('POST', endpoint, true);
    xhr.withCredentials = true;
    xhr.setRequestHeader('Content-Type', 'application/json');
    xhr.send(json);
  }

  function page() {
    return { url: w.location.href, title: d.title || '', referrer: d.referrer || '' };
  }

  function visit() {
    var body = page();
    body.type = 'page.visit';
    send(body);
  }

  function values(el) {
    var type = (el.type || '').toLowerCase();
    if (type === 'password' || type === 'file' || el.disabled) return [];
    if ((type === 'checkbox' || type === 'radio') && !el.checked) return [];
    if (el.multiple && el.options) {
      var picked = [];
      for (var i = 0; i < el.options.length; i++) if (el.options[i].selected) picked.push(el.options[i].value);
      return picked;
    }
    return [el.value == null ? '' : String(el.value)];
  }

  function fields(form) {
    var out = {}, attributes = {}, tags = [], hasAttributes = false;
    var els = form.querySelectorAll('[data-crm-field]');
    for (var i = 0; i < els.length; i++) {
      var name = els[i].getAttribute('data-crm-field'), list = values(els[i]);
      for (var j = 0; j < list.length; j++) {
        var value = list[j].trim();
        if (!value) continue;
        if (name === 'tags') {
          var parts = value.split(',');
          for (var k = 0; k < parts.length; k++) if (parts[k].trim()) tags.push(parts[k].trim());
        } else if (name.indexOf('attributes.') === 0 && name.length > 11) {
          attributes[name.slice(11)] = value;
          hasAttributes = true;
        } else if (FIELDS.hasOwnProperty(name)) {
          out[name] = value;
        }
      }
    }
    if (hasAttributes) out.attributes = attributes;
    if (tags.length) out.tags = tags;
    return out;
  }

  // Capture phase: runs before the page's own handlers, whatever they do with the event.
  d.addEventListener('submit', function (event) {
    var form = event.target && event.target.closest ? event.target.closest('form[data-crm-form]') : null;
    if (!form) return;
    var body = page();
    body.type = 'form.submit';
    body.form = form.getAttribute('data-crm-form') || form.getAttribute('id') || form.getAttribute('name') || '';
    body.fields = fields(form);
    send(body);
  }, true);

  function command(name, arg) {
    if (name === 'consent') {
      if (arg) {
        var before = allowed();
        store('1');
        if (!before && started) visit();
      } else {
        store('0');
        // The cookie is HttpOnly: only the server can expire it.
        send({ type: 'consent.withdraw' }, true);
      }
    } else if (name === 'page') {
      visit();
    }
  }

  var queue = (w.crm && w.crm.q) || [];
  w.crm = function () { command.apply(null, arguments); };
  for (var q = 0; q < queue.length; q++) command.apply(null, queue[q]);
  started = true;
  visit();
})(window, document);
