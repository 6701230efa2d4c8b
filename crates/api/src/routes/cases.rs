//! Cases: open, list, read (with personal data, audited), change profile and personal data,
//! assign, give/narrow/withdraw consent, close, reopen.

use super::{PageOf, PageParams, Problems, caught_up, field, opt_field, path_id, request_id, require};
use crate::auth::Principal;
use crate::command::{CommandHeaders, CommandRequest, CreateHeaders};
use crate::error::ApiError;
use crate::http::{CommandAnswer, Json, MinPosition, NoBody, Path, Query, answered, with_etag};
use crate::personal::{PersonalInput, PersonalOutput, case_personal, logged_profile, row_identifying};
use crate::policy::{Action, Resource, case_scope, knows_case};
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wasl_domain::DomainError;
use wasl_domain::case::{Case, CaseCommand, CaseState, CaseStatus, CloseCase, ConsentScope, OpenCase, Scope};
use wasl_domain::catalogue::{CloseCode, EraseCode, Reason, ReasonCode, ServiceCategory};
use wasl_domain::client::{
    Age, AgeGroup, ClientProfile, Identifying, IdentifyingFacts, Language, Nationality, PopulationGroup, Sex,
    SurvivorCode, Vulnerability,
};
use wasl_domain::geo::{District, Governorate, Location};
use wasl_domain::ids::{CaseId, ConsentId, EventId, OrgId, ReferralId, UserId};
use wasl_domain::time::Timestamp;
use wasl_projections::Projection;
use wasl_projections::query::{CaseFilter, OPEN_STATUSES, Page, PageRequest, ReferralFilter, SurvivorCodeQuery};
use wasl_projections::rows::case::{CaseRow, ConsentEntry};
use wasl_vault::PiiField;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(open_case, list_cases))
        .routes(routes!(get_case))
        .routes(routes!(update_profile))
        .routes(routes!(update_personal_data))
        .routes(routes!(assign_case))
        .routes(routes!(share_case))
        .routes(routes!(unshare_case))
        .routes(routes!(give_consent))
        .routes(routes!(narrow_consent))
        .routes(routes!(withdraw_consent))
        .routes(routes!(close_case))
        .routes(routes!(reopen_case))
        .routes(routes!(erase_case))
        .routes(routes!(export_case))
}

const READS: &[Projection] = &[Projection::Cases];

/// A client's profile: who the person is, without identifying them.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileInput {
    /// The survivor code, the pseudonym the organisation uses (3–32 of A-Z, 0-9, '-').
    #[schema(example = "TEST-0001")]
    pub survivor_code: String,
    /// `female`, `male`, `other` or `unknown`.
    #[schema(example = "female")]
    pub sex: String,
    /// Age group code; optional when `age_years` is given.
    #[schema(example = "25_59")]
    pub age_group: Option<String>,
    /// Exact age in years, when known (0–120).
    pub age_years: Option<u8>,
    /// `returnee`, `idp`, `migrant`, `refugee`, `host_community` or `other`.
    #[schema(example = "idp")]
    pub population_group: String,
    /// ISO 3166-1 alpha-2 (`XX`: stateless or unknown).
    #[schema(example = "IQ")]
    pub nationality: String,
    /// Governorate, ISO 3166-2:IQ (`IQ-NI`).
    #[schema(example = "IQ-NI")]
    pub governorate: String,
    /// District code within the governorate.
    pub district: Option<String>,
    /// Preferred language, a BCP 47 tag.
    #[schema(example = "ar")]
    pub language: String,
    /// Vulnerability codes.
    #[serde(default)]
    pub vulnerabilities: Vec<String>,
}

impl ProfileInput {
    /// Parses the profile found at the JSON pointer `at` of the request body (`""` for the whole
    /// body), naming its fields by their pointers. The identifying facts are in the clear: seal
    /// them (`Vault::seal_profile`) before the command is decided.
    fn parse(&self, at: &str) -> Result<ClientProfile, ApiError> {
        let f = |name: &str| format!("{at}/{name}");
        let group = opt_field(&f("age_group"), self.age_group.as_deref(), AgeGroup::parse)?;
        let age = match (group, self.age_years) {
            (Some(group), years) => Age::new(group, years).map_err(|e| ApiError::invalid_field(&f("age_years"), &e))?,
            (None, Some(years)) => Age::years(years).map_err(|e| ApiError::invalid_field(&f("age_years"), &e))?,
            (None, None) => {
                return Err(ApiError::invalid(
                    f("age_group"),
                    "give the age group or the age in years",
                ));
            }
        };
        let governorate = field(&f("governorate"), &self.governorate, Governorate::parse)?;
        let district = opt_field(&f("district"), self.district.as_deref(), District::parse)?;
        let location = Location::new(governorate, district).map_err(|e| ApiError::invalid_field(&f("district"), &e))?;
        let vulnerabilities = self
            .vulnerabilities
            .iter()
            .map(|v| field(&f("vulnerabilities"), v, Vulnerability::parse))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ClientProfile {
            sex: field(&f("sex"), &self.sex, Sex::parse)?,
            age_group: age.group(),
            population_group: field(&f("population_group"), &self.population_group, PopulationGroup::parse)?,
            nationality: field(&f("nationality"), &self.nationality, Nationality::parse)?,
            location,
            language: field(&f("language"), &self.language, Language::parse)?,
            identifying: Identifying::Clear(IdentifyingFacts {
                survivor_code: field(&f("survivor_code"), &self.survivor_code, SurvivorCode::parse)?,
                age_years: age.exact_years(),
                vulnerabilities,
            }),
        }
        .normalised())
    }
}

/// Open a case.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenCaseRequest {
    /// The responsible caseworker's user id; the caller when absent.
    pub caseworker: Option<String>,
    /// The client's profile.
    pub profile: ProfileInput,
    /// Personal data, sealed under the new case's key before it is stored.
    #[serde(default)]
    pub personal: Option<PersonalInput>,
}

/// A client's profile as stored. The survivor code, exact age and vulnerabilities are sealed in
/// the log and opened for the reader; once the case's personal data is erased the code is empty,
/// the age in years absent and the vulnerabilities an empty list.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct ProfileOutput {
    pub survivor_code: String,
    pub sex: String,
    /// Age group code.
    pub age_group: String,
    /// Exact age, when recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_years: Option<i64>,
    /// Population group code.
    pub population_group: String,
    pub nationality: String,
    pub governorate: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub district: Option<String>,
    /// Language tag.
    pub language: String,
    /// Vulnerability codes.
    pub vulnerabilities: Vec<String>,
}

/// One consent of a case.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct ConsentOutput {
    /// Consent id.
    pub id: String,
    /// Categories covered; absent for any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    /// Organisations covered; absent for any in the pathway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organisations: Option<Vec<String>>,
    /// When it lapses (Unix ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    pub withdrawn: bool,
}

impl From<ConsentEntry> for ConsentOutput {
    fn from(c: ConsentEntry) -> Self {
        Self {
            id: c.id,
            categories: c.categories,
            organisations: c.organisations,
            expires_at: c.expires_at,
            withdrawn: c.withdrawn,
        }
    }
}

/// A case in a list: no personal data.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct CaseSummary {
    /// Case id.
    pub id: String,
    /// Owning organisation.
    pub owner_org: String,
    /// Responsible caseworker.
    pub caseworker: String,
    /// The other caseworkers the case is shared with (user ids).
    pub shared_with: Vec<String>,
    /// `open` or `closed`.
    pub status: String,
    /// Opened (Unix ms).
    pub opened_at: i64,
    /// Closed (Unix ms), while closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<i64>,
    pub profile: ProfileOutput,
    /// Consents that are not withdrawn.
    pub consents_active: i64,
    /// The personal data was erased.
    pub personal_data_erased: bool,
    /// Last change (Unix ms).
    pub updated_at: i64,
    /// Version (the `ETag`).
    pub version: i64,
}

/// A case with its consents and personal data.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaseDetail {
    /// The case.
    #[serde(flatten)]
    pub summary: CaseSummary,
    /// Close reason code, while closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub close_code: Option<String>,
    /// Every consent.
    pub consents: Vec<ConsentOutput>,
    /// Personal data, opened for the reader (the read is audited).
    pub personal: PersonalOutput,
    /// Stream position of the last event.
    pub position: i64,
}

/// A case as the reader sees it, the identifying facts opened (the caller has audited the read).
async fn summary(state: &AppState, row: &CaseRow) -> Result<CaseSummary, ApiError> {
    let facts = row_identifying(state, row).await?;
    Ok(CaseSummary {
        id: row.id.clone(),
        owner_org: row.owner_org.clone(),
        caseworker: row.caseworker.clone(),
        shared_with: split_list(&row.shared_with),
        status: row.status.clone(),
        opened_at: row.opened_at,
        closed_at: row.closed_at,
        profile: ProfileOutput {
            survivor_code: facts
                .as_ref()
                .map(|f| f.survivor_code.as_str().to_owned())
                .unwrap_or_default(),
            sex: row.sex.clone(),
            age_group: row.age_group.clone(),
            age_years: facts.as_ref().and_then(|f| f.age_years).map(i64::from),
            population_group: row.population_group.clone(),
            nationality: row.nationality.clone(),
            governorate: row.governorate.clone(),
            district: row.district.clone(),
            language: row.language.clone(),
            vulnerabilities: facts
                .iter()
                .flat_map(|f| f.vulnerabilities.iter().map(|v| v.code().to_owned()))
                .collect(),
        },
        consents_active: row.consents_active,
        personal_data_erased: row.personal_data_erased != 0,
        updated_at: row.updated_at,
        version: row.version,
    })
}

fn split_list(column: &str) -> Vec<String> {
    column.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// The case as its owner sees it in the read model, or 404 when it is missing or outside the
/// caller's scope (another organisation's, or for a caseworker a case neither assigned nor
/// shared to them).
pub async fn scoped_case(
    state: &AppState,
    principal: &Principal,
    id: CaseId,
    action: Action,
) -> Result<CaseRow, ApiError> {
    let row = state.models().case(id).await?.ok_or(ApiError::NotFound)?;
    require(principal, action, row_resource(principal, &row)?)?;
    Ok(row)
}

/// A case of the read model as the policy's resource, for the caller.
fn row_resource(principal: &Principal, row: &CaseRow) -> Result<Resource, ApiError> {
    let owner_org = OrgId::parse(&row.owner_org).map_err(ApiError::internal)?;
    let caseworker = UserId::parse(&row.caseworker).map_err(ApiError::internal)?;
    let shared_with = split_list(&row.shared_with)
        .iter()
        .map(|u| UserId::parse(u))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::internal)?;
    Ok(Resource::Case {
        owner_org,
        assigned: knows_case(&principal.actor, caseworker, &shared_with),
    })
}

/// A case of the log as the policy's resource, for the caller.
pub fn case_resource(principal: &Principal, case: &CaseState) -> Resource {
    Resource::Case {
        owner_org: case.owner_org,
        assigned: knows_case(
            &principal.actor,
            case.caseworker,
            &case.shared_with.iter().copied().collect::<Vec<_>>(),
        ),
    }
}

/// Whether the caller needs to know case `id` as the read model has it (a missing case: no).
pub async fn knows_case_in_model(state: &AppState, principal: &Principal, id: CaseId) -> Result<bool, ApiError> {
    match state.models().case(id).await? {
        Some(row) => Ok(matches!(
            row_resource(principal, &row)?,
            Resource::Case { assigned: true, .. }
        )),
        None => Ok(false),
    }
}

/// The case from the log, as fresh as need-to-know requires: a case's owner never changes, so
/// for a supervisor (who sees every case of the organisation) the cached state will do; its
/// responsible caseworker and shares do change, so for anyone else it is read from the log.
pub async fn case_for(state: &AppState, principal: &Principal, id: CaseId) -> Result<Option<CaseState>, ApiError> {
    let loaded = if principal.actor.has(wasl_domain::Role::Supervisor) {
        state.store().cached::<Case>(id).await?
    } else {
        state.store().load::<Case>(id).await?
    };
    Ok(loaded.state.state().cloned())
}

/// Checks the caller may change the case, from the store rather than the read model (which may
/// lag behind a case opened a moment ago).
async fn changeable_case(state: &AppState, principal: &Principal, id: CaseId) -> Result<(), ApiError> {
    let case = case_for(state, principal, id).await?.ok_or(ApiError::NotFound)?;
    require(principal, Action::CaseChange, case_resource(principal, &case))
}

fn case_path(id: &str) -> Result<CaseId, ApiError> {
    path_id(id, CaseId::parse)
}

/// Refuses to make `caseworker` responsible for a case of the caller's organisation unless
/// they can work on it: a local account of another organisation, without a casework role or
/// disabled is refused, and so is an id no account has unless users also sign in through OIDC
/// (whose users Wasl learns only when they sign in). The pointer `at` names the field.
fn assignable_caseworker(
    state: &AppState,
    principal: &Principal,
    caseworker: UserId,
    at: &str,
) -> Result<(), ApiError> {
    match state.accounts().user(caseworker) {
        Some(user) if user.org != principal.actor.org => {
            Err(ApiError::invalid(at, "is not a user of your organisation"))
        }
        Some(user) if user.disabled => Err(ApiError::invalid(at, "is disabled")),
        Some(user)
            if !user
                .roles
                .iter()
                .any(|r| matches!(r, wasl_domain::Role::Caseworker | wasl_domain::Role::Supervisor)) =>
        {
            Err(ApiError::invalid(at, "is not a caseworker or supervisor"))
        }
        Some(_) => Ok(()),
        None if caseworker == principal.actor.user || state.oidc().is_some() => Ok(()),
        None => Err(ApiError::invalid(at, "is not a user of your organisation")),
    }
}

/// A reason as a client writes it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonInput {
    /// The reason code.
    pub code: String,
    /// Explanation; required when the code is `other`. Sealed under the case's key.
    #[schema(max_length = 2000)]
    pub text: Option<String>,
}

/// Parses and seals the reason found at the JSON pointer `at` of the request body (`/reason`,
/// `/consent_override`, `/note`), naming its fields by their pointers.
pub async fn reason<C: ReasonCode>(
    state: &AppState,
    at: &str,
    input: &ReasonInput,
    parse: impl Fn(&str) -> Result<C, wasl_domain::ValidationError>,
    case: CaseId,
    event: EventId,
) -> Result<Reason<C>, ApiError> {
    let code = field(&format!("{at}/code"), &input.code, parse)?;
    let text = match input.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(text) if text.chars().count() > 2000 => {
            return Err(ApiError::invalid(
                format!("{at}/text"),
                "is longer than 2000 characters",
            ));
        }
        Some(text) => Some(state.vault().seal(case, event, PiiField::REASON_TEXT, text).await?),
        None => None,
    };
    Ok(Reason { code, text })
}

/// Open a case for a client of the caller's organisation.
#[utoipa::path(post, path = "/v1/cases", tag = "cases", operation_id = "open_case",
    request_body = OpenCaseRequest,
    params(CreateHeaders),
    responses((status = 201, description = "Opened", body = CommandAnswer),
        (status = 200, description = "A retry with the same Idempotency-Key: the original answer, `replayed: true`", body = CommandAnswer), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn open_case(
    State(state): State<AppState>,
    request: CommandRequest,
    Json(body): Json<OpenCaseRequest>,
) -> Result<Response, ApiError> {
    require(&request.principal, Action::CaseOpen, Resource::Collection)?;
    let profile = body.profile.parse("/profile")?;
    let caseworker = opt_field("/caseworker", body.caseworker.as_deref(), UserId::parse)?;
    if let Some(caseworker) = caseworker {
        assignable_caseworker(&state, &request.principal, caseworker, "/caseworker")?;
    }
    if let Some(personal) = &body.personal {
        personal.validate("/personal")?;
    }
    let id = request.new_id(CaseId::from_uuid)?;
    let personal = match &body.personal {
        Some(p) => p.seal(&state, id, request.event(0)).await?,
        None => wasl_domain::pii::PersonalData::default(),
    };
    let profile = state.vault().seal_profile(id, request.event(0), profile).await?;
    let command = CaseCommand::Open(OpenCase {
        case_id: id,
        caseworker,
        profile,
        personal,
    });
    // A new case has no version to match.
    let outcome = state
        .store()
        .execute_at::<Case>(id, &command, &request.meta, None)
        .await?;
    Ok(answered(id.to_string(), outcome, Some(format!("/v1/cases/{id}"))))
}

/// Filters of the case list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct CaseQuery {
    /// `open` or `closed`.
    pub status: Option<String>,
    /// Responsible caseworker (user id).
    pub caseworker: Option<String>,
    pub governorate: Option<String>,
    /// Exact survivor code.
    pub survivor_code: Option<String>,
    /// Most items (1–500).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next` cursor of the previous page.
    pub cursor: Option<String>,
}

/// List the cases the caller may see, most recently changed first: a supervisor's
/// organisation's cases, a caseworker's own (those they are responsible for).
#[utoipa::path(get, path = "/v1/cases", tag = "cases", operation_id = "list_cases",
    params(CaseQuery, ("Wasl-Min-Position" = Option<u64>, Header, description = "Wait until the read model reflects this stream position")),
    responses((status = 200, description = "A page of cases", body = PageOf<CaseSummary>), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_cases(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    headers: HeaderMap,
    Query(query): Query<CaseQuery>,
) -> Result<Json<PageOf<CaseSummary>>, ApiError> {
    let scope = case_scope(&principal.actor).ok_or(ApiError::Forbidden)?;
    let status = match query.status.as_deref() {
        None => None,
        Some("open") => Some(CaseStatus::Open),
        Some("closed") => Some(CaseStatus::Closed),
        Some(_) => return Err(ApiError::invalid("status", "must be open or closed")),
    };
    // A text that is not a survivor code matches no case; a code is looked up by its keyed
    // hash (and, for cases recorded before the codes were sealed, as it is).
    let code = query.survivor_code.as_deref().map(SurvivorCode::parse);
    let filter = CaseFilter {
        owner_org: Some(scope.org),
        caseworker: opt_field("caseworker", query.caseworker.as_deref(), UserId::parse)?,
        assigned_to: scope.assigned_to,
        status,
        governorate: opt_field("governorate", query.governorate.as_deref(), Governorate::parse)?,
        survivor_code: match &code {
            Some(Ok(code)) => Some(SurvivorCodeQuery {
                code: code.clone(),
                lookup: state.vault().survivor_code_lookup(code).await?,
            }),
            _ => None,
        },
    };
    caught_up(&state, min, READS).await?;
    let page = PageParams {
        limit: query.limit,
        cursor: query.cursor,
    }
    .request()?;
    let page = match code {
        Some(Err(_)) => Page::empty(),
        _ => state.models().cases(&filter, &page).await?,
    };
    // A page names clients by survivor code, age, place and vulnerabilities: it is recorded
    // in the access audit before it is sent, like a single case, and not sent if it cannot be.
    // A search by survivor code is recorded even when it finds nothing (the code itself is not
    // written down: it is the client's).
    if !page.items.is_empty() || query.survivor_code.is_some() {
        let ids: Vec<String> = page.items.iter().map(|row| row.id.clone()).collect();
        let action = if query.survivor_code.is_some() {
            "case.lookup"
        } else {
            "case.list"
        };
        state
            .audit()
            .record(
                &principal.actor,
                action,
                format!("cases/{}", ids.join(",")),
                "GET /v1/cases",
                &request_id(&headers),
            )
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    }
    let mut items = Vec::with_capacity(page.items.len());
    for row in &page.items {
        items.push(summary(&state, row).await?);
    }
    Ok(Json(PageOf { items, next: page.next }))
}

/// Read a case with its consents and personal data. The read is recorded in the access audit
/// before the answer is sent.
#[utoipa::path(get, path = "/v1/cases/{case_id}", tag = "cases", operation_id = "get_case",
    params(("case_id" = String, Path, description = "Case id"),
           ("Wasl-Min-Position" = Option<u64>, Header, description = "Wait until the read model reflects this stream position")),
    responses((status = 200, description = "The case; ETag is its version", body = CaseDetail), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn get_case(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    headers: HeaderMap,
    Path(case_id): Path<String>,
) -> Result<Response, ApiError> {
    let id = case_path(&case_id)?;
    caught_up(&state, min, READS).await?;
    let row = scoped_case(&state, &principal, id, Action::CaseRead).await?;
    state
        .audit()
        .record(
            &principal.actor,
            "case.read",
            format!("case/{id}"),
            "GET /v1/cases/{case_id}",
            &request_id(&headers),
        )
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let detail = case_detail(&state, &row, id).await?;
    Ok(with_etag(u64::try_from(row.version).unwrap_or(0), detail))
}

/// The case as a reader with the right to its personal data sees it; the caller has audited
/// the read.
async fn case_detail(state: &AppState, row: &CaseRow, id: CaseId) -> Result<CaseDetail, ApiError> {
    let consents: Vec<ConsentEntry> = serde_json::from_str(&row.consents).map_err(ApiError::internal)?;
    Ok(CaseDetail {
        summary: summary(state, row).await?,
        close_code: row.close_code.clone(),
        consents: consents.into_iter().map(ConsentOutput::from).collect(),
        personal: case_personal(state, id).await?,
        position: row.position,
    })
}

/// Everything Wasl holds about a case, for the person it is about.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaseExport {
    /// The case with its profile, consents and personal data.
    pub case: CaseDetail,
    /// Each referral made for the case, with its notes, the texts written on it and its
    /// timeline.
    pub referrals: Vec<ExportedReferral>,
}

/// A referral of an exported case.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ExportedReferral {
    /// The referral.
    #[serde(flatten)]
    pub referral: super::referrals::ReferralView,
    /// The notes for the receiving organisation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// The reason texts and follow-up notes written on it.
    pub texts: Vec<crate::personal::ReferralText>,
    /// Its timeline.
    pub history: Vec<super::referrals::HistoryEntry>,
}

/// Export everything Wasl holds about a case — profile, personal data, consents, every referral
/// with its notes, texts and timeline — for the person it is about (a supervisor of the owning
/// organisation). The export is recorded in the access audit first (`case.export`).
#[utoipa::path(get, path = "/v1/cases/{case_id}/export", tag = "cases", operation_id = "export_case",
    params(("case_id" = String, Path, description = "Case id"),
           ("Wasl-Min-Position" = Option<u64>, Header, description = "Wait until the read model reflects this stream position")),
    responses((status = 200, description = "The case and its referrals", body = CaseExport), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn export_case(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    headers: HeaderMap,
    Path(case_id): Path<String>,
) -> Result<axum::Json<CaseExport>, ApiError> {
    let id = case_path(&case_id)?;
    caught_up(&state, min, READS).await?;
    let row = scoped_case(&state, &principal, id, Action::CaseExport).await?;
    state
        .audit()
        .record(
            &principal.actor,
            "case.export",
            format!("case/{id}"),
            "GET /v1/cases/{case_id}/export",
            &request_id(&headers),
        )
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let case = case_detail(&state, &row, id).await?;
    let filter = ReferralFilter {
        from_org: OrgId::parse(&row.owner_org).ok(),
        case_id: Some(id),
        ..ReferralFilter::default()
    };
    let mut referrals = Vec::new();
    let mut after = None;
    loop {
        let page = state
            .models()
            .referrals(
                &filter,
                &PageRequest {
                    limit: 500,
                    after: after.take(),
                },
            )
            .await?;
        for referral in &page.items {
            let referral_id = ReferralId::parse(&referral.id).map_err(ApiError::internal)?;
            let (notes, texts) = crate::personal::referral_writing(&state, referral_id).await?;
            referrals.push(ExportedReferral {
                referral: super::referrals::view(referral, true),
                notes,
                texts,
                history: state
                    .models()
                    .history(referral_id)
                    .await?
                    .into_iter()
                    .map(super::referrals::HistoryEntry::from)
                    .collect(),
            });
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(axum::Json(CaseExport { case, referrals }))
}

/// Replace the client's profile.
#[utoipa::path(put, path = "/v1/cases/{case_id}/profile", tag = "cases", operation_id = "update_case_profile",
    request_body = ProfileInput,
    params(("case_id" = String, Path, description = "Case id"),
           CommandHeaders),
    responses((status = 200, description = "Changed", body = CommandAnswer), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn update_profile(
    State(state): State<AppState>,
    request: CommandRequest,
    Path(case_id): Path<String>,
    Json(body): Json<ProfileInput>,
) -> Result<Response, ApiError> {
    let id = case_path(&case_id)?;
    changeable_case(&state, &request.principal, id).await?;
    let profile = body.parse("")?;
    // Sealed values differ at every seal, so the sameness the domain checks is decided here,
    // in the clear, against the profile the log holds. An erased case has none: the domain
    // refuses the update.
    let profile = match logged_profile(&state, id).await? {
        Some(current) if current == profile => return Err(ApiError::Refused(DomainError::NothingToChange)),
        Some(_) => state.vault().seal_profile(id, request.event(0), profile).await?,
        None => profile,
    };
    let outcome = request
        .execute::<Case>(&state, id, &CaseCommand::UpdateProfile(profile))
        .await?;
    Ok(answered(id.to_string(), outcome, None))
}

/// Replace the client's personal data (sealed before it is stored).
#[utoipa::path(put, path = "/v1/cases/{case_id}/personal-data", tag = "cases", operation_id = "update_case_personal_data",
    request_body = PersonalInput,
    params(("case_id" = String, Path, description = "Case id"),
           CommandHeaders),
    responses((status = 200, description = "Changed", body = CommandAnswer), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn update_personal_data(
    State(state): State<AppState>,
    request: CommandRequest,
    Path(case_id): Path<String>,
    Json(body): Json<PersonalInput>,
) -> Result<Response, ApiError> {
    let id = case_path(&case_id)?;
    changeable_case(&state, &request.principal, id).await?;
    body.validate("")?;
    let personal = body.seal(&state, id, request.event(0)).await?;
    let outcome = request
        .execute::<Case>(&state, id, &CaseCommand::UpdatePersonalData(personal))
        .await?;
    Ok(answered(id.to_string(), outcome, None))
}

/// Make another caseworker responsible.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignRequest {
    /// The caseworker's user id.
    pub caseworker: String,
}

/// Make another caseworker responsible for the case.
#[utoipa::path(post, path = "/v1/cases/{case_id}/assign", tag = "cases", operation_id = "assign_case",
    request_body = AssignRequest,
    params(("case_id" = String, Path, description = "Case id"),
           CommandHeaders),
    responses((status = 200, description = "Assigned", body = CommandAnswer), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn assign_case(
    State(state): State<AppState>,
    request: CommandRequest,
    Path(case_id): Path<String>,
    Json(body): Json<AssignRequest>,
) -> Result<Response, ApiError> {
    let id = case_path(&case_id)?;
    changeable_case(&state, &request.principal, id).await?;
    let caseworker = field("/caseworker", &body.caseworker, UserId::parse)?;
    assignable_caseworker(&state, &request.principal, caseworker, "/caseworker")?;
    let outcome = request
        .execute::<Case>(&state, id, &CaseCommand::Assign { caseworker })
        .await?;
    Ok(answered(id.to_string(), outcome, None))
}

/// Share a case with another caseworker of the organisation.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"user": "test-example-colleague"}))]
pub struct ShareRequest {
    /// The caseworker: their user id, or the username of a local account of your organisation.
    pub user: String,
}

/// The user a share names (`at`: where, for the error): a user id, or a local account's
/// username; either must be a caseworker or supervisor of the caller's organisation, as for an
/// assignment.
fn share_user(state: &AppState, principal: &Principal, user: &str, at: &str) -> Result<UserId, ApiError> {
    let id = match UserId::parse(user) {
        Ok(id) => id,
        Err(_) => state
            .accounts()
            .user_by_name(user)
            .map(|u| u.id)
            .ok_or_else(|| ApiError::invalid(at, "is not a user of your organisation"))?,
    };
    assignable_caseworker(state, principal, id, at)?;
    Ok(id)
}

/// Checks the caller may share the case or take a share back: the case is theirs to change,
/// and they are a supervisor or its responsible caseworker (one it is shared with may not pass
/// it on: 403).
async fn shareable_case(state: &AppState, principal: &Principal, id: CaseId) -> Result<(), ApiError> {
    let case = case_for(state, principal, id).await?.ok_or(ApiError::NotFound)?;
    require(principal, Action::CaseChange, case_resource(principal, &case))?;
    if principal.actor.has(wasl_domain::Role::Supervisor) || principal.actor.user == case.caseworker {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

/// Share the case with another caseworker of the organisation (a supervisor or the responsible
/// caseworker): they then see and work on it as the responsible caseworker does, with its
/// referrals, until the share is taken back. Sharing twice with the same caseworker is refused
/// (`already_recorded`), and so is sharing with the responsible caseworker.
#[utoipa::path(post, path = "/v1/cases/{case_id}/shares", tag = "cases", operation_id = "share_case",
    request_body = ShareRequest,
    params(("case_id" = String, Path, description = "Case id"),
           CommandHeaders),
    responses((status = 200, description = "Shared", body = CommandAnswer), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn share_case(
    State(state): State<AppState>,
    request: CommandRequest,
    Path(case_id): Path<String>,
    Json(body): Json<ShareRequest>,
) -> Result<Response, ApiError> {
    let id = case_path(&case_id)?;
    shareable_case(&state, &request.principal, id).await?;
    let user = share_user(&state, &request.principal, &body.user, "/user")?;
    let outcome = request
        .execute::<Case>(&state, id, &CaseCommand::Share { user })
        .await?;
    Ok(answered(id.to_string(), outcome, None))
}

/// Take a share back (a supervisor or the responsible caseworker): the caseworker no longer
/// sees the case nor its referrals. A case not shared with them is refused
/// (`nothing_to_change`).
#[utoipa::path(delete, path = "/v1/cases/{case_id}/shares/{user}", tag = "cases", operation_id = "unshare_case",
    params(("case_id" = String, Path, description = "Case id"),
           ("user" = String, Path, description = "The caseworker's user id, or a local account's username"),
           CommandHeaders),
    responses((status = 200, description = "The share is taken back", body = CommandAnswer), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn unshare_case(
    State(state): State<AppState>,
    request: CommandRequest,
    Path((case_id, user)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = case_path(&case_id)?;
    shareable_case(&state, &request.principal, id).await?;
    // A share is taken back from anyone, even a user since disabled or moved away.
    let user = match UserId::parse(&user) {
        Ok(user) => user,
        Err(_) => state
            .accounts()
            .user_by_name(&user)
            .map(|u| u.id)
            .ok_or_else(|| ApiError::invalid("user", "is not a user of your organisation"))?,
    };
    let outcome = request
        .execute::<Case>(&state, id, &CaseCommand::Unshare { user })
        .await?;
    Ok(answered(id.to_string(), outcome, None))
}

/// What a consent covers.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentRequest {
    /// Service category codes covered; absent or null for any category.
    pub categories: Option<Vec<String>>,
    /// Organisation ids covered; absent or null for any organisation in the pathway.
    pub organisations: Option<Vec<String>>,
    /// When the consent lapses (Unix ms); absent for no expiry.
    pub expires_at: Option<i64>,
}

impl ConsentRequest {
    fn scope(&self) -> Result<ConsentScope, ApiError> {
        let categories = match &self.categories {
            None => Scope::Any,
            Some(codes) => {
                let parsed = codes
                    .iter()
                    .enumerate()
                    .map(|(i, c)| field(&format!("/categories/{i}"), c, ServiceCategory::parse))
                    .collect::<Result<Vec<_>, _>>()?;
                Scope::only(parsed, "categories").map_err(|e| ApiError::invalid_field("/categories", &e))?
            }
        };
        let organisations = match &self.organisations {
            None => Scope::Any,
            Some(ids) => {
                let parsed = ids
                    .iter()
                    .enumerate()
                    .map(|(i, o)| field(&format!("/organisations/{i}"), o, OrgId::parse))
                    .collect::<Result<Vec<_>, _>>()?;
                Scope::only(parsed, "organisations").map_err(|e| ApiError::invalid_field("/organisations", &e))?
            }
        };
        Ok(ConsentScope {
            categories,
            organisations,
            expires_at: self.expires_at.map(Timestamp::from_unix_millis),
        })
    }
}

/// Record the client's consent to be referred.
#[utoipa::path(post, path = "/v1/cases/{case_id}/consents", tag = "cases", operation_id = "give_consent",
    request_body = ConsentRequest,
    params(("case_id" = String, Path, description = "Case id"),
           CommandHeaders),
    responses((status = 201, description = "Recorded; `id` is the consent's id", body = CommandAnswer),
        (status = 200, description = "A retry with the same Idempotency-Key: the original answer, `replayed: true`", body = CommandAnswer), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn give_consent(
    State(state): State<AppState>,
    request: CommandRequest,
    Path(case_id): Path<String>,
    Json(body): Json<ConsentRequest>,
) -> Result<Response, ApiError> {
    let id = case_path(&case_id)?;
    changeable_case(&state, &request.principal, id).await?;
    let scope = body.scope()?;
    let consent_id = request.new_id(ConsentId::from_uuid)?;
    let outcome = request
        .execute::<Case>(&state, id, &CaseCommand::GiveConsent { consent_id, scope })
        .await?;
    Ok(answered(
        consent_id.to_string(),
        outcome,
        Some(format!("/v1/cases/{id}")),
    ))
}

/// Narrow a consent (the new scope must lie within the old one).
#[utoipa::path(post, path = "/v1/cases/{case_id}/consents/{consent_id}/narrow", tag = "cases", operation_id = "narrow_consent",
    request_body = ConsentRequest,
    params(("case_id" = String, Path, description = "Case id"), ("consent_id" = String, Path, description = "Consent id"),
           CommandHeaders),
    responses((status = 200, description = "Narrowed", body = CommandAnswer), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn narrow_consent(
    State(state): State<AppState>,
    request: CommandRequest,
    Path((case_id, consent_id)): Path<(String, String)>,
    Json(body): Json<ConsentRequest>,
) -> Result<Response, ApiError> {
    let id = case_path(&case_id)?;
    let consent_id = path_id(&consent_id, ConsentId::parse)?;
    changeable_case(&state, &request.principal, id).await?;
    let scope = body.scope()?;
    let outcome = request
        .execute::<Case>(&state, id, &CaseCommand::NarrowConsent { consent_id, scope })
        .await?;
    Ok(answered(id.to_string(), outcome, None))
}

/// Nothing to send.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// Withdraw a consent.
///
/// - The follow-up service cancels every open referral that rested on it (reason
///   `consent_withdrawn`), within seconds.
/// - Each receiving organisation gets that referral in its feed (NATS or webhook) with
///   `redact: true`: it must delete what it holds about it.
/// - Referrals that rested on another consent, and closed ones, do not change.
#[utoipa::path(post, path = "/v1/cases/{case_id}/consents/{consent_id}/withdraw", tag = "cases", operation_id = "withdraw_consent",
    params(("case_id" = String, Path, description = "Case id"), ("consent_id" = String, Path, description = "Consent id"),
           CommandHeaders),
    responses((status = 200, description = "Withdrawn", body = CommandAnswer), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn withdraw_consent(
    State(state): State<AppState>,
    request: CommandRequest,
    Path((case_id, consent_id)): Path<(String, String)>,
    _: NoBody,
) -> Result<Response, ApiError> {
    let id = case_path(&case_id)?;
    let consent_id = path_id(&consent_id, ConsentId::parse)?;
    changeable_case(&state, &request.principal, id).await?;
    let outcome = request
        .execute::<Case>(&state, id, &CaseCommand::WithdrawConsent { consent_id })
        .await?;
    Ok(answered(id.to_string(), outcome, None))
}

/// Close a case.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct CloseRequest {
    pub reason: ReasonInput,
    /// Cancel the case's open referrals with the close, instead of refusing to close.
    #[serde(default)]
    pub cancel_open_referrals: bool,
}

/// Close the case.
///
/// - With open referrals the close is refused (`open_referrals`) unless
///   `cancel_open_referrals` is set.
/// - With `cancel_open_referrals` the follow-up service cancels each open referral (reason
///   `case_closed`) within seconds, and its receiving organisation gets the cancellation in its
///   feed.
#[utoipa::path(post, path = "/v1/cases/{case_id}/close", tag = "cases", operation_id = "close_case",
    request_body = CloseRequest,
    params(("case_id" = String, Path, description = "Case id"),
           CommandHeaders),
    responses((status = 200, description = "Closed", body = CommandAnswer), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn close_case(
    State(state): State<AppState>,
    request: CommandRequest,
    Path(case_id): Path<String>,
    Json(body): Json<CloseRequest>,
) -> Result<Response, ApiError> {
    let id = case_path(&case_id)?;
    changeable_case(&state, &request.principal, id).await?;
    let reason = reason(&state, "/reason", &body.reason, CloseCode::parse, id, request.event(0)).await?;
    let open_referrals = open_referrals_of(&state, id).await?;
    let command = CaseCommand::Close(CloseCase {
        reason,
        open_referrals,
        cancel_open_referrals: body.cancel_open_referrals,
    });
    let outcome = request.execute::<Case>(&state, id, &command).await?;
    Ok(answered(id.to_string(), outcome, None))
}

/// Erase a case's personal data.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": {"code": "client_request"}}))]
pub struct EraseRequest {
    /// Why: `client_request`, `legal_order`, `recorded_in_error`, `retention_expired` or
    /// `other` (with text).
    pub reason: ReasonInput,
}

/// Erase the case's personal data at the person's request (a supervisor of the owning
/// organisation): the erasure is recorded in the log, then the case's key is destroyed, so every
/// sealed value of the case — name, contacts, notes, reason texts — reads "erased" everywhere
/// from then on, and each organisation that received a referral of the case is told to delete
/// what it holds. It cannot be undone. Sending it again finishes an erasure whose key could not
/// be destroyed the first time (503).
#[utoipa::path(post, path = "/v1/cases/{case_id}/erase", tag = "cases", operation_id = "erase_case",
    request_body = EraseRequest,
    params(("case_id" = String, Path, description = "Case id"),
           CommandHeaders),
    responses((status = 200, description = "Erased", body = CommandAnswer), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn erase_case(
    State(state): State<AppState>,
    request: CommandRequest,
    Path(case_id): Path<String>,
    Json(body): Json<EraseRequest>,
) -> Result<Response, ApiError> {
    let id = case_path(&case_id)?;
    let case = case_for(&state, &request.principal, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    require(
        &request.principal,
        Action::CaseErase,
        case_resource(&request.principal, &case),
    )?;
    let erased_already = matches!(
        state
            .vault()
            .key(id)
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?,
        wasl_vault::KeyState::Erased
    );
    let reason = if erased_already {
        // Nothing can be sealed under a destroyed key: the code alone, for the retry below.
        Reason::coded(field("/reason/code", &body.reason.code, EraseCode::parse)?)
    } else {
        reason(&state, "/reason", &body.reason, EraseCode::parse, id, request.event(0)).await?
    };
    let command = CaseCommand::ErasePersonalData { reason };
    let outcome = match request.execute::<Case>(&state, id, &command).await {
        Ok(outcome) => outcome,
        // Recorded before: make sure the key is gone too, and answer as a replay.
        Err(ApiError::Refused(wasl_domain::DomainError::AlreadyRecorded)) => {
            let loaded = state.store().load::<Case>(id).await?;
            wasl_store::CommandOutcome {
                version: loaded.version,
                position: loaded.last_sequence,
                replayed: true,
            }
        }
        Err(error) => return Err(error),
    };
    state.vault().erase(id).await.map_err(|e| {
        ApiError::Unavailable(format!(
            "the erasure is recorded but the key is not destroyed yet; send the request again: {e}"
        ))
    })?;
    Ok(answered(id.to_string(), outcome, None))
}

/// The case's referrals that are still open, from a read model that has caught up with
/// everything in the log now, so a referral made a moment ago is not missed.
async fn open_referrals_of(state: &AppState, case: CaseId) -> Result<Vec<ReferralId>, ApiError> {
    let mut stream = state.store().stream().clone();
    let last = stream
        .info()
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
        .state
        .last_sequence;
    state
        .models()
        .wait_for(&[Projection::Referrals], last, state.limits().max_wait)
        .await?;
    let filter = ReferralFilter {
        case_id: Some(case),
        statuses: OPEN_STATUSES.to_vec(),
        ..ReferralFilter::default()
    };
    let mut out = Vec::new();
    let mut page = PageRequest::first(wasl_projections::query::MAX_LIMIT);
    loop {
        let found = state.models().referrals(&filter, &page).await?;
        for row in &found.items {
            out.push(ReferralId::parse(&row.id).map_err(ApiError::internal)?);
        }
        match found.next {
            Some(next) => page = PageRequest::continuing(wasl_projections::query::MAX_LIMIT, next),
            None => return Ok(out),
        }
    }
}

/// Reopen a case.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReopenRequest {
    /// Why, optionally (sealed).
    #[schema(max_length = 2000)]
    pub reason: Option<String>,
}

/// Reopen a closed case.
#[utoipa::path(post, path = "/v1/cases/{case_id}/reopen", tag = "cases", operation_id = "reopen_case",
    request_body = ReopenRequest,
    params(("case_id" = String, Path, description = "Case id"),
           CommandHeaders),
    responses((status = 200, description = "Reopened", body = CommandAnswer), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn reopen_case(
    State(state): State<AppState>,
    request: CommandRequest,
    Path(case_id): Path<String>,
    Json(body): Json<ReopenRequest>,
) -> Result<Response, ApiError> {
    let id = case_path(&case_id)?;
    changeable_case(&state, &request.principal, id).await?;
    let reason = match body.reason.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(text) if text.chars().count() > 2000 => {
            return Err(ApiError::invalid("/reason", "is longer than 2000 characters"));
        }
        Some(text) => Some(
            state
                .vault()
                .seal(id, request.event(0), PiiField::REASON_TEXT, text)
                .await?,
        ),
        None => None,
    };
    let outcome = request
        .execute::<Case>(&state, id, &CaseCommand::Reopen { reason })
        .await?;
    Ok(answered(id.to_string(), outcome, None))
}
