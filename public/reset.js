// Converge: the proof of work of the password-reset page (only when the operator turned it on).
// Finds a nonce so that SHA-256("<challenge>:<nonce>") starts with the challenge's number of zero
// bits, then submits the form. The server checks the same, once per challenge.
"use strict";
(function () {
  var input = document.querySelector("input[data-pow]");
  if (!input || !window.crypto || !crypto.subtle) return;
  var form = input.form;
  var status = form.querySelector(".pow-status");
  var bits = parseInt(input.dataset.bits, 10) || 0;
  var challenge = input.dataset.pow;
  var enc = new TextEncoder();
  function zeroBits(buf) {
    var bytes = new Uint8Array(buf), n = 0;
    for (var i = 0; i < bytes.length; i++) {
      if (bytes[i] === 0) { n += 8; continue; }
      n += Math.clz32(bytes[i]) - 24;
      break;
    }
    return n;
  }
  var solved = false;
  form.addEventListener("submit", async function (ev) {
    if (solved) return;
    ev.preventDefault();
    if (status) status.textContent = status.dataset.msgWorking || "";
    for (var nonce = 0; ; nonce++) {
      var candidate = challenge + ":" + nonce;
      var digest = await crypto.subtle.digest("SHA-256", enc.encode(candidate));
      if (zeroBits(digest) >= bits) { input.value = candidate; break; }
    }
    solved = true;
    if (status) status.textContent = "";
    form.submit();
  });
})();
