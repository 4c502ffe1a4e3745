//! The hardware token inventory, for every front door that manages it (`converge tokens …`
//! today): import from a file, assign to a user, resynchronise an HOTP token, release one.
//! Tokens are handed out by administrators (the operator) or helpdesk staff who verified the
//! caller; every change is audited and the holder mailed as for any new method.

use super::helpdesk::{Agent, Helpdesk};
use super::security::serial_key;
use crate::domain::error::DomainError;
use crate::domain::oath::{self, BadLine, TokenRecord};
use crate::domain::policy::MethodKind;
use crate::notify::messages::Notice;
use crate::store::oath::OathTokenRow;
use converge_app::api::ErrorCode;

/// Audit events of the inventory.
pub mod event {
    pub const TOKENS_IMPORTED: &str = "tokens_imported";
    pub const TOKEN_ASSIGNED: &str = "token_assigned";
    pub const TOKEN_RELEASED: &str = "token_released";
}

/// What an import did, or why it did nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub imported: usize,
    /// Every refused line (the file's line number; PSKC: the key package's position).
    pub bad: Vec<BadLine>,
    /// Serial numbers the inventory already has (never overwritten).
    pub known: Vec<String>,
}

/// The file formats read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Entra's `upn,serial number,secret key,time interval,manufacturer,model`.
    Csv,
    /// RFC 6030.
    Pskc,
}

impl Format {
    /// By the content: PSKC is XML.
    pub fn sniff(text: &str) -> Format {
        if text.trim_start().starts_with('<') {
            Format::Pskc
        } else {
            Format::Csv
        }
    }
}

fn refused(code: ErrorCode) -> DomainError {
    DomainError::Refused(code)
}

impl Helpdesk {
    /// Reads a token file and adds its tokens, unassigned, with their secrets sealed. Nothing
    /// is imported when any line is bad or names a serial number already known, unless
    /// `skip_invalid` (then the good, new ones are).
    pub async fn import_tokens(
        &self,
        agent: &Agent,
        text: &str,
        psk: Option<&[u8]>,
        skip_invalid: bool,
        now: i64,
    ) -> Result<ImportReport, DomainError> {
        if !agent.is_admin() {
            return Err(refused(ErrorCode::ProtectedAccount));
        }
        let parsed = match Format::sniff(text) {
            Format::Csv => oath::parse_csv(text),
            Format::Pskc => oath::parse_pskc(text, psk),
        };
        let (records, bad) = oath::checked(parsed);
        let keys: Vec<String> = records.iter().map(|r| serial_key(&r.serial)).collect();
        let known_keys = self.security.store.known_serials(&keys).await?;
        let is_known = |r: &TokenRecord| known_keys.contains(&serial_key(&r.serial));
        let mut report = ImportReport {
            imported: 0,
            bad,
            // as the file writes them
            known: records
                .iter()
                .filter(|r| is_known(r))
                .map(|r| r.serial.trim().to_string())
                .collect(),
        };
        if !skip_invalid && (!report.bad.is_empty() || !report.known.is_empty()) {
            return Ok(report);
        }
        let rows: Vec<OathTokenRow> = records
            .iter()
            .filter(|r| !is_known(r))
            .map(|r| self.inventory_row(r, now))
            .collect();
        self.security.store.insert_oath_tokens(&rows).await?;
        report.imported = rows.len();
        let mut e = self.audit_agent(agent, event::TOKENS_IMPORTED, now);
        e.reason = Some(format!(
            "{} imported, {} bad lines, {} already known",
            report.imported,
            report.bad.len(),
            report.known.len()
        ));
        self.security.store.append_audit(&e).await?;
        Ok(report)
    }

    fn inventory_row(&self, r: &TokenRecord, now: i64) -> OathTokenRow {
        let key = serial_key(&r.serial);
        OathTokenRow {
            secret: self
                .security
                .sealer
                .seal(&r.secret, &super::security::inventory_context(&key)),
            serial_key: key,
            serial: r.serial.trim().to_string(),
            otp: r.params.kind.as_str().into(),
            algorithm: r.params.hash.as_str().into(),
            digits: i64::from(r.params.digits),
            period: r.params.period as i64,
            counter: r.counter as i64,
            manufacturer: r.manufacturer.clone(),
            model: r.model.clone(),
            owner: r.owner.clone(),
            state: "unassigned".into(),
            method_id: None,
            imported_at: now,
            changed_at: now,
        }
    }

    /// Hands an unassigned token to a user (the agent gives them the device): a new method,
    /// audited and mailed. Staff must have verified the caller first.
    pub async fn assign_token(
        &self,
        agent: &Agent,
        user_id: &str,
        serial: &str,
        now: i64,
    ) -> Result<String, DomainError> {
        let user = self.user(agent, user_id).await?;
        self.guard_protected(agent, &user, event::TOKEN_ASSIGNED, serial, now)
            .await?;
        self.verified(agent, &user, now).await?;
        let t = self
            .security
            .store
            .oath_token(&serial_key(serial))
            .await?
            .filter(|t| t.state == "unassigned")
            .ok_or(refused(ErrorCode::TokenUnavailable))?;
        self.security.ensure_allowed(MethodKind::Token)?;
        let methods = self.security.methods(&user.id).await?;
        self.security.room_for(&methods, MethodKind::Token)?;
        let secret = self.security.open_inventory(&t)?;
        let name = format!("{} {}", converge_app::text::en().sec.kind_token, t.serial);
        let m = self
            .security
            .register_token(&user.id, &t, &secret, &name, t.counter, now)
            .await?
            .ok_or(refused(ErrorCode::TokenUnavailable))?;
        let label = m.label();
        let tx = self.security.store.begin().await?;
        let notice = Notice::MethodAdded {
            method: label.clone(),
            changed_at: crate::domain::format_time(now),
        };
        self.method_changed(
            tx,
            agent,
            &user,
            &methods,
            event::TOKEN_ASSIGNED,
            &label,
            notice,
            now,
        )
        .await?;
        Ok(label)
    }

    /// Resynchronises a user's HOTP token from two consecutive codes the caller reads out
    /// (counted against the helpdesk budget of that user).
    pub async fn resync_token(
        &self,
        agent: &Agent,
        user_id: &str,
        serial: &str,
        first: &str,
        second: &str,
        now: i64,
    ) -> Result<(), DomainError> {
        let user = self.user(agent, user_id).await?;
        self.verified(agent, &user, now).await?;
        let t = self
            .security
            .store
            .oath_token(&serial_key(serial))
            .await?
            .ok_or(refused(ErrorCode::TokenUnavailable))?;
        let methods = self.security.methods(&user.id).await?;
        let m = methods
            .into_iter()
            .find(|m| Some(&m.row.id) == t.method_id.as_ref())
            .ok_or(refused(ErrorCode::TokenUnavailable))?;
        let actor = super::security::Actor::without_session(
            user.clone(),
            agent.client.clone(),
            super::security::Budget::Helpdesk,
        );
        self.security
            .guarded(
                &actor,
                now,
                self.security.resync_checked(&actor, &m, first, second, now),
            )
            .await
    }

    /// An administrator's decision about a token nobody holds any more (or takes it from its
    /// holder): `reuse` puts it back as unassigned, otherwise it stays retired.
    pub async fn release_token(
        &self,
        agent: &Agent,
        serial: &str,
        reuse: bool,
        now: i64,
    ) -> Result<(), DomainError> {
        if !agent.is_admin() {
            return Err(refused(ErrorCode::ProtectedAccount));
        }
        let store = &self.security.store;
        let t = store
            .oath_token(&serial_key(serial))
            .await?
            .ok_or(refused(ErrorCode::TokenUnavailable))?;
        if let Some(method_id) = &t.method_id {
            if let Some(holder) = store.method_owner(method_id).await? {
                self.remove_method(agent, &holder, method_id, now).await?;
            }
        }
        let state = if reuse { "unassigned" } else { "retired" };
        store
            .set_oath_token_state(&t.serial_key, state, now)
            .await?;
        let mut e = self.audit_agent(agent, event::TOKEN_RELEASED, now);
        e.reason = Some(format!("{} → {state}", t.serial));
        store.append_audit(&e).await?;
        Ok(())
    }
}
