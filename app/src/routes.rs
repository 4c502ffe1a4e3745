//! Paths and test ids shared by the pages, the server's gatekeeping and the end2end tests.

pub const HOME: &str = "/";
pub const SIGNIN: &str = "/signin";
pub const SECURITY_INFO: &str = "/security-info";
pub const ACTIVITY: &str = "/activity";
/// `/report/<token>`: the "This wasn't me" link in security emails.
pub const REPORT: &str = "/report";
pub const REPORT_RECORDED: &str = "/report-recorded";
/// The second sign-in step, and re-authentication before changes (`?next=`).
pub const VERIFY: &str = "/signin/verify";
/// Self-service password reset and unlock ("Can't access your account?").
pub const RESET: &str = "/reset";
/// Proving registered methods during a reset.
pub const RESET_VERIFY: &str = "/reset/verify";
/// The new password (or the unlock button) once every method is proven.
pub const RESET_FINISH: &str = "/reset/finish";
pub const RESET_DONE: &str = "/reset/done";
/// `/reset/link/<token>`: the emailed link; exchanged for the flow cookie and redirected away.
pub const RESET_LINK: &str = "/reset/link";
/// The registration wizard (interrupt mode after sign-in).
pub const SETUP: &str = "/setup";
pub const ADD_APP: &str = "/security-info/add/app";
pub const ADD_PASSKEY: &str = "/security-info/add/passkey";
pub const ADD_PHONE: &str = "/security-info/add/phone";
pub const ADD_EMAIL: &str = "/security-info/add/email";
pub const ADD_QUESTIONS: &str = "/security-info/add/questions";
pub const ADD_PIN: &str = "/security-info/add/pin";
pub const ADD_TOKEN: &str = "/security-info/add/token";
/// Creating recovery codes, and the page that shows a new set once (`?show=1`).
pub const ADD_RECOVERY: &str = "/security-info/add/recovery";
/// The helpdesk console: search, a user's card (`?id=`), the audit log and its export.
pub const HELPDESK: &str = "/helpdesk";
pub const HELPDESK_USER: &str = "/helpdesk/user";
pub const HELPDESK_AUDIT: &str = "/helpdesk/audit";
/// `?format=csv|jsonl` plus the audit filter.
pub const HELPDESK_EXPORT: &str = "/helpdesk/audit/export";

/// The pages that add a method (the wizard's steps use them too).
pub const ADD_PAGES: &[&str] = &[
    ADD_APP,
    ADD_PASSKEY,
    ADD_PHONE,
    ADD_EMAIL,
    ADD_QUESTIONS,
    ADD_PIN,
    ADD_TOKEN,
    ADD_RECOVERY,
];

/// Pages that need a signed-in user besides [`ADD_PAGES`]; see [`protected_page`].
pub const PROTECTED: &[&str] = &[
    SECURITY_INFO,
    ACTIVITY,
    SETUP,
    HELPDESK,
    HELPDESK_USER,
    HELPDESK_AUDIT,
    HELPDESK_EXPORT,
];

/// `path` when it is a page that needs a signed-in user (the server redirects anonymous visitors
/// to [`SIGNIN`]).
pub fn protected_page(path: &str) -> Option<&'static str> {
    PROTECTED
        .iter()
        .chain(ADD_PAGES)
        .find(|p| **p == path)
        .copied()
}

/// The page that adds a method of `kind`.
pub fn add_page(kind: &str) -> &'static str {
    match kind {
        "totp" => ADD_APP,
        "passkey" => ADD_PASSKEY,
        "phone" => ADD_PHONE,
        "email" => ADD_EMAIL,
        "questions" => ADD_QUESTIONS,
        "pin" => ADD_PIN,
        "token" => ADD_TOKEN,
        "recovery" => ADD_RECOVERY,
        _ => SECURITY_INFO,
    }
}

/// A `next=` target is accepted only when it is one of our own pages with a plain query (no
/// open redirects, no header tricks); anything else becomes Security info.
pub fn safe_next(next: &str) -> String {
    let (path, query) = next.split_once('?').unwrap_or((next, ""));
    let plain = query
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.~%=&+".contains(&b));
    match protected_page(path) {
        Some(p) if plain && !query.is_empty() => format!("{p}?{query}"),
        Some(p) => p.to_string(),
        None => SECURITY_INFO.to_string(),
    }
}

/// Where a finished step of adding a method leads: back into the wizard or to Security info.
pub fn after_add(flow: &str) -> String {
    if flow == "setup" {
        format!("{SETUP}?notice=added")
    } else {
        format!("{SECURITY_INFO}?notice=added")
    }
}

/// `key=value` with the value percent-encoded for a query string.
pub fn query_pair(key: &str, value: &str) -> String {
    format!("{key}={}", percent_encode(value))
}

/// Every byte but the unreserved ones percent-encoded (query values, `data:` links).
pub fn percent_encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Query parameter naming the page flow (`setup` or `info`).
pub const FLOW_PARAM: &str = "flow";

/// Query parameter the sign-in page reads to show why the last attempt failed.
pub const ERROR_PARAM: &str = "error";
/// Query parameter that refills the username after a failed sign-in.
pub const USERNAME_PARAM: &str = "username";

/// `data-testid` values used by end2end/.
pub mod testid {
    pub const SIGNIN_FORM: &str = "signin-form";
    pub const SIGNIN_ERROR: &str = "signin-error";
    pub const SIGNOUT: &str = "signout";
    pub const USER_NAME: &str = "user-name";
    pub const PASSWORD_TOGGLE: &str = "password-toggle";
    pub const METHOD_LIST: &str = "method-list";
    pub const ACTIVITY_TABLE: &str = "activity-table";
    pub const NOTICE: &str = "notice";
    pub const REPORT_CONFIRM: &str = "report-confirm";
    pub const REPORT_INVALID: &str = "report-invalid";
    pub const TOTP_KEY: &str = "totp-key";
    pub const QR: &str = "totp-qr";
    pub const CODE_INPUT: &str = "code-input";
    pub const WIZARD: &str = "wizard";
    pub const WIZARD_DONE: &str = "wizard-done";
    pub const METHOD_ROW: &str = "method-row";
    pub const ERROR: &str = "error";
    pub const VERIFY_FORM: &str = "verify-form";
    pub const PASSKEY_BUTTON: &str = "passkey-button";
    pub const PASSKEY_SIGNIN: &str = "passkey-signin";
    pub const PASSWORD_RULES: &str = "password-rules";
    pub const RESET_LINK: &str = "reset-link";
    pub const RESET_FORM: &str = "reset-form";
    pub const RESET_CHOICES: &str = "reset-choices";
    pub const RESET_DONE: &str = "reset-done";
    pub const HELPDESK_SEARCH: &str = "helpdesk-search";
    pub const HELPDESK_RESULTS: &str = "helpdesk-results";
    pub const HELPDESK_VERIFY: &str = "helpdesk-verify";
    pub const HELPDESK_STATE: &str = "helpdesk-verification-state";
    pub const HELPDESK_ACTIONS: &str = "helpdesk-actions";
    pub const HELPDESK_TAP: &str = "helpdesk-tap";
    pub const HELPDESK_APPROVALS: &str = "helpdesk-approvals";
    pub const AUDIT_TABLE: &str = "audit-table";
    pub const APPROVAL_PROMPT: &str = "approval-prompt";
    pub const TAP_FORM: &str = "tap-form";
    pub const RECOVERY_CODES: &str = "recovery-codes";
    pub const RECOVERY_FORM: &str = "recovery-form";
}
