// WebAuthn ceremonies for Yihao's pages. A form marked data-webauthn="get" or "create" runs the
// ceremony with the options in the page's #webauthn-options data block, puts the credential (as
// JSON) in its hidden "credential" field and submits itself. Loaded with the page's CSP nonce.
"use strict";
(function () {
  function toBytes(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(b64 + "===".slice((b64.length + 3) % 4));
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out.buffer;
  }
  function toText(buffer) {
    var bytes = new Uint8Array(buffer), raw = "";
    for (var i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function publicKey(options, kind) {
    options.challenge = toBytes(options.challenge);
    if (kind === "create") options.user.id = toBytes(options.user.id);
    var list = kind === "create" ? options.excludeCredentials : options.allowCredentials;
    (list || []).forEach(function (c) { c.id = toBytes(c.id); });
    return options;
  }
  function serialise(credential) {
    if (typeof credential.toJSON === "function") return JSON.stringify(credential.toJSON());
    var r = credential.response, response = { clientDataJSON: toText(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toText(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toText(r.authenticatorData);
      response.signature = toText(r.signature);
      response.userHandle = r.userHandle ? toText(r.userHandle) : null;
    }
    return JSON.stringify({ id: credential.id, rawId: toText(credential.rawId), type: credential.type,
      response: response, clientExtensionResults: credential.getClientExtensionResults(),
      authenticatorAttachment: credential.authenticatorAttachment || undefined });
  }
  document.querySelectorAll("form[data-webauthn]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (form.elements.credential.value) return;
      event.preventDefault();
      var error = form.querySelector("[data-webauthn-error]");
      var kind = form.getAttribute("data-webauthn");
      var options = publicKey(JSON.parse(document.getElementById("webauthn-options").textContent), kind);
      if (!window.PublicKeyCredential) { if (error) error.hidden = false; return; }
      var call = kind === "create" ? navigator.credentials.create({ publicKey: options })
                                   : navigator.credentials.get({ publicKey: options });
      call.then(function (credential) {
        form.elements.credential.value = serialise(credential);
        form.submit();
      }, function () { if (error) error.hidden = false; });
    });
  });
})();
