// Admin console: "Copy" buttons (data-copy="<id of the element to copy>").
// Served as a file so the page's CSP can stay `script-src 'self'`.
'use strict';
document.addEventListener('click', function (event) {
  var button = event.target instanceof Element ? event.target.closest('button[data-copy]') : null;
  if (!button) return;
  var source = document.getElementById(button.getAttribute('data-copy'));
  if (!source) return;
  var text = source.textContent.trim();
  var status = document.querySelector('.copy-status');
  function done(message) {
    if (status) status.textContent = message;
    button.textContent = 'Copied';
    setTimeout(function () { button.textContent = 'Copy'; }, 2000);
  }
  function selectIt() {
    // No clipboard API (plain http on a non-localhost host): select the text for Ctrl+C.
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    if (status) status.textContent = 'Selected: press Ctrl+C (or Cmd+C) to copy.';
  }
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(function () { done('Copied to the clipboard.'); }, selectIt);
  } else {
    selectIt();
  }
});
