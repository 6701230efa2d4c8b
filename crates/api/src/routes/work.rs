//! The partner inbox (referrals addressed to the organisation, by status) and the caseworker
//! worklist (the caller's referrals that need them).

use super::referrals::{ReferralView, statuses, view};
use super::{PageOf, PageParams, Problems, caught_up, require};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::{Json, MinPosition, Query};
use crate::policy::{Action, Resource};
use crate::state::AppState;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wasl_projections::Projection;
use wasl_projections::query::WorkNeed;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(inbox))
        .routes(routes!(inbox_counts))
        .routes(routes!(worklist))
}

const READS: &[Projection] = &[Projection::Referrals];

/// Filters of the inbox.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InboxQuery {
    /// Status codes, comma-separated; by default the open ones (requested, received, accepted,
    /// in progress, on hold).
    pub status: Option<String>,
    /// Most items (1–500).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next` cursor of the previous page.
    pub cursor: Option<String>,
}

/// The referrals addressed to the caller's organisation, oldest request first.
#[utoipa::path(get, path = "/v1/inbox", tag = "work", operation_id = "inbox",
    params(InboxQuery, ("Wasl-Min-Position" = Option<u64>, Header, description = "Wait until the read model reflects this stream position")),
    responses((status = 200, description = "A page of the inbox", body = PageOf<ReferralView>), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn inbox(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Query(query): Query<InboxQuery>,
) -> Result<Json<PageOf<ReferralView>>, ApiError> {
    require(&principal, Action::InboxRead, Resource::Collection)?;
    let statuses = statuses(query.status.as_deref())?;
    caught_up(&state, min, READS).await?;
    let page = PageParams {
        limit: query.limit,
        cursor: query.cursor,
    }
    .request();
    let page = state.models().inbox(principal.actor.org, &statuses, &page).await?;
    Ok(Json(PageOf {
        items: page.items.iter().map(|r| view(r, false)).collect(),
        next: page.next,
    }))
}

/// How many referrals addressed to the organisation are in a status.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusCount {
    /// Status code.
    pub status: String,
    /// How many.
    pub count: u64,
}

/// How many referrals addressed to the caller's organisation are in each status.
#[utoipa::path(get, path = "/v1/inbox/counts", tag = "work", operation_id = "inbox_counts",
    params(("Wasl-Min-Position" = Option<u64>, Header, description = "Wait until the read model reflects this stream position")),
    responses((status = 200, description = "Counts per status", body = Vec<StatusCount>), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn inbox_counts(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
) -> Result<Json<Vec<StatusCount>>, ApiError> {
    require(&principal, Action::InboxRead, Resource::Collection)?;
    caught_up(&state, min, READS).await?;
    let counts = state.models().inbox_counts(principal.actor.org).await?;
    Ok(Json(
        counts
            .into_iter()
            .map(|(status, count)| StatusCount {
                status: status.code().to_owned(),
                count,
            })
            .collect(),
    ))
}

/// A referral on the worklist, with what it needs.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkItemView {
    /// `follow_up_due`, `redirect` or `overdue`.
    pub need: String,
    /// The referral.
    pub referral: ReferralView,
}

/// The caller's own referrals that need them: follow-up due, a redirect to make, or overdue
/// answers to chase.
#[utoipa::path(get, path = "/v1/worklist", tag = "work", operation_id = "worklist",
    params(PageParams, ("Wasl-Min-Position" = Option<u64>, Header, description = "Wait until the read model reflects this stream position")),
    responses((status = 200, description = "A page of the worklist", body = PageOf<WorkItemView>), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn worklist(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Query(page): Query<PageParams>,
) -> Result<Json<PageOf<WorkItemView>>, ApiError> {
    require(&principal, Action::WorklistRead, Resource::Collection)?;
    caught_up(&state, min, READS).await?;
    let page = state.models().worklist(principal.actor.user, &page.request()).await?;
    Ok(Json(PageOf {
        items: page
            .items
            .iter()
            .map(|item| WorkItemView {
                need: item.need.code().to_owned(),
                referral: view(&item.referral, true),
            })
            .collect(),
        next: page.next,
    }))
}
