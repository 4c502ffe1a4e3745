//! Proving a registered method: the second step of sign-in, and re-authentication before
//! changes to security info. Failures count against the per-account and per-client throttle.

use super::enroll::PendingCode;
use super::oath::RecoveryUsed;
use super::{event, refused, Actor, Method, Security};
use crate::domain::error::DomainError;
use crate::domain::policy::MethodKind;
use converge_app::api::ErrorCode;

const PURPOSE_MFA: &str = "mfa";

#[derive(Debug, Clone)]
pub enum MfaOutcome {
    /// The session is fully signed in / has a fresh second factor; `methods` are the user's
    /// active methods (so the caller needs no second read to decide where to go next).
    Verified { methods: Vec<Method> },
}

impl Security {
    /// Methods that can be proven here: sign-in factors, plus email codes for re-authentication.
    pub fn factor_methods(&self, methods: Vec<Method>, reauth: bool) -> Vec<Method> {
        let mut out: Vec<Method> = methods
            .into_iter()
            .filter(|m| {
                (m.kind.signs_in() && m.kind != MethodKind::Recovery)
                    || (reauth && m.kind == MethodKind::Email)
            })
            // a channel switched off by configuration takes its methods out of the choice
            .filter(|m| self.notifier.reaches(m.kind))
            .collect();
        // the default first
        out.sort_by_key(|m| !m.row.is_default);
        out
    }

    async fn factor(
        &self,
        actor: &Actor,
        method_id: &str,
        reauth: bool,
    ) -> Result<Method, DomainError> {
        let methods = self.methods(&actor.user.id).await?;
        self.factor_methods(methods, reauth)
            .into_iter()
            .find(|m| m.row.id == method_id)
            .ok_or(refused(ErrorCode::SetupExpired))
    }

    /// Sends a sign-in / re-authentication code to a registered phone or email method.
    pub async fn mfa_send(
        &self,
        actor: &Actor,
        method_id: &str,
        voice: bool,
        reauth: bool,
        now: i64,
    ) -> Result<PendingCode, DomainError> {
        let m = self.factor(actor, method_id, reauth).await?;
        let channel = match m.kind {
            MethodKind::Email => "email",
            MethodKind::Phone if voice => "voice",
            MethodKind::Phone => "sms",
            _ => return Err(refused(ErrorCode::SetupExpired)),
        };
        self.issue_code(actor, PURPOSE_MFA, &m, channel, " (sign-in)", now)
            .await
    }

    /// Checks a code from an authenticator app, or the code sent to a phone / email method
    /// (in PIN mode, phones also need the PIN).
    pub async fn mfa_code(
        &self,
        actor: &Actor,
        method_id: &str,
        code: &str,
        pin: Option<&str>,
        reauth: bool,
        now: i64,
    ) -> Result<MfaOutcome, DomainError> {
        self.guarded(actor, now, async {
            let all = self.methods(&actor.user.id).await?;
            let m = self
                .factor_methods(all.clone(), reauth)
                .into_iter()
                .find(|m| m.row.id == method_id)
                .ok_or(refused(ErrorCode::SetupExpired))?;
            match m.kind {
                MethodKind::Totp | MethodKind::Token => {
                    // the code is used and the session promoted in one transaction
                    let mut tx = self.store.begin().await?;
                    if !self.accept_otp_in(&mut tx, &m, code, now).await? {
                        drop(tx);
                        self.count_failure(actor, "wrong or reused app code", now)
                            .await?;
                        self.mfa_audit(actor, Some(&m), false, "wrong or reused code", now)
                            .await?;
                        return Err(refused(ErrorCode::WrongCode));
                    }
                    return self.verified_in(tx, actor, &m, all, now).await;
                }
                MethodKind::Phone | MethodKind::Email => {
                    if m.kind == MethodKind::Phone && self.policy.pin_mode {
                        self.check_pin(actor, pin.unwrap_or_default(), now).await?;
                    }
                    let c = self
                        .store
                        .code_for(&actor.user.id, PURPOSE_MFA, &m.row.id)
                        .await?
                        .ok_or(refused(ErrorCode::CodeExpired))?;
                    if let Err(e) = self.check_code(actor, &c, code, now).await {
                        self.mfa_audit(actor, Some(&m), false, "wrong or expired code", now)
                            .await?;
                        return Err(e);
                    }
                    self.store.touch_method(&m.row.id, now).await?;
                }
                _ => return Err(refused(ErrorCode::SetupExpired)),
            }
            self.verified(actor, &m, all, now).await
        })
        .await
    }

    /// A code from an authenticator app or a hardware token outside a session (password
    /// reset, the helpdesk): each time step / counter once; a wrong or reused code counts against the throttle as `what`.
    pub(crate) async fn check_app_code(
        &self,
        actor: &Actor,
        m: &Method,
        code: &str,
        what: &str,
        now: i64,
    ) -> Result<(), DomainError> {
        let mut tx = self.store.begin().await?;
        let accepted = self.accept_otp_in(&mut tx, m, code, now).await?;
        self.used_or_counted(tx, accepted, actor, what, ErrorCode::WrongCode, now)
            .await
    }

    /// Completes the transaction that used a code (or did not): a code not used is a wrong
    /// guess, counted against the throttle as `what` and refused as `refusal`.
    pub(super) async fn used_or_counted(
        &self,
        tx: sqlx::Transaction<'static, sqlx::Any>,
        used: bool,
        actor: &Actor,
        what: &str,
        refusal: ErrorCode,
        now: i64,
    ) -> Result<(), DomainError> {
        tx.commit().await.map_err(crate::store::StoreError::from)?;
        if used {
            Ok(())
        } else {
            self.count_failure(actor, what, now).await?;
            Err(refused(refusal))
        }
    }

    /// A Temporary Access Pass from the helpdesk as the second factor: each use counted once
    /// (one winner under concurrent submissions), wrong passes throttled like any code.
    pub async fn mfa_tap(
        &self,
        actor: &Actor,
        pass: &str,
        now: i64,
    ) -> Result<MfaOutcome, DomainError> {
        self.guarded(actor, now, async {
            let typed = crate::domain::flows::helpdesk::normalise_pass(pass);
            let taps = self.store.active_taps(&actor.user.id, now).await?;
            let found = taps.iter().find(|t| {
                !typed.is_empty() && self.sealer.mac_matches("tap", &typed, &t.pass_hash)
            });
            let mut tx = self.store.begin().await?;
            let used = match found {
                Some(t) => crate::store::helpdesk::use_tap_in(&mut tx, &t.id, now).await?,
                None => false,
            };
            if !used {
                drop(tx);
                self.count_failure(actor, "wrong, expired or used Temporary Access Pass", now)
                    .await?;
                self.mfa_audit(actor, None, false, "Temporary Access Pass refused", now)
                    .await?;
                return Err(refused(ErrorCode::TapInvalid));
            }
            let token =
                crate::domain::flows::session::promote_in(&mut tx, &actor.session.id_hash, now)
                    .await?;
            let mut e = self.audit(actor, event::MFA, true, now);
            e.reason = Some("Temporary Access Pass".into());
            crate::store::audit::append_audit_in(&mut tx, &e).await?;
            tx.commit().await.map_err(crate::store::StoreError::from)?;
            actor.rotated(token);
            Ok(MfaOutcome::Verified {
                methods: self.methods(&actor.user.id).await?,
            })
        })
        .await
    }

    /// A recovery code as the second factor (or re-authentication): each code once, wrong
    /// ones throttled like any code; the user is mailed and told how many are left.
    pub async fn mfa_recovery(
        &self,
        actor: &Actor,
        code: &str,
        now: i64,
    ) -> Result<(MfaOutcome, RecoveryUsed), DomainError> {
        self.guarded(actor, now, async {
            let all = self.methods(&actor.user.id).await?;
            let set = all.iter().find(|m| m.kind == MethodKind::Recovery).cloned();
            let mut tx = self.store.begin().await?;
            let used = match &set {
                Some(m) => self.accept_recovery_in(&mut tx, m, code, now).await?,
                None => false,
            };
            let Some(m) = set.filter(|_| used) else {
                drop(tx);
                self.count_failure(actor, "wrong or used recovery code", now)
                    .await?;
                self.mfa_audit(actor, None, false, "recovery code refused", now)
                    .await?;
                return Err(refused(ErrorCode::RecoveryInvalid));
            };
            let outcome = self.verified_in(tx, actor, &m, all, now).await?;
            let left = self.recovery_used(actor, &m, now).await?;
            Ok((outcome, left))
        })
        .await
    }

    /// In PIN mode: the user's PIN, locked after too many wrong entries.
    async fn check_pin(&self, actor: &Actor, pin: &str, now: i64) -> Result<(), DomainError> {
        let methods = self.methods(&actor.user.id).await?;
        let Some(p) = methods.iter().find(|m| m.kind == MethodKind::Pin) else {
            return Ok(());
        };
        if p.row.failures >= i64::from(self.policy.pin_max_failures) {
            return Err(refused(ErrorCode::MethodLocked));
        }
        let stored = p.row.secret.clone().unwrap_or_default();
        if !self.verify_secret(pin.trim(), &stored).await {
            let n = self.store.method_failure(&p.row.id).await?;
            self.count_failure(actor, "wrong PIN", now).await?;
            return Err(refused(if n >= i64::from(self.policy.pin_max_failures) {
                ErrorCode::MethodLocked
            } else {
                ErrorCode::WrongCode
            }));
        }
        self.store.touch_method(&p.row.id, now).await?;
        Ok(())
    }

    /// A second factor was proven: the session is fully signed in and fresh.
    pub(super) async fn verified(
        &self,
        actor: &Actor,
        m: &Method,
        methods: Vec<Method>,
        now: i64,
    ) -> Result<MfaOutcome, DomainError> {
        let tx = self.store.begin().await?;
        self.verified_in(tx, actor, m, methods, now).await
    }

    /// [`Self::verified`] completing the caller's transaction (which used the factor).
    pub(super) async fn verified_in(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Any>,
        actor: &Actor,
        m: &Method,
        methods: Vec<Method>,
        now: i64,
    ) -> Result<MfaOutcome, DomainError> {
        let token =
            crate::domain::flows::session::promote_in(&mut tx, &actor.session.id_hash, now).await?;
        let mut e = self.audit(actor, event::MFA, true, now);
        e.reason = Some(m.label());
        crate::store::audit::append_audit_in(&mut tx, &e).await?;
        tx.commit().await.map_err(crate::store::StoreError::from)?;
        actor.rotated(token);
        Ok(MfaOutcome::Verified { methods })
    }

    async fn mfa_audit(
        &self,
        actor: &Actor,
        m: Option<&Method>,
        success: bool,
        why: &str,
        now: i64,
    ) -> Result<(), DomainError> {
        let mut e = self.audit(actor, event::MFA, success, now);
        let what = m.map(Method::label).unwrap_or_default();
        e.reason = Some(if why.is_empty() {
            what
        } else {
            format!("{what}: {why}")
        });
        self.store.append_audit(&e).await?;
        Ok(())
    }
}
