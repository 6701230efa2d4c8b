//! The partner inbox (referrals addressed to the organisation, by status, overdue first), the
//! caseworker worklist (the caller's referrals that need them) and the coordinators' escalation
//! list (escalated referrals across the network, by codes only).

use super::referrals::{Deadlines, ReferralView, list, statuses, view};
use super::{PageOf, PageParams, Problems, caught_up, opt_field, require};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::{Json, MinPosition, Query};
use crate::policy::{Action, Resource, case_scope};
use crate::state::AppState;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wasl_domain::catalogue::ServiceCategory;
use wasl_domain::geo::Governorate;
use wasl_domain::ids::OrgId;
use wasl_projections::Projection;
use wasl_projections::query::{EscalationFilter, WorkNeed};
use wasl_projections::rows::referral::ReferralRow;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(inbox))
        .routes(routes!(inbox_counts))
        .routes(routes!(worklist))
        .routes(routes!(escalations))
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

/// The referrals addressed to the caller's organisation (focal points and partner systems).
///
/// - Overdue first: referrals whose acknowledgement, decision or progress (`stalled`) deadline
///   passed and still applies (`response_overdue: true`), then the others; within each, newest request first.
/// - Only referrals addressed to the caller's organisation, with the client as little as the
///   partner needs: no survivor code, no case id, no name.
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
    .request()?;
    let page = state.models().inbox(principal.actor.org, &statuses, &page).await?;
    Ok(Json(PageOf {
        items: page.items.iter().map(|r| view(r, false)).collect(),
        next: page.next,
    }))
}

/// How many referrals addressed to the organisation are in a status.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct StatusCount {
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
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct WorkItemView {
    /// What the caseworker is to do: `declined` (read the reason, refer elsewhere),
    /// `suggested_referral` (the receiving organisation named another; see `suggestion`),
    /// `overdue` (the receiving organisation missed a deadline; chase it) or `follow_up_due`
    /// (record the follow-up with the client).
    pub kind: String,
    /// When the referral last changed (Unix ms): the worklist's order, newest first.
    pub at: i64,
    /// The coded reason of a decline (`declined`, `suggested_referral`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decline_code: Option<String>,
    /// For `suggested_referral`: the follow-on referral the caseworker may make.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<Suggestion>,
    pub referral: ReferralView,
}

/// A follow-on referral suggested by a `redirected` decline. Nothing is sent until the
/// caseworker requests it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Suggestion {
    /// The organisation the decline suggested.
    pub to_org: String,
    /// The declined referral, to give as `redirected_from` when requesting the new one.
    pub redirected_from: String,
    /// The case to refer.
    pub case_id: String,
    /// The category asked for.
    pub category: String,
    /// `GET` this for the services that could take it (the suggested organisation's among them
    /// when it serves the client), then `POST /v1/referrals` with one of them.
    pub candidates: String,
}

/// The caller's own referrals that need them (caseworkers and supervisors).
///
/// - Every decline, with its coded reason (`kind: declined`), until the client is referred again
///   for that category.
/// - A decline as `redirected` becomes a suggested follow-on referral to the organisation it
///   names (`kind: suggested_referral`), linking to the candidates; nothing is sent without the
///   caseworker.
/// - Overdue referrals: the receiving organisation missed an acknowledgement, decision or
///   progress (`stalled`) deadline that still applies (`kind: overdue`, with the missed deadlines).
/// - Follow-ups due: completed or failed, and no follow-up recorded (`kind: follow_up_due`).
/// - Newest action first: by the time the referral last changed.
/// - Only the caller's own referrals, and for a caseworker only those of the cases they are
///   responsible for or that are shared with them.
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
    // Need-to-know: a caseworker's referrals follow their cases (a supervisor sees every case).
    let need_to_know = case_scope(&principal.actor).is_some_and(|scope| scope.assigned_to.is_some());
    let page = state
        .models()
        .worklist(principal.actor.user, need_to_know, &page.request()?)
        .await?;
    Ok(Json(PageOf {
        items: page
            .items
            .iter()
            .map(|item| {
                let row = &item.referral;
                let declined = matches!(item.need, WorkNeed::Declined | WorkNeed::SuggestedReferral);
                WorkItemView {
                    kind: item.need.code().to_owned(),
                    at: row.updated_at,
                    decline_code: row.decline_code.clone().filter(|_| declined),
                    suggestion: match (item.need, &row.suggested_org) {
                        (WorkNeed::SuggestedReferral, Some(to_org)) => Some(Suggestion {
                            to_org: to_org.clone(),
                            redirected_from: row.id.clone(),
                            case_id: row.case_id.clone(),
                            category: row.category.clone(),
                            candidates: format!(
                                "/v1/referrals/candidates?case_id={}&category={}",
                                row.case_id, row.category
                            ),
                        }),
                        _ => None,
                    },
                    referral: view(row, true),
                }
            })
            .collect(),
        next: page.next,
    }))
}

/// Filters of the escalation list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EscalationQuery {
    /// The client's governorate (ISO 3166-2:IQ code, e.g. `IQ-NI`).
    pub governorate: Option<String>,
    /// Service category code.
    pub category: Option<String>,
    /// The receiving organisation's id.
    pub organisation: Option<String>,
    /// `true`: only referrals whose every escalation was acknowledged; `false`: only those with
    /// an escalation still open; absent: both.
    pub acknowledged: Option<bool>,
    /// Most items (1–500).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next` cursor of the previous page.
    pub cursor: Option<String>,
}

/// A missed deadline.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MissedDeadline {
    /// `acknowledgement`, `decision`, `follow_up` or `stalled`.
    pub kind: String,
    /// The deadline that passed (Unix ms).
    pub due_at: i64,
}

/// An escalated referral as a coordinator sees it: ids and codes, never a client.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct EscalationView {
    /// Referral id (for `POST /v1/referrals/{id}/acknowledge-escalation`).
    pub referral_id: String,
    /// Receiving organisation.
    pub to_org: String,
    /// Referring organisation.
    pub from_org: String,
    /// Service category code.
    pub category: String,
    pub priority: String,
    /// The client's governorate code.
    pub governorate: String,
    /// The client's district code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub district: Option<String>,
    /// Current status code.
    pub status: String,
    /// The deadlines missed, with when they were due.
    pub overdue: Vec<MissedDeadline>,
    /// Escalated kinds.
    pub escalated: Vec<String>,
    /// Escalated kinds a coordinator acknowledged.
    pub acknowledged: Vec<String>,
    /// Some escalation is not acknowledged yet.
    pub open: bool,
    /// When the latest escalation was made (Unix ms): the list's order, newest first.
    pub escalated_at: i64,
    /// When a coordinator last acknowledged one (Unix ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<i64>,
    /// The code of the latest acknowledgement's note (its text is never shown here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledge_code: Option<String>,
}

fn missed(deadlines: &Deadlines) -> Vec<MissedDeadline> {
    [
        ("acknowledgement", deadlines.acknowledgement),
        ("decision", deadlines.decision),
        ("follow_up", deadlines.follow_up),
        ("stalled", deadlines.stalled),
    ]
    .into_iter()
    .filter_map(|(kind, due)| {
        due.map(|due_at| MissedDeadline {
            kind: kind.to_owned(),
            due_at,
        })
    })
    .collect()
}

fn escalation(row: &ReferralRow) -> EscalationView {
    EscalationView {
        referral_id: row.id.clone(),
        to_org: row.to_org.clone(),
        from_org: row.from_org.clone(),
        category: row.category.clone(),
        priority: row.priority.clone(),
        governorate: row.governorate.clone(),
        district: row.district.clone(),
        status: row.status.clone(),
        overdue: missed(&Deadlines::of(row)),
        escalated: list(&row.escalated),
        acknowledged: list(&row.acknowledged),
        open: row.open_escalations > 0,
        escalated_at: row.escalated_at.unwrap_or_default(),
        acknowledged_at: row.acknowledged_at,
        acknowledge_code: row.acknowledge_code.clone(),
    }
}

/// Escalated referrals across the network (coordinators and admins only).
///
/// - Coordinators and admins only; everyone else gets 403.
/// - Open and acknowledged escalations alike unless `acknowledged` says otherwise.
/// - Filters: `governorate` (the client's), `category`, `organisation` (the receiving one),
///   `acknowledged`.
/// - Newest escalation first.
/// - No personal data: ids, codes and times only; never a survivor code, case id, name, the
///   client's profile or any note's text.
#[utoipa::path(get, path = "/v1/escalations", tag = "work", operation_id = "list_escalations",
    params(EscalationQuery, ("Wasl-Min-Position" = Option<u64>, Header, description = "Wait until the read model reflects this stream position")),
    responses((status = 200, description = "A page of escalations", body = PageOf<EscalationView>), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn escalations(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Query(query): Query<EscalationQuery>,
) -> Result<Json<PageOf<EscalationView>>, ApiError> {
    require(&principal, Action::EscalationList, Resource::Collection)?;
    let filter = EscalationFilter {
        governorate: opt_field("governorate", query.governorate.as_deref(), Governorate::parse)?,
        category: opt_field("category", query.category.as_deref(), ServiceCategory::parse)?,
        to_org: opt_field("organisation", query.organisation.as_deref(), OrgId::parse)?,
        acknowledged: query.acknowledged,
    };
    caught_up(&state, min, READS).await?;
    let page = PageParams {
        limit: query.limit,
        cursor: query.cursor,
    }
    .request()?;
    let page = state.models().escalations(&filter, &page).await?;
    Ok(Json(PageOf {
        items: page.items.iter().map(escalation).collect(),
        next: page.next,
    }))
}
