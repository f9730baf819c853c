// The demo page's own script: the tracker's command queue (calls made before tracker.js loads wait in it),
// the consent buttons, and a sign-up form that stays on the page (the tracker has sent its form.submit by then).
window.crm = window.crm || function () { (window.crm.q = window.crm.q || []).push(arguments); };

document.addEventListener('DOMContentLoaded', function () {
  var form = document.getElementById('signup');
  var status = document.getElementById('demo-status');
  if (!form) return;
  form.addEventListener('submit', function (event) {
    event.preventDefault();
    status.textContent = 'Thanks, ' + form.elements.email.value + ': you are signed up.';
    form.reset();
  });
  document.getElementById('demo-consent-yes').addEventListener('click', function () {
    window.crm('consent', true);
    status.textContent = 'Tracking allowed.';
  });
  document.getElementById('demo-consent-no').addEventListener('click', function () {
    window.crm('consent', false);
    status.textContent = 'Consent withdrawn: nothing more is sent, and the cookie is cleared.';
  });
});
