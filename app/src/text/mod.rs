//! Every user-facing string of the UI, in one place. A language is one `Texts` value; adding Dutch
//! means adding `NL` and a way to pick it — the compiler then insists every string is translated.

/// Declares a strings struct and its English value together; another language is another value
/// of the struct, and the compiler insists every field is translated.
macro_rules! strings {
    ($ty:ident, $en:ident { $($field:ident : $text:expr,)* }) => {
        #[derive(Debug)]
        pub struct $ty { $(pub $field: &'static str,)* }
        pub const $en: $ty = $ty { $($field: $text,)* };
    };
}

mod helpdesk;
mod radius;
mod reset;
mod security;
pub use helpdesk::HelpdeskTexts;
pub use radius::RadiusTexts;
pub use reset::ResetTexts;
pub use security::SecurityTexts;

/// All strings one language needs. Fields are grouped by page.
#[derive(Debug)]
pub struct Texts {
    pub product: &'static str,
    /// Security info, the wizard and the second sign-in step.
    pub sec: &'static SecurityTexts,
    /// Password reset and unlock.
    pub reset: &'static ResetTexts,
    /// The helpdesk console, approval prompts, Temporary Access Passes.
    pub helpdesk: &'static HelpdeskTexts,
    /// What RADIUS gateways show (Reply-Message).
    pub radius: &'static RadiusTexts,
    /// Message per error code (see `api::ErrorCode`), in `ErrorCode::ALL` order.
    pub errors: &'static [(&'static str, &'static str)],
    pub tagline: &'static str,
    pub skip_to_content: &'static str,
    pub nav_label: &'static str,
    pub nav_security_info: &'static str,
    pub nav_activity: &'static str,
    pub signed_in_as: &'static str,
    pub sign_out: &'static str,

    // sign-in
    pub signin_title: &'static str,
    pub signin_intro: &'static str,
    pub username_label: &'static str,
    pub password_label: &'static str,
    pub show_password: &'static str,
    pub hide_password: &'static str,
    pub signin_button: &'static str,
    pub signin_failed: &'static str,
    pub signed_out_notice: &'static str,
    pub session_expired_notice: &'static str,
    pub request_blocked: &'static str,
    pub unavailable: &'static str,
    pub internal_error: &'static str,
    pub error_code_prefix: &'static str,

    // security info
    pub security_info_title: &'static str,
    pub security_info_intro: &'static str,
    pub methods_heading: &'static str,
    pub no_methods: &'static str,
    pub contact_heading: &'static str,
    pub contact_intro: &'static str,
    pub email_label: &'static str,
    pub mobile_label: &'static str,
    pub alternate_label: &'static str,
    pub office_label: &'static str,
    pub not_set: &'static str,

    // activity
    pub activity_title: &'static str,
    pub activity_intro: &'static str,
    pub activity_empty: &'static str,
    pub col_time: &'static str,
    pub col_event: &'static str,
    pub col_result: &'static str,
    pub col_address: &'static str,
    pub col_device: &'static str,
    pub result_success: &'static str,
    pub result_failure: &'static str,
    pub event_signin: &'static str,
    pub event_signout: &'static str,
    pub event_session_expired: &'static str,
    pub event_account_locked: &'static str,
    pub event_password_set: &'static str,
    pub event_user_created: &'static str,
    pub event_user_updated: &'static str,
    pub event_fraud_reported: &'static str,
    pub event_account_unblocked: &'static str,
    pub event_other: &'static str,

    // "This wasn't me"
    pub report_title: &'static str,
    pub report_intro: &'static str,
    pub report_about: &'static str,
    pub report_button: &'static str,
    pub report_invalid: &'static str,
    pub report_done_title: &'static str,
    pub report_done_body: &'static str,
    pub message_password_changed: &'static str,
    pub message_method_added: &'static str,
    pub message_method_removed: &'static str,
    pub message_recovery_code_used: &'static str,
    pub message_updated_user: &'static str,
    pub message_account_locked: &'static str,
    pub message_password_reset: &'static str,
    pub message_other: &'static str,

    // errors
    pub not_found_title: &'static str,
    pub not_found_body: &'static str,
    pub back_home: &'static str,
}

pub const EN: Texts = Texts {
    sec: &security::EN,
    reset: &reset::EN,
    helpdesk: &helpdesk::EN,
    radius: &radius::EN,
    errors: &[
        ("MFA-001", "That code is not right. Check it and try again."),
        ("MFA-002", "That code has expired or was already used. Ask for a new one."),
        ("SYS-413", "That request was too large. Go back, shorten what you typed, and try again."),
        ("MFA-006", "The call was declined on the phone, so this code no longer works. If that was not you, report it; otherwise ask for a new call or code."),
        ("API-401", "The API token is missing, unknown, expired, revoked, or not allowed from this address."),
        ("API-403", "The API token does not have the scope this request needs."),
        ("API-404", "There is no such user, method or item."),
        ("API-400", "The request is not valid: check the fields named in the answer."),
        ("API-409", "This Idempotency-Key was already used with another request, or its first request is still running."),
        ("API-422", "This user has no security info that can be used here (an authenticator app or a phone). They can add it in Security info."),
        ("API-423", "This account is disabled or blocked after a fraud report."),
        ("MFA-007", "The call has not been answered yet. Answer it and press 1 to approve (or type the code it reads out), then try again."),
        ("MFA-003", "Too many wrong attempts. Wait a few minutes, then try again or use another method."),
        ("MFA-004", "This method is locked after too many wrong attempts. Use another method or contact your helpdesk."),
        ("MFA-005", "Confirm it's you with one of your methods before changing your security info."),
        ("KEY-001", "The passkey could not be verified. Try again, or use another method."),
        ("KEY-002", "This passkey or security key is already registered."),
        ("REG-001", "That is not a valid phone number. Include the country code, for example +31 6 1234 5678; an extension goes in its own field."),
        ("REG-002", "That is not a valid email address."),
        ("REG-003", "Give it a name of 1 to 40 characters that you don't already use for another device."),
        ("REG-004", "You already have the maximum number of these (or this one is already registered). Remove one first."),
        ("REG-005", "That PIN is too easy to guess. Avoid repeated or consecutive digits and digits from your phone numbers."),
        ("REG-006", "The PIN must be digits only, have the required length, and both entries must match."),
        ("REG-007", "Choose a different question for each row and answer each one with at least 3 characters."),
        ("REG-008", "You can't remove this method: your organisation requires it. Add another method first."),
        ("REG-009", "This phone number comes from your organisation's directory and can't be changed here."),
        ("REG-010", "Your organisation does not offer this method."),
        ("REG-011", "This step expired or was already completed. Please start again."),
        ("REG-012", "Please finish setting up your security info now; it can't be postponed any more."),
        ("MSG-429", "Too many codes were sent in the last hour. Try again later or use another method."),
        ("MSG-501", "Phone calls are not available. Choose a text message instead."),
        ("PWD-001", "The new password is too short. It needs at least the number of characters shown above the field."),
        ("PWD-002", "The new password is too long: at most 256 characters."),
        ("PWD-003", "The two passwords don't match. Type the same new password in both fields."),
        ("PWD-004", "That password is one of the most common passwords, which attackers try first. Choose another; a few unrelated words make a strong one."),
        ("PWD-005", "The new password must not contain your username, your name or the organisation's name."),
        ("PWD-006", "You have used that password before. Choose one you haven't used."),
        ("PWD-007", "The directory refused that password under your organisation's password rules (for example length or character types). Choose another."),
        ("PWD-008", "Your password was changed too recently to change it again. Try again later or contact your helpdesk."),
        ("RST-001", "This reset has expired or was already completed. Please start again."),
        ("RST-002", "Too many wrong answers: this reset has ended. Start again later, or contact your helpdesk."),
        ("RST-003", "Your browser could not complete the security check. Reload the page and try again."),
        ("RST-004", "Your account is not locked, so there was nothing to unlock. If you can't sign in, reset your password instead."),
        ("RST-005", "Self-service password reset is not available. Contact your helpdesk."),
        ("RST-006", "One or more answers are not right. Check them and try again."),
        ("HLP-001", "The helpdesk console is for helpdesk staff and administrators."),
        ("HLP-002", "Verify the caller first: this needs a successful verification of this user from the last 15 minutes."),
        ("HLP-003", "This account is protected (administrator, helpdesk or privileged group). Only an administrator can act on it, and an MFA reset needs a second administrator's approval."),
        ("HLP-004", "You can't verify or act on your own account from the helpdesk console."),
        ("HLP-005", "The caller hasn't answered yet. Ask them to open the portal on their device; this page updates by itself."),
        ("HLP-006", "The caller said it wasn't them. Treat this call as suspicious."),
        ("HLP-007", "This account is not blocked."),
        ("HLP-008", "This user has no registered email address to send a reset link to."),
        ("HLP-011", "That is not the number the helpdesk read out, so this check has ended. If the helpdesk is really on the phone with you, they can start a new one."),
        ("HLP-009", "This request was already decided, has expired, or is your own: a second administrator must approve it."),
        ("HLP-010", "The helpdesk console needs a second factor: register an authenticator app or passkey in Security info, then sign in again with it."),
        ("TOK-001", "That serial number and code don't match a hardware token that can be added. Check the serial number on the back of the token, press its button and type the code it shows."),
        ("TOK-002", "Those two codes don't follow each other on this token. Press the button twice and type both codes, in order."),
        ("TOK-003", "That hardware token can't be assigned: it is not in the inventory, or it already belongs to someone. Check the serial number, or release the token first."),
        ("SIG-002", "Your password has expired, or your organisation requires you to change it before you sign in. Choose a new one with \u{201c}Can't access your account?\u{201d} below: you will confirm it's you with your security info."),
        ("REC-001", "That recovery code is not valid: it is wrong or has already been used. Each recovery code works once."),
        ("TAP-001", "That Temporary Access Pass is not valid: it is wrong, expired or already used. Ask your helpdesk for a new one."),
        ("DIR-503", "The directory that stores your password can't be reached right now. Nothing was changed; please try again in a few minutes."),
    ],
    product: "Converge",
    tagline: "Security info and password self-service",
    skip_to_content: "Skip to main content",
    nav_label: "Main",
    nav_security_info: "Security info",
    nav_activity: "My activity",
    signed_in_as: "Signed in as",
    sign_out: "Sign out",

    signin_title: "Sign in",
    signin_intro: "Use your organisation account.",
    username_label: "Username",
    password_label: "Password",
    show_password: "Show password",
    hide_password: "Hide password",
    signin_button: "Sign in",
    signin_failed: "That username and password did not work. Check them and try again. \
        After several failed attempts you will have to wait a little before trying again.",
    signed_out_notice: "You have signed out.",
    session_expired_notice: "Your session has ended. Please sign in again.",
    request_blocked: "This request was blocked because it did not come from this site. \
        Reload the page and try again.",
    unavailable: "Converge cannot answer right now: a service it needs is unreachable, or it is \
        very busy. Please try again in a minute.",
    internal_error: "Something went wrong on our side. Please try again; if it keeps happening, \
        contact your helpdesk.",
    error_code_prefix: "Error code",

    security_info_title: "Security info",
    security_info_intro: "These are the methods you use to sign in and to reset your password. \
        Keep them up to date.",
    methods_heading: "Sign-in and reset methods",
    no_methods: "You have not registered any methods yet.",
    contact_heading: "Contact details on file",
    contact_intro: "These come from your organisation's directory.",
    email_label: "Email",
    mobile_label: "Mobile phone",
    alternate_label: "Alternate mobile phone",
    office_label: "Office phone",
    not_set: "Not set",

    activity_title: "My activity",
    activity_intro:
        "Recent sign-ins and changes to your account. If you see something you did not do, \
        contact your helpdesk.",
    activity_empty: "No activity yet.",
    col_time: "Time (UTC)",
    col_event: "Event",
    col_result: "Result",
    col_address: "Address",
    col_device: "Browser",
    result_success: "Succeeded",
    result_failure: "Failed",
    event_signin: "Sign-in",
    event_signout: "Sign-out",
    event_session_expired: "Session ended",
    event_account_locked: "Account locked",
    event_password_set: "Password set",
    event_user_created: "Account created",
    event_user_updated: "Account updated",
    event_fraud_reported: "Reported: this wasn't me",
    event_account_unblocked: "Unblocked by an administrator",
    event_other: "Other",

    report_title: "Report activity you did not do",
    report_intro:
        "We sent you an email about a change to your account. If you did not make that change, \
        report it here so your helpdesk can act on it.",
    report_about: "The email was about:",
    report_button: "Report it: this wasn't me",
    report_invalid:
        "This link has expired or has already been used. If you think someone else is using \
        your account, contact your helpdesk.",
    report_done_title: "Thank you, your report was recorded",
    report_done_body:
        "Your helpdesk can see your report. To protect you, your account is blocked from \
        signing in with its security info and every session was signed out; your helpdesk \
        will lift the block once they have spoken to you. If you think someone knows your \
        password, tell them.",
    message_password_changed: "Your password was changed",
    message_method_added: "A sign-in method was added",
    message_method_removed: "A sign-in method was removed",
    message_recovery_code_used: "A recovery code was used",
    message_updated_user: "Your account details changed",
    message_account_locked: "Your account was locked",
    message_password_reset: "A password reset was requested",
    message_other: "A change to your account",

    not_found_title: "Page not found",
    not_found_body: "The page you asked for does not exist.",
    back_home: "Go to the start page",
};

/// The strings for the current request's language (English until a second language exists).
pub fn en() -> &'static Texts {
    &EN
}

impl Texts {
    /// The message shown for a stable error code (see `api::ErrorCode`).
    pub fn for_error(&self, code: crate::api::ErrorCode) -> &'static str {
        use crate::api::ErrorCode::*;
        match code {
            SigninFailed => self.signin_failed,
            NotSignedIn => self.session_expired_notice,
            RequestBlocked => self.request_blocked,
            Unavailable => self.unavailable,
            Internal => self.internal_error,
            other => self
                .errors
                .iter()
                .find(|(c, _)| *c == other.code())
                .map(|(_, m)| *m)
                .unwrap_or(self.internal_error),
        }
    }

    /// What a security email was about, by its message name.
    pub fn for_message(&self, message: &str) -> &'static str {
        match message {
            "password_changed" => self.message_password_changed,
            "method_added" => self.message_method_added,
            "method_removed" => self.message_method_removed,
            "recovery_code_used" => self.message_recovery_code_used,
            "updated_user" => self.message_updated_user,
            "account_locked" => self.message_account_locked,
            "password_reset" => self.message_password_reset,
            _ => self.message_other,
        }
    }

    /// A label for an audit event name as stored by the server.
    pub fn for_event(&self, event: &str) -> &'static str {
        match event {
            "signin" => self.event_signin,
            "signout" => self.event_signout,
            "session_expired" => self.event_session_expired,
            "account_locked" => self.event_account_locked,
            "password_set" => self.event_password_set,
            "user_created" => self.event_user_created,
            "user_updated" => self.event_user_updated,
            "fraud_reported" => self.event_fraud_reported,
            "account_unblocked" => self.event_account_unblocked,
            "gateway_signin" => self.radius.event_gateway_signin,
            other => self
                .sec
                .for_event(other)
                .or_else(|| self.reset.for_event(other))
                .or_else(|| self.helpdesk.for_event(other))
                .unwrap_or(self.event_other),
        }
    }
}
