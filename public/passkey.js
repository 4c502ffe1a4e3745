// Converge: the browser half of passkey ceremonies. The server (webauthn-rs) creates the options
// and keeps the ceremony state; this script only converts between JSON and the WebAuthn API.
// Server errors come back as codes and are shown by reloading the page with ?error=CODE, so every
// message text lives in the server's one place for strings.
"use strict";
(function () {
  function fromB64url(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function toB64url(buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  async function post(endpoint, fields) {
    var res = await fetch("/api/" + endpoint, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json" },
      body: new URLSearchParams(fields).toString(),
    });
    if (!res.ok) throw new Error("server");
    return res.json();
  }
  function showError(code) {
    if (code === "MFA-005") {
      var here = location.pathname + location.search;
      location.href = "/signin/verify?next=" + encodeURIComponent(here) + "&error=" + code;
      return;
    }
    var url = new URL(location.href);
    url.searchParams.set("error", code);
    location.href = url.toString();
  }
  function creationOptions(json) {
    var pk = JSON.parse(json).publicKey;
    pk.challenge = fromB64url(pk.challenge);
    pk.user.id = fromB64url(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = fromB64url(c.id); });
    return { publicKey: pk };
  }
  function requestOptions(json) {
    var pk = JSON.parse(json).publicKey;
    pk.challenge = fromB64url(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = fromB64url(c.id); });
    return { publicKey: pk };
  }
  function registrationJson(cred) {
    var r = cred.response;
    return JSON.stringify({
      id: cred.id, rawId: toB64url(cred.rawId), type: cred.type,
      extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: {
        attestationObject: toB64url(r.attestationObject),
        clientDataJSON: toB64url(r.clientDataJSON),
        transports: r.getTransports ? r.getTransports() : undefined,
      },
    });
  }
  function assertionJson(cred) {
    var r = cred.response;
    return JSON.stringify({
      id: cred.id, rawId: toB64url(cred.rawId), type: cred.type,
      extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: {
        authenticatorData: toB64url(r.authenticatorData),
        clientDataJSON: toB64url(r.clientDataJSON),
        signature: toB64url(r.signature),
        userHandle: r.userHandle ? toB64url(r.userHandle) : null,
      },
    });
  }
  document.querySelectorAll("form.passkey-form").forEach(function (form) {
    var status = form.querySelector(".passkey-status");
    var button = form.querySelector("button[type=submit]");
    function say(text) { status.textContent = text; }
    // the script runs: offer the button, drop the "needs JavaScript" note
    form.querySelectorAll(".passkey-nojs").forEach(function (n) { n.hidden = true; });
    button.hidden = false;
    form.hidden = false;
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      if (!window.PublicKeyCredential || !navigator.credentials) {
        say(form.dataset.msgUnsupported);
        return;
      }
      button.disabled = true;
      say(form.dataset.msgWorking);
      try {
        if (form.dataset.mode === "register") {
          var name = form.querySelector("input[name=name]").value;
          var start = await post("passkey_register_start", { name: name });
          if (start.error) return showError(start.error);
          var created = await navigator.credentials.create(creationOptions(start.options));
          var done = await post("passkey_register_finish", {
            ceremony: start.ceremony, credential: registrationJson(created), flow: form.dataset.flow || "info",
          });
          if (done.error) return showError(done.error);
          location.href = done.next;
        } else if (form.dataset.mode === "discover") {
          var s3 = await post("passkey_discover_start", {});
          if (s3.error) return showError(s3.error);
          var found = await navigator.credentials.get(requestOptions(s3.options));
          var res = await post("passkey_discover_finish", { ceremony: s3.ceremony, credential: assertionJson(found) });
          if (res.error) return showError(res.error);
          location.href = res.next;
        } else if (form.dataset.mode === "reset") {
          var s4 = await post("reset_passkey_start", {});
          if (s4.error) return showError(s4.error);
          var proof = await navigator.credentials.get(requestOptions(s4.options));
          var r4 = await post("reset_passkey_finish", { ceremony: s4.ceremony, credential: assertionJson(proof) });
          if (r4.error) return showError(r4.error);
          location.href = r4.next;
        } else {
          var s2 = await post("passkey_auth_start", {});
          if (s2.error) return showError(s2.error);
          var asserted = await navigator.credentials.get(requestOptions(s2.options));
          var fields = { ceremony: s2.ceremony, credential: assertionJson(asserted) };
          if (form.dataset.next) fields.next = form.dataset.next;
          var fin = await post("passkey_auth_finish", fields);
          if (fin.error) return showError(fin.error);
          location.href = fin.next;
        }
      } catch (e) {
        // NotAllowedError: cancelled or timed out; InvalidStateError: already registered here
        if (e && e.name === "InvalidStateError") return showError("KEY-002");
        if (e && e.message === "server") return showError("SYS-500");
        say(form.dataset.msgCancelled);
      } finally {
        button.disabled = false;
      }
    });
  });
})();
