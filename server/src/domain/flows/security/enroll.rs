//! Adding methods: authenticator apps, phones, email, security questions, PIN.

use super::{event, method_name, methods_of, new_id, refused, Actor, Method, Security};
use crate::domain::error::DomainError;
use crate::domain::policy::MethodKind;
use crate::domain::totp;
use crate::store::methods::{activate_method_in, MethodRow};
use converge_app::api::ErrorCode;
use rand::Rng;
use serde_json::json;
use unicode_normalization::UnicodeNormalization;

/// What the authenticator-app setup page shows while the app is pending.
#[derive(Debug, Clone)]
pub struct TotpSetup {
    pub id: String,
    pub name: String,
    pub key: String,
    pub uri: String,
    pub qr_svg: String,
}

/// A code that was sent and can be entered.
#[derive(Debug, Clone)]
pub struct PendingCode {
    pub id: String,
    pub kind: MethodKind,
    pub channel: String,
    pub destination: String,
    pub failures: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneSlot {
    Mobile,
    Alternate,
    Office,
}

impl PhoneSlot {
    pub fn parse(s: &str) -> Option<PhoneSlot> {
        match s {
            "mobile" => Some(PhoneSlot::Mobile),
            "alternate" => Some(PhoneSlot::Alternate),
            "office" => Some(PhoneSlot::Office),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            PhoneSlot::Mobile => "mobile",
            PhoneSlot::Alternate => "alternate",
            PhoneSlot::Office => "office",
        }
    }
}

const PURPOSE_ENROLL: &str = "enroll";

/// Normalises a security-question answer: Unicode NFKC, lower case, single spaces.
pub fn normalise_answer(answer: &str) -> String {
    let folded: String = answer.nfkc().collect::<String>().to_lowercase();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Refuses PINs that are easy to guess: one repeated digit, ascending/descending runs, or digits
/// taken from the user's own phone numbers.
pub fn pin_is_trivial(pin: &str, phones: &[String]) -> bool {
    let d: Vec<i32> = pin.bytes().map(|b| i32::from(b) - 48).collect();
    if d.len() < 2 {
        return true;
    }
    let all_same = d.iter().all(|x| *x == d[0]);
    let step = d[1] - d[0];
    let sequence = step.abs() == 1 && d.windows(2).all(|w| w[1] - w[0] == step);
    let few_distinct = {
        let mut u = d.clone();
        u.sort_unstable();
        u.dedup();
        u.len() <= 2
    };
    let in_phone = phones.iter().any(|p| {
        let digits: String = p.chars().filter(char::is_ascii_digit).collect();
        digits.contains(pin)
    });
    all_same || sequence || few_distinct || in_phone
}

impl Security {
    pub(crate) fn ensure_allowed(&self, kind: MethodKind) -> Result<(), DomainError> {
        if self.policy.allows(kind) {
            Ok(())
        } else {
            Err(refused(ErrorCode::MethodNotAllowed))
        }
    }

    /// Common checks before a new method of `kind`; returns the user's active methods.
    pub(super) async fn before_add(
        &self,
        actor: &Actor,
        kind: MethodKind,
        now: i64,
    ) -> Result<Vec<Method>, DomainError> {
        self.ensure_allowed(kind)?;
        let methods = self.methods(&actor.user.id).await?;
        self.may_change(actor, &methods, now)?;
        self.room_for(&methods, kind)?;
        Ok(methods)
    }

    /// Refuses a new method of `kind` beyond the policy's number of them.
    pub(crate) fn room_for(&self, methods: &[Method], kind: MethodKind) -> Result<(), DomainError> {
        let count = methods.iter().filter(|m| m.kind == kind).count() as u32;
        if count >= self.policy.max_of(kind) {
            return Err(refused(ErrorCode::TooManyMethods));
        }
        Ok(())
    }

    pub(super) fn pending_row(
        &self,
        actor: &Actor,
        kind: MethodKind,
        name: String,
        now: i64,
    ) -> MethodRow {
        MethodRow {
            id: new_id(),
            user_id: actor.user.id.clone(),
            kind: kind.as_str().into(),
            name,
            status: "pending".into(),
            source: "user".into(),
            secret: None,
            detail: "{}".into(),
            credential_id: None,
            is_default: false,
            last_step: 0,
            failures: 0,
            created_at: now,
            activated_at: 0,
            last_used_at: 0,
            expires_at: now + self.policy.pending_ttl_seconds,
        }
    }

    /// Starts an authenticator app: a new secret, sealed, pending until a code from it is entered.
    pub async fn totp_start(
        &self,
        actor: &Actor,
        name: &str,
        now: i64,
    ) -> Result<String, DomainError> {
        let name = method_name(name)?;
        let methods = self.before_add(actor, MethodKind::Totp, now).await?;
        if methods
            .iter()
            .any(|m| m.kind == MethodKind::Totp && m.row.name.eq_ignore_ascii_case(&name))
        {
            return Err(refused(ErrorCode::NameInvalid));
        }
        let mut row = self.pending_row(actor, MethodKind::Totp, name, now);
        row.secret = Some(self.sealer.seal(&totp::new_secret(), &row.id));
        self.store.insert_method(&row).await?;
        Ok(row.id)
    }

    async fn pending(&self, actor: &Actor, id: &str, now: i64) -> Result<MethodRow, DomainError> {
        match self.store.method(id, &actor.user.id).await? {
            Some(m) if m.status == "pending" && m.expires_at > now => Ok(m),
            _ => Err(refused(ErrorCode::SetupExpired)),
        }
    }

    /// The QR code and manual key of a pending app (never of an active one).
    pub async fn totp_setup(
        &self,
        actor: &Actor,
        id: &str,
        now: i64,
    ) -> Result<TotpSetup, DomainError> {
        let m = self.pending(actor, id, now).await?;
        let secret = self.open_secret(&m)?;
        let key = totp::base32(&secret);
        let uri = totp::uri(&self.policy.totp, &secret, &actor.user.username);
        Ok(TotpSetup {
            id: m.id,
            name: m.name,
            key: totp::grouped(&key),
            qr_svg: totp::qr_svg(&uri),
            uri,
        })
    }

    pub(crate) fn open_secret(&self, m: &MethodRow) -> Result<Vec<u8>, DomainError> {
        let sealed = m.secret.as_deref().unwrap_or_default();
        self.sealer
            .open(sealed, &m.id)
            .map_err(|e| DomainError::Invalid(format!("method {}: {e}", m.id)))
    }

    /// Activates a pending app with a code from it.
    pub async fn totp_confirm(
        &self,
        actor: &Actor,
        id: &str,
        code: &str,
        now: i64,
    ) -> Result<(), DomainError> {
        self.guarded(actor, now, async {
            let m = self.pending(actor, id, now).await?;
            let methods = self.methods(&actor.user.id).await?;
            self.may_change(actor, &methods, now)?;
            let secret = self.open_secret(&m)?;
            let Some(step) = totp::check(&self.policy.totp, &secret, code, now.max(0) as u64)
            else {
                self.count_failure(actor, "totp setup: wrong code", now)
                    .await?;
                return Err(refused(ErrorCode::WrongCode));
            };
            let mut tx = self.store.begin().await?;
            if !activate_method_in(&mut tx, id, &actor.user.id, step, now).await? {
                return Err(refused(ErrorCode::SetupExpired));
            }
            tx.commit().await.map_err(crate::store::StoreError::from)?;
            let row = self.pending_or_active(actor, id).await?;
            self.added(actor, &row, now).await
        })
        .await
    }

    async fn pending_or_active(&self, actor: &Actor, id: &str) -> Result<Method, DomainError> {
        let row = self
            .store
            .method(id, &actor.user.id)
            .await?
            .ok_or(refused(ErrorCode::SetupExpired))?;
        methods_of(vec![row])
            .pop()
            .ok_or(refused(ErrorCode::SetupExpired))
    }

    pub(crate) fn new_code() -> String {
        format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32))
    }

    /// Starts registering a phone: validates and normalises the number, keeps it pending and
    /// sends a code by text or call.
    pub async fn phone_start(
        &self,
        actor: &Actor,
        slot: &str,
        number: &str,
        extension: &str,
        voice: bool,
        now: i64,
    ) -> Result<PendingCode, DomainError> {
        let slot = PhoneSlot::parse(slot).ok_or(refused(ErrorCode::PhoneInvalid))?;
        let methods = self.before_add(actor, MethodKind::Phone, now).await?;
        let number = crate::domain::phone::normalise(number, self.default_country.as_deref())
            .ok_or(refused(ErrorCode::PhoneInvalid))?;
        let extension = crate::domain::phone::extension(extension)
            .ok_or(refused(ErrorCode::PhoneInvalid))?
            .filter(|_| slot == PhoneSlot::Office);
        if let Some(existing) = methods
            .iter()
            .find(|m| m.kind == MethodKind::Phone && m.slot().as_deref() == Some(slot.as_str()))
        {
            if existing.row.source == "directory" && !self.policy.users_edit_directory_phones {
                return Err(refused(ErrorCode::DirectoryManaged));
            }
            return Err(refused(ErrorCode::TooManyMethods));
        }
        // a number from the directory for this slot is registered as directory-managed
        let directory_number = match slot {
            PhoneSlot::Mobile => &actor.user.mobile_phone,
            PhoneSlot::Alternate => &actor.user.alternate_phone,
            PhoneSlot::Office => &actor.user.office_phone,
        };
        let from_directory = directory_number.as_deref() == Some(number.as_str());
        if directory_number.is_some() && !from_directory && !self.policy.users_edit_directory_phones
        {
            return Err(refused(ErrorCode::DirectoryManaged));
        }
        let t = converge_app::text::en();
        let mut row = self.pending_row(
            actor,
            MethodKind::Phone,
            t.sec.slot_label(slot.as_str()).to_string(),
            now,
        );
        row.detail =
            json!({"slot": slot.as_str(), "number": number, "extension": extension}).to_string();
        if from_directory {
            row.source = "directory".into();
        }
        self.store.insert_method(&row).await?;
        self.send_enroll_code(actor, &row, if voice { "voice" } else { "sms" }, now)
            .await
    }

    /// Starts registering an email address: pending until the code mailed to it is entered.
    pub async fn email_start(
        &self,
        actor: &Actor,
        address: &str,
        now: i64,
    ) -> Result<PendingCode, DomainError> {
        let methods = self.before_add(actor, MethodKind::Email, now).await?;
        let address = crate::domain::users::EmailAddress::parse(address)
            .map_err(|_| refused(ErrorCode::EmailInvalid))?;
        if methods.iter().any(|m| {
            m.kind == MethodKind::Email
                && m.destination()
                    .is_some_and(|d| d.eq_ignore_ascii_case(address.as_str()))
        }) {
            return Err(refused(ErrorCode::TooManyMethods));
        }
        let t = converge_app::text::en();
        let mut row = self.pending_row(actor, MethodKind::Email, t.sec.kind_email.to_string(), now);
        row.detail = json!({"address": address.as_str()}).to_string();
        self.store.insert_method(&row).await?;
        self.send_enroll_code(actor, &row, "email", now).await
    }

    async fn send_enroll_code(
        &self,
        actor: &Actor,
        row: &MethodRow,
        channel: &str,
        now: i64,
    ) -> Result<PendingCode, DomainError> {
        let method = methods_of(vec![row.clone()])
            .pop()
            .ok_or(refused(ErrorCode::SetupExpired))?;
        self.issue_code(actor, PURPOSE_ENROLL, &method, channel, "", now)
            .await
    }

    /// A new code for `method` (sign-in or enrollment): stored as an HMAC (keeping the failure
    /// count of the previous one), sent, audited without the code.
    pub(crate) async fn issue_code(
        &self,
        actor: &Actor,
        purpose: &str,
        method: &Method,
        channel: &str,
        note: &str,
        now: i64,
    ) -> Result<PendingCode, DomainError> {
        let code = Self::new_code();
        let (id, failures) = self
            .store
            .put_code(
                &crate::store::methods::NewCode {
                    user_id: &actor.user.id,
                    purpose,
                    target: &method.row.id,
                    code_hash: &self.sealer.mac("code", &code),
                    channel,
                },
                now,
                self.policy.code_ttl_seconds,
            )
            .await?;
        if failures >= i64::from(self.policy.code_max_failures) {
            return Err(refused(ErrorCode::TooManyAttempts));
        }
        let destination = method.destination().unwrap_or_default();
        // a sign-in code someone else asked for can be reported as fraud from the mail
        let signin = purpose == "mfa";
        if let Some(call) = self
            .deliver_code(actor, &destination, (channel, signin), &code, now)
            .await?
        {
            self.store.set_code_call(&id, &call).await?;
        }
        let mut e = self.audit(actor, event::CODE_SENT, true, now);
        e.reason = Some(format!("{channel} to {}{note}", mask(&destination)));
        self.store.append_audit(&e).await?;
        Ok(PendingCode {
            id,
            kind: method.kind,
            channel: channel.into(),
            destination: mask(&destination),
            failures,
            expires_at: now + self.policy.code_ttl_seconds,
        })
    }

    /// Queues a code by text, call or email (never logged). Returns the call's id for a voice
    /// call (its answer arrives later: [`Security::voice_answered`]).
    pub(crate) async fn deliver_code(
        &self,
        actor: &Actor,
        destination: &str,
        (channel, signin): (&str, bool),
        code: &str,
        now: i64,
    ) -> Result<Option<String>, DomainError> {
        let t = converge_app::text::en();
        let minutes = (self.policy.code_ttl_seconds / 60) as u32;
        let sent = match channel {
            "email" => {
                let mut tx = self.store.begin().await?;
                self.notifier
                    .email_address_in(
                        &mut tx,
                        &actor.user,
                        destination,
                        &crate::notify::messages::Notice::VerificationCode {
                            code: code.to_string(),
                            expires_minutes: minutes,
                            signin,
                        },
                        now,
                    )
                    .await?;
                tx.commit().await.map_err(crate::store::StoreError::from)?;
                self.notifier.wake();
                Ok(String::new())
            }
            "voice" => {
                let spoken: Vec<String> = code.chars().map(|c| c.to_string()).collect();
                self.notifier
                    .phone_code(
                        &actor.user,
                        destination,
                        &t.sec.voice_code_text(&self.org_name, &spoken.join(", ")),
                        true,
                        now,
                    )
                    .await
            }
            _ => {
                self.notifier
                    .phone_code(
                        &actor.user,
                        destination,
                        &t.sec.sms_code_text(&self.org_name, code, minutes),
                        false,
                        now,
                    )
                    .await
            }
        };
        sent.map(|id| (channel == "voice").then_some(id))
            .map_err(delivery_error)
    }

    /// The voice gateway reported how a call was answered (`approve` / `deny`): the code the
    /// call read out completes (or can no longer complete) the step it belongs to — the sign-in
    /// second factor, a reset gate, a helpdesk check — when the page asks next. Audited.
    pub async fn voice_answered(
        &self,
        call_id: &str,
        result: &str,
        now: i64,
    ) -> Result<(), DomainError> {
        if !matches!(result, "approve" | "deny") {
            return Ok(());
        }
        let Some((_, user_id, purpose)) = self.store.answer_code_call(call_id, result, now).await?
        else {
            return Ok(());
        };
        let mut e =
            crate::domain::audit::AuditEntry::new(event::METHOD_VERIFY, result == "approve", now);
        e.user_id = Some(user_id);
        let how = if result == "approve" {
            "approved"
        } else {
            "declined"
        };
        e.reason = Some(format!("voice call {how} ({purpose})"));
        self.store.append_audit(&e).await?;
        Ok(())
    }

    /// The code waiting for input (for the page that asks for it).
    pub async fn pending_code(&self, actor: &Actor, id: &str) -> Result<PendingCode, DomainError> {
        let c = self
            .store
            .code(id, &actor.user.id)
            .await?
            .filter(|c| c.used_at == 0)
            .ok_or(refused(ErrorCode::SetupExpired))?;
        let m = self.pending_or_active(actor, &c.target).await?;
        Ok(PendingCode {
            id: c.id,
            kind: m.kind,
            channel: c.channel,
            destination: mask(&m.destination().unwrap_or_default()),
            failures: c.failures,
            expires_at: c.expires_at,
        })
    }

    /// Sends a new code for the same pending phone/email (the failure count stays).
    pub async fn resend_code(
        &self,
        actor: &Actor,
        id: &str,
        voice: Option<bool>,
        now: i64,
    ) -> Result<PendingCode, DomainError> {
        let c = self
            .store
            .code(id, &actor.user.id)
            .await?
            .filter(|c| c.used_at == 0 && c.purpose == PURPOSE_ENROLL)
            .ok_or(refused(ErrorCode::SetupExpired))?;
        let row = self.pending(actor, &c.target, now).await?;
        let channel = match (row.kind.as_str(), voice) {
            ("email", _) => "email",
            (_, Some(true)) => "voice",
            (_, Some(false)) => "sms",
            _ => c.channel.as_str(),
        }
        .to_string();
        self.send_enroll_code(actor, &row, &channel, now).await
    }

    /// Checks a code against the pending phone/email and activates it.
    pub async fn code_confirm(
        &self,
        actor: &Actor,
        id: &str,
        code: &str,
        now: i64,
    ) -> Result<(), DomainError> {
        self.guarded(actor, now, async {
            let c = self
                .store
                .code(id, &actor.user.id)
                .await?
                .filter(|c| c.purpose == PURPOSE_ENROLL)
                .ok_or(refused(ErrorCode::SetupExpired))?;
            // the rule first, so a refused change does not use up the code
            let methods = self.methods(&actor.user.id).await?;
            self.may_change(actor, &methods, now)?;
            self.check_code(actor, &c, code, now).await?;
            let mut tx = self.store.begin().await?;
            if !activate_method_in(&mut tx, &c.target, &actor.user.id, 0, now).await? {
                return Err(refused(ErrorCode::SetupExpired));
            }
            tx.commit().await.map_err(crate::store::StoreError::from)?;
            let m = self.pending_or_active(actor, &c.target).await?;
            self.added(actor, &m, now).await
        })
        .await
    }

    /// Shared by enrollment and sign-in: expiry, the failure limit, single use.
    pub(crate) async fn check_code(
        &self,
        actor: &Actor,
        c: &crate::store::methods::CodeRow,
        code: &str,
        now: i64,
    ) -> Result<(), DomainError> {
        let typed: String = code.chars().filter(|ch| !ch.is_whitespace()).collect();
        // nothing typed after a call: the call's answer decides (approve / deny on the phone)
        if typed.is_empty() && c.channel == "voice" {
            return match self.store.code_call_result(&c.id).await?.as_deref() {
                Some("deny") => Err(refused(ErrorCode::CallDeclined)),
                _ if c.used_at != 0 || c.expires_at <= now => Err(refused(ErrorCode::CodeExpired)),
                Some("approve") if self.store.use_code(&c.id, now).await? => Ok(()),
                Some("approve") => Err(refused(ErrorCode::CodeExpired)),
                _ => Err(refused(ErrorCode::CallPending)),
            };
        }
        if c.used_at != 0 || c.expires_at <= now {
            return Err(refused(ErrorCode::CodeExpired));
        }
        if c.failures >= i64::from(self.policy.code_max_failures) {
            return Err(refused(ErrorCode::TooManyAttempts));
        }
        let code: String = code.chars().filter(|ch| !ch.is_whitespace()).collect();
        if code.len() != 6 || !self.sealer.mac_matches("code", &code, &c.code_hash) {
            self.store.code_failure(&c.id).await?;
            self.count_failure(actor, "wrong code", now).await?;
            return Err(refused(ErrorCode::WrongCode));
        }
        if !self.store.use_code(&c.id, now).await? {
            return Err(refused(ErrorCode::CodeExpired));
        }
        Ok(())
    }

    /// Sets (or replaces) the user's security questions: `answers` pairs a question (from the
    /// pool, or custom when allowed) with its answer.
    pub async fn set_questions(
        &self,
        actor: &Actor,
        answers: &[(String, String)],
        now: i64,
    ) -> Result<(), DomainError> {
        self.ensure_allowed(MethodKind::Questions)?;
        let methods = self.methods(&actor.user.id).await?;
        self.may_change(actor, &methods, now)?;
        let need = self.policy.questions_required as usize;
        let chosen: Vec<(String, String)> = answers
            .iter()
            .map(|(q, a)| (q.trim().to_string(), a.clone()))
            .filter(|(q, _)| !q.is_empty())
            .collect();
        let mut distinct: Vec<&String> = chosen.iter().map(|(q, _)| q).collect();
        distinct.sort();
        distinct.dedup();
        let valid = chosen.len() == need
            && distinct.len() == need
            && chosen.iter().all(|(q, a)| {
                (self.policy.questions.contains(q)
                    || (self.policy.allow_custom_questions && q.chars().count() <= 200))
                    && normalise_answer(a).chars().count() >= 3
                    && a.len() <= 200
            });
        if !valid {
            return Err(refused(ErrorCode::AnswersInvalid));
        }
        let mut items = Vec::new();
        for (q, a) in &chosen {
            items.push(json!({"q": q, "h": self.hash_secret(&normalise_answer(a)).await?}));
        }
        let t = converge_app::text::en();
        let mut row = self.pending_row(
            actor,
            MethodKind::Questions,
            t.sec.kind_questions.into(),
            now,
        );
        row.detail = json!({ "items": items }).to_string();
        row.status = "active".into();
        row.activated_at = now;
        row.expires_at = 0;
        self.replace_single(actor, MethodKind::Questions, row, now)
            .await
    }

    /// Sets (or replaces) the PIN.
    pub async fn set_pin(
        &self,
        actor: &Actor,
        pin: &str,
        confirm: &str,
        now: i64,
    ) -> Result<(), DomainError> {
        self.ensure_allowed(MethodKind::Pin)?;
        let methods = self.methods(&actor.user.id).await?;
        self.may_change(actor, &methods, now)?;
        let pin = pin.trim();
        let len = pin.chars().count() as u32;
        if pin != confirm.trim()
            || !pin.bytes().all(|b| b.is_ascii_digit())
            || len < self.policy.pin_min_length
            || len > self.policy.pin_max_length
        {
            return Err(refused(ErrorCode::PinLength));
        }
        let mut phones: Vec<String> = methods
            .iter()
            .filter(|m| m.kind == MethodKind::Phone)
            .filter_map(Method::destination)
            .collect();
        phones.extend(
            [
                &actor.user.mobile_phone,
                &actor.user.alternate_phone,
                &actor.user.office_phone,
            ]
            .into_iter()
            .flatten()
            .cloned(),
        );
        if pin_is_trivial(pin, &phones) {
            return Err(refused(ErrorCode::PinWeak));
        }
        let t = converge_app::text::en();
        let mut row = self.pending_row(actor, MethodKind::Pin, t.sec.kind_pin.into(), now);
        row.secret = Some(self.hash_secret(pin).await?);
        row.status = "active".into();
        row.activated_at = now;
        row.expires_at = 0;
        self.replace_single(actor, MethodKind::Pin, row, now).await
    }

    /// Questions and PIN exist once per user: the new row replaces the old in one transaction.
    async fn replace_single(
        &self,
        actor: &Actor,
        kind: MethodKind,
        row: MethodRow,
        now: i64,
    ) -> Result<(), DomainError> {
        let mut tx = self.store.begin().await?;
        crate::store::methods::delete_methods_of_kind_in(&mut tx, &actor.user.id, kind.as_str())
            .await?;
        crate::store::methods::insert_method_in(&mut tx, &row).await?;
        tx.commit().await.map_err(crate::store::StoreError::from)?;
        let m = methods_of(vec![row])
            .pop()
            .ok_or(refused(ErrorCode::SetupExpired))?;
        self.added(actor, &m, now).await
    }
}

/// Masked phone number or address for pages and the audit log.
/// A message that could not be handed over: the provider's limits and gaps are the user's to
/// know (specific codes); anything else is an outage.
pub(crate) fn delivery_error(e: crate::notify::NotifyError) -> DomainError {
    match e {
        crate::notify::NotifyError::RateLimited(_) => refused(ErrorCode::MessageLimit),
        crate::notify::NotifyError::VoiceUnsupported => refused(ErrorCode::VoiceUnsupported),
        other => other.into(),
    }
}

pub fn mask(destination: &str) -> String {
    if destination.contains('@') {
        crate::notify::mask_email(destination)
    } else {
        crate::notify::mask_number(destination)
    }
}
