//! Security info: the wizard, the Security info page, adding and managing methods, and the
//! second sign-in step. Form posts end in a redirect (so everything except the passkey ceremony
//! works without JavaScript); the passkey functions answer JSON to `public/passkey.js`.

use super::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// A registered method as pages show it: never a secret, destinations masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodView {
    pub id: String,
    /// `totp`, `passkey`, `phone`, `email`, `questions`, `pin`
    pub kind: String,
    pub name: String,
    /// Masked number or address, phone slot, or empty.
    pub detail: String,
    pub added_on: String,
    pub last_used: Option<String>,
    pub is_default: bool,
    pub from_directory: bool,
    /// Can be made the default sign-in method.
    pub signs_in: bool,
    /// An event-based (HOTP) hardware token's serial number: it can be resynchronised.
    pub resync_serial: Option<String>,
}

/// One kind of method the user may add, with what stops it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddOption {
    pub kind: String,
    pub mandatory: bool,
    /// The user already has the maximum of this kind.
    pub full: bool,
    pub registered: bool,
}

/// Everything the Security info page and the wizard need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overview {
    pub methods: Vec<MethodView>,
    pub options: Vec<AddOption>,
    /// Numbers the directory has for the user that are not registered yet: (slot, masked).
    pub directory_phones: Vec<(String, String)>,
    pub registered: u32,
    pub required: u32,
    pub complete: bool,
    pub review_due: bool,
    pub can_snooze: bool,
    pub snoozes_left: u32,
    /// The pool of security questions and how many to answer.
    pub questions: Vec<String>,
    pub questions_required: u32,
    pub allow_custom_questions: bool,
    pub pin_min: u32,
    pub pin_max: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpSetupView {
    pub id: String,
    pub name: String,
    /// Base32 key in groups of four, for manual entry.
    pub key: String,
    pub account: String,
    pub issuer: String,
    /// The QR code as an SVG document.
    pub qr_svg: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCodeView {
    pub id: String,
    pub kind: String,
    /// `sms`, `voice` or `email`
    pub channel: String,
    pub destination: String,
}

/// The second step of sign-in (or re-authentication): the method in use and the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyView {
    pub current: Option<MethodView>,
    pub others: Vec<MethodView>,
    pub pin_mode: bool,
    pub reauth: bool,
    /// The user has recovery codes (offered as "Use a recovery code").
    pub recovery: bool,
}

/// What `public/passkey.js` needs for a ceremony.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyOptions {
    pub ceremony: String,
    /// WebAuthn options as JSON (`publicKey` inside).
    pub options: String,
    /// A user-facing error code (e.g. `KEY-001`); the script shows the page with it.
    pub error: Option<String>,
}

/// The end of a passkey ceremony for `public/passkey.js`: where to go, or the error code.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyResult {
    pub next: String,
    pub error: Option<String>,
}

/// The start of any passkey ceremony: the options, or the error code for the script.
#[cfg(feature = "ssr")]
async fn passkey_options(req: crate::ssr::SecurityRequest) -> Result<PasskeyOptions, ApiError> {
    match call(req).await {
        Ok(crate::ssr::SecurityStatus::Passkey(o)) => Ok(o),
        Ok(_) => Err(crate::api::ErrorCode::Internal.into()),
        Err(e) => Ok(passkey_error(e, |o: &mut PasskeyOptions, c| o.error = c)),
    }
}

#[cfg(feature = "ssr")]
pub(super) fn passkey_error<T: Default>(e: ApiError, f: impl FnOnce(&mut T, Option<String>)) -> T {
    let mut out = T::default();
    f(&mut out, Some(e.code().code().to_string()));
    out
}

/// Redirects to `to` (the end of every form post).
#[cfg(feature = "ssr")]
pub(super) fn go(to: &str) {
    leptos_axum::redirect(to);
}

/// `page?key=value&…&error=CODE`, or a detour through re-authentication when that is the
/// problem.
#[cfg(feature = "ssr")]
fn fail(page: &str, params: &[(&str, &str)], e: ApiError) {
    use crate::api::ErrorCode;
    use crate::routes;
    let code = e.code();
    if code == ErrorCode::NotSignedIn {
        return go(routes::SIGNIN);
    }
    let mut query: Vec<String> = params
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| crate::ssr::query_pair(k, v))
        .collect();
    let back = if query.is_empty() {
        page.to_string()
    } else {
        format!("{page}?{}", query.join("&"))
    };
    if code == ErrorCode::ReauthRequired {
        return go(&format!(
            "{}?{}&{}",
            routes::VERIFY,
            crate::ssr::query_pair("next", &back),
            crate::ssr::query_pair(routes::ERROR_PARAM, code.code())
        ));
    }
    query.push(format!("{}={}", routes::ERROR_PARAM, code.code()));
    go(&format!("{page}?{}", query.join("&")));
}

#[cfg(feature = "ssr")]
async fn call(req: crate::ssr::SecurityRequest) -> Result<crate::ssr::SecurityStatus, ApiError> {
    let ctx = crate::ssr::request_ctx()?;
    crate::ssr::backend()?.security(&ctx, req).await
}

#[cfg(feature = "ssr")]
fn flow_of(flow: &str) -> &'static str {
    if flow == "setup" {
        "setup"
    } else {
        "info"
    }
}

#[cfg(feature = "ssr")]
macro_rules! expect {
    ($status:expr, $variant:ident) => {
        match $status {
            crate::ssr::SecurityStatus::$variant(v) => Ok(v),
            _ => Err(ApiError::from(crate::api::ErrorCode::Internal)),
        }
    };
}

#[server(prefix = "/api", endpoint = "security_overview")]
pub async fn get_overview() -> Result<Overview, ApiError> {
    expect!(call(crate::ssr::SecurityRequest::Overview).await?, Overview)
}

#[server(prefix = "/api", endpoint = "totp_setup")]
pub async fn get_totp_setup(id: String) -> Result<TotpSetupView, ApiError> {
    expect!(
        call(crate::ssr::SecurityRequest::TotpSetup { id }).await?,
        TotpSetup
    )
}

#[server(prefix = "/api", endpoint = "pending_code")]
pub async fn get_pending_code(id: String) -> Result<PendingCodeView, ApiError> {
    expect!(
        call(crate::ssr::SecurityRequest::PendingCode { id }).await?,
        PendingCode
    )
}

#[server(prefix = "/api", endpoint = "verify_view")]
pub async fn get_verify(method: Option<String>, reauth: bool) -> Result<VerifyView, ApiError> {
    expect!(
        call(crate::ssr::SecurityRequest::VerifyView { method, reauth }).await?,
        Verify
    )
}

#[server(prefix = "/api", endpoint = "totp_start")]
pub async fn totp_start(name: String, flow: String) -> Result<(), ApiError> {
    use crate::routes::ADD_APP;
    let flow = flow_of(&flow);
    match call(crate::ssr::SecurityRequest::TotpStart { name: name.clone() }).await {
        Ok(crate::ssr::SecurityStatus::Started(id)) => {
            go(&format!("{ADD_APP}?setup={id}&flow={flow}"))
        }
        Ok(_) => fail(
            ADD_APP,
            &[("flow", flow)],
            crate::api::ErrorCode::Internal.into(),
        ),
        Err(e) => fail(ADD_APP, &[("flow", flow), ("name", &name)], e),
    }
    Ok(())
}

#[server(prefix = "/api", endpoint = "totp_confirm")]
pub async fn totp_confirm(id: String, code: String, flow: String) -> Result<(), ApiError> {
    use crate::routes::ADD_APP;
    let flow = flow_of(&flow);
    let req = crate::ssr::SecurityRequest::TotpConfirm {
        id: id.clone(),
        code,
    };
    finish_confirm(req, ADD_APP, ("setup", &id), flow).await;
    Ok(())
}

/// The end of a "type the code" step: on to the wizard or Security info; back to the same step
/// with the error; back to the start when the step expired.
#[cfg(feature = "ssr")]
async fn finish_confirm(
    req: crate::ssr::SecurityRequest,
    page: &str,
    step: (&str, &str),
    flow: &str,
) {
    match call(req).await {
        Ok(_) => go(&crate::routes::after_add(flow)),
        Err(e) if e.code() == crate::api::ErrorCode::SetupExpired => {
            fail(page, &[("flow", flow)], e)
        }
        Err(e) => fail(page, &[step, ("flow", flow)], e),
    }
}

#[server(prefix = "/api", endpoint = "phone_start")]
pub async fn phone_start(
    slot: String,
    number: String,
    extension: Option<String>,
    how: Option<String>,
    flow: String,
) -> Result<(), ApiError> {
    use crate::routes::ADD_PHONE;
    let flow = flow_of(&flow);
    let extension = extension.unwrap_or_default();
    let req = crate::ssr::SecurityRequest::PhoneStart {
        slot: slot.clone(),
        number: number.clone(),
        extension: extension.clone(),
        voice: how.as_deref() == Some("voice"),
    };
    match call(req).await {
        Ok(crate::ssr::SecurityStatus::Started(id)) => {
            go(&format!("{ADD_PHONE}?code={id}&flow={flow}"))
        }
        Ok(_) => fail(
            ADD_PHONE,
            &[("flow", flow)],
            crate::api::ErrorCode::Internal.into(),
        ),
        Err(e) => fail(
            ADD_PHONE,
            &[
                ("flow", flow),
                ("slot", &slot),
                ("number", &number),
                ("extension", &extension),
            ],
            e,
        ),
    }
    Ok(())
}

#[server(prefix = "/api", endpoint = "email_start")]
pub async fn email_start(address: String, flow: String) -> Result<(), ApiError> {
    use crate::routes::ADD_EMAIL;
    let flow = flow_of(&flow);
    let req = crate::ssr::SecurityRequest::EmailStart {
        address: address.clone(),
    };
    match call(req).await {
        Ok(crate::ssr::SecurityStatus::Started(id)) => {
            go(&format!("{ADD_EMAIL}?code={id}&flow={flow}"))
        }
        Ok(_) => fail(
            ADD_EMAIL,
            &[("flow", flow)],
            crate::api::ErrorCode::Internal.into(),
        ),
        Err(e) => fail(ADD_EMAIL, &[("flow", flow), ("address", &address)], e),
    }
    Ok(())
}

/// Confirms the code sent to a phone or email being added (`page`: `phone` or `email`).
#[server(prefix = "/api", endpoint = "code_confirm")]
pub async fn code_confirm(
    id: String,
    code: String,
    page: String,
    flow: String,
) -> Result<(), ApiError> {
    let flow = flow_of(&flow);
    let back = if page == "email" {
        crate::routes::ADD_EMAIL
    } else {
        crate::routes::ADD_PHONE
    };
    let req = crate::ssr::SecurityRequest::CodeConfirm {
        id: id.clone(),
        code,
    };
    finish_confirm(req, back, ("code", &id), flow).await;
    Ok(())
}

#[server(prefix = "/api", endpoint = "code_resend")]
pub async fn code_resend(
    id: String,
    how: Option<String>,
    page: String,
    flow: String,
) -> Result<(), ApiError> {
    let flow = flow_of(&flow);
    let back = if page == "email" {
        crate::routes::ADD_EMAIL
    } else {
        crate::routes::ADD_PHONE
    };
    let voice = how.map(|h| h == "voice");
    match call(crate::ssr::SecurityRequest::CodeResend {
        id: id.clone(),
        voice,
    })
    .await
    {
        Ok(crate::ssr::SecurityStatus::Started(new_id)) => {
            go(&format!("{back}?code={new_id}&flow={flow}&notice=sent"))
        }
        Ok(_) => go(back),
        Err(e) => fail(back, &[("code", &id), ("flow", flow)], e),
    }
    Ok(())
}

/// Up to six question / answer pairs (the policy says how many are needed).
#[allow(clippy::too_many_arguments)]
#[server(prefix = "/api", endpoint = "set_questions")]
pub async fn set_questions(
    flow: String,
    q1: Option<String>,
    a1: Option<String>,
    q2: Option<String>,
    a2: Option<String>,
    q3: Option<String>,
    a3: Option<String>,
    q4: Option<String>,
    a4: Option<String>,
    q5: Option<String>,
    a5: Option<String>,
    q6: Option<String>,
    a6: Option<String>,
    c1: Option<String>,
    c2: Option<String>,
    c3: Option<String>,
    c4: Option<String>,
    c5: Option<String>,
    c6: Option<String>,
) -> Result<(), ApiError> {
    let flow = flow_of(&flow);
    // a custom question (when the policy allows them) replaces the chosen one
    let pick = |q: Option<String>, c: Option<String>| c.filter(|c| !c.trim().is_empty()).or(q);
    let answers: Vec<(String, String)> = [
        (pick(q1, c1), a1),
        (pick(q2, c2), a2),
        (pick(q3, c3), a3),
        (pick(q4, c4), a4),
        (pick(q5, c5), a5),
        (pick(q6, c6), a6),
    ]
    .into_iter()
    .filter_map(|(q, a)| q.map(|q| (q, a.unwrap_or_default())))
    .filter(|(q, _)| !q.is_empty())
    .collect();
    match call(crate::ssr::SecurityRequest::Questions { answers }).await {
        Ok(_) => go(&crate::routes::after_add(flow)),
        // answers are never echoed back
        Err(e) => fail(crate::routes::ADD_QUESTIONS, &[("flow", flow)], e),
    }
    Ok(())
}

#[server(prefix = "/api", endpoint = "set_pin")]
pub async fn set_pin(pin: String, confirm: String, flow: String) -> Result<(), ApiError> {
    let flow = flow_of(&flow);
    match call(crate::ssr::SecurityRequest::Pin { pin, confirm }).await {
        Ok(_) => go(&crate::routes::after_add(flow)),
        Err(e) => fail(crate::routes::ADD_PIN, &[("flow", flow)], e),
    }
    Ok(())
}

/// Activates a hardware token from the inventory: its serial number and current code.
#[server(prefix = "/api", endpoint = "token_activate")]
pub async fn token_activate(
    serial: String,
    code: String,
    name: Option<String>,
    flow: String,
) -> Result<(), ApiError> {
    use crate::routes::ADD_TOKEN;
    let flow = flow_of(&flow);
    let req = crate::ssr::SecurityRequest::TokenActivate {
        serial: serial.clone(),
        code,
        name: name.unwrap_or_default(),
    };
    match call(req).await {
        Ok(_) => go(&crate::routes::after_add(flow)),
        Err(e) => fail(ADD_TOKEN, &[("flow", flow), ("serial", &serial)], e),
    }
    Ok(())
}

/// Resynchronises an HOTP hardware token from two consecutive codes (Security info).
#[server(prefix = "/api", endpoint = "token_resync")]
pub async fn token_resync(id: String, first: String, second: String) -> Result<(), ApiError> {
    use crate::routes::SECURITY_INFO;
    match call(crate::ssr::SecurityRequest::TokenResync { id, first, second }).await {
        Ok(_) => go(&format!("{SECURITY_INFO}?notice=resynced")),
        Err(e) => fail(SECURITY_INFO, &[], e),
    }
    Ok(())
}

/// Creates a new set of recovery codes and shows it (once).
#[server(prefix = "/api", endpoint = "recovery_generate")]
pub async fn recovery_generate(flow: String) -> Result<(), ApiError> {
    use crate::routes::ADD_RECOVERY;
    let flow = flow_of(&flow);
    match call(crate::ssr::SecurityRequest::RecoveryGenerate).await {
        Ok(_) => go(&format!("{ADD_RECOVERY}?show=1&flow={flow}")),
        Err(e) => fail(ADD_RECOVERY, &[("flow", flow)], e),
    }
    Ok(())
}

/// The set of recovery codes just created, once (empty afterwards).
#[server(prefix = "/api", endpoint = "recovery_codes")]
pub async fn get_recovery_codes() -> Result<Vec<String>, ApiError> {
    expect!(
        call(crate::ssr::SecurityRequest::RecoveryTake).await?,
        RecoveryCodes
    )
}

/// Second step: one of the user's recovery codes.
#[server(prefix = "/api", endpoint = "verify_recovery")]
pub async fn verify_recovery(code: String) -> Result<(), ApiError> {
    match call(crate::ssr::SecurityRequest::MfaRecovery { code }).await {
        Ok(crate::ssr::SecurityStatus::Next(to)) => go(&to),
        Ok(_) => go(crate::routes::SECURITY_INFO),
        Err(e) => fail(crate::routes::VERIFY, &[("recovery", "1")], e),
    }
    Ok(())
}

/// Security info page actions: `default`, `rename`, `remove`, `confirm`, `snooze`,
/// `sign_out_others`.
#[server(prefix = "/api", endpoint = "manage_method")]
pub async fn manage(
    action: String,
    id: Option<String>,
    name: Option<String>,
) -> Result<(), ApiError> {
    use crate::routes::{SECURITY_INFO, SETUP};
    use crate::ssr::SecurityRequest as R;
    let id = id.unwrap_or_default();
    let (req, ok, back) = match action.as_str() {
        "default" => (R::SetDefault { id }, "saved", SECURITY_INFO),
        "rename" => (
            R::Rename {
                id,
                name: name.unwrap_or_default(),
            },
            "saved",
            SECURITY_INFO,
        ),
        "remove" => (R::Remove { id }, "removed", SECURITY_INFO),
        "confirm" => (R::Confirm, "confirmed", SECURITY_INFO),
        "snooze" => (R::Snooze, "", SETUP),
        "sign_out_others" => (R::SignOutOthers, "others_signed_out", SECURITY_INFO),
        _ => return Err(crate::api::ErrorCode::Internal.into()),
    };
    match call(req).await {
        Ok(_) if ok.is_empty() => go(SECURITY_INFO),
        Ok(_) => go(&format!("{SECURITY_INFO}?notice={ok}")),
        Err(e) => fail(back, &[], e),
    }
    Ok(())
}

/// Second step: checks an app code, or the code sent to a phone / email (PIN in PIN mode).
#[server(prefix = "/api", endpoint = "verify_code")]
pub async fn verify_code(
    method: String,
    code: String,
    pin: Option<String>,
    next: Option<String>,
) -> Result<(), ApiError> {
    use crate::routes::VERIFY;
    let next = next.filter(|n| !n.is_empty());
    // nothing typed: "I approved the call" (the page keeps offering it)
    let sent = if code.trim().is_empty() { "call" } else { "1" };
    let req = crate::ssr::SecurityRequest::MfaCode {
        method: method.clone(),
        code,
        pin,
        reauth: next.is_some(),
    };
    match call(req).await {
        Ok(_) if next.is_some() => go(&crate::routes::safe_next(
            next.as_deref().unwrap_or_default(),
        )),
        Ok(crate::ssr::SecurityStatus::Next(to)) => go(&to),
        Ok(_) => go(crate::routes::SECURITY_INFO),
        Err(e) => fail(
            VERIFY,
            &[
                ("method", &method),
                ("sent", sent),
                ("next", next.as_deref().unwrap_or_default()),
            ],
            e,
        ),
    }
    Ok(())
}

/// Second step: a Temporary Access Pass the helpdesk issued.
#[server(prefix = "/api", endpoint = "verify_tap")]
pub async fn verify_tap(pass: String) -> Result<(), ApiError> {
    match call(crate::ssr::SecurityRequest::MfaTap { pass }).await {
        Ok(crate::ssr::SecurityStatus::Next(to)) => go(&to),
        Ok(_) => go(crate::routes::SECURITY_INFO),
        Err(e) => fail(crate::routes::VERIFY, &[("tap", "1")], e),
    }
    Ok(())
}

/// Second step: sends a code to a registered phone (text or call) or email (re-authentication).
#[server(prefix = "/api", endpoint = "verify_send")]
pub async fn verify_send(
    method: String,
    how: Option<String>,
    next: Option<String>,
) -> Result<(), ApiError> {
    use crate::routes::VERIFY;
    let next = next.filter(|n| !n.is_empty());
    let next_q = next.clone().unwrap_or_default();
    let req = crate::ssr::SecurityRequest::MfaSend {
        method: method.clone(),
        voice: how.as_deref() == Some("voice"),
        reauth: next.is_some(),
    };
    match call(req).await {
        Ok(_) => {
            let mut to = format!(
                "{VERIFY}?{}&sent={}",
                crate::ssr::query_pair("method", &method),
                if how.as_deref() == Some("voice") {
                    "call"
                } else {
                    "1"
                }
            );
            if !next_q.is_empty() {
                to.push('&');
                to.push_str(&crate::ssr::query_pair("next", &next_q));
            }
            go(&to)
        }
        Err(e) => fail(VERIFY, &[("method", &method), ("next", &next_q)], e),
    }
    Ok(())
}

#[server(prefix = "/api", endpoint = "passkey_register_start")]
pub async fn passkey_register_start(name: String) -> Result<PasskeyOptions, ApiError> {
    passkey_options(crate::ssr::SecurityRequest::PasskeyRegisterStart { name }).await
}

#[server(prefix = "/api", endpoint = "passkey_register_finish")]
pub async fn passkey_register_finish(
    ceremony: String,
    credential: String,
    flow: String,
) -> Result<PasskeyResult, ApiError> {
    let req = crate::ssr::SecurityRequest::PasskeyRegisterFinish {
        ceremony,
        credential,
    };
    Ok(match call(req).await {
        Ok(_) => PasskeyResult {
            next: crate::routes::after_add(flow_of(&flow)),
            error: None,
        },
        Err(e) => passkey_error(e, |o: &mut PasskeyResult, c| o.error = c),
    })
}

#[server(prefix = "/api", endpoint = "passkey_auth_start")]
pub async fn passkey_auth_start() -> Result<PasskeyOptions, ApiError> {
    passkey_options(crate::ssr::SecurityRequest::PasskeyAuthStart).await
}

#[server(prefix = "/api", endpoint = "passkey_auth_finish")]
pub async fn passkey_auth_finish(
    ceremony: String,
    credential: String,
    next: Option<String>,
) -> Result<PasskeyResult, ApiError> {
    let next = next.filter(|n| !n.is_empty());
    let req = crate::ssr::SecurityRequest::PasskeyAuthFinish {
        ceremony,
        credential,
        reauth: next.is_some(),
    };
    Ok(match (call(req).await, next) {
        (Ok(_), Some(next)) => PasskeyResult {
            next: crate::routes::safe_next(&next),
            error: None,
        },
        (Ok(crate::ssr::SecurityStatus::Next(to)), None) => PasskeyResult {
            next: to,
            error: None,
        },
        (Ok(_), None) => PasskeyResult {
            next: crate::routes::SECURITY_INFO.to_string(),
            error: None,
        },
        (Err(e), _) => passkey_error(e, |o: &mut PasskeyResult, c| o.error = c),
    })
}

/// Passwordless sign-in: options for a discoverable passkey (anyone may ask).
#[server(prefix = "/api", endpoint = "passkey_discover_start")]
pub async fn passkey_discover_start() -> Result<PasskeyOptions, ApiError> {
    passkey_options(crate::ssr::SecurityRequest::DiscoverStart).await
}

/// Passwordless sign-in: checks the assertion and opens the session (cookie) on success. Every
/// failure is the same `SIG-001` answer as a failed password sign-in.
#[server(prefix = "/api", endpoint = "passkey_discover_finish")]
pub async fn passkey_discover_finish(
    ceremony: String,
    credential: String,
) -> Result<PasskeyResult, ApiError> {
    let req = crate::ssr::SecurityRequest::DiscoverFinish {
        ceremony,
        credential,
    };
    Ok(match call(req).await {
        Ok(crate::ssr::SecurityStatus::SignedIn { set_cookie, next }) => {
            crate::ssr::set_cookie(&set_cookie);
            PasskeyResult { next, error: None }
        }
        Ok(_) => PasskeyResult {
            next: String::new(),
            error: Some(crate::api::ErrorCode::SigninFailed.code().into()),
        },
        Err(e) => passkey_error(e, |o: &mut PasskeyResult, c| o.error = c),
    })
}
