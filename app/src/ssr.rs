//! The ONE server-only module of the UI: the port through which server functions reach the
//! backend. `app` defines it; the `converge` server implements [`Backend`], provides it as
//! context, and puts a [`RequestCtx`] into every request's extensions before Leptos sees it.

use crate::api::{ActivityItem, ApiError, ErrorCode, SecurityInfo, SessionView};
use crate::routes;
use leptos::prelude::*;
use std::sync::Arc;

/// Who is calling, established by the server before any page or server function runs.
#[derive(Clone, Debug, Default)]
pub struct RequestCtx {
    pub client_ip: String,
    pub user_agent: String,
    /// The raw session cookie value, if any (so sign-in can rotate it and sign-out can end it).
    pub session_token: Option<String>,
    /// The valid, fully signed-in session behind that cookie, if any.
    pub session: Option<SignedIn>,
    /// A session whose password step is done and whose second factor is pending.
    pub pending: Option<SignedIn>,
    /// The password-reset flow cookie, if any.
    pub reset_token: Option<String>,
    /// The device cookie (this browser signed in to these accounts before), if any.
    pub device_cookie: Option<String>,
    /// CSP nonce for this response's inline hydration script.
    pub nonce: String,
    /// What the server already loaded for this request (its own types; the UI never looks).
    pub attached: Attached,
}

/// Server data carried along with the request context, opaque to the UI.
#[derive(Clone, Default)]
pub struct Attached(pub Option<Arc<dyn std::any::Any + Send + Sync>>);

impl std::fmt::Debug for Attached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Attached(..)")
    }
}

impl Attached {
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.0.as_ref().and_then(|a| a.downcast_ref::<T>())
    }
}

#[derive(Clone, Debug)]
pub struct SignedIn {
    pub user_id: String,
    pub view: SessionView,
    /// SHA-256 of the session token (the stored session id).
    pub session_hash: String,
    pub created_at: i64,
    /// When a second factor was last proven in this session (0: never).
    pub mfa_at: i64,
}

impl RequestCtx {
    /// Every server function that acts for a user starts here.
    pub fn signed_in(&self) -> Result<&SignedIn, ApiError> {
        self.session
            .as_ref()
            .ok_or(ApiError::Failed(ErrorCode::NotSignedIn))
    }
}

pub enum SigninRequest {
    Password { username: String, password: String },
    SignOut,
}

/// Outcome of a sign-in flow step; cookies are complete `Set-Cookie` header values.
#[derive(Debug)]
pub enum SigninStatus {
    SignedIn {
        /// The session cookie, then the device cookie.
        set_cookie: Vec<String>,
        /// The second step, the wizard, or Security info.
        next: String,
    },
    /// Wrong credentials, unknown user, disabled, locked or throttled: one answer for all. The
    /// submitted username is echoed back so the form keeps it (never the password).
    Rejected {
        username: String,
    },
    SignedOut {
        set_cookie: String,
    },
    Failed(ErrorCode),
}

pub enum AccountRequest {
    SecurityInfo,
    Activity { limit: u32 },
}

pub enum AccountStatus {
    SecurityInfo(SecurityInfo),
    Activity(Vec<ActivityItem>),
}

pub enum ReportRequest {
    Check { token: String },
    Confirm { token: String },
}

/// Security info, the wizard and the second sign-in step (see `api::security`).
pub enum SecurityRequest {
    Overview,
    TotpStart {
        name: String,
    },
    TotpSetup {
        id: String,
    },
    TotpConfirm {
        id: String,
        code: String,
    },
    PhoneStart {
        slot: String,
        number: String,
        extension: String,
        voice: bool,
    },
    EmailStart {
        address: String,
    },
    PendingCode {
        id: String,
    },
    CodeConfirm {
        id: String,
        code: String,
    },
    CodeResend {
        id: String,
        voice: Option<bool>,
    },
    Questions {
        answers: Vec<(String, String)>,
    },
    Pin {
        pin: String,
        confirm: String,
    },
    SetDefault {
        id: String,
    },
    Rename {
        id: String,
        name: String,
    },
    Remove {
        id: String,
    },
    Confirm,
    Snooze,
    SignOutOthers,
    PasskeyRegisterStart {
        name: String,
    },
    PasskeyRegisterFinish {
        ceremony: String,
        credential: String,
    },
    VerifyView {
        method: Option<String>,
        reauth: bool,
    },
    MfaSend {
        method: String,
        voice: bool,
        reauth: bool,
    },
    MfaCode {
        method: String,
        code: String,
        pin: Option<String>,
        reauth: bool,
    },
    /// A Temporary Access Pass from the helpdesk as the second sign-in step.
    MfaTap {
        pass: String,
    },
    /// A recovery code as the second sign-in step.
    MfaRecovery {
        code: String,
    },
    /// Activates an unassigned hardware token: its serial number and current code.
    TokenActivate {
        serial: String,
        code: String,
        name: String,
    },
    /// Resynchronises one of the user's HOTP tokens from two consecutive codes.
    TokenResync {
        id: String,
        first: String,
        second: String,
    },
    /// A new set of recovery codes (replacing the old one).
    RecoveryGenerate,
    /// The set just created, once.
    RecoveryTake,
    PasskeyAuthStart,
    PasskeyAuthFinish {
        ceremony: String,
        credential: String,
        reauth: bool,
    },
    /// Passwordless sign-in from the sign-in page (no session needed).
    DiscoverStart,
    DiscoverFinish {
        ceremony: String,
        credential: String,
    },
}

pub enum SecurityStatus {
    Overview(crate::api::Overview),
    TotpSetup(crate::api::TotpSetupView),
    PendingCode(crate::api::PendingCodeView),
    Verify(crate::api::VerifyView),
    Passkey(crate::api::PasskeyOptions),
    /// A new set of recovery codes, shown once (empty: nothing to show any more).
    RecoveryCodes(Vec<String>),
    /// Something pending was created: its id (setup or code).
    Started(String),
    /// Done; go here next.
    Next(String),
    /// A passwordless sign-in opened a session.
    SignedIn {
        set_cookie: String,
        next: String,
    },
    Done,
}

/// Self-service password reset and unlock (see `api::reset`). The flow is the reset cookie.
pub enum ResetRequest {
    /// The proof-of-work challenge for the first page (None when the policy has none).
    Challenge,
    Start {
        login: String,
        unlock: bool,
        proof: String,
    },
    View,
    Send {
        method: String,
        voice: bool,
    },
    Code {
        method: String,
        code: String,
    },
    Questions {
        method: String,
        answers: Vec<String>,
    },
    PasskeyStart,
    PasskeyFinish {
        ceremony: String,
        credential: String,
    },
    Password {
        password: String,
        confirm: String,
    },
    Unlock,
    Cancel,
}

pub enum ResetStatus {
    Challenge(Option<(String, u32)>),
    View(crate::api::ResetView),
    Passkey(crate::api::PasskeyOptions),
    /// Set this cookie (a new flow, or the flow's end) and go to `next`.
    Go {
        set_cookie: Option<String>,
        next: String,
    },
}

/// The helpdesk console (see `api::helpdesk`), and the caller's side of a portal approval.
pub enum HelpdeskRequest {
    Home {
        query: String,
    },
    Card {
        user: String,
    },
    VerifyStart {
        user: String,
        method: String,
        voice: bool,
    },
    VerifyCheck {
        verification: String,
        answers: Vec<String>,
    },
    Act {
        user: String,
        action: String,
        minutes: u32,
    },
    Decide {
        approval: String,
        approve: bool,
    },
    /// Hands out a hardware token (no codes), or resynchronises the user's HOTP token from two
    /// consecutive codes.
    Token {
        user: String,
        serial: String,
        codes: Option<(String, String)>,
    },
    Audit(crate::api::AuditQuery),
    Prompt,
    PromptAnswer {
        id: String,
        /// The number picked; `None`: "it's not me".
        pick: Option<String>,
    },
}

pub enum HelpdeskStatus {
    Home(crate::api::ConsoleHome),
    Card(Box<crate::api::UserCard>),
    Audit(Vec<crate::api::AuditLine>),
    Prompt(Option<crate::api::ApprovalPromptView>),
    /// Done; show this notice (a key the page knows).
    Notice(String),
    Done,
}

/// The backend as the UI sees it: one method per flow, a request enum in, a status out.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    async fn signin(&self, ctx: &RequestCtx, req: SigninRequest) -> SigninStatus;
    async fn account(
        &self,
        ctx: &RequestCtx,
        req: AccountRequest,
    ) -> Result<AccountStatus, ApiError>;
    async fn security(
        &self,
        ctx: &RequestCtx,
        req: SecurityRequest,
    ) -> Result<SecurityStatus, ApiError>;
    async fn reset(&self, ctx: &RequestCtx, req: ResetRequest) -> Result<ResetStatus, ApiError>;
    async fn helpdesk(
        &self,
        ctx: &RequestCtx,
        req: HelpdeskRequest,
    ) -> Result<HelpdeskStatus, ApiError>;
    /// "This wasn't me" links: `Confirm` answers `Valid` once, when it recorded the report.
    async fn report(
        &self,
        ctx: &RequestCtx,
        req: ReportRequest,
    ) -> Result<crate::api::ReportCheck, ApiError>;
}

/// The backend provided by the server as context.
pub fn backend() -> Result<Arc<dyn Backend>, ApiError> {
    use_context::<Arc<dyn Backend>>().ok_or(ApiError::Failed(ErrorCode::Internal))
}

/// The caller of the current request.
pub fn request_ctx() -> Result<RequestCtx, ApiError> {
    use_context::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<RequestCtx>().cloned())
        .ok_or(ApiError::Failed(ErrorCode::Internal))
}

/// Provides this request's CSP nonce so `HydrationScripts` marks its inline script with it.
pub fn provide_request_nonce() {
    if let Ok(ctx) = request_ctx() {
        provide_context(leptos::nonce::Nonce::from_value(ctx.nonce));
    }
}

/// Applies a sign-in / sign-out outcome to the HTTP response: cookie and redirect.
pub fn finish_signin(status: SigninStatus) {
    match status {
        SigninStatus::SignedIn {
            set_cookie: cookies,
            next,
        } => {
            for c in &cookies {
                set_cookie(c);
            }
            leptos_axum::redirect(&next);
        }
        SigninStatus::SignedOut { set_cookie: c } => {
            set_cookie(&c);
            leptos_axum::redirect(&format!("{}?notice=signed_out", routes::SIGNIN));
        }
        SigninStatus::Rejected { username } => {
            let mut query = format!("{}={}", routes::ERROR_PARAM, ErrorCode::SigninFailed.code());
            let username: String = username.trim().chars().take(256).collect();
            if !username.is_empty() {
                query.push('&');
                query.push_str(&query_pair(routes::USERNAME_PARAM, &username));
            }
            leptos_axum::redirect(&format!("{}?{query}", routes::SIGNIN))
        }
        SigninStatus::Failed(code) => leptos_axum::redirect(&format!(
            "{}?{}={}",
            routes::SIGNIN,
            routes::ERROR_PARAM,
            code.code()
        )),
    }
}

/// Adds a `Set-Cookie` header to the response.
pub fn set_cookie(value: &str) {
    if let (Some(opts), Ok(v)) = (
        use_context::<leptos_axum::ResponseOptions>(),
        http::HeaderValue::from_str(value),
    ) {
        opts.append_header(http::header::SET_COOKIE, v);
    }
}

/// Sets the HTTP status of the page being rendered (404 page, error pages).
pub fn set_status(code: u16) {
    if let (Some(opts), Ok(status)) = (
        use_context::<leptos_axum::ResponseOptions>(),
        http::StatusCode::from_u16(code),
    ) {
        opts.set_status(status);
    }
}

pub use crate::routes::query_pair;
