//! The routes, one module per resource, and what they share: the policy check, the wait for
//! `Wasl-Min-Position`, command metadata, pagination, parsing ids and the documented problems.

pub mod accounts;
pub mod cases;
pub mod dashboard;
pub mod directory;
pub mod health;
pub mod referrals;
pub mod work;

use crate::auth::Principal;
use crate::error::{ApiError, Problem};
use crate::http::{IdempotencyKey, MinPosition};
use crate::policy::{Action, Decision, Resource, authorize};
use crate::state::AppState;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::openapi::{self, RefOr};
use utoipa::{IntoParams, PartialSchema, ToSchema};
use wasl_domain::ValidationError;
use wasl_domain::time::Timestamp;
use wasl_projections::Projection;
use wasl_projections::query::PageRequest;
use wasl_store::CommandMeta;

/// Fails unless the policy allows `action` on `resource`.
pub fn require(principal: &Principal, action: Action, resource: Resource) -> Result<(), ApiError> {
    match authorize(&principal.actor, action, resource) {
        Decision::Allow => Ok(()),
        Decision::Forbidden => Err(ApiError::Forbidden),
        Decision::Hidden => Err(ApiError::NotFound),
    }
}

/// Waits (bounded) until the projections a query reads have reached the client's
/// `Wasl-Min-Position`.
pub async fn caught_up(state: &AppState, min: MinPosition, projections: &[Projection]) -> Result<(), ApiError> {
    let Some(position) = min.0 else {
        return Ok(());
    };
    match state
        .models()
        .wait_for(projections, position, state.limits().max_wait)
        .await
    {
        // A position the log has not reached was never given out, and no wait can reach it:
        // the client's error, not a 503 to retry.
        Err(wasl_projections::ProjectionError::Timeout { .. }) if beyond_the_log(state, position).await => Err(
            ApiError::invalid("Wasl-Min-Position", "is beyond the end of the event log"),
        ),
        other => other.map_err(ApiError::from),
    }
}

/// The event log ends before `position`; when the log cannot be asked, assume not.
async fn beyond_the_log(state: &AppState, position: u64) -> bool {
    match state.store().stream().get_info().await {
        Ok(info) => position > info.state.last_sequence,
        Err(_) => false,
    }
}

/// Now, from the wall clock: the API is where time enters the system.
pub fn now() -> Timestamp {
    Timestamp::from_unix_millis(crate::auth::accounts::now_millis())
}

/// The metadata of a command sent by `principal` to `target` (method and path).
pub fn command_meta(principal: &Principal, key: &IdempotencyKey, target: &str, headers: &HeaderMap) -> CommandMeta {
    CommandMeta {
        command_id: key.command_id(principal.actor.user, target.as_bytes()),
        context: wasl_domain::Context {
            now: now(),
            actor: principal.actor.clone(),
        },
        traceparent: headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

/// The request's id (set by the request-id layer).
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(crate::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown")
        .to_owned()
}

/// Parses an id from the path. Ids are written one way (lowercase, hyphenated, as the API gives
/// them out); anything else — a malformed id, capitals, braces, `urn:uuid:`, no hyphens — names
/// nothing that exists, so it is a 404.
pub fn path_id<T: std::fmt::Display>(
    text: &str,
    parse: impl Fn(&str) -> Result<T, ValidationError>,
) -> Result<T, ApiError> {
    match parse(text) {
        Ok(id) if id.to_string() == text => Ok(id),
        _ => Err(ApiError::NotFound),
    }
}

/// Parses a field of the request: `name` is its JSON pointer in the body (`/to_org`) or the
/// name of a query parameter (`category`), as the error will name it.
pub fn field<T>(name: &str, text: &str, parse: impl Fn(&str) -> Result<T, ValidationError>) -> Result<T, ApiError> {
    parse(text).map_err(|err| ApiError::invalid_field(name, &err))
}

/// Parses an optional field of the request; `name` as for [`field`].
pub fn opt_field<T>(
    name: &str,
    text: Option<&str>,
    parse: impl Fn(&str) -> Result<T, ValidationError>,
) -> Result<Option<T>, ApiError> {
    text.map(|t| field(name, t, &parse)).transpose()
}

/// Pagination parameters of every list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Most items to return (1–500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next` cursor of the previous page.
    pub cursor: Option<String>,
}

impl PageParams {
    /// As the read models' page request. A `limit` outside 1–500 is refused (422 naming
    /// `limit`), never quietly changed into another page size.
    pub fn request(&self) -> Result<PageRequest, ApiError> {
        let limit = self.limit.unwrap_or(wasl_projections::query::DEFAULT_LIMIT);
        if !(1..=wasl_projections::query::MAX_LIMIT).contains(&limit) {
            return Err(ApiError::invalid(
                "limit",
                format!("must be 1 to {}", wasl_projections::query::MAX_LIMIT),
            ));
        }
        Ok(match &self.cursor {
            Some(cursor) => PageRequest::continuing(limit, cursor.clone()),
            None => PageRequest::first(limit),
        })
    }
}

/// A page of items.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct PageOf<T: ToSchema> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A time as Unix milliseconds, the way the API writes every instant.
pub type Millis = i64;

/// The problem answers every route can give, documented once.
pub struct Problems;

impl utoipa::IntoResponses for Problems {
    fn responses() -> BTreeMap<String, RefOr<openapi::response::Response>> {
        let problems = [
            (
                "400",
                "The request is malformed (unreadable JSON, unknown field, bad header)",
            ),
            ("401", "No valid credentials"),
            ("403", "The role may not do this, or the CSRF token is missing"),
            ("404", "No such resource, or it is outside the caller's scope"),
            ("405", "The method is not allowed on this resource"),
            (
                "409",
                "The resource changed concurrently; the body has the current version",
            ),
            (
                "412",
                "If-Match names another version; the body has the current version",
            ),
            ("413", "The body is larger than allowed"),
            ("422", "Invalid fields, or the domain refused the command (see `code`)"),
            ("429", "Too many failed attempts; see Retry-After"),
            ("500", "Internal error; quote the request id"),
            (
                "503",
                "A dependency is unavailable, or the read model did not catch up in time",
            ),
        ];
        problems
            .into_iter()
            .map(|(status, description)| {
                let response = openapi::response::ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/problem+json",
                        openapi::content::ContentBuilder::new()
                            .schema(Some(RefOr::Ref(openapi::Ref::from_schema_name(Problem::name()))))
                            .build(),
                    )
                    .build();
                (status.to_owned(), RefOr::T(response))
            })
            .collect()
    }
}

/// [`Problem`] and the schemas it refers to (`FieldProblem`), for the document's components.
pub fn problem_schemas() -> Vec<(String, RefOr<openapi::schema::Schema>)> {
    let mut schemas = vec![(Problem::name().into_owned(), Problem::schema())];
    <Problem as ToSchema>::schemas(&mut schemas);
    schemas
}
