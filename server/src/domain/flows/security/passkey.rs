//! Passkeys and security keys (WebAuthn, `webauthn-rs`). Ceremony state is sealed and kept in the
//! database for a few minutes (never in the browser); the relying party id and origin come from
//! `public_url`; credential ids are unique across all users; the user handle is random.

use super::{event, method_name, methods_of, new_id, refused, Actor, Method, MfaOutcome, Security};
use crate::domain::error::DomainError;
use crate::domain::policy::MethodKind;
use crate::store::methods::{CeremonyRow, MethodRow};
use base64::Engine;
use converge_app::api::ErrorCode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Uuid,
};

const CEREMONY_SECONDS: i64 = 300;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn passkey_of(m: &Method) -> Option<Passkey> {
    serde_json::from_value(m.detail().get("passkey")?.clone()).ok()
}

impl Security {
    /// Seals a ceremony's state into the store for a few minutes; `owner` is the user it belongs
    /// to (None for passwordless sign-in, where nobody is known yet).
    async fn put_state<T: Serialize>(
        &self,
        owner: Option<&str>,
        kind: &str,
        name: &str,
        state: &T,
        now: i64,
    ) -> Result<String, DomainError> {
        let id = new_id();
        let json = serde_json::to_vec(state).map_err(|e| DomainError::Invalid(e.to_string()))?;
        self.store
            .put_ceremony(&CeremonyRow {
                id: id.clone(),
                user_id: owner.map(str::to_string),
                kind: kind.into(),
                state: self.sealer.seal(&json, &id),
                name: name.into(),
                expires_at: now + CEREMONY_SECONDS,
            })
            .await?;
        Ok(id)
    }

    /// Takes a ceremony's state out of the store (single use), if `owner` started it.
    async fn take_state<T: DeserializeOwned>(
        &self,
        owner: Option<&str>,
        id: &str,
        kind: &str,
        now: i64,
    ) -> Result<(T, String), DomainError> {
        let c = self
            .store
            .take_ceremony(id, kind, now)
            .await?
            .filter(|c| c.user_id.as_deref() == owner)
            .ok_or(refused(ErrorCode::SetupExpired))?;
        let json = self
            .sealer
            .open(&c.state, &c.id)
            .map_err(|_| refused(ErrorCode::SetupExpired))?;
        let state = serde_json::from_slice(&json).map_err(|_| refused(ErrorCode::SetupExpired))?;
        Ok((state, c.name))
    }

    /// Starts registering a passkey: returns the ceremony id and the options for
    /// `navigator.credentials.create()`.
    pub async fn passkey_start(
        &self,
        actor: &Actor,
        name: &str,
        now: i64,
    ) -> Result<(String, serde_json::Value), DomainError> {
        let name = method_name(name)?;
        let methods = self.before_add(actor, MethodKind::Passkey, now).await?;
        let handle = self.store.user_handle(&actor.user.id).await?;
        let handle = Uuid::parse_str(&handle).map_err(|e| DomainError::Invalid(e.to_string()))?;
        let exclude: Vec<_> = methods
            .iter()
            .filter_map(passkey_of)
            .map(|p| p.cred_id().clone())
            .collect();
        let (options, state) = self
            .webauthn
            .start_passkey_registration(
                handle,
                &actor.user.username,
                &actor.user.display_name,
                Some(exclude),
            )
            .map_err(|e| DomainError::Invalid(format!("webauthn: {e}")))?;
        let id = self
            .put_state::<PasskeyRegistration>(Some(&actor.user.id), "register", &name, &state, now)
            .await?;
        let mut options =
            serde_json::to_value(options).map_err(|e| DomainError::Invalid(e.to_string()))?;
        // ask for a discoverable credential where the authenticator can make one, so the
        // passkey also signs in without a username and password
        if let Some(sel) = options
            .pointer_mut("/publicKey/authenticatorSelection")
            .and_then(|v| v.as_object_mut())
        {
            sel.insert("residentKey".into(), json!("preferred"));
            sel.insert("requireResidentKey".into(), json!(false));
        }
        Ok((id, options))
    }

    /// Completes a registration with the browser's answer.
    pub async fn passkey_finish(
        &self,
        actor: &Actor,
        ceremony: &str,
        credential: &str,
        now: i64,
    ) -> Result<(), DomainError> {
        let (state, name) = self
            .take_state::<PasskeyRegistration>(Some(&actor.user.id), ceremony, "register", now)
            .await?;
        let methods = self.methods(&actor.user.id).await?;
        self.may_change(actor, &methods, now)?;
        let reg: RegisterPublicKeyCredential =
            serde_json::from_str(credential).map_err(|_| refused(ErrorCode::PasskeyFailed))?;
        let passkey = match self.webauthn.finish_passkey_registration(&reg, &state) {
            Ok(p) => p,
            Err(e) => {
                tracing::info!(error = %e, "passkey registration refused");
                let mut a = self.audit(actor, event::METHOD_ADDED, false, now);
                a.reason = Some(format!("passkey: {e}"));
                self.store.append_audit(&a).await?;
                return Err(refused(match e {
                    webauthn_rs::prelude::WebauthnError::CredentialExcludedFromRequest => {
                        ErrorCode::PasskeyExists
                    }
                    _ => ErrorCode::PasskeyFailed,
                }));
            }
        };
        let cred_id = b64(passkey.cred_id());
        if self.store.method_by_credential(&cred_id).await?.is_some() {
            return Err(refused(ErrorCode::PasskeyExists));
        }
        let row = MethodRow {
            id: new_id(),
            user_id: actor.user.id.clone(),
            kind: MethodKind::Passkey.as_str().into(),
            name,
            status: "active".into(),
            source: "user".into(),
            secret: None,
            detail: json!({ "passkey": passkey }).to_string(),
            credential_id: Some(cred_id),
            is_default: false,
            last_step: 0,
            failures: 0,
            created_at: now,
            activated_at: now,
            last_used_at: now,
            expires_at: 0,
        };
        // a concurrent registration of the same credential loses on the UNIQUE constraint
        if self.store.insert_method(&row).await.is_err() {
            return Err(refused(ErrorCode::PasskeyExists));
        }
        let m = methods_of(vec![row])
            .pop()
            .ok_or(refused(ErrorCode::SetupExpired))?;
        self.added(actor, &m, now).await
    }

    /// Starts a passkey assertion for sign-in or re-authentication.
    pub async fn passkey_auth_start(
        &self,
        actor: &Actor,
        now: i64,
    ) -> Result<(String, serde_json::Value), DomainError> {
        let methods = self.methods(&actor.user.id).await?;
        let passkeys: Vec<Passkey> = methods.iter().filter_map(passkey_of).collect();
        if passkeys.is_empty() {
            return Err(refused(ErrorCode::SetupExpired));
        }
        let (options, state) = self
            .webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(|e| DomainError::Invalid(format!("webauthn: {e}")))?;
        let id = self
            .put_state::<PasskeyAuthentication>(
                Some(&actor.user.id),
                "authenticate",
                "",
                &state,
                now,
            )
            .await?;
        let options =
            serde_json::to_value(options).map_err(|e| DomainError::Invalid(e.to_string()))?;
        Ok((id, options))
    }

    /// Completes a passkey assertion: signature, origin, user verification and the signature
    /// counter (a counter that does not increase is refused as a possible clone).
    pub async fn passkey_auth_finish(
        &self,
        actor: &Actor,
        ceremony: &str,
        credential: &str,
        now: i64,
    ) -> Result<MfaOutcome, DomainError> {
        let (m, methods) = self
            .passkey_assert(actor, ceremony, credential, now)
            .await?;
        self.verified(actor, &m, methods, now).await
    }

    /// Checks an assertion (throttle, single-use ceremony, signature, counter), records the use
    /// and returns the passkey used and the user's methods. (The use commits before the throttle
    /// settles: SQLite has one writer.)
    pub(crate) async fn passkey_assert(
        &self,
        actor: &Actor,
        ceremony: &str,
        credential: &str,
        now: i64,
    ) -> Result<(Method, Vec<Method>), DomainError> {
        self.guarded(actor, now, async {
            let (state, _) = self
                .take_state::<PasskeyAuthentication>(
                    Some(&actor.user.id),
                    ceremony,
                    "authenticate",
                    now,
                )
                .await?;
            let cred: PublicKeyCredential =
                serde_json::from_str(credential).map_err(|_| refused(ErrorCode::PasskeyFailed))?;
            let result = match self.webauthn.finish_passkey_authentication(&cred, &state) {
                Ok(r) => r,
                Err(e) => {
                    self.count_failure(actor, &format!("passkey: {e}"), now)
                        .await?;
                    return Err(refused(ErrorCode::PasskeyFailed));
                }
            };
            let methods = self.methods(&actor.user.id).await?;
            let cred_id = b64(result.cred_id());
            let m = methods
                .iter()
                .find(|m| m.row.credential_id.as_deref() == Some(cred_id.as_str()))
                .cloned()
                .ok_or(refused(ErrorCode::PasskeyFailed))?;
            let mut passkey = passkey_of(&m).ok_or(refused(ErrorCode::PasskeyFailed))?;
            passkey.update_credential(&result);
            let detail = json!({ "passkey": passkey }).to_string();
            let mut tx = self.store.begin().await?;
            if !crate::store::methods::use_passkey_in(
                &mut tx,
                &m.row.id,
                &detail,
                i64::from(result.counter()),
                now,
            )
            .await?
            {
                drop(tx);
                self.count_failure(actor, "passkey signature counter did not increase", now)
                    .await?;
                return Err(refused(ErrorCode::PasskeyFailed));
            }
            tx.commit().await.map_err(crate::store::StoreError::from)?;
            Ok((m, methods))
        })
        .await
    }
}

/// Passwordless sign-in with a discoverable passkey (from the sign-in page, no username).
impl Security {
    pub async fn discover_start(
        &self,
        now: i64,
    ) -> Result<(String, serde_json::Value), DomainError> {
        let (options, state) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(|e| DomainError::Invalid(format!("webauthn: {e}")))?;
        let id = self.put_state(None, "discover", "", &state, now).await?;
        let mut options =
            serde_json::to_value(options).map_err(|e| DomainError::Invalid(e.to_string()))?;
        // a button press, not conditional (autofill) mediation
        if let Some(o) = options.as_object_mut() {
            o.remove("mediation");
        }
        Ok((id, options))
    }

    /// The user whose discoverable passkey signed this assertion, when everything checks out
    /// (signature, origin, user verification, counter) and the account may sign in. Failures
    /// count against the client's throttle.
    pub async fn discover_finish(
        &self,
        ceremony: &str,
        credential: &str,
        client: &crate::domain::flows::session::Client,
        now: i64,
    ) -> Result<Option<crate::domain::users::User>, DomainError> {
        use crate::domain::flows::throttle::{self, Key};
        let key = Key::shared(
            super::SCOPE_FACTOR_CLIENT,
            &client.ip,
            self.signin.client_bucket(),
        );
        let Ok(attempt) = throttle::begin(&self.store, vec![key], now).await? else {
            return Err(refused(ErrorCode::TooManyAttempts));
        };
        let user = match self.discover_user(ceremony, credential, now).await {
            Ok(u) => u,
            Err(e) => {
                attempt.cancel(&self.store).await?;
                return Err(e);
            }
        };
        if user.is_some() {
            attempt.succeeded(&self.store).await?;
        } else {
            let _ = attempt.failed(&self.store).await?;
        }
        Ok(user)
    }

    async fn discover_user(
        &self,
        ceremony: &str,
        credential: &str,
        now: i64,
    ) -> Result<Option<crate::domain::users::User>, DomainError> {
        let (state, _): (webauthn_rs::prelude::DiscoverableAuthentication, _) =
            self.take_state(None, ceremony, "discover", now).await?;
        let Ok(cred) = serde_json::from_str::<PublicKeyCredential>(credential) else {
            return Ok(None);
        };
        let Ok((handle, cred_id)) = self.webauthn.identify_discoverable_authentication(&cred)
        else {
            return Ok(None);
        };
        let Some(user_id) = self.store.user_by_handle(&handle.to_string()).await? else {
            return Ok(None);
        };
        let Some(user) = self.store.find_user(&user_id).await? else {
            return Ok(None);
        };
        let cred_id = b64(cred_id);
        let Some(m) = methods_of(self.store.active_methods(&user.id).await?)
            .into_iter()
            .find(|m| m.row.credential_id.as_deref() == Some(cred_id.as_str()))
        else {
            return Ok(None);
        };
        let Some(mut passkey) = passkey_of(&m) else {
            return Ok(None);
        };
        let result = match self
            .webauthn
            .finish_discoverable_authentication_v2(&cred, state, &passkey)
        {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(error = %e, "passwordless passkey refused");
                return Ok(None);
            }
        };
        passkey.update_credential(&result);
        let detail = json!({ "passkey": passkey }).to_string();
        if !self
            .store
            .use_passkey(&m.row.id, &detail, i64::from(result.counter()), now)
            .await?
        {
            return Ok(None);
        }
        if !user.enabled || user.locked_at.is_some() || user.is_blocked(now) {
            return Ok(None);
        }
        Ok(Some(user))
    }
}
