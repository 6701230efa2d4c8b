//! Every error the API answers with, as RFC 9457 `application/problem+json`.
//!
//! Each kind of error has a stable `type` (`urn:wasl:problem:<slug>`) that clients can switch
//! on; `title` is its fixed human summary. Nothing a client sent is echoed back (it may be
//! personal data), and an internal cause is logged with the request id, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use wasl_domain::{DomainError, ValidationError};
use wasl_store::CommandError;

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldProblem {
    /// Which field: for a field of the JSON body its JSON pointer (RFC 6901: `/profile/sex`,
    /// `/reason/code`, `/languages/1`; `""` is the whole body); for a query parameter or a
    /// header its name (`limit`, `Idempotency-Key`).
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// Stable identifier of the kind of problem (`urn:wasl:problem:<slug>`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem; the same for every occurrence.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened this time, without any value the client sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The domain's reason code for a refused command (`consent_required`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The fields that failed validation.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
    /// The resource's current version, for a failed precondition or a lost race.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<u64>,
    /// The request's id, also in the server log next to the cause of an internal error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub enum ApiError {
    /// The request is malformed: unreadable JSON, an unknown field, a bad header.
    #[error("bad request")]
    BadRequest {
        /// What was wrong (never the value).
        detail: String,
        /// Per-field detail.
        errors: Vec<FieldProblem>,
    },
    /// The request's fields do not pass validation.
    #[error("validation failed")]
    Invalid(Vec<FieldProblem>),
    /// No valid credentials.
    #[error("unauthenticated")]
    Unauthenticated,
    /// Authenticated, but the role may not do this at all.
    #[error("forbidden")]
    Forbidden,
    /// Not found, or outside the caller's scope (the two look the same on purpose).
    #[error("not found")]
    NotFound,
    /// The body is larger than the configured limit.
    #[error("payload too large")]
    PayloadTooLarge,
    /// The route exists, but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The domain refused the command.
    #[error("refused: {}", .0.code())]
    Refused(DomainError),
    /// `If-Match` named another version.
    #[error("precondition failed")]
    PreconditionFailed { current_version: u64 },
    /// The resource changed concurrently and the command was not carried out.
    #[error("conflict")]
    Conflict { current_version: u64 },
    /// Too many failed logins: try again later.
    #[error("too many attempts")]
    TooManyAttempts {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// The read model did not reach the asked position in time.
    #[error("read model not caught up")]
    NotCaughtUp {
        /// The position reached.
        reached: u64,
        /// The position asked for.
        wanted: u64,
    },
    /// The event store, the database or the audit log cannot serve the request now.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// `/readyz`: the service cannot serve, and why (operational facts only: positions,
    /// projection names, what stopped — never personal data; sent to the caller).
    #[error("not ready: {0}")]
    NotReady(String),
    /// The record's history in the event log holds a message that is not a Wasl event; nothing
    /// is decided on it until an operator repairs it (`wasl log skip`, docs/operations.md).
    #[error("unreadable history at log position {sequence}")]
    UnreadableHistory {
        /// The unreadable message's position in the log.
        sequence: u64,
    },
    /// A bug or an unexpected failure; the cause goes to the log only.
    #[error("internal: {0}")]
    Internal(String),
}

impl ApiError {
    /// A bad request with a description.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::BadRequest {
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// One invalid field.
    pub fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldProblem {
            field: field.into(),
            problem: problem.into(),
        }])
    }

    /// A validation error of the domain, for the request field `field`.
    pub fn invalid_field(field: &str, err: &ValidationError) -> Self {
        Self::invalid(field, err.problem)
    }

    /// An internal error with its cause (logged, not sent).
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Invalid(_) | Self::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NotCaughtUp { .. } | Self::Unavailable(_) | Self::UnreadableHistory { .. } | Self::NotReady(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable slug of the problem type and its title.
    pub fn kind(&self) -> (&'static str, &'static str) {
        match self {
            Self::BadRequest { .. } => ("bad-request", "The request is malformed"),
            Self::Invalid(_) => ("validation", "The request has invalid fields"),
            Self::Unauthenticated => ("unauthenticated", "Valid credentials are required"),
            Self::Forbidden => ("forbidden", "Your role does not allow this"),
            Self::NotFound => ("not-found", "No such resource"),
            Self::PayloadTooLarge => ("payload-too-large", "The body is larger than allowed"),
            Self::MethodNotAllowed => ("method-not-allowed", "The resource does not support this method"),
            Self::Refused(_) => ("refused", "The command was refused"),
            Self::PreconditionFailed { .. } => ("precondition-failed", "The resource is at another version"),
            Self::Conflict { .. } => ("conflict", "The resource changed concurrently"),
            Self::TooManyAttempts { .. } => ("too-many-attempts", "Too many failed attempts"),
            Self::NotCaughtUp { .. } => ("not-caught-up", "The read model has not caught up yet"),
            Self::Unavailable(_) => ("unavailable", "A service Wasl depends on is unavailable"),
            Self::NotReady(_) => ("not-ready", "The service is not ready"),
            Self::UnreadableHistory { .. } => (
                "unreadable-history",
                "The record's history holds a message Wasl cannot read",
            ),
            Self::Internal(_) => ("internal", "Internal error"),
        }
    }

    /// The problem document, with `request_id` when known.
    pub fn problem(&self, request_id: Option<String>) -> Problem {
        let (slug, title) = self.kind();
        let mut problem = Problem {
            kind: format!("urn:wasl:problem:{slug}"),
            title: title.to_owned(),
            status: self.status().as_u16(),
            detail: None,
            code: None,
            errors: Vec::new(),
            current_version: None,
            request_id,
        };
        match self {
            Self::BadRequest { detail, errors } => {
                problem.detail = Some(detail.clone());
                problem.errors = errors.clone();
            }
            Self::Invalid(errors) => problem.errors = errors.clone(),
            Self::Refused(err) => {
                problem.code = Some(err.code().to_owned());
                problem.detail = Some(err.to_string());
                if let DomainError::Invalid(v) = err {
                    problem.errors = vec![FieldProblem {
                        // The domain names a field of the command, a member of the body.
                        field: format!("/{}", v.field),
                        problem: v.problem.to_owned(),
                    }];
                }
            }
            Self::PreconditionFailed { current_version } | Self::Conflict { current_version } => {
                problem.current_version = Some(*current_version);
            }
            Self::TooManyAttempts { retry_after } => {
                problem.detail = Some(format!("try again in {retry_after} s"));
            }
            Self::NotCaughtUp { reached, wanted } => {
                problem.detail = Some(format!(
                    "the read model is at position {reached}, {wanted} was asked for"
                ));
            }
            Self::Unavailable(_) => problem.detail = Some("try again shortly".to_owned()),
            Self::NotReady(reason) => problem.detail = Some(reason.clone()),
            Self::UnreadableHistory { sequence } => {
                problem.detail = Some(format!(
                    "the message at log position {sequence} is not a Wasl event; nothing is changed on this \
                     record until an operator repairs it (wasl log skip, see docs/operations.md)"
                ));
            }
            _ => {}
        }
        problem
    }
}

impl From<CommandError> for ApiError {
    fn from(err: CommandError) -> Self {
        match err {
            CommandError::NotFound => Self::NotFound,
            CommandError::Rejected(DomainError::NotFound) => Self::NotFound,
            // The policy lets through only what the actor's role and organisation may ask; a
            // refusal by the domain on those grounds means the resource is outside their scope.
            CommandError::Rejected(DomainError::Forbidden(_)) => Self::NotFound,
            CommandError::Rejected(err) => Self::Refused(err),
            CommandError::Conflict { current_version } => Self::Conflict { current_version },
            CommandError::VersionMismatch { current_version } => Self::PreconditionFailed { current_version },
            CommandError::Unavailable(reason) => Self::Unavailable(reason),
            CommandError::Store(err) => err.into(),
        }
    }
}

impl From<wasl_projections::ProjectionError> for ApiError {
    fn from(err: wasl_projections::ProjectionError) -> Self {
        use wasl_projections::ProjectionError as E;
        match err {
            E::BadCursor => Self::invalid("cursor", "is not a cursor this list gave out"),
            E::Timeout { reached, wanted, .. } => Self::NotCaughtUp { reached, wanted },
            other => Self::internal(other),
        }
    }
}

impl From<wasl_store::StoreError> for ApiError {
    fn from(err: wasl_store::StoreError) -> Self {
        match err {
            wasl_store::StoreError::Unavailable(reason) => Self::Unavailable(reason),
            wasl_store::StoreError::Undecodable { sequence, .. } => Self::UnreadableHistory { sequence },
            other => Self::internal(other),
        }
    }
}

impl From<wasl_vault::VaultError> for ApiError {
    fn from(err: wasl_vault::VaultError) -> Self {
        Self::internal(err)
    }
}

/// The request id, put into the response extensions by the request-id layer's caller.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        // The cause is logged by the problem layer, next to the request id.
        let cause = match &self {
            Self::Internal(cause) | Self::Unavailable(cause) => Some(cause.clone()),
            _ => None,
        };
        let retry_after = match &self {
            Self::TooManyAttempts { retry_after } => Some(*retry_after),
            Self::Unavailable(_) | Self::NotCaughtUp { .. } | Self::NotReady(_) => Some(1),
            _ => None,
        };
        // The request id is filled in by the problem layer, which knows it.
        let problem = self.problem(None);
        let mut response = (status, axum::Json(problem)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if matches!(self, Self::Unauthenticated) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"wasl\""),
            );
        }
        response.extensions_mut().insert(ProblemMarker { cause });
        response
    }
}

/// Marks a response whose body is a problem document, so the problem layer can add the
/// request id, and carries the cause of a 500 or 503 for the log (never for the client).
#[derive(Debug, Clone)]
pub struct ProblemMarker {
    /// What went wrong inside, for the log.
    pub cause: Option<String>,
}
