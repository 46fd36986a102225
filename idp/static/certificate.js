// The page side of the signing-agent protocol (README, "Certificate login"): list the
// certificates on the USB key, ask the agent to sign this page's challenge, post the result.
(function () {
  "use strict";
  var form = document.getElementById("cert-form");
  var agent = form.dataset.agent.replace(/\/$/, "");
  var select = document.getElementById("cert-select");
  var status = document.getElementById("agent-status");

  function say(text) { status.textContent = text; }

  fetch(agent + "/v1/certificates", { mode: "cors" })
    .then(function (r) { if (!r.ok) { throw new Error("agent"); } return r.json(); })
    .then(function (body) {
      var list = body.certificates || [];
      if (!list.length) { say(form.dataset.msgNone); return; }
      list.forEach(function (c) {
        var option = document.createElement("option");
        option.value = c.id;
        option.textContent = c.subject + " · " + c.issuer + " · " + c.algorithm;
        select.appendChild(option);
      });
    })
    .catch(function () { say(form.dataset.msgNoAgent); });

  form.addEventListener("submit", function (event) {
    if (document.getElementById("signature").value) { return; }  // signed: let it go to the server
    if (event.submitter && event.submitter.value === "tls") { return; }  // the TLS connection's certificate
    event.preventDefault();
    var pin = document.getElementById("cert-pin");
    fetch(agent + "/v1/sign", {
      method: "POST", mode: "cors", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ id: select.value, data: document.getElementById("challenge").value, pin: pin.value })
    }).then(function (r) {
      return r.json().then(function (body) { return { ok: r.ok, body: body }; });
    }).then(function (answer) {
      pin.value = "";
      if (!answer.ok) {
        say(answer.body.error === "pin_incorrect" ? form.dataset.msgPin : form.dataset.msgFailed);
        return;
      }
      document.getElementById("certificate").value = answer.body.certificate;
      document.getElementById("signature").value = answer.body.signature;
      document.getElementById("chain").value = (answer.body.chain || []).join("\n");
      form.submit();
    }).catch(function () { say(form.dataset.msgNoAgent); });
  });
}());
