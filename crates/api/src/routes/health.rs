//! Liveness and readiness, for load balancers and orchestrators; no authentication.

use super::Problems;
use crate::error::ApiError;
use crate::http::Json;
use crate::state::AppState;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz))
}

/// A health answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// Readiness, with what was checked.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`.
    pub status: String,
    /// The event log's last position.
    pub log_position: u64,
    /// The read models' checkpoints (stream positions) by projection.
    pub projections: Vec<ProjectionPosition>,
    /// What the other services in this process report (`wasl up`: the router's position, and
    /// the events it parked), by service.
    #[schema(value_type = Object)]
    pub services: std::collections::BTreeMap<String, serde_json::Value>,
}

/// How far a projection has read the log.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProjectionPosition {
    /// Projection name.
    pub name: String,
    /// Last stream position applied.
    pub position: u64,
    /// Events of the log it has not applied yet.
    pub lag: u64,
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations", operation_id = "healthz",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
    })
}

/// The API can serve: NATS is connected, the read-model database answers, the read models are
/// built from the event log as it is (no projector stopped because the log went backwards, no
/// checkpoint beyond the log's end), and no read model is further behind the log than the
/// configured limit (`--ready-max-lag`). A 503 says which of these failed.
#[utoipa::path(get, path = "/readyz", tag = "operations", operation_id = "readyz",
    responses((status = 200, description = "Ready", body = Readiness), Problems))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    if state.store().client().connection_state() != async_nats::connection::State::Connected {
        return Err(ApiError::NotReady("NATS is not connected".to_owned()));
    }
    let mut stream = state.store().stream().clone();
    let log_position = stream
        .info()
        .await
        .map_err(|e| ApiError::NotReady(format!("the event log: {e}")))?
        .state
        .last_sequence;
    let positions = state
        .models()
        .ready(log_position, state.limits().ready_max_lag)
        .await
        .map_err(ApiError::NotReady)?;
    let projections: Vec<ProjectionPosition> = positions
        .into_iter()
        .map(|(p, position)| ProjectionPosition {
            name: p.name().to_owned(),
            position,
            lag: log_position.saturating_sub(position),
        })
        .collect();
    let services = state.service_checks().map_err(ApiError::NotReady)?;
    Ok(Json(Readiness {
        status: "ready".to_owned(),
        log_position,
        projections,
        services,
    }))
}
