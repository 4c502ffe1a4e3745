//! The Security info part of the UI's port: maps `SecurityRequest`s to the domain's
//! [`Security`] service and its results to page data. Refusals keep their user-facing code;
//! everything else is logged here and shown as SYS-503 / SYS-500.

use super::AppState;
use crate::domain::error::DomainError;
use crate::domain::flows::security::{Actor, Method, MfaOutcome, Security};
use crate::domain::format_time;
use crate::domain::policy::MethodKind;
use crate::store::methods::RegistrationState;
use crate::store::SessionRow;
use converge_app::api::{
    AddOption, ApiError, ErrorCode, MethodView, Overview, PasskeyOptions, PendingCodeView,
    TotpSetupView, VerifyView,
};
use converge_app::routes;
use converge_app::ssr::{RequestCtx, SecurityRequest as R, SecurityStatus as S, SignedIn};

pub(super) fn api_error(e: DomainError) -> ApiError {
    match e {
        DomainError::Refused(code) => code.into(),
        DomainError::Store(_) | DomainError::Directory(_) | DomainError::Busy => {
            tracing::error!(error = %e, "security info: backend failure");
            ErrorCode::Unavailable.into()
        }
        other => {
            tracing::error!(error = %other, "security info: failure");
            ErrorCode::Internal.into()
        }
    }
}

/// Requests a half signed-in session (password done, second factor pending) may make.
fn allowed_while_pending(req: &R) -> bool {
    matches!(
        req,
        R::VerifyView { reauth: false, .. }
            | R::MfaSend { reauth: false, .. }
            | R::MfaCode { reauth: false, .. }
            | R::MfaTap { .. }
            | R::MfaRecovery { .. }
            | R::PasskeyAuthStart
            | R::PasskeyAuthFinish { reauth: false, .. }
    )
}

pub(super) async fn actor(
    state: &AppState,
    ctx: &RequestCtx,
    s: &SignedIn,
) -> Result<Actor, ApiError> {
    // the user the session check loaded moments ago, else from the store
    let user = match ctx.attached.get::<crate::domain::users::User>() {
        Some(u) if u.id == s.user_id => u.clone(),
        _ => state
            .store
            .find_user(&s.user_id)
            .await
            .map_err(|e| api_error(e.into()))?
            .ok_or(ApiError::Failed(ErrorCode::NotSignedIn))?,
    };
    Ok(Actor::in_session(
        user,
        SessionRow {
            id_hash: s.session_hash.clone(),
            user_id: s.user_id.clone(),
            created_at: s.created_at,
            last_seen_at: 0,
            expires_at: 0,
            client_ip: ctx.client_ip.clone(),
            user_agent: ctx.user_agent.clone(),
            stage: if ctx.session.is_some() { "full" } else { "mfa" }.into(),
            mfa_at: s.mfa_at,
        },
        super::client_of(ctx),
    ))
}

pub fn method_view(m: &Method) -> MethodView {
    let t = converge_app::text::en();
    let token = |k: &str| {
        let d = m.detail();
        d.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string()
    };
    let detail = match m.kind {
        MethodKind::Phone => {
            let slot = t.sec.slot_label(&m.slot().unwrap_or_default());
            let number = crate::domain::flows::security::mask(&m.destination().unwrap_or_default());
            format!("{slot} · {number}")
        }
        MethodKind::Email => {
            crate::domain::flows::security::mask(&m.destination().unwrap_or_default())
        }
        MethodKind::Token => format!("{} · {}", token("serial"), token("otp").to_uppercase()),
        _ => String::new(),
    };
    MethodView {
        id: m.row.id.clone(),
        kind: m.kind.as_str().into(),
        name: m.row.name.clone(),
        detail,
        added_on: format_time(m.row.activated_at.max(m.row.created_at)),
        last_used: (m.row.last_used_at > 0).then(|| format_time(m.row.last_used_at)),
        is_default: m.row.is_default,
        from_directory: m.row.source == "directory",
        signs_in: m.kind.can_be_default(),
        resync_serial: (m.kind == MethodKind::Token && token("otp") == "hotp")
            .then(|| token("serial")),
    }
}

fn next_page(wizard: bool) -> String {
    if wizard {
        routes::SETUP.to_string()
    } else {
        routes::SECURITY_INFO.to_string()
    }
}

/// Where a completed sign-in goes: the wizard when registration is due, else Security info.
pub async fn after_signin(
    sec: &Security,
    user: &crate::domain::users::User,
    now: i64,
) -> Result<String, DomainError> {
    Ok(if sec.needs_wizard(user, now).await? {
        routes::SETUP.to_string()
    } else {
        routes::SECURITY_INFO.to_string()
    })
}

pub async fn handle(state: &AppState, ctx: &RequestCtx, req: R) -> Result<S, ApiError> {
    let now = state.clock.now();
    match req {
        R::DiscoverStart => {
            let (ceremony, options) = state
                .security
                .discover_start(now)
                .await
                .map_err(api_error)?;
            return Ok(S::Passkey(PasskeyOptions {
                ceremony,
                options: options.to_string(),
                error: None,
            }));
        }
        R::DiscoverFinish {
            ceremony,
            credential,
        } => {
            return passwordless(state, ctx, &ceremony, &credential, now)
                .await
                .map_err(api_error)
        }
        _ => {}
    }
    let signed = match (&ctx.session, &ctx.pending) {
        (Some(s), _) => s,
        (None, Some(p)) if allowed_while_pending(&req) => p,
        _ => return Err(ErrorCode::NotSignedIn.into()),
    };
    let actor = actor(state, ctx, signed).await?;
    let result = run(state, &actor, req, now).await.map_err(api_error);
    // a privilege change gave the session a new id: the browser gets the new cookie
    if let Some(token) = actor.take_new_session() {
        converge_app::ssr::set_cookie(&super::caller::session_cookie_value(&state.config, &token));
    }
    result
}

/// A discoverable passkey signed in: a new, fully signed-in session (or SIG-001 for anything
/// wrong, exactly like a failed password).
async fn passwordless(
    state: &AppState,
    ctx: &RequestCtx,
    ceremony: &str,
    credential: &str,
    now: i64,
) -> Result<S, DomainError> {
    let client = super::client_of(ctx);
    let Some(user) = state
        .security
        .discover_finish(ceremony, credential, &client, now)
        .await?
    else {
        let mut e =
            crate::domain::audit::AuditEntry::new(crate::domain::audit::event::SIGNIN, false, now);
        e.reason = Some("passkey (passwordless) refused".into());
        e.client_ip = Some(client.ip.clone());
        e.user_agent = Some(client.user_agent.clone());
        state.store.append_audit(&e).await?;
        return Err(DomainError::Refused(ErrorCode::SigninFailed));
    };
    let token = crate::domain::flows::signin::passkey_session(
        &state.store,
        &user,
        &client,
        ctx.session_token.as_deref(),
        &state.config.policy.session,
        now,
    )
    .await?;
    Ok(S::SignedIn {
        set_cookie: super::caller::session_cookie_value(&state.config, &token),
        next: after_signin(&state.security, &user, now).await?,
    })
}

async fn run(state: &AppState, actor: &Actor, req: R, now: i64) -> Result<S, DomainError> {
    let sec = &state.security;
    let p = &sec.policy;
    Ok(match req {
        R::Overview => {
            let methods = sec.methods(&actor.user.id).await?;
            let reg = RegistrationState::from(&actor.user);
            let status = sec.status(&actor.user, &methods, reg, now);
            let count = |k: MethodKind| methods.iter().filter(|m| m.kind == k).count() as u32;
            let options = p
                .allowed
                .iter()
                .map(|k| AddOption {
                    kind: k.as_str().into(),
                    mandatory: p.mandatory.contains(k),
                    full: count(*k) >= p.max_of(*k),
                    registered: count(*k) > 0,
                })
                .collect();
            let registered_numbers: Vec<String> = methods
                .iter()
                .filter(|m| m.kind == MethodKind::Phone)
                .filter_map(Method::destination)
                .collect();
            let u = &actor.user;
            let directory_phones = [
                ("mobile", &u.mobile_phone),
                ("alternate", &u.alternate_phone),
                ("office", &u.office_phone),
            ]
            .into_iter()
            .filter_map(|(slot, n)| n.as_ref().map(|n| (slot, n)))
            .filter(|(_, n)| !registered_numbers.contains(n))
            .map(|(slot, n)| (slot.to_string(), crate::notify::mask_number(n)))
            .collect();
            let left = sec.recovery_left(&methods).await?;
            let t = converge_app::text::en();
            let views = methods
                .iter()
                .map(|m| {
                    let mut v = method_view(m);
                    if m.kind == MethodKind::Recovery {
                        v.detail = t
                            .sec
                            .recovery_left_text(left.unwrap_or(0), p.recovery_codes);
                    }
                    v
                })
                .collect();
            S::Overview(Overview {
                methods: views,
                options,
                directory_phones,
                registered: status.registered,
                required: status.required,
                complete: status.complete,
                review_due: status.review_due,
                can_snooze: status.can_snooze,
                snoozes_left: status.snoozes_left,
                questions: p.questions.clone(),
                questions_required: p.questions_required,
                allow_custom_questions: p.allow_custom_questions,
                pin_min: p.pin_min_length,
                pin_max: p.pin_max_length,
            })
        }
        R::TotpStart { name } => S::Started(sec.totp_start(actor, &name, now).await?),
        R::TotpSetup { id } => {
            let s = sec.totp_setup(actor, &id, now).await?;
            S::TotpSetup(TotpSetupView {
                id: s.id,
                name: s.name,
                key: s.key,
                account: actor.user.username.clone(),
                issuer: p.totp.issuer.clone(),
                qr_svg: s.qr_svg,
            })
        }
        R::TotpConfirm { id, code } => {
            sec.totp_confirm(actor, &id, &code, now).await?;
            S::Done
        }
        R::PhoneStart {
            slot,
            number,
            extension,
            voice,
        } => S::Started(
            sec.phone_start(actor, &slot, &number, &extension, voice, now)
                .await?
                .id,
        ),
        R::EmailStart { address } => S::Started(sec.email_start(actor, &address, now).await?.id),
        R::PendingCode { id } => {
            let c = sec.pending_code(actor, &id).await?;
            S::PendingCode(PendingCodeView {
                id: c.id,
                kind: c.kind.as_str().into(),
                channel: c.channel,
                destination: c.destination,
            })
        }
        R::CodeConfirm { id, code } => {
            sec.code_confirm(actor, &id, &code, now).await?;
            S::Done
        }
        R::CodeResend { id, voice } => {
            S::Started(sec.resend_code(actor, &id, voice, now).await?.id)
        }
        R::Questions { answers } => {
            sec.set_questions(actor, &answers, now).await?;
            S::Done
        }
        R::Pin { pin, confirm } => {
            sec.set_pin(actor, &pin, &confirm, now).await?;
            S::Done
        }
        R::SetDefault { id } => {
            sec.set_default(actor, &id, now).await?;
            S::Done
        }
        R::Rename { id, name } => {
            sec.rename(actor, &id, &name, now).await?;
            S::Done
        }
        R::Remove { id } => {
            sec.remove(actor, &id, now).await?;
            S::Done
        }
        R::Confirm => {
            sec.confirm(actor, now).await?;
            S::Done
        }
        R::Snooze => {
            sec.snooze(actor, now).await?;
            S::Done
        }
        R::SignOutOthers => {
            sec.sign_out_others(actor, now).await?;
            S::Done
        }
        R::PasskeyRegisterStart { name } => {
            let (ceremony, options) = sec.passkey_start(actor, &name, now).await?;
            S::Passkey(PasskeyOptions {
                ceremony,
                options: options.to_string(),
                error: None,
            })
        }
        R::PasskeyRegisterFinish {
            ceremony,
            credential,
        } => {
            sec.passkey_finish(actor, &ceremony, &credential, now)
                .await?;
            S::Done
        }
        R::VerifyView { method, reauth } => {
            let methods = sec.methods(&actor.user.id).await?;
            let kinds: Vec<MethodKind> = methods.iter().map(|m| m.kind).collect();
            let factors = sec.factor_methods(methods, reauth);
            let pos = method
                .as_deref()
                .and_then(|id| factors.iter().position(|m| m.row.id == id))
                .or((!factors.is_empty()).then_some(0));
            let current = pos.map(|i| method_view(&factors[i]));
            let others = factors
                .iter()
                .enumerate()
                .filter(|(i, _)| Some(*i) != pos)
                .map(|(_, m)| method_view(m))
                .collect();
            S::Verify(VerifyView {
                current,
                others,
                pin_mode: p.pin_mode && kinds.contains(&MethodKind::Pin),
                reauth,
                recovery: kinds.contains(&MethodKind::Recovery),
            })
        }
        R::MfaSend {
            method,
            voice,
            reauth,
        } => S::Started(sec.mfa_send(actor, &method, voice, reauth, now).await?.id),
        R::MfaCode {
            method,
            code,
            pin,
            reauth,
        } => {
            let MfaOutcome::Verified { methods } = sec
                .mfa_code(actor, &method, &code, pin.as_deref(), reauth, now)
                .await?;
            S::Next(next_page(sec.needs_wizard_with(&actor.user, &methods, now)))
        }
        R::MfaTap { pass } => {
            let MfaOutcome::Verified { methods } = sec.mfa_tap(actor, &pass, now).await?;
            S::Next(next_page(sec.needs_wizard_with(&actor.user, &methods, now)))
        }
        R::MfaRecovery { code } => {
            let (MfaOutcome::Verified { methods }, used) =
                sec.mfa_recovery(actor, &code, now).await?;
            let next = next_page(sec.needs_wizard_with(&actor.user, &methods, now));
            S::Next(format!("{next}?notice=recovery_used&left={}", used.left))
        }
        R::TokenActivate { serial, code, name } => {
            sec.token_activate(actor, &serial, &code, &name, now)
                .await?;
            S::Done
        }
        R::TokenResync { id, first, second } => {
            sec.token_resync(actor, &id, &first, &second, now).await?;
            S::Done
        }
        R::RecoveryGenerate => {
            sec.recovery_generate(actor, now).await?;
            S::Done
        }
        R::RecoveryTake => S::RecoveryCodes(
            sec.recovery_take(actor, now)
                .await?
                .map(|r| r.codes)
                .unwrap_or_default(),
        ),
        R::PasskeyAuthStart => {
            let (ceremony, options) = sec.passkey_auth_start(actor, now).await?;
            S::Passkey(PasskeyOptions {
                ceremony,
                options: options.to_string(),
                error: None,
            })
        }
        R::DiscoverStart | R::DiscoverFinish { .. } => {
            return Err(DomainError::Refused(ErrorCode::Internal))
        }
        R::PasskeyAuthFinish {
            ceremony,
            credential,
            ..
        } => {
            let MfaOutcome::Verified { methods } = sec
                .passkey_auth_finish(actor, &ceremony, &credential, now)
                .await?;
            S::Next(next_page(sec.needs_wizard_with(&actor.user, &methods, now)))
        }
    })
}
