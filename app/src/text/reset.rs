//! Strings of self-service password reset and unlock.

strings!(ResetTexts, EN {
    forgot_link: "Can't access your account?",
    link_title: "Continue with your password reset",
    link_intro: "You opened the link from our email. Press the button to continue; the link works once.",
    link_button: "Continue",
    title: "Get back into your account",
    intro: "Enter your username or email address. We'll ask you to prove it's you with the security info you registered.",
    login_label: "Username or email address",
    why_legend: "What's the problem?",
    why_reset: "I forgot my password",
    why_unlock: "I know my password, but my account is locked",
    next: "Next",
    back_to_signin: "Back to sign-in",
    checking: "Checking your browser…",
    needs_js: "This page needs JavaScript for a short security check. Turn JavaScript on and reload.",
    verify_title: "Verify your identity",
    step: "Verification step {n} of {of}",
    verify_intro: "Choose how to prove it's you. If you don't receive a code, your account may not be set up for self-service reset; contact your helpdesk.",
    choose_legend: "Choose a method",
    email_choice: "Email my address",
    text_choice: "Text my phone",
    call_choice: "Call my phone",
    app_choice: "Enter a code from my authenticator app",
    passkey_choice: "Use my passkey or security key",
    questions_choice: "Answer my security questions",
    send_email: "Email me a code",
    send_text: "Text me a code",
    send_call: "Call me",
    sent_to: "We sent a code to {to}. It works once, for 10 minutes.",
    sent_email_hint: "The email also has a link that completes this step; either works.",
    code_label: "Code",
    app_code_label: "Code from your authenticator app",
    verify_button: "Verify",
    resend: "Send a new code",
    questions_intro: "Answer these questions as you did when you registered them. Capitals and extra spaces don't matter.",
    answer_label: "Answer",
    passed_notice: "Verified. One more step to go: choose a different method.",
    new_password_title: "Choose a new password",
    new_password_intro: "Use at least {min} characters. Length matters most: a few unrelated words make a strong password. Don't use your name or a password you use elsewhere.",
    new_password_label: "New password",
    confirm_label: "Confirm new password",
    rule_length: "At least {min} characters",
    rule_match: "Both entries match",
    rule_name: "Doesn't contain your username",
    rule_common: "Very common passwords are refused when you submit.",
    characters: "{n} characters",
    save_password: "Reset password",
    unlock_title: "Unlock your account",
    unlock_intro: "You've proved it's you. Unlock your account to sign in with your current password.",
    unlock_button: "Unlock my account",
    cancel: "Cancel",
    start_again: "Start again",
    done_reset_title: "Your password was changed",
    done_reset_body: "Sign in with your new password. We've signed you out everywhere and emailed you a confirmation. Your security info has not changed.",
    done_unlock_title: "Your account is unlocked",
    done_unlock_body: "You can sign in again with your current password.",
    go_signin: "Sign in",
    event_reset_requested: "Password reset requested",
    event_reset_verification: "Identity verified for password reset",
    event_password_reset: "Password reset",
    event_account_unlocked: "Account unlocked",
});

impl ResetTexts {
    pub fn for_event(&self, event: &str) -> Option<&'static str> {
        Some(match event {
            "reset_requested" => self.event_reset_requested,
            "reset_verification" => self.event_reset_verification,
            "password_reset" => self.event_password_reset,
            "account_unlocked" => self.event_account_unlocked,
            _ => return None,
        })
    }

    /// How a choice is offered: "Email my address j•••@example.org".
    pub fn choice_label(&self, kind: &str) -> &'static str {
        match kind {
            "email" => self.email_choice,
            "phone" => self.text_choice,
            "totp" => self.app_choice,
            "passkey" => self.passkey_choice,
            _ => self.questions_choice,
        }
    }
}
