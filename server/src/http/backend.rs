//! The server's implementation of the UI's port (`converge_app::ssr::Backend`): maps UI
//! requests to domain flows and domain outcomes to UI statuses. Error details are logged here and
//! never reach the browser.

use super::caller::{clear_cookie, session_cookie_value};
use super::metrics::SigninResult;
use super::AppState;

use crate::domain::error::DomainError;
use crate::domain::flows::session::hash_token;
use crate::domain::flows::session::{self, Client};
use crate::domain::flows::signin::{self, RejectReason, SigninDeps, SigninInput, SigninOutcome};
use converge_app::api::{ActivityItem, ApiError, ErrorCode, ReportCheck, SecurityInfo};
use converge_app::ssr::{
    AccountRequest, AccountStatus, Backend, ReportRequest, RequestCtx, SigninRequest, SigninStatus,
};

pub struct PortalBackend {
    state: AppState,
}

impl PortalBackend {
    pub fn new(state: AppState) -> Self {
        PortalBackend { state }
    }
}

fn client(ctx: &RequestCtx) -> Client {
    super::client_of(ctx)
}

use super::caller::device_cookie_value;

fn unavailable(e: DomainError) -> ApiError {
    tracing::error!(error = %e, "backend failure");
    match e {
        DomainError::Store(_) | DomainError::Directory(_) | DomainError::Busy => {
            ErrorCode::Unavailable.into()
        }
        _ => ErrorCode::Internal.into(),
    }
}

#[async_trait::async_trait]
impl Backend for PortalBackend {
    async fn signin(&self, ctx: &RequestCtx, req: SigninRequest) -> SigninStatus {
        let s = &self.state;
        let now = s.clock.now();
        match req {
            SigninRequest::Password { username, password } => {
                let deps = SigninDeps {
                    store: &s.store,
                    notifier: &s.notifier,
                    directory: s.directory.as_ref(),
                    sealer: &s.sealer,
                    signin: &s.config.policy.signin,
                    session: &s.config.policy.session,
                };
                let submitted = username.clone();
                let input = SigninInput {
                    username,
                    password,
                    client: client(ctx),
                    previous_token: ctx.session_token.clone(),
                };
                match signin::sign_in(&deps, input, now).await {
                    Ok(SigninOutcome::SignedIn {
                        user,
                        token,
                        needs_mfa,
                        device,
                    }) => {
                        s.metrics.signin(SigninResult::Success);
                        tracing::info!(user = %user.username, needs_mfa, "password accepted");
                        let next = if needs_mfa {
                            Ok(converge_app::routes::VERIFY.to_string())
                        } else {
                            super::security_port::after_signin(&s.security, &user, now).await
                        };
                        match next {
                            Ok(next) => SigninStatus::SignedIn {
                                set_cookie: vec![
                                    session_cookie_value(&s.config, &token),
                                    device_cookie_value(
                                        &s.config,
                                        &device,
                                        ctx.device_cookie.as_deref(),
                                    ),
                                ],
                                next,
                            },
                            Err(e) => SigninStatus::Failed(unavailable(e).code()),
                        }
                    }
                    Ok(SigninOutcome::Rejected(RejectReason::PasswordExpired)) => {
                        s.metrics.signin(SigninResult::Rejected);
                        SigninStatus::Failed(ErrorCode::PasswordExpired)
                    }
                    Ok(SigninOutcome::Rejected(reason)) => {
                        s.metrics.signin(SigninResult::Rejected);
                        tracing::info!(reason = reason.as_str(), "sign-in rejected");
                        SigninStatus::Rejected {
                            username: submitted,
                        }
                    }
                    Err(e) => {
                        s.metrics.signin(SigninResult::Error);
                        SigninStatus::Failed(unavailable(e).code())
                    }
                }
            }
            SigninRequest::SignOut => {
                if let Some(token) = &ctx.session_token {
                    if let Err(e) = session::end(&s.store, token, &client(ctx), now).await {
                        return SigninStatus::Failed(unavailable(e).code());
                    }
                }
                SigninStatus::SignedOut {
                    set_cookie: clear_cookie(&s.config),
                }
            }
        }
    }

    async fn account(
        &self,
        ctx: &RequestCtx,
        req: AccountRequest,
    ) -> Result<AccountStatus, ApiError> {
        let me = ctx.signed_in()?;
        let s = &self.state;
        match req {
            AccountRequest::SecurityInfo => {
                let user = s
                    .store
                    .find_user(&me.user_id)
                    .await
                    .map_err(|e| unavailable(e.into()))?
                    .ok_or(ApiError::Failed(ErrorCode::NotSignedIn))?;
                Ok(AccountStatus::SecurityInfo(SecurityInfo {
                    email: user.email,
                    mobile_phone: user.mobile_phone,
                    alternate_phone: user.alternate_phone,
                    office_phone: user.office_phone,
                    source: user.source,
                }))
            }
            AccountRequest::Activity { limit } => {
                let entries = s
                    .store
                    .audit_for_user(&me.user_id, limit.min(500))
                    .await
                    .map_err(|e| unavailable(e.into()))?;
                Ok(AccountStatus::Activity(
                    entries
                        .into_iter()
                        .map(|e| ActivityItem {
                            at: format_time(e.at),
                            event: e.event,
                            success: e.success,
                            client_ip: e.client_ip.unwrap_or_default(),
                            user_agent: e.user_agent.unwrap_or_default(),
                        })
                        .collect(),
                ))
            }
        }
    }

    async fn security(
        &self,
        ctx: &RequestCtx,
        req: converge_app::ssr::SecurityRequest,
    ) -> Result<converge_app::ssr::SecurityStatus, ApiError> {
        super::security_port::handle(&self.state, ctx, req).await
    }

    async fn reset(
        &self,
        ctx: &RequestCtx,
        req: converge_app::ssr::ResetRequest,
    ) -> Result<converge_app::ssr::ResetStatus, ApiError> {
        super::reset_port::handle(&self.state, ctx, req).await
    }

    async fn helpdesk(
        &self,
        ctx: &RequestCtx,
        req: converge_app::ssr::HelpdeskRequest,
    ) -> Result<converge_app::ssr::HelpdeskStatus, ApiError> {
        super::helpdesk_port::handle(&self.state, ctx, req).await
    }

    async fn report(&self, ctx: &RequestCtx, req: ReportRequest) -> Result<ReportCheck, ApiError> {
        let s = &self.state;
        let now = s.clock.now();
        let token = match &req {
            ReportRequest::Check { token } | ReportRequest::Confirm { token } => token,
        };
        if token.is_empty() || token.len() > 128 {
            return Ok(ReportCheck::Invalid);
        }
        let hash = hash_token(token);
        let found = s
            .store
            .find_report_token(&hash, now)
            .await
            .map_err(|e| unavailable(e.into()))?;
        let Some((user_id, message)) = found else {
            return Ok(ReportCheck::Invalid);
        };
        if let ReportRequest::Confirm { .. } = req {
            if !s
                .store
                .use_report_token(&hash, now)
                .await
                .map_err(|e| unavailable(e.into()))?
            {
                return Ok(ReportCheck::Invalid);
            }
            crate::domain::flows::fraud::report_fraud(
                &s.store,
                &s.notifier,
                &s.config.policy.fraud,
                crate::domain::flows::fraud::FraudReport {
                    user_id: &user_id,
                    source: format!("\"This wasn't me\" link: {message}"),
                    client_ip: ctx.client_ip.clone(),
                    user_agent: ctx.user_agent.clone(),
                },
                now,
            )
            .await
            .map_err(unavailable)?;
        }
        Ok(ReportCheck::Valid { message })
    }
}

pub use crate::domain::format_time;
