//! What every command route takes besides its body, extracted once: the caller, the
//! `Idempotency-Key` (as the command id), `If-Match` (as the expected version), the trace
//! context and the target — the route's method and path — the command id is derived from.
//!
//! A command handler is then parse, decide, answer:
//!
//! ```ignore
//! pub async fn assign_case(
//!     State(state): State<AppState>,
//!     command: CommandRequest,
//!     Path(case_id): Path<String>,
//!     Json(body): Json<AssignRequest>,
//! ) -> Result<Response, ApiError> {
//!     let id = case_path(&case_id)?;                                   // parse
//!     changeable_case(&state, &command.principal, id).await?;         // decide who may
//!     let caseworker = field("caseworker", &body.caseworker, UserId::parse)?;
//!     let outcome = command.execute::<Case>(&state, id, &CaseCommand::Assign { caseworker }).await?;
//!     Ok(answered(id.to_string(), outcome, None))                      // answer
//! }
//! ```
//!
//! Its OpenAPI side is [`CommandHeaders`] (or [`CreateHeaders`] for a route that makes a new
//! resource) in the route's `params(...)`.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::{IdempotencyKey, IfMatch};
use crate::state::AppState;
use axum::extract::{FromRequestParts, MatchedPath, RawPathParams};
use axum::http::request::Parts;
use utoipa::IntoParams;
use wasl_domain::ids::EventId;
use wasl_store::{CommandMeta, CommandOutcome, StoredAggregate};

/// A command request's caller, expected version and metadata (see the module docs).
#[derive(Debug, Clone)]
pub struct CommandRequest {
    /// Who sends it.
    pub principal: Principal,
    /// The version the client last saw, from `If-Match`.
    pub if_match: IfMatch,
    /// The command id (from `Idempotency-Key` and the target), the moment and the actor, and the
    /// trace context.
    pub meta: CommandMeta,
}

impl FromRequestParts<AppState> for CommandRequest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, state).await?;
        let key = IdempotencyKey::from_request_parts(parts, state).await?;
        let if_match = IfMatch::from_request_parts(parts, state).await?;
        let target = target(parts).await;
        let meta = crate::routes::command_meta(&principal, &key, &target, &parts.headers);
        Ok(Self {
            principal,
            if_match,
            meta,
        })
    }
}

impl CommandRequest {
    /// Runs `command` on aggregate `id` through the event store's command handler, at the
    /// version `If-Match` names (any version without it).
    pub async fn execute<A: StoredAggregate>(
        &self,
        state: &AppState,
        id: A::Id,
        command: &A::Command,
    ) -> Result<CommandOutcome, ApiError> {
        Ok(state
            .store()
            .execute_at::<A>(id, command, &self.meta, self.if_match.0)
            .await?)
    }

    /// The id of the `index`th event the command will write, which sealed values are bound to.
    pub fn event(&self, index: usize) -> EventId {
        wasl_store::event_id(self.meta.command_id, self.meta.context.now, index)
    }

    /// The id of the resource a create makes: the command id, so a retried create finds what
    /// it made.
    pub fn new_id<T>(
        &self,
        from: impl FnOnce(uuid::Uuid) -> Result<T, wasl_domain::ValidationError>,
    ) -> Result<T, ApiError> {
        from(self.meta.command_id.as_uuid()).map_err(ApiError::internal)
    }
}

/// The target a command id is derived from: the method and the route's path with its
/// parameters percent-decoded (`POST /v1/cases/0190…/close`). Handlers carry out a command only
/// for ids written the one way the API writes them ([`crate::routes::path_id`]), so this is the
/// path each handler formatted from its parsed ids before there was one extractor.
async fn target(parts: &mut Parts) -> String {
    let method = parts.method.as_str().to_owned();
    let template = parts.extensions.get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let params = RawPathParams::from_request_parts(parts, &()).await.ok();
    let path = match (template, params) {
        (Some(template), Some(params)) => {
            let params: Vec<(&str, &str)> = params.iter().collect();
            fill(&template, &params)
        }
        _ => parts.uri.path().to_owned(),
    };
    format!("{method} {path}")
}

/// `template` with each `{name}` replaced by that parameter.
fn fill(template: &str, params: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 36 * params.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let name = &rest[open + 1..open + close];
        match params.iter().find(|(n, _)| *n == name) {
            Some((_, value)) => out.push_str(value),
            None => out.push_str(&rest[open..=open + close]),
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

/// The headers of a command on an existing resource, for the route's OpenAPI `params(...)`.
#[derive(Debug, Clone, Default, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct CommandHeaders {
    /// Makes a retry safe: the same key on the same route gives the same answer.
    #[param(rename = "Idempotency-Key")]
    pub idempotency_key: Option<String>,
    /// Only if the resource is at this version (its ETag).
    #[param(rename = "If-Match")]
    pub if_match: Option<String>,
}

/// The headers of a command that makes a new resource, for the route's OpenAPI `params(...)`.
#[derive(Debug, Clone, Default, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct CreateHeaders {
    /// Makes a retry safe: the same key gives the same answer (and the same new id).
    #[param(rename = "Idempotency-Key")]
    pub idempotency_key: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const CASE: &str = "0190b2c4-0000-7000-8000-0000000000c1";

    #[test]
    fn every_path_parameter_is_filled_in() {
        assert_eq!(
            fill(
                "/v1/cases/{case_id}/consents/{consent_id}/narrow",
                &[("case_id", CASE), ("consent_id", CASE)]
            ),
            format!("/v1/cases/{CASE}/consents/{CASE}/narrow")
        );
        assert_eq!(fill("/v1/cases", &[]), "/v1/cases");
    }
}
