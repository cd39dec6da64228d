// Passkeys on the login page ("Sign in with a passkey", and passkeys offered
// in the username field's autofill) and on the account page ("Add a
// passkey"), over @simplewebauthn/browser (loaded before this file, served
// by this server: global SimpleWebAuthnBrowser). Served as a file so the
// pages' CSP stays `script-src 'self'`. The buttons stay hidden where
// passkeys cannot work (no script, no WebAuthn); the password form works
// without any of this.
'use strict';
(function () {
  var lib = window.SimpleWebAuthnBrowser;
  if (!lib || !lib.browserSupportsWebAuthn()) return;

  // Our JSON endpoints: the session's CSRF token travels in a header.
  function post(url, csrfToken, body) {
    return fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', 'x-csrf-token': csrfToken },
      body: JSON.stringify(body),
    }).then(function (res) {
      return res.json().then(
        function (data) {
          if (!res.ok) throw new Error(data.error_description || 'The server refused the request.');
          return data;
        },
        function () {
          throw new Error('The server answered unexpectedly (' + res.status + ').');
        },
      );
    });
  }

  function showError(element, err) {
    // The person closed the browser's dialog or it timed out: say so plainly.
    var message = err && err.name === 'NotAllowedError' ? 'The passkey request was cancelled or timed out.' : (err && err.message) || String(err);
    element.textContent = message;
    element.hidden = false;
  }

  var signIn = document.getElementById('passkey-sign-in');
  if (signIn) {
    var csrf = signIn.getAttribute('data-csrf-token');
    var extra = { rid: signIn.getAttribute('data-rid') || undefined, next: signIn.getAttribute('data-next') || undefined };
    var error = document.getElementById('passkey-error');

    var authenticate = function (useBrowserAutofill) {
      return post('/login/passkey/options', csrf, {})
        .then(function (optionsJSON) {
          return lib.startAuthentication({ optionsJSON: optionsJSON, useBrowserAutofill: useBrowserAutofill });
        })
        .then(function (response) {
          return post('/login/passkey', csrf, { response: response, rid: extra.rid, next: extra.next });
        })
        .then(function (result) {
          window.location.assign(result.location);
        });
    };

    signIn.hidden = false;
    var button = document.getElementById('passkey-sign-in-button');
    button.addEventListener('click', function () {
      error.hidden = true;
      button.disabled = true;
      // Starting this cancels a waiting autofill request (the library aborts it).
      authenticate(false).catch(function (err) {
        button.disabled = false;
        showError(error, err);
      });
    });

    // Conditional UI: passkeys also offered in the username field's autofill.
    lib.browserSupportsWebAuthnAutofill().then(function (supported) {
      if (!supported) return;
      authenticate(true).catch(function () {
        // Cancelled (the button was used instead) or refused: the button and the password form remain.
      });
    });
  }

  var add = document.getElementById('passkey-add');
  if (add) {
    var addCsrf = add.getAttribute('data-csrf-token');
    var addError = document.getElementById('passkey-error');
    var addButton = document.getElementById('passkey-add-button');
    var name = document.getElementById('passkey-name');
    add.hidden = false;
    addButton.addEventListener('click', function () {
      addError.hidden = true;
      addButton.disabled = true;
      post('/account/passkeys/options', addCsrf, {})
        .then(function (optionsJSON) {
          return lib.startRegistration({ optionsJSON: optionsJSON });
        })
        .then(function (response) {
          return post('/account/passkeys', addCsrf, { response: response, name: name.value });
        })
        .then(function () {
          // The list comes from the server: reload the page to show the new passkey.
          window.location.reload();
        })
        .catch(function (err) {
          addButton.disabled = false;
          showError(addError, err);
        });
    });
  }
})();
