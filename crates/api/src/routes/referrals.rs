//! Referrals: request (or first ask the directory for candidates), list, read (audited),
//! timeline, and one action route per transition.

use super::cases::{ReasonInput, reason};
use super::{PageOf, PageParams, Problems, caught_up, field, opt_field, path_id, request_id, require};
use crate::auth::Principal;
use crate::command::{CommandHeaders, CommandRequest, CreateHeaders};
use crate::error::ApiError;
use crate::http::{CommandAnswer, Json, MinPosition, NoBody, Path, Query, answered, with_etag};
use crate::personal::{referral_writing, seal_referral_notes};
use crate::policy::{Action, ReferralSide, Resource, referral_scope};
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wasl_domain::Role;
use wasl_domain::case::Case;
use wasl_domain::catalogue::{
    AcknowledgeCode, CancelCode, Decline, DeclineCode, ErrorCode, FailCode, HoldCode, OverrideCode, Priority, Reason,
    ReasonCode, ServiceCategory,
};
use wasl_domain::directory::Organisation;
use wasl_domain::ids::{CaseId, OrgId, ReferralId, ServiceId};
use wasl_domain::referral::{
    FollowUp, OverdueKind, Referral, ReferralCommand, ReferralStatus, RequestReferral, Satisfaction, ServiceReceived,
};
use wasl_projections::Projection;
use wasl_projections::query::ReferralFilter;
use wasl_projections::rows::referral::{HistoryRow, ReferralRow};
use wasl_vault::PiiField;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_referral, list_referrals))
        .routes(routes!(referral_candidates))
        .routes(routes!(get_referral))
        .routes(routes!(referral_history))
        .routes(routes!(receive_referral))
        .routes(routes!(accept_referral))
        .routes(routes!(reject_referral))
        .routes(routes!(start_referral))
        .routes(routes!(hold_referral))
        .routes(routes!(resume_referral))
        .routes(routes!(complete_referral))
        .routes(routes!(fail_referral))
        .routes(routes!(cancel_referral))
        .routes(routes!(record_follow_up))
        .routes(routes!(mark_entered_in_error))
        .routes(routes!(acknowledge_escalation))
}

const READS: &[Projection] = &[Projection::Referrals];

/// Make a referral.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct ReferralRequest {
    pub case_id: String,
    /// The receiving organisation (see `GET /v1/referrals/candidates`).
    pub to_org: String,
    /// The service asked for, one of the organisation's.
    pub service_id: String,
    /// `routine`, `urgent` or `emergency`.
    #[schema(example = "routine")]
    pub priority: String,
    /// The referral this one replaces after it was declined as `redirected`.
    pub redirected_from: Option<String>,
    /// A supervisor's reason to refer without covering consent.
    pub consent_override: Option<ReasonInput>,
    /// Notes for the receiving organisation (sealed; fetched over the API, never routed).
    #[schema(max_length = 20000)]
    pub notes: Option<String>,
}

/// Ask for a referral; the case's consent must cover the organisation and the service's
/// category (or a supervisor overrides with a reason).
#[utoipa::path(post, path = "/v1/referrals", tag = "referrals", operation_id = "request_referral",
    request_body = ReferralRequest,
    params(CreateHeaders),
    responses((status = 201, description = "Requested", body = CommandAnswer),
        (status = 200, description = "A retry with the same Idempotency-Key: the original answer, `replayed: true`", body = CommandAnswer), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn request_referral(
    State(state): State<AppState>,
    request: CommandRequest,
    Json(body): Json<ReferralRequest>,
) -> Result<Response, ApiError> {
    let case_id = field("/case_id", &body.case_id, CaseId::parse)?;
    let to_org = field("/to_org", &body.to_org, OrgId::parse)?;
    let service_id = field("/service_id", &body.service_id, ServiceId::parse)?;
    let priority = field("/priority", &body.priority, Priority::parse)?;
    let redirected_from = opt_field("/redirected_from", body.redirected_from.as_deref(), ReferralId::parse)?;
    if body.notes.as_ref().is_some_and(|n| n.chars().count() > 20000) {
        return Err(ApiError::invalid("/notes", "is longer than 20000 characters"));
    }
    let case = state.store().load::<Case>(case_id).await?;
    let resource = case
        .state
        .state()
        .map(|c| super::cases::case_resource(&request.principal, c))
        .ok_or(ApiError::NotFound)?;
    require(&request.principal, Action::ReferralRequest, resource)?;
    let provider = state.store().load::<Organisation>(to_org).await?;
    if provider.state.state().is_none() {
        return Err(ApiError::invalid("/to_org", "is not an organisation in the directory"));
    }
    let redirected_from = match redirected_from {
        Some(id) => Some(state.store().load::<Referral>(id).await?.state),
        None => None,
    };
    let id = request.new_id(ReferralId::from_uuid)?;
    let consent_override = match &body.consent_override {
        Some(input) => Some(
            reason(
                &state,
                "/consent_override",
                input,
                OverrideCode::parse,
                case_id,
                request.event(0),
            )
            .await?,
        ),
        None => None,
    };
    let notes = seal_referral_notes(&state, case_id, request.event(0), body.notes.as_ref()).await?;
    let command = ReferralCommand::Request(Box::new(RequestReferral {
        referral_id: id,
        case: case.state,
        provider: provider.state,
        service_id,
        priority,
        redirected_from,
        consent_override,
        notes,
    }));
    // A new referral has no version to match.
    let outcome = state
        .store()
        .execute_at::<Referral>(id, &command, &request.meta, None)
        .await?;
    Ok(answered(id.to_string(), outcome, Some(format!("/v1/referrals/{id}"))))
}

/// Filters of the referral list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct ReferralQuery {
    /// `sent` (made by the caller's organisation) or `received` (addressed to it); by default
    /// the side the caller's role works on.
    pub direction: Option<String>,
    /// Status codes, comma-separated.
    pub status: Option<String>,
    /// Of this case (sent referrals only).
    pub case_id: Option<String>,
    /// Service category code.
    pub category: Option<String>,
    pub priority: Option<String>,
    /// Most items (1–500).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next` cursor of the previous page.
    pub cursor: Option<String>,
}

/// A referral as the caller may see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct ReferralView {
    /// Referral id.
    pub id: String,
    /// The case; only for the referring organisation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_id: Option<String>,
    /// Referring organisation.
    pub from_org: String,
    /// Referring caseworker; only for the referring organisation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_user: Option<String>,
    /// Receiving organisation.
    pub to_org: String,
    pub service_id: String,
    /// Service category code.
    pub category: String,
    pub priority: String,
    /// Current status code.
    pub status: String,
    /// The client, as little as the partner needs.
    pub client: ClientView,
    /// When each status was first reached (Unix ms).
    pub timeline: StatusTimes,
    /// Decline reason code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decline_code: Option<String>,
    /// Suggested organisation of a redirect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggested_org: Option<String>,
    /// Failure reason code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_code: Option<String>,
    /// Cancel reason code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_code: Option<String>,
    /// Hold reason code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_code: Option<String>,
    /// The referral this one replaces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirected_from: Option<String>,
    /// Follow-up was recorded.
    pub followed_up: bool,
    /// Deadlines recorded as missed (`acknowledgement`, `decision`, `follow_up`, `stalled`), whether or not
    /// they still apply.
    pub overdue: Vec<String>,
    /// The deadline each recorded overdue missed (Unix ms).
    pub missed_deadlines: Deadlines,
    /// A response deadline the receiving organisation missed still applies: acknowledgement
    /// while requested, decision while requested or received, stalled while accepted or on
    /// hold. The inbox lists these first.
    pub response_overdue: bool,
    /// Escalated kinds.
    pub escalated: Vec<String>,
    /// Last change (Unix ms).
    pub updated_at: i64,
    /// Version (the `ETag`).
    pub version: i64,
    /// Stream position of the last event.
    pub position: i64,
}

/// The client as a partner sees them: no name, no code.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct ClientView {
    pub sex: String,
    /// Age group code.
    pub age_group: String,
    /// Population group code.
    pub population_group: String,
    /// Language tag.
    pub language: String,
    pub governorate: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub district: Option<String>,
}

/// The deadlines a referral missed, by kind (Unix ms); absent when not missed.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Deadlines {
    /// Acknowledge by (the receiving organisation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledgement: Option<i64>,
    /// Accept or decline by (the receiving organisation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<i64>,
    /// Record follow-up by (the referring organisation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<i64>,
    /// Move an accepted or held referral on by (start, resume, complete or fail it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stalled: Option<i64>,
}

impl Deadlines {
    /// The missed deadlines a row keeps.
    pub fn of(row: &ReferralRow) -> Self {
        Self {
            acknowledgement: row.acknowledgement_due_at,
            decision: row.decision_due_at,
            follow_up: row.follow_up_due_at,
            stalled: row.stalled_due_at,
        }
    }
}

/// When each status was first reached (Unix ms).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct StatusTimes {
    pub requested: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_progress: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_hold: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled: Option<i64>,
    /// Entered in error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entered_in_error: Option<i64>,
}

/// The items of a list column (`,a,b,`).
pub fn list(column: &str) -> Vec<String> {
    column.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// The view of `row` for an actor of `org`: the referring side sees the case and caseworker.
pub fn view(row: &ReferralRow, referring: bool) -> ReferralView {
    ReferralView {
        id: row.id.clone(),
        case_id: referring.then(|| row.case_id.clone()),
        from_org: row.from_org.clone(),
        from_user: referring.then(|| row.from_user.clone()),
        to_org: row.to_org.clone(),
        service_id: row.service_id.clone(),
        category: row.category.clone(),
        priority: row.priority.clone(),
        status: row.status.clone(),
        client: ClientView {
            sex: row.sex.clone(),
            age_group: row.age_group.clone(),
            population_group: row.population_group.clone(),
            language: row.language.clone(),
            governorate: row.governorate.clone(),
            district: row.district.clone(),
        },
        timeline: StatusTimes {
            requested: row.requested_at,
            received: row.received_at,
            accepted: row.accepted_at,
            rejected: row.rejected_at,
            in_progress: row.in_progress_at,
            on_hold: row.on_hold_at,
            completed: row.completed_at,
            failed: row.failed_at,
            cancelled: row.cancelled_at,
            entered_in_error: row.entered_in_error_at,
        },
        decline_code: row.decline_code.clone(),
        suggested_org: row.suggested_org.clone(),
        failure_code: row.failure_code.clone(),
        cancel_code: row.cancel_code.clone(),
        hold_code: row.hold_code.clone(),
        redirected_from: row.redirected_from.clone(),
        followed_up: row.followed_up != 0,
        overdue: list(&row.overdue),
        missed_deadlines: Deadlines::of(row),
        response_overdue: row.response_overdue != 0,
        escalated: list(&row.escalated),
        updated_at: row.updated_at,
        version: row.version,
        position: row.position,
    }
}

/// Parses a comma-separated list of status codes.
pub fn statuses(text: Option<&str>) -> Result<Vec<ReferralStatus>, ApiError> {
    text.map(|t| {
        t.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| field("status", s.trim(), ReferralStatus::parse))
            .collect()
    })
    .transpose()
    .map(Option::unwrap_or_default)
}

/// List referrals made by, or addressed to, the caller's organisation.
#[utoipa::path(get, path = "/v1/referrals", tag = "referrals", operation_id = "list_referrals",
    params(ReferralQuery, ("Wasl-Min-Position" = Option<u64>, Header, description = "Wait until the read model reflects this stream position")),
    responses((status = 200, description = "A page of referrals", body = PageOf<ReferralView>), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_referrals(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Query(query): Query<ReferralQuery>,
) -> Result<Json<PageOf<ReferralView>>, ApiError> {
    require(&principal, Action::ReferralList, Resource::Collection)?;
    let sides = referral_scope(&principal.actor);
    let side = match query.direction.as_deref() {
        None => sides.first().copied().ok_or(ApiError::Forbidden)?,
        Some("sent") => sides
            .iter()
            .copied()
            .find(|s| matches!(s, ReferralSide::Sent(_)))
            .ok_or(ApiError::Forbidden)?,
        Some("received") => sides
            .iter()
            .copied()
            .find(|s| matches!(s, ReferralSide::Received(_)))
            .ok_or(ApiError::Forbidden)?,
        Some(_) => return Err(ApiError::invalid("direction", "must be sent or received")),
    };
    let mut filter = ReferralFilter {
        statuses: statuses(query.status.as_deref())?,
        category: opt_field("category", query.category.as_deref(), ServiceCategory::parse)?,
        priority: opt_field("priority", query.priority.as_deref(), Priority::parse)?,
        ..ReferralFilter::default()
    };
    let referring = match side {
        ReferralSide::Sent(cases) => {
            filter.from_org = Some(cases.org);
            filter.case_assigned_to = cases.assigned_to;
            filter.case_id = opt_field("case_id", query.case_id.as_deref(), CaseId::parse)?;
            true
        }
        ReferralSide::Received(org) => {
            if query.case_id.is_some() {
                return Err(ApiError::invalid("case_id", "is only a filter of sent referrals"));
            }
            filter.to_org = Some(org);
            false
        }
    };
    caught_up(&state, min, READS).await?;
    let page = PageParams {
        limit: query.limit,
        cursor: query.cursor,
    }
    .request()?;
    let page = state.models().referrals(&filter, &page).await?;
    Ok(Json(PageOf {
        items: page.items.iter().map(|r| view(r, referring)).collect(),
        next: page.next,
    }))
}

/// Candidate services for a referral.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CandidateQuery {
    /// The case to refer.
    pub case_id: String,
    /// The service category wanted.
    pub category: String,
}

/// A service that could take the referral.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct Candidate {
    pub org_id: String,
    /// Organisation name.
    pub org_name: String,
    pub service_id: String,
    pub service_name: String,
    /// Free places the organisation published, if it did.
    pub capacity: Option<i64>,
    /// Why it is proposed.
    pub reasons: Vec<String>,
    /// What speaks against it, though the client is eligible: another district, another
    /// language, no free places published.
    pub cautions: Vec<String>,
}

/// Services that could take a referral for the case, best first: of the category, working in
/// the client's governorate, accepting referrals, admitting the client's sex and age group;
/// ranked by the client's district, language and free places. Each says why, and what to check.
#[utoipa::path(get, path = "/v1/referrals/candidates", tag = "referrals", operation_id = "referral_candidates",
    params(CandidateQuery),
    responses((status = 200, description = "Candidates, best first", body = Vec<Candidate>), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn referral_candidates(
    State(state): State<AppState>,
    principal: Principal,
    Query(query): Query<CandidateQuery>,
) -> Result<Json<Vec<Candidate>>, ApiError> {
    let case_id = field("case_id", &query.case_id, CaseId::parse)?;
    let category = field("category", &query.category, ServiceCategory::parse)?;
    let case = state.store().load::<Case>(case_id).await?;
    let case = case.state.state().ok_or(ApiError::NotFound)?.clone();
    require(
        &principal,
        Action::ReferralRequest,
        super::cases::case_resource(&principal, &case),
    )?;
    let need = wasl_projections::query::Need {
        category,
        sex: case.profile.sex,
        age_group: case.profile.age_group,
        language: case.profile.language.clone(),
        location: case.profile.location,
    };
    let candidates = state.models().candidates(&need).await?;
    Ok(Json(
        candidates
            .into_iter()
            .map(|c| Candidate {
                org_id: c.listing.service.org_id.clone(),
                org_name: c.listing.org_name,
                service_id: c.listing.service.id.clone(),
                service_name: c.listing.service.name.clone(),
                capacity: c.listing.service.capacity,
                reasons: c.reasons,
                cautions: c.cautions,
            })
            .collect(),
    ))
}

/// The referral as the read model has it, checked against the caller's scope.
async fn scoped_referral(state: &AppState, principal: &Principal, id: ReferralId) -> Result<ReferralRow, ApiError> {
    let row = state.models().referral(id).await?.ok_or(ApiError::NotFound)?;
    let from_org = OrgId::parse(&row.from_org).map_err(ApiError::internal)?;
    let to_org = OrgId::parse(&row.to_org).map_err(ApiError::internal)?;
    // Need-to-know on the referring side follows the referral's case.
    let assigned = from_org == principal.actor.org && {
        let case_id = CaseId::parse(&row.case_id).map_err(ApiError::internal)?;
        super::cases::knows_case_in_model(state, principal, case_id).await?
    };
    require(
        principal,
        Action::ReferralRead,
        Resource::Referral {
            from_org,
            to_org,
            assigned,
        },
    )?;
    Ok(row)
}

fn referring(principal: &Principal, row: &ReferralRow) -> bool {
    principal.actor.has_any(&[Role::Caseworker, Role::Supervisor]) && row.from_org == principal.actor.org.to_string()
}

/// A referral with its notes.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct ReferralDetail {
    #[serde(flatten)]
    pub referral: ReferralView,
    /// The notes for the receiving organisation, opened (the read is audited); absent when
    /// there are none or the case's personal data was erased.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Every free text written on the referral — the explanation of a decline, a hold, a
    /// failure, a cancellation or an entry in error, and follow-up notes — oldest first; empty
    /// once the case was erased. Part of the same audited read.
    pub texts: Vec<crate::personal::ReferralText>,
    /// `true` once the personal data of the referral's case was erased (the client asked, the
    /// retention period ran out, …): nothing personal about it will be shown again, and a
    /// partner deletes what it holds about the referral.
    pub personal_data_erased: bool,
}

/// Read a referral with its notes. The read is recorded in the access audit first.
#[utoipa::path(get, path = "/v1/referrals/{referral_id}", tag = "referrals", operation_id = "get_referral",
    params(("referral_id" = String, Path, description = "Referral id"),
           ("Wasl-Min-Position" = Option<u64>, Header, description = "Wait until the read model reflects this stream position")),
    responses((status = 200, description = "The referral; ETag is its version", body = ReferralDetail), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn get_referral(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    headers: HeaderMap,
    Path(referral_id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&referral_id, ReferralId::parse)?;
    caught_up(&state, min, READS).await?;
    let row = scoped_referral(&state, &principal, id).await?;
    state
        .audit()
        .record(
            &principal.actor,
            "referral.read",
            format!("referral/{id}"),
            "GET /v1/referrals/{referral_id}",
            &request_id(&headers),
        )
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    // The key's state, not the read model's: an erasure by any process counts at once.
    let case = CaseId::parse(&row.case_id).map_err(ApiError::internal)?;
    let personal_data_erased = matches!(
        state
            .vault()
            .key(case)
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?,
        wasl_vault::KeyState::Erased
    );
    let (notes, texts) = if personal_data_erased {
        (None, Vec::new())
    } else {
        referral_writing(&state, id).await?
    };
    let detail = ReferralDetail {
        referral: view(&row, referring(&principal, &row)),
        notes,
        texts,
        personal_data_erased,
    };
    Ok(with_etag(u64::try_from(row.version).unwrap_or(0), detail))
}

/// One step of a referral's timeline.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct HistoryEntry {
    /// The referral's version after this step.
    pub version: i64,
    pub event_type: String,
    /// When (Unix ms).
    pub at: i64,
    /// Who (user id).
    pub actor_user: String,
    /// Their organisation.
    pub actor_org: String,
    /// Status before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_status: Option<String>,
    /// Status after.
    pub to_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
}

impl From<HistoryRow> for HistoryEntry {
    fn from(h: HistoryRow) -> Self {
        Self {
            version: h.version,
            event_type: h.event_type,
            at: h.at,
            actor_user: h.actor_user,
            actor_org: h.actor_org,
            from_status: h.from_status,
            to_status: h.to_status,
            reason_code: h.reason_code,
        }
    }
}

/// A referral's timeline, oldest first.
#[utoipa::path(get, path = "/v1/referrals/{referral_id}/history", tag = "referrals", operation_id = "referral_history",
    params(("referral_id" = String, Path, description = "Referral id"),
           ("Wasl-Min-Position" = Option<u64>, Header, description = "Wait until the read model reflects this stream position")),
    responses((status = 200, description = "The timeline", body = Vec<HistoryEntry>), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn referral_history(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Path(referral_id): Path<String>,
) -> Result<Json<Vec<HistoryEntry>>, ApiError> {
    let id = path_id(&referral_id, ReferralId::parse)?;
    caught_up(&state, min, READS).await?;
    scoped_referral(&state, &principal, id).await?;
    let history = state.models().history(id).await?;
    Ok(Json(history.into_iter().map(HistoryEntry::from).collect()))
}

/// Loads the referral from the log (the read model may lag) and checks `action` on it.
async fn authorised(
    state: &AppState,
    principal: &Principal,
    id: ReferralId,
    action: Action,
) -> Result<wasl_domain::referral::ReferralState, ApiError> {
    // The organisations of a referral never change: the cached state decides who may act, and
    // the command handler decides the action itself on the log's state.
    let loaded = state.store().cached::<Referral>(id).await?;
    let referral = loaded.state.state().cloned().ok_or(ApiError::NotFound)?;
    // Need-to-know on the referring side follows the referral's case, as the log has it now.
    let assigned = referral.from_org == principal.actor.org
        && super::cases::case_for(state, principal, referral.case_id)
            .await?
            .is_some_and(|case| {
                matches!(
                    super::cases::case_resource(principal, &case),
                    Resource::Case { assigned: true, .. }
                )
            });
    require(
        principal,
        action,
        Resource::Referral {
            from_org: referral.from_org,
            to_org: referral.to_org,
            assigned,
        },
    )?;
    Ok(referral)
}

/// A receiving organisation's action without a body (`receive`, `accept`, …) on the referral
/// the path names.
async fn respond(
    state: &AppState,
    request: &CommandRequest,
    referral_id: &str,
    command: ReferralCommand,
) -> Result<Response, ApiError> {
    let id = path_id(referral_id, ReferralId::parse)?;
    authorised(state, &request.principal, id, Action::ReferralRespond).await?;
    act(state, request, id, command).await
}

/// An action with a coded reason (`hold`, `fail`, `cancel`, `entered-in-error`) on the referral
/// the path names, the reason's text sealed under the case's key.
async fn with_reason<C: ReasonCode>(
    state: &AppState,
    request: &CommandRequest,
    referral_id: &str,
    action: Action,
    input: &ReasonInput,
    parse: fn(&str) -> Result<C, wasl_domain::ValidationError>,
    command: fn(Reason<C>) -> ReferralCommand,
) -> Result<Response, ApiError> {
    let id = path_id(referral_id, ReferralId::parse)?;
    let referral = authorised(state, &request.principal, id, action).await?;
    let reason = reason(state, "/reason", input, parse, referral.case_id, request.event(0)).await?;
    act(state, request, id, command(reason)).await
}

/// Runs a referral action the caller may take and answers it: the end of every action route.
async fn act(
    state: &AppState,
    request: &CommandRequest,
    id: ReferralId,
    command: ReferralCommand,
) -> Result<Response, ApiError> {
    let outcome = request.execute::<Referral>(state, id, &command).await?;
    Ok(answered(id.to_string(), outcome, None))
}

/// Acknowledge receipt (the receiving organisation).
#[utoipa::path(post, path = "/v1/referrals/{referral_id}/receive", tag = "referral actions", operation_id = "receive_referral",
    params(ReferralPath, CommandHeaders),
    responses((status = 200, description = "Done", body = CommandAnswer), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn receive_referral(
    State(state): State<AppState>,
    request: CommandRequest,
    Path(referral_id): Path<String>,
    _: NoBody,
) -> Result<Response, ApiError> {
    respond(&state, &request, &referral_id, ReferralCommand::Receive).await
}

/// Accept the referral (the receiving organisation).
#[utoipa::path(post, path = "/v1/referrals/{referral_id}/accept", tag = "referral actions", operation_id = "accept_referral",
    params(ReferralPath, CommandHeaders),
    responses((status = 200, description = "Done", body = CommandAnswer), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn accept_referral(
    State(state): State<AppState>,
    request: CommandRequest,
    Path(referral_id): Path<String>,
    _: NoBody,
) -> Result<Response, ApiError> {
    respond(&state, &request, &referral_id, ReferralCommand::Accept).await
}

/// Start the service (the receiving organisation).
#[utoipa::path(post, path = "/v1/referrals/{referral_id}/start", tag = "referral actions", operation_id = "start_referral",
    params(ReferralPath, CommandHeaders),
    responses((status = 200, description = "Done", body = CommandAnswer), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn start_referral(
    State(state): State<AppState>,
    request: CommandRequest,
    Path(referral_id): Path<String>,
    _: NoBody,
) -> Result<Response, ApiError> {
    respond(&state, &request, &referral_id, ReferralCommand::Start).await
}

/// Resume after a hold (the receiving organisation).
#[utoipa::path(post, path = "/v1/referrals/{referral_id}/resume", tag = "referral actions", operation_id = "resume_referral",
    params(ReferralPath, CommandHeaders),
    responses((status = 200, description = "Done", body = CommandAnswer), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn resume_referral(
    State(state): State<AppState>,
    request: CommandRequest,
    Path(referral_id): Path<String>,
    _: NoBody,
) -> Result<Response, ApiError> {
    respond(&state, &request, &referral_id, ReferralCommand::Resume).await
}

/// Complete the service (the receiving organisation).
#[utoipa::path(post, path = "/v1/referrals/{referral_id}/complete", tag = "referral actions", operation_id = "complete_referral",
    params(ReferralPath, CommandHeaders),
    responses((status = 200, description = "Done", body = CommandAnswer), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn complete_referral(
    State(state): State<AppState>,
    request: CommandRequest,
    Path(referral_id): Path<String>,
    _: NoBody,
) -> Result<Response, ApiError> {
    respond(&state, &request, &referral_id, ReferralCommand::Complete).await
}

/// The referral a route acts on, for its OpenAPI `params(...)`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct ReferralPath {
    pub referral_id: String,
}

/// Decline a referral.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectRequest {
    /// Why: `no_capacity`, `not_eligible`, `service_not_offered`, `client_unreachable`,
    /// `client_declined`, `redirected` (with `suggested_org`) or `other` (with text).
    pub reason: ReasonInput,
    /// The organisation suggested instead, with `redirected`.
    pub suggested_org: Option<String>,
}

/// A reason, for hold, fail, cancel and entered-in-error.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct ReasonRequest {
    pub reason: ReasonInput,
}

/// Decline the referral with a coded reason (the receiving organisation).
#[utoipa::path(post, path = "/v1/referrals/{referral_id}/reject", tag = "referral actions", operation_id = "reject_referral",
    request_body = RejectRequest,
    params(ReferralPath, CommandHeaders),
    responses((status = 200, description = "Declined", body = CommandAnswer), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn reject_referral(
    State(state): State<AppState>,
    request: CommandRequest,
    Path(referral_id): Path<String>,
    Json(body): Json<RejectRequest>,
) -> Result<Response, ApiError> {
    let id = path_id(&referral_id, ReferralId::parse)?;
    let referral = authorised(&state, &request.principal, id, Action::ReferralRespond).await?;
    let suggested_org = opt_field("/suggested_org", body.suggested_org.as_deref(), OrgId::parse)?;
    let reason = reason(
        &state,
        "/reason",
        &body.reason,
        DeclineCode::parse,
        referral.case_id,
        request.event(0),
    )
    .await?;
    act(
        &state,
        &request,
        id,
        ReferralCommand::Reject(Decline { reason, suggested_org }),
    )
    .await
}

/// Put the service on hold, with a reason (the receiving organisation).
#[utoipa::path(post, path = "/v1/referrals/{referral_id}/hold", tag = "referral actions", operation_id = "hold_referral",
    request_body = ReasonRequest,
    params(ReferralPath, CommandHeaders),
    responses((status = 200, description = "Done", body = CommandAnswer), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn hold_referral(
    State(state): State<AppState>,
    request: CommandRequest,
    Path(referral_id): Path<String>,
    Json(body): Json<ReasonRequest>,
) -> Result<Response, ApiError> {
    with_reason(
        &state,
        &request,
        &referral_id,
        Action::ReferralRespond,
        &body.reason,
        HoldCode::parse,
        ReferralCommand::Hold,
    )
    .await
}

/// Record that the service failed, with a reason (the receiving organisation).
#[utoipa::path(post, path = "/v1/referrals/{referral_id}/fail", tag = "referral actions", operation_id = "fail_referral",
    request_body = ReasonRequest,
    params(ReferralPath, CommandHeaders),
    responses((status = 200, description = "Done", body = CommandAnswer), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn fail_referral(
    State(state): State<AppState>,
    request: CommandRequest,
    Path(referral_id): Path<String>,
    Json(body): Json<ReasonRequest>,
) -> Result<Response, ApiError> {
    with_reason(
        &state,
        &request,
        &referral_id,
        Action::ReferralRespond,
        &body.reason,
        FailCode::parse,
        ReferralCommand::Fail,
    )
    .await
}

/// Cancel the referral, with a reason (the referring organisation).
#[utoipa::path(post, path = "/v1/referrals/{referral_id}/cancel", tag = "referral actions", operation_id = "cancel_referral",
    request_body = ReasonRequest,
    params(ReferralPath, CommandHeaders),
    responses((status = 200, description = "Done", body = CommandAnswer), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn cancel_referral(
    State(state): State<AppState>,
    request: CommandRequest,
    Path(referral_id): Path<String>,
    Json(body): Json<ReasonRequest>,
) -> Result<Response, ApiError> {
    with_reason(
        &state,
        &request,
        &referral_id,
        Action::ReferralManage,
        &body.reason,
        CancelCode::parse,
        ReferralCommand::Cancel,
    )
    .await
}

/// Mark the referral entered-in-error (a supervisor of the referring organisation).
#[utoipa::path(post, path = "/v1/referrals/{referral_id}/entered-in-error", tag = "referral actions", operation_id = "mark_referral_entered_in_error",
    request_body = ReasonRequest,
    params(ReferralPath, CommandHeaders),
    responses((status = 200, description = "Done", body = CommandAnswer), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn mark_entered_in_error(
    State(state): State<AppState>,
    request: CommandRequest,
    Path(referral_id): Path<String>,
    Json(body): Json<ReasonRequest>,
) -> Result<Response, ApiError> {
    with_reason(
        &state,
        &request,
        &referral_id,
        Action::ReferralMarkError,
        &body.reason,
        ErrorCode::parse,
        ReferralCommand::MarkEnteredInError,
    )
    .await
}

/// Follow-up with the client after the service.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowUpRequest {
    /// Whether the client was reached.
    pub client_reached: bool,
    /// `yes`, `partly`, `no` or `unknown`.
    pub service_received: String,
    /// 1–5, only when the client was reached.
    pub satisfaction: Option<u8>,
    /// A note (sealed).
    #[schema(max_length = 2000)]
    pub note: Option<String>,
}

/// Record the follow-up with the client, closing the loop (the referring organisation).
#[utoipa::path(post, path = "/v1/referrals/{referral_id}/follow-up", tag = "referral actions", operation_id = "record_follow_up",
    request_body = FollowUpRequest,
    params(ReferralPath, CommandHeaders),
    responses((status = 200, description = "Recorded", body = CommandAnswer), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn record_follow_up(
    State(state): State<AppState>,
    request: CommandRequest,
    Path(referral_id): Path<String>,
    Json(body): Json<FollowUpRequest>,
) -> Result<Response, ApiError> {
    let id = path_id(&referral_id, ReferralId::parse)?;
    let referral = authorised(&state, &request.principal, id, Action::ReferralManage).await?;
    let service_received = field("/service_received", &body.service_received, ServiceReceived::parse)?;
    let satisfaction = body
        .satisfaction
        .map(Satisfaction::new)
        .transpose()
        .map_err(|e| ApiError::invalid_field("/satisfaction", &e))?;
    let note = match body.note.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(text) if text.chars().count() > 2000 => {
            return Err(ApiError::invalid("/note", "is longer than 2000 characters"));
        }
        Some(text) => Some(
            state
                .vault()
                .seal(referral.case_id, request.event(0), PiiField::FOLLOW_UP_NOTE, text)
                .await?,
        ),
        None => None,
    };
    let follow_up = FollowUp {
        client_reached: body.client_reached,
        service_received,
        satisfaction,
        note,
    };
    act(&state, &request, id, ReferralCommand::RecordFollowUp(follow_up)).await
}

/// Which escalation, and optionally what the coordinator did about it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"kind": "decision", "note": {"code": "partner_contacted", "text": "Test note: the partner will answer today."}}))]
pub struct AcknowledgeRequest {
    /// `acknowledgement`, `decision`, `follow_up` or `stalled`.
    pub kind: String,
    /// What the coordinator did: `code` is `partner_contacted`, `referrer_contacted`,
    /// `redirect_advised`, `service_gap`, `resolved` or `other` (with text). The text is sealed
    /// under the case's key: coordinators never read it back.
    pub note: Option<ReasonInput>,
}

/// Acknowledge an escalation, optionally with a note (coordinators only).
///
/// - Only a coordinator may acknowledge; everyone else gets 404, as for a referral they cannot see.
/// - The note's code is shown in the escalation list; its text is sealed under the case's key
///   before it is stored and is never shown to coordinators.
/// - The note is optional; `other` needs a text (without one: 422, code `reason_required`).
/// - A referral that was never escalated is not found (404), as for a referral that does not
///   exist: coordinators see escalated referrals only.
/// - Acknowledging twice, or a kind that was not escalated, is refused (422).
#[utoipa::path(post, path = "/v1/referrals/{referral_id}/acknowledge-escalation", tag = "referral actions", operation_id = "acknowledge_escalation",
    request_body = AcknowledgeRequest,
    params(ReferralPath, CommandHeaders),
    responses((status = 200, description = "Acknowledged", body = CommandAnswer), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn acknowledge_escalation(
    State(state): State<AppState>,
    request: CommandRequest,
    Path(referral_id): Path<String>,
    Json(body): Json<AcknowledgeRequest>,
) -> Result<Response, ApiError> {
    let id = path_id(&referral_id, ReferralId::parse)?;
    let mut referral = authorised(&state, &request.principal, id, Action::ReferralAcknowledgeEscalation).await?;
    if referral.escalated.is_empty() {
        // The cached state may predate an escalation: look at the log before saying no.
        let loaded = state.store().load::<Referral>(id).await?;
        referral = loaded.state.state().cloned().ok_or(ApiError::NotFound)?;
    }
    if referral.escalated.is_empty() {
        // Coordinators see the escalated referrals of the network, no others: one never
        // escalated is answered as missing, whatever the request says.
        return Err(ApiError::NotFound);
    }
    let kind = field("/kind", &body.kind, OverdueKind::parse)?;
    // Free text about a client's referral: sealed under the case's key (ADR 0002), although the
    // coordinator does not hold the case, so that erasing the case erases it too.
    let note = match &body.note {
        Some(input) => Some(
            reason(
                &state,
                "/note",
                input,
                AcknowledgeCode::parse,
                referral.case_id,
                request.event(0),
            )
            .await?,
        ),
        None => None,
    };
    act(
        &state,
        &request,
        id,
        ReferralCommand::AcknowledgeEscalation { kind, note },
    )
    .await
}
