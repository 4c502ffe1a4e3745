//! Hardware OATH tokens and recovery codes as methods.
//!
//! ```text
//!  converge tokens import FILE ──► oath_tokens (secret sealed), unassigned
//!        │ the holder: serial + current code on Security info     │ helpdesk / CLI: assign
//!        ▼                                                        ▼
//!  method 'token' (its own sealed copy; last_step = HOTP counter or last TOTP step), assigned
//!        │ removed by anyone ──► retired   (`converge tokens release` ──► unassigned again)
//!
//!  recovery codes: 10 × 80 bits, shown once ──► method 'recovery' + one HMAC per code
//! ```
//!
//! A token's code is checked wherever an app code is ([`Security::accept_otp_in`]): sign-in,
//! the reset gate, the helpdesk, RADIUS, the API. A recovery code is a second sign-in step or
//! one reset gate, never a helpdesk check.

use super::{new_id, refused, Actor, Method, Security};
use crate::domain::error::DomainError;
use crate::domain::oath::{self, Params};
use crate::domain::policy::MethodKind;
use crate::domain::totp;
use crate::store::methods::MethodRow;
use crate::store::oath::OathTokenRow;
use crate::store::StoreError;
use converge_app::api::ErrorCode;
use sqlx::AnyConnection;

/// Audit events of this module.
pub mod event {
    pub const TOKEN_RESYNCED: &str = "token_resynced";
    pub const RECOVERY_USED: &str = "recovery_code_used";
}

/// The sealing context of an inventory token's secret.
pub(crate) fn inventory_context(serial_key: &str) -> String {
    format!("oath:{serial_key}")
}

/// How serial numbers are compared: trimmed, in lower case.
pub fn serial_key(serial: &str) -> String {
    serial.trim().to_lowercase()
}

/// A token method's parameters, from its detail.
pub(crate) fn token_params(m: &MethodRow) -> Option<Params> {
    let d: serde_json::Value = serde_json::from_str(&m.detail).ok()?;
    Some(Params {
        kind: oath::Kind::parse(d.get("otp")?.as_str()?)?,
        hash: oath::Hash::parse(d.get("algorithm")?.as_str()?)?,
        digits: u32::try_from(d.get("digits")?.as_u64()?).ok()?,
        period: d.get("period")?.as_u64()?,
    })
}

fn params_of(t: &OathTokenRow) -> Option<Params> {
    Some(Params {
        kind: oath::Kind::parse(&t.otp)?,
        hash: oath::Hash::parse(&t.algorithm)?,
        digits: u32::try_from(t.digits).ok()?,
        period: u64::try_from(t.period).ok()?,
    })
}

/// `k7f3-9q2m-x8hd-2npw`: 16 characters of Crockford's base32 (80 bits), in groups of four.
fn new_recovery_code() -> String {
    crate::domain::flows::helpdesk::grouped_code(b"0123456789abcdefghjkmnpqrstvwxyz")
}

/// What is compared: lower case, no separators, the letters people confuse read as digits.
pub fn normalise_recovery_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| match c.to_ascii_lowercase() {
            'i' | 'l' => '1',
            'o' => '0',
            other => other,
        })
        .collect()
}

/// The result of a new set of recovery codes: shown once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryCodes {
    pub codes: Vec<String>,
}

/// A recovery code was accepted: how many are left (the page says so, the mail too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryUsed {
    pub left: i64,
}

impl Security {
    /// Accepts a code from an app or a hardware token inside the caller's transaction: each
    /// time step or HOTP counter once, true for exactly one of concurrent submissions.
    pub(crate) async fn accept_otp_in(
        &self,
        tx: &mut AnyConnection,
        m: &Method,
        code: &str,
        now: i64,
    ) -> Result<bool, DomainError> {
        let secret = self.open_secret(&m.row)?;
        let t = now.max(0) as u64;
        let used = match m.kind {
            MethodKind::Totp => totp::check(&self.policy.totp, &secret, code, t),
            MethodKind::Token => {
                let p = token_params(&m.row)
                    .ok_or_else(|| DomainError::Invalid(format!("token method {}", m.row.id)))?;
                let from = m.row.last_step.max(0) as u64;
                oath::matches(&p, &secret, code, from, self.policy.hotp_look_ahead, t)
                    .map(|c| p.kind.last_step(c))
            }
            _ => None,
        };
        Ok(match used {
            Some(step) => crate::store::methods::use_totp_step_in(tx, &m.row.id, step, now).await?,
            None => false,
        })
    }

    /// Activates an unassigned hardware token for the signed-in user: the serial number on it
    /// and the code it shows now. An unknown serial, one that is someone else's and a wrong
    /// code are the same refusal (TOK-001), counted like any wrong code.
    pub async fn token_activate(
        &self,
        actor: &Actor,
        serial: &str,
        code: &str,
        name: &str,
        now: i64,
    ) -> Result<(), DomainError> {
        let name = if name.trim().is_empty() {
            format!(
                "{} {}",
                converge_app::text::en().sec.kind_token,
                serial.trim()
            )
        } else {
            name.to_string()
        };
        let name = super::method_name(&name)?;
        self.guarded(actor, now, async {
            self.before_add(actor, MethodKind::Token, now).await?;
            let key = serial_key(serial);
            let token = match self.store.oath_token(&key).await? {
                Some(t) if t.state == "unassigned" => Some(t),
                _ => None,
            };
            let accepted = match &token {
                Some(t) => {
                    let secret = self.open_inventory(t)?;
                    let p =
                        params_of(t).ok_or_else(|| DomainError::Invalid(format!("token {key}")))?;
                    let from = t.counter.max(0) as u64;
                    oath::matches(
                        &p,
                        &secret,
                        code,
                        from,
                        self.policy.hotp_look_ahead,
                        now.max(0) as u64,
                    )
                    .map(|c| (secret, p, c))
                }
                None => None,
            };
            let (Some(t), Some((secret, p, c))) = (token, accepted) else {
                self.count_failure(actor, "hardware token: wrong serial number or code", now)
                    .await?;
                return Err(refused(ErrorCode::TokenInvalid));
            };
            let last_step = p.kind.last_step(c);
            let row = self
                .register_token(&actor.user.id, &t, &secret, &name, last_step, now)
                .await?
                .ok_or(refused(ErrorCode::TokenInvalid))?;
            self.added(actor, &row, now).await
        })
        .await
    }

    /// Makes an inventory token a method of `user_id` (the caller proved it, or an agent
    /// handed it over): `None` when someone else got it first.
    pub(crate) async fn register_token(
        &self,
        user_id: &str,
        t: &OathTokenRow,
        secret: &[u8],
        name: &str,
        last_step: i64,
        now: i64,
    ) -> Result<Option<Method>, DomainError> {
        let id = new_id();
        let detail = serde_json::json!({
            "serial": t.serial,
            "otp": t.otp,
            "algorithm": t.algorithm,
            "digits": t.digits,
            "period": t.period,
        });
        let row = MethodRow {
            id: id.clone(),
            user_id: user_id.to_string(),
            kind: MethodKind::Token.as_str().into(),
            name: name.to_string(),
            status: "active".into(),
            source: "user".into(),
            secret: Some(self.sealer.seal(secret, &id)),
            detail: detail.to_string(),
            credential_id: None,
            is_default: false,
            last_step,
            failures: 0,
            created_at: now,
            activated_at: now,
            last_used_at: now,
            expires_at: 0,
        };
        let mut tx = self.store.begin().await?;
        if !crate::store::oath::assign_oath_token_in(&mut tx, &t.serial_key, &id, now).await? {
            return Ok(None);
        }
        crate::store::methods::insert_method_in(&mut tx, &row).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(Some(Method {
            row,
            kind: MethodKind::Token,
        }))
    }

    pub fn open_inventory(&self, t: &OathTokenRow) -> Result<Vec<u8>, DomainError> {
        self.sealer
            .open(&t.secret, &inventory_context(&t.serial_key))
            .map_err(|e| DomainError::Invalid(format!("token {}: {e}", t.serial_key)))
    }

    /// Resynchronises an HOTP token from two consecutive codes (the user's own, after a
    /// fresh second factor).
    pub async fn token_resync(
        &self,
        actor: &Actor,
        method_id: &str,
        first: &str,
        second: &str,
        now: i64,
    ) -> Result<(), DomainError> {
        let methods = self.methods(&actor.user.id).await?;
        self.may_change(actor, &methods, now)?;
        let m = methods
            .into_iter()
            .find(|m| m.row.id == method_id && m.kind == MethodKind::Token)
            .ok_or(refused(ErrorCode::SetupExpired))?;
        self.guarded(
            actor,
            now,
            self.resync_checked(actor, &m, first, second, now),
        )
        .await
    }

    /// The resynchronisation itself, inside the caller's guard (the helpdesk's or the user's).
    pub(crate) async fn resync_checked(
        &self,
        actor: &Actor,
        m: &Method,
        first: &str,
        second: &str,
        now: i64,
    ) -> Result<(), DomainError> {
        let p = token_params(&m.row).ok_or(refused(ErrorCode::SetupExpired))?;
        if p.kind != oath::Kind::Hotp {
            return Err(refused(ErrorCode::SetupExpired));
        }
        let secret = self.open_secret(&m.row)?;
        let from = m.row.last_step.max(0) as u64;
        let found = oath::resync(
            &p,
            &secret,
            first,
            second,
            from,
            self.policy.hotp_resync_window,
        );
        let moved = match found {
            Some(c) => {
                let mut tx = self.store.begin().await?;
                let ok =
                    crate::store::methods::use_totp_step_in(&mut tx, &m.row.id, c as i64 + 2, now)
                        .await?;
                tx.commit().await.map_err(StoreError::from)?;
                ok
            }
            None => false,
        };
        if !moved {
            self.count_failure(
                actor,
                "hardware token resynchronisation: codes not consecutive",
                now,
            )
            .await?;
            return Err(refused(ErrorCode::TokenResyncFailed));
        }
        let mut e = self.audit(actor, event::TOKEN_RESYNCED, true, now);
        e.reason = Some(m.label());
        self.store.append_audit(&e).await?;
        Ok(())
    }

    /// A new set of recovery codes (replacing any earlier set) after a fresh second factor:
    /// shown once, stored as HMACs.
    pub async fn recovery_generate(
        &self,
        actor: &Actor,
        now: i64,
    ) -> Result<RecoveryCodes, DomainError> {
        self.ensure_allowed(MethodKind::Recovery)?;
        let methods = self.methods(&actor.user.id).await?;
        self.may_change(actor, &methods, now)?;
        // a set only next to a real factor: recovery codes recover, they do not replace
        if !methods
            .iter()
            .any(|m| m.kind.signs_in() && m.kind != MethodKind::Recovery)
        {
            return Err(refused(ErrorCode::MethodNotAllowed));
        }
        let codes: Vec<String> = (0..self.policy.recovery_codes.max(1))
            .map(|_| new_recovery_code())
            .collect();
        let hashes: Vec<String> = codes
            .iter()
            .map(|c| self.sealer.mac("recovery", &normalise_recovery_code(c)))
            .collect();
        let mut row = self.pending_row(
            actor,
            MethodKind::Recovery,
            converge_app::text::en().sec.kind_recovery.to_string(),
            now,
        );
        row.status = "active".into();
        row.activated_at = now;
        row.expires_at = 0;
        // a sealed copy for the page that shows them, taken (and so gone) on the first view
        row.secret = Some(self.sealer.seal(codes.join(" ").as_bytes(), &row.id));
        let mut tx = self.store.begin().await?;
        crate::store::methods::delete_methods_of_kind_in(
            &mut tx,
            &actor.user.id,
            MethodKind::Recovery.as_str(),
        )
        .await?;
        crate::store::methods::insert_method_in(&mut tx, &row).await?;
        crate::store::oath::insert_recovery_codes_in(&mut tx, &row.id, &actor.user.id, &hashes)
            .await?;
        tx.commit().await.map_err(StoreError::from)?;
        let m = Method {
            row,
            kind: MethodKind::Recovery,
        };
        self.added(actor, &m, now).await?;
        Ok(RecoveryCodes { codes })
    }

    /// The codes of the set just created, once, for the page that shows them (within the
    /// pending window; the sealed copy is gone afterwards either way).
    pub async fn recovery_take(
        &self,
        actor: &Actor,
        now: i64,
    ) -> Result<Option<RecoveryCodes>, DomainError> {
        let methods = self.methods(&actor.user.id).await?;
        let Some(m) = methods.iter().find(|m| m.kind == MethodKind::Recovery) else {
            return Ok(None);
        };
        let Some(sealed) = m.row.secret.clone() else {
            return Ok(None);
        };
        if !self.store.take_method_secret(&m.row.id, &sealed).await? {
            return Ok(None);
        }
        if now - m.row.created_at > self.policy.pending_ttl_seconds {
            return Ok(None);
        }
        let plain = self.open_secret(&m.row)?;
        let codes = String::from_utf8_lossy(&plain)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        Ok(Some(RecoveryCodes { codes }))
    }

    /// Unused codes of the user's set (`None`: no set).
    pub async fn recovery_left(&self, methods: &[Method]) -> Result<Option<i64>, DomainError> {
        match methods.iter().find(|m| m.kind == MethodKind::Recovery) {
            Some(m) => Ok(Some(self.store.recovery_codes_left(&m.row.id).await?)),
            None => Ok(None),
        }
    }

    /// Uses one recovery code of `m` inside the caller's transaction (which also promotes the
    /// session or passes the gate): true for exactly one of concurrent submissions.
    pub(crate) async fn accept_recovery_in(
        &self,
        tx: &mut AnyConnection,
        m: &Method,
        code: &str,
        now: i64,
    ) -> Result<bool, DomainError> {
        let typed = normalise_recovery_code(code);
        if typed.len() != 16 {
            return Ok(false);
        }
        let hash = self.sealer.mac("recovery", &typed);
        Ok(crate::store::oath::use_recovery_code_in(tx, &m.row.id, &hash, now).await?)
    }

    /// A recovery code outside a session (one reset gate): used once; a wrong one counts
    /// against the throttle as `what`. The caller mails the user with
    /// [`Security::recovery_used`] once the step it stands for is done.
    pub(crate) async fn check_recovery_code(
        &self,
        actor: &Actor,
        m: &Method,
        code: &str,
        what: &str,
        now: i64,
    ) -> Result<(), DomainError> {
        let mut tx = self.store.begin().await?;
        let used = self.accept_recovery_in(&mut tx, m, code, now).await?;
        self.used_or_counted(tx, used, actor, what, ErrorCode::RecoveryInvalid, now)
            .await
    }

    /// After a recovery code was used: the user is mailed ("This wasn't me" included) and
    /// told how many are left.
    pub(crate) async fn recovery_used(
        &self,
        actor: &Actor,
        m: &Method,
        now: i64,
    ) -> Result<RecoveryUsed, DomainError> {
        let left = self.store.recovery_codes_left(&m.row.id).await?;
        self.record_change(
            actor,
            event::RECOVERY_USED,
            format!("{} ({left} left)", m.label()),
            Some(crate::notify::messages::Notice::RecoveryCodeUsed {
                left: left.max(0) as u32,
                used_at: crate::domain::format_time(now),
            }),
            None,
            now,
        )
        .await?;
        Ok(RecoveryUsed { left })
    }
}
