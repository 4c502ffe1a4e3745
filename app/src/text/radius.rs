//! What RADIUS gateways show (Reply-Message, at most 253 bytes each, plain text: VPN clients show
//! them in a small prompt).

strings!(RadiusTexts, EN {
    ask_app_code: "Enter the code from your authenticator app.",
    ask_texted_code: "We sent a code to {to}. Enter it.",
    ask_texted_code_pin: "We sent a code to {to}. Enter it followed by your PIN.",
    or_choose: "Or answer",
    choice_app: "app code",
    choice_text: "text {to}",
    choice_call: "call {to}",
    failed: "Sign-in failed. Check your password and code and try again.",
    throttled: "Too many attempts. Wait a few minutes, then try again.",
    directory_down: "The directory cannot be reached, so nobody can sign in right now. Try again later.",
    unavailable: "Sign-in is unavailable right now. Try again in a minute.",
    no_usable_method: "Your security info cannot be used here (passkeys work only in a browser). Add an authenticator app or a phone at {url}.",
    not_registered: "Set up your security info at {url} first, then try again.",
    call_declined: "The call was declined, so sign-in was refused.",
    call_unanswered: "The call was not answered in time. Try again.",
    event_gateway_signin: "Sign-in through a gateway (VPN, RADIUS)",
});
