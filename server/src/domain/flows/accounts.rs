//! Account administration — create a local user, disable / enable, set the role — for every
//! front door that manages users (the CLI's `converge user …`, the management API), with the
//! console's rules: protected accounts (admins, helpdesk, protected groups) and the roles that
//! make one are for administrators only. Audited with the agent as the actor.

use super::helpdesk::{Agent, Helpdesk};
use crate::domain::audit::event;
use crate::domain::error::DomainError;
use crate::domain::password::Password;
use crate::domain::users::{Role, User, UserProfile};
use converge_app::api::ErrorCode;

impl Helpdesk {
    /// A new local user (source `local`), with a password or without (then the user gets one
    /// by a reset, or the operator sets one). An existing username is refused.
    pub async fn create_user(
        &self,
        agent: &Agent,
        profile: &UserProfile,
        password: Option<Password>,
        now: i64,
    ) -> Result<User, DomainError> {
        if profile.role != Role::User && !agent.is_admin() {
            return Err(DomainError::Refused(ErrorCode::ProtectedAccount));
        }
        let store = &self.security.store;
        if store
            .find_user_by_username(profile.username.as_str())
            .await?
            .is_some()
        {
            return Err(DomainError::Refused(ErrorCode::NameInvalid));
        }
        let hash = match password {
            Some(p) => Some(
                self.security
                    .hasher
                    .hash(&p)
                    .await
                    .map_err(|e| DomainError::Hashing(e.to_string()))?,
            ),
            None => None,
        };
        let (id, _) = store
            .upsert_user(profile, hash.as_deref(), "local", now)
            .await?;
        let user = store
            .find_user(&id)
            .await?
            .ok_or(DomainError::Refused(ErrorCode::Internal))?;
        store
            .append_audit(&self.audit(agent, &user, event::USER_CREATED, true, now))
            .await?;
        Ok(user)
    }

    /// Disables (ending every session) or enables a user; returns the sessions ended.
    pub async fn set_enabled(
        &self,
        agent: &Agent,
        user: &User,
        enabled: bool,
        now: i64,
    ) -> Result<u64, DomainError> {
        let ev = if enabled {
            event::USER_ENABLED
        } else {
            event::USER_DISABLED
        };
        self.guard_protected(
            agent,
            user,
            ev,
            if enabled { "enable" } else { "disable" },
            now,
        )
        .await?;
        let store = &self.security.store;
        store.set_enabled(&user.id, enabled, now).await?;
        let ended = if enabled {
            0
        } else {
            store.delete_user_sessions(&user.id).await?
        };
        store
            .append_audit(&self.audit(agent, user, ev, true, now))
            .await?;
        Ok(ended)
    }

    /// Sets the role; making or unmaking staff is for administrators only.
    pub async fn set_role(
        &self,
        agent: &Agent,
        user: &User,
        role: Role,
        now: i64,
    ) -> Result<(), DomainError> {
        self.guard_protected(agent, user, event::ROLE_SET, role.as_str(), now)
            .await?;
        if role != Role::User && !agent.is_admin() {
            let mut e = self.audit(agent, user, event::ROLE_SET, false, now);
            e.reason = Some(format!("{}: administrators only", role.as_str()));
            self.security.store.append_audit(&e).await?;
            return Err(DomainError::Refused(ErrorCode::ProtectedAccount));
        }
        self.security.store.set_role(&user.id, role, now).await?;
        let mut e = self.audit(agent, user, event::ROLE_SET, true, now);
        e.reason = Some(role.as_str().into());
        self.security.store.append_audit(&e).await?;
        Ok(())
    }
}
