//! The coordinators' dashboards and the GCM indicator report: network-wide numbers, every one
//! through small-cell suppression (`wasl-dashboard`), none naming a case, a referral or a
//! person. Coordinators and admins read the network; a focal point reads how its own
//! organisation answers beside the network's figures; caseworkers read none.

use super::{Problems, caught_up, opt_field, require};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::{Json, MinPosition, Query};
use crate::policy::{Action, Resource};
use crate::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde::Deserialize;
use std::convert::Infallible;
use std::time::{Duration, Instant};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wasl_dashboard::reports::{self, HeadlineReport, IndicatorReport, PartnerReport};
use wasl_dashboard::{Breakdown, breakdown};
use wasl_domain::Role;
use wasl_domain::catalogue::{DeclineCode, Priority, ServiceCategory};
use wasl_domain::client::{AgeGroup, PopulationGroup, Sex};
use wasl_domain::gcm::GcmObjective;
use wasl_domain::geo::{District, Governorate};
use wasl_domain::ids::{OrgId, ServiceId};
use wasl_domain::suppression::Threshold;
use wasl_domain::time::{Date, Quarter};
use wasl_projections::query::{DashboardFilter, Dimension, Measure, Span};
use wasl_projections::{Projection, ReadModels};

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(headline))
        .routes(routes!(live))
        .routes(routes!(table))
        .routes(routes!(partners))
        .routes(routes!(indicators))
}

const READS: &[Projection] = &[Projection::Dashboard];

/// Declares a query type with the filters every dashboard route takes, and its own fields.
macro_rules! dashboard_query {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, Deserialize, IntoParams)]
        #[into_params(parameter_in = Query)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// Referrals requested on or after this day (`YYYY-MM-DD`, Iraq time).
            pub from: Option<String>,
            /// Referrals requested on or before this day (`YYYY-MM-DD`, Iraq time).
            pub to: Option<String>,
            /// Referrals requested in this quarter (`YYYY-Qn`); with `from`/`to`, both apply.
            pub quarter: Option<String>,
            /// The client's governorate (ISO 3166-2:IQ, e.g. `IQ-NI`).
            pub governorate: Option<String>,
            /// The client's district (`wasl places` lists the codes).
            pub district: Option<String>,
            /// Service category code.
            pub category: Option<String>,
            /// Service id.
            pub service: Option<String>,
            /// Addressed to this organisation.
            pub receiving_org: Option<String>,
            /// Made by this organisation.
            pub referring_org: Option<String>,
            /// Made by or addressed to this organisation.
            pub organisation: Option<String>,
            /// Population group code (`returnee`, `idp`, `migrant`, `refugee`, `host_community`, `other`).
            pub population_group: Option<String>,
            /// Sex code.
            pub sex: Option<String>,
            /// Age group code.
            pub age_group: Option<String>,
            /// Priority code.
            pub priority: Option<String>,
            /// Serving this GCM objective (1–23).
            pub gcm_objective: Option<String>,
            /// Declined with this reason code.
            pub decline_reason: Option<String>,
            /// The numbers as they stood at the end of this day (`YYYY-MM-DD`, Iraq time),
            /// replayed from the event log; today or earlier.
            pub as_of: Option<String>,
            $($(#[$fdoc])* pub $field: $ty,)*
        }

        impl $name {
            /// The read models to count in: the live ones, or a replay as of a past day.
            async fn models(&self, state: &AppState) -> Result<ReadModels, ApiError> {
                source(state, self.as_of.as_deref()).await
            }

            fn filter(&self) -> Result<DashboardFilter, ApiError> {
                filter(&Filters {
                    from: self.from.as_deref(),
                    to: self.to.as_deref(),
                    quarter: self.quarter.as_deref(),
                    governorate: self.governorate.as_deref(),
                    district: self.district.as_deref(),
                    category: self.category.as_deref(),
                    service: self.service.as_deref(),
                    receiving_org: self.receiving_org.as_deref(),
                    referring_org: self.referring_org.as_deref(),
                    organisation: self.organisation.as_deref(),
                    population_group: self.population_group.as_deref(),
                    sex: self.sex.as_deref(),
                    age_group: self.age_group.as_deref(),
                    priority: self.priority.as_deref(),
                    gcm_objective: self.gcm_objective.as_deref(),
                    decline_reason: self.decline_reason.as_deref(),
                })
            }
        }
    };
}

/// The filters as sent.
struct Filters<'a> {
    from: Option<&'a str>,
    to: Option<&'a str>,
    quarter: Option<&'a str>,
    governorate: Option<&'a str>,
    district: Option<&'a str>,
    category: Option<&'a str>,
    service: Option<&'a str>,
    receiving_org: Option<&'a str>,
    referring_org: Option<&'a str>,
    organisation: Option<&'a str>,
    population_group: Option<&'a str>,
    sex: Option<&'a str>,
    age_group: Option<&'a str>,
    priority: Option<&'a str>,
    gcm_objective: Option<&'a str>,
    decline_reason: Option<&'a str>,
}

/// The live read models, or those of a replay as of the end of `as_of`.
async fn source(state: &AppState, as_of: Option<&str>) -> Result<ReadModels, ApiError> {
    let Some(day) = opt_field("as_of", as_of, Date::parse)? else {
        return Ok(state.models().clone());
    };
    if day > Date::of(super::now()) {
        return Err(ApiError::invalid("as_of", "must not be in the future"));
    }
    state.as_of().models(state.store().stream(), day).await
}

fn filter(f: &Filters<'_>) -> Result<DashboardFilter, ApiError> {
    let from = opt_field("from", f.from, Date::parse)?;
    let to = opt_field("to", f.to, Date::parse)?;
    let quarter = opt_field("quarter", f.quarter, Quarter::parse)?;
    // The later of the starts and the earlier of the ends.
    let start = [from, quarter.map(Quarter::first_day)].into_iter().flatten().max();
    let end = [to.map(|d| d.plus_days(1)), quarter.map(Quarter::next_first_day)]
        .into_iter()
        .flatten()
        .min();
    let governorate = opt_field("governorate", f.governorate, Governorate::parse)?;
    let district = opt_field("district", f.district, District::parse)?;
    if let (Some(g), Some(d)) = (governorate, district)
        && d.governorate() != g
    {
        return Err(ApiError::invalid("district", "is not in the governorate asked for"));
    }
    Ok(DashboardFilter {
        from: start.map(Date::start),
        until: end.map(Date::start),
        governorate,
        district,
        category: opt_field("category", f.category, ServiceCategory::parse)?,
        service: opt_field("service", f.service, ServiceId::parse)?,
        receiving_org: opt_field("receiving_org", f.receiving_org, OrgId::parse)?,
        referring_org: opt_field("referring_org", f.referring_org, OrgId::parse)?,
        organisation: opt_field("organisation", f.organisation, OrgId::parse)?,
        population_group: opt_field("population_group", f.population_group, PopulationGroup::parse)?,
        sex: opt_field("sex", f.sex, Sex::parse)?,
        age_group: opt_field("age_group", f.age_group, AgeGroup::parse)?,
        priority: opt_field("priority", f.priority, Priority::parse)?,
        objective: opt_field("gcm_objective", f.gcm_objective, GcmObjective::parse)?,
        decline_reason: opt_field("decline_reason", f.decline_reason, DeclineCode::parse)?,
    })
}

dashboard_query!(
    /// Filters of the headline numbers and the partner report.
    FilterQuery {}
);

dashboard_query!(
    /// A breakdown: what to count, by what, and the filters.
    TableQuery {
        /// What to count: `made` (default), `received`, `accepted`, `declined`, `completed`,
        /// `failed`, `cancelled`, `open`, `service_gap` (declined for capacity, service not
        /// offered or eligibility) or `unmet_need` (declined for capacity or service not offered).
        measure: Option<String>,
        /// The rows: `week`, `quarter`, `governorate` (default), `district`, `category`,
        /// `service`, `receiving_org`, `referring_org`, `priority`, `status`,
        /// `population_group`, `sex`, `age_group` or `decline_reason`.
        rows: Option<String>,
        /// The columns (any of the same); absent for a one-way breakdown.
        columns: Option<String>,
        /// `json` (default) or `csv`.
        format: Option<String>,
    }
);

dashboard_query!(
    /// The indicator report's filters and format.
    IndicatorQuery {
        /// `json` (default) or `csv`.
        format: Option<String>,
    }
);

/// Whether the answer is CSV.
fn wants_csv(format: Option<&str>) -> Result<bool, ApiError> {
    match format {
        None | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(_) => Err(ApiError::invalid("format", "must be json or csv")),
    }
}

fn csv(name: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.csv\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// The dashboard's headline numbers for the network (coordinators and admins).
///
/// - Referrals made, by current status, with their total; rates of acceptance, completion,
///   failure, answers in time and follow-up reaching the client; median and 90th percentile of
///   the hours to acknowledgement, answer, service and completion; referrals overdue, by kind of
///   deadline; referrals with an unacknowledged escalation.
/// - Every count from 1 to k − 1 reads `<5` and counts hidden to protect it read `x`, never 0;
///   rates and durations resting on fewer than k referrals read `x`. See docs/indicators.md.
/// - Referrals entered in error count nowhere.
#[utoipa::path(get, path = "/v1/dashboard/headline", tag = "dashboard", operation_id = "dashboard_headline",
    params(FilterQuery, ("Wasl-Min-Position" = Option<u64>, Header, description = "Wait until the read model reflects this stream position")),
    responses((status = 200, description = "The headline numbers", body = HeadlineReport), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn headline(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Query(query): Query<FilterQuery>,
) -> Result<Json<HeadlineReport>, ApiError> {
    require(&principal, Action::DashboardRead, Resource::Collection)?;
    let filter = query.filter()?;
    caught_up(&state, min, READS).await?;
    let models = query.models(&state).await?;
    Ok(Json(
        headline_report(&models, &filter, state.limits().suppression_k).await?,
    ))
}

async fn headline_report(
    models: &ReadModels,
    filter: &DashboardFilter,
    k: Threshold,
) -> Result<HeadlineReport, ApiError> {
    let numbers = models.dashboard_headline(filter).await?;
    let by_status = models
        .dashboard_counts(filter, Measure::Made, Dimension::Status, None)
        .await?;
    let mut durations = Vec::new();
    for span in Span::ALL {
        durations.push((*span, models.dashboard_durations(filter, *span).await?));
    }
    Ok(reports::headline(&numbers, &by_status, &durations, k))
}

/// How often a live dashboard looks for new events.
const LIVE_POLL: Duration = Duration::from_secs(2);
/// How long one live stream lasts; the browser's `EventSource` then connects again (and a
/// stream never outlives a shutdown by more than this).
const LIVE_LIFETIME: Duration = Duration::from_secs(600);

/// The headline numbers as they change, over server-sent events (coordinators and admins).
///
/// - A `headline` event at once, then one whenever the dashboard read model moved on (looked at
///   every two seconds); its data is the `HeadlineReport` of `GET /v1/dashboard/headline` with
///   the same filters, its id the read model's position.
/// - Suppressed as the headline is; nothing else is sent but keep-alive comments.
/// - The stream ends after ten minutes; `EventSource` reconnects by itself.
#[utoipa::path(get, path = "/v1/dashboard/live", tag = "dashboard", operation_id = "dashboard_live",
    params(FilterQuery),
    responses(
        (status = 200, description = "`headline` events, each with a HeadlineReport as JSON", body = String, content_type = "text/event-stream"),
        Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn live(
    State(state): State<AppState>,
    principal: Principal,
    Query(query): Query<FilterQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    require(&principal, Action::DashboardRead, Resource::Collection)?;
    let filter = query.filter()?;
    if query.as_of.is_some() {
        return Err(ApiError::invalid("as_of", "a live dashboard shows the numbers of now"));
    }
    let started = Instant::now();
    let stream = futures_util::stream::unfold(
        (state, filter, None::<u64>),
        move |(state, filter, mut last)| async move {
            loop {
                if started.elapsed() > LIVE_LIFETIME {
                    return None;
                }
                if last.is_some() {
                    tokio::time::sleep(LIVE_POLL).await;
                }
                let position = match wasl_projections::live_state(state.models(), Projection::Dashboard).await {
                    Ok(live) => live.checkpoint,
                    Err(error) => {
                        tracing::warn!(%error, "a live dashboard cannot read the read model's position; it ends");
                        return None;
                    }
                };
                if last == Some(position) {
                    continue;
                }
                last = Some(position);
                let event = match headline_report(state.models(), &filter, state.limits().suppression_k).await {
                    Ok(report) => Event::default()
                        .event("headline")
                        .id(position.to_string())
                        .json_data(report),
                    Err(_) => {
                        tracing::warn!("a live dashboard cannot read the numbers; it ends");
                        return None;
                    }
                };
                match event {
                    Ok(event) => return Some((Ok(event), (state, filter, last))),
                    Err(_) => return None,
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Referrals counted by one or two dimensions, as a table with its totals (coordinators and
/// admins).
///
/// - `measure` says which referrals count, `rows` and `columns` how they are broken down; e.g.
///   service gaps: `measure=service_gap&rows=governorate&columns=category`.
/// - The table is suppressed as one: small counts read `<5`, and further counts read `x` until
///   no hidden count can be worked out from the visible counts and totals. Hidden counts are
///   never shown as 0.
/// - `format=csv` answers the same table as CSV.
#[utoipa::path(get, path = "/v1/dashboard/table", tag = "dashboard", operation_id = "dashboard_table",
    params(TableQuery, ("Wasl-Min-Position" = Option<u64>, Header, description = "Wait until the read model reflects this stream position")),
    responses(
        (status = 200, description = "The table: JSON, or CSV with `format=csv`",
            content((Breakdown = "application/json"), (String = "text/csv"))),
        Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn table(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Query(query): Query<TableQuery>,
) -> Result<Response, ApiError> {
    require(&principal, Action::DashboardRead, Resource::Collection)?;
    let filter = query.filter()?;
    let measure = opt_field("measure", query.measure.as_deref(), Measure::parse)?.unwrap_or(Measure::Made);
    let rows = opt_field("rows", query.rows.as_deref(), Dimension::parse)?.unwrap_or(Dimension::Governorate);
    let columns = opt_field("columns", query.columns.as_deref(), Dimension::parse)?;
    if columns == Some(rows) {
        return Err(ApiError::invalid("columns", "must differ from rows"));
    }
    let as_csv = wants_csv(query.format.as_deref())?;
    caught_up(&state, min, READS).await?;
    let models = query.models(&state).await?;
    let counts = models.dashboard_counts(&filter, measure, rows, columns).await?;
    let table = breakdown(
        counts.into_iter().map(|c| ((c.row, c.column), c.count)),
        rows.code(),
        columns.map(Dimension::code),
        state.limits().suppression_k,
    );
    Ok(if as_csv {
        csv(&format!("wasl-{}-by-{}", measure.code(), rows.code()), table.to_csv())
    } else {
        Json(table).into_response()
    })
}

/// How the receiving organisations answer their referrals: referrals addressed to each, by
/// answered in time, late or not answered; the share answered in time and the median hours to
/// answer, per organisation and for the network.
///
/// - Coordinators and admins see every organisation; a focal point sees only their own
///   organisation's row and figures, beside the network's (suppressed as in the coordinators'
///   table).
/// - "In time": answered (accepted or declined) before the follow-up service recorded the
///   decision deadline as missed.
#[utoipa::path(get, path = "/v1/dashboard/partners", tag = "dashboard", operation_id = "dashboard_partners",
    params(FilterQuery, ("Wasl-Min-Position" = Option<u64>, Header, description = "Wait until the read model reflects this stream position")),
    responses((status = 200, description = "Partner responsiveness", body = PartnerReport), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn partners(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Query(query): Query<FilterQuery>,
) -> Result<Json<PartnerReport>, ApiError> {
    require(&principal, Action::PartnerReportRead, Resource::Collection)?;
    let filter = query.filter()?;
    caught_up(&state, min, READS).await?;
    let models = query.models(&state).await?;
    let rows = models.dashboard_responsiveness(&filter).await?;
    let actor = &principal.actor;
    let network = actor.has(Role::Coordinator) || actor.has(Role::Admin);
    let own = actor.org.to_string();
    Ok(Json(reports::partners(
        &rows,
        (!network).then_some(own.as_str()),
        state.limits().suppression_k,
    )))
}

/// The GCM indicator report (coordinators and admins): per objective of the Global Compact for
/// Migration, referrals made, accepted and completed, unmet need (declined for capacity or
/// because the service is not offered) and median days to service, by governorate and quarter.
///
/// - A referral counts under every objective its service served when it was made.
/// - Each indicator is a table of governorates by quarters with totals, suppressed as one.
/// - `format=csv` answers one line per number. Definitions: docs/indicators.md.
#[utoipa::path(get, path = "/v1/indicators/gcm", tag = "dashboard", operation_id = "gcm_indicators",
    params(IndicatorQuery, ("Wasl-Min-Position" = Option<u64>, Header, description = "Wait until the read model reflects this stream position")),
    responses(
        (status = 200, description = "The indicator report: JSON, or CSV with `format=csv`",
            content((IndicatorReport = "application/json"), (String = "text/csv"))),
        Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn indicators(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Query(query): Query<IndicatorQuery>,
) -> Result<Response, ApiError> {
    require(&principal, Action::DashboardRead, Resource::Collection)?;
    let filter = query.filter()?;
    let as_csv = wants_csv(query.format.as_deref())?;
    caught_up(&state, min, READS).await?;
    let models = query.models(&state).await?;
    let counts = models.indicator_counts(&filter).await?;
    let report = reports::indicators(&counts, state.limits().suppression_k);
    Ok(if as_csv {
        csv("wasl-gcm-indicators", report.to_csv())
    } else {
        Json(report).into_response()
    })
}
