//! Errors as RFC 9457 problem documents (`application/problem+json`): the HTTP status, the
//! stable error code users see in the portal (`code`), its English message (`detail`), and for
//! invalid input the fields at fault.

use crate::domain::error::DomainError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use converge_app::api::ErrorCode;
use serde::Serialize;
use utoipa::ToSchema;

/// An RFC 9457 problem document, as sent.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Problem)]
pub struct ProblemDoc {
    /// `/api/v1/docs#error-CODE`: where the code is explained.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What happened, for people.
    pub detail: String,
    /// The stable error code (as shown in the portal, e.g. `MFA-003`).
    #[schema(example = "API-401")]
    pub code: String,
    /// For invalid input: what was wrong with it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// A refusal on its way out (small: rendered into a [`ProblemDoc`] at the end).
#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub errors: Vec<String>,
}

impl Problem {
    pub fn new(status: StatusCode, code: ErrorCode) -> Problem {
        Problem {
            status,
            code,
            errors: vec![],
        }
    }

    pub fn doc(&self) -> ProblemDoc {
        ProblemDoc {
            kind: format!("{}/docs#error-{}", super::PREFIX, self.code.code()),
            title: self
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_string(),
            status: self.status.as_u16(),
            detail: converge_app::text::en().for_error(self.code).to_string(),
            code: self.code.code().to_string(),
            errors: self.errors.clone(),
        }
    }

    /// Invalid input (400, `API-400`) with what was wrong.
    pub fn invalid(why: impl Into<String>) -> Problem {
        let mut p = Problem::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest);
        p.errors.push(why.into());
        p
    }

    /// The HTTP status a refusal answers with.
    pub fn status_of(code: ErrorCode) -> StatusCode {
        use ErrorCode::*;
        match code {
            ApiTokenInvalid => StatusCode::UNAUTHORIZED,
            ApiScopeMissing | ProtectedAccount | OwnAccount | HelpdeskForbidden => {
                StatusCode::FORBIDDEN
            }
            NotFound | SetupExpired | ApprovalInvalid => StatusCode::NOT_FOUND,
            IdempotencyConflict | NotLocked | NotBlocked => StatusCode::CONFLICT,
            TooManyAttempts | MessageLimit => StatusCode::TOO_MANY_REQUESTS,
            AccountBlocked | MethodLocked => StatusCode::LOCKED,
            Unavailable | DirectoryUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
            TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            VoiceUnsupported => StatusCode::NOT_IMPLEMENTED,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    pub fn refused(code: ErrorCode) -> Problem {
        Problem::new(Problem::status_of(code), code)
    }
}

impl From<DomainError> for Problem {
    fn from(e: DomainError) -> Problem {
        match e {
            DomainError::Refused(code) => Problem::refused(code),
            DomainError::Invalid(why) => Problem::invalid(why),
            DomainError::Directory(why) => {
                tracing::warn!(error = %why, "directory unavailable (DIR-503)");
                Problem::refused(ErrorCode::DirectoryUnavailable)
            }
            DomainError::Busy | DomainError::Notify(_) => {
                tracing::warn!(error = %e, "busy (SYS-503)");
                Problem::refused(ErrorCode::Unavailable)
            }
            DomainError::Store(err) => {
                tracing::error!(error = %err, "storage failed (SYS-503)");
                Problem::refused(ErrorCode::Unavailable)
            }
            DomainError::Hashing(err) => {
                tracing::error!(error = %err, "hashing failed (SYS-500)");
                Problem::refused(ErrorCode::Internal)
            }
        }
    }
}

impl From<crate::store::StoreError> for Problem {
    fn from(e: crate::store::StoreError) -> Problem {
        DomainError::Store(e).into()
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status;
        let body = serde_json::to_vec(&self.doc()).unwrap_or_default();
        let mut res = (status, body).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if status == StatusCode::UNAUTHORIZED {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"converge\""),
            );
        }
        res
    }
}

pub async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, ErrorCode::NotFound)
}

pub async fn method_not_allowed() -> Problem {
    let mut p = Problem::new(StatusCode::METHOD_NOT_ALLOWED, ErrorCode::InvalidRequest);
    p.errors
        .push("this method is not allowed on this path".into());
    p
}
