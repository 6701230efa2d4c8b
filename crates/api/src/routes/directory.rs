//! The service directory: search services, read organisations, register an organisation, add
//! and change its services, and update their availability and capacity.

use super::{PageOf, PageParams, Problems, caught_up, field, path_id, require};
use crate::auth::Principal;
use crate::command::{CommandHeaders, CommandRequest, CreateHeaders};
use crate::error::ApiError;
use crate::http::{CommandAnswer, Json, MinPosition, Path, Query, answered, with_etag};
use crate::policy::{Action, Resource};
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wasl_domain::case::Scope;
use wasl_domain::catalogue::ServiceCategory;
use wasl_domain::client::{Language, Sex};
use wasl_domain::directory::{DisplayName, Eligibility, OrgKind, Organisation, OrganisationCommand, ServiceSpec};
use wasl_domain::geo::{District, Governorate, Location};
use wasl_domain::ids::{OrgId, ServiceId};
use wasl_projections::Projection;
use wasl_projections::query::DirectorySearch;
use wasl_projections::rows::directory::{OrganisationRow, ServiceRow};

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search_services))
        .routes(routes!(register_organisation, list_organisations))
        .routes(routes!(get_organisation))
        .routes(routes!(add_service))
        .routes(routes!(update_service))
        .routes(routes!(set_availability))
}

const READS: &[Projection] = &[Projection::Directory];

/// A service as the directory lists it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct ServiceView {
    /// Service id.
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub category: String,
    /// Areas served: governorate codes, or `governorate/district`.
    pub areas: Vec<String>,
    /// Language tags.
    pub languages: Vec<String>,
    /// Sex codes admitted; empty for any.
    pub sexes: Vec<String>,
    /// Youngest age admitted.
    pub min_age: i64,
    /// Oldest age admitted.
    pub max_age: i64,
    /// Taking referrals now.
    pub accepting: bool,
    /// Places free, when the organisation says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<i64>,
    pub retired: bool,
}

fn list(column: &str) -> Vec<String> {
    column.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

fn service_view(row: &ServiceRow) -> ServiceView {
    ServiceView {
        id: row.id.clone(),
        org_id: row.org_id.clone(),
        name: row.name.clone(),
        category: row.category.clone(),
        areas: list(&row.areas),
        languages: list(&row.languages),
        sexes: if row.sexes == "any" {
            Vec::new()
        } else {
            list(&row.sexes)
        },
        min_age: row.min_age,
        max_age: row.max_age,
        accepting: row.accepting != 0,
        capacity: row.capacity,
        retired: row.retired != 0,
    }
}

/// A service found by a search, with its organisation.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct ServiceListingView {
    pub service: ServiceView,
    /// The organisation's name.
    pub org_name: String,
    /// The organisation's kind.
    pub org_kind: String,
}

/// What to search for.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct ServiceQuery {
    pub category: Option<String>,
    pub governorate: Option<String>,
    /// Language tag.
    pub language: Option<String>,
    /// Only services taking referrals now.
    #[serde(default)]
    pub accepting: bool,
    /// Retired services too.
    #[serde(default)]
    pub include_retired: bool,
    /// Most items (1–500).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next` cursor of the previous page.
    pub cursor: Option<String>,
}

/// Search the directory's services.
#[utoipa::path(get, path = "/v1/directory/services", tag = "directory", operation_id = "search_services",
    params(ServiceQuery, ("Wasl-Min-Position" = Option<u64>, Header, description = "Wait until the read model reflects this stream position")),
    responses((status = 200, description = "A page of services", body = PageOf<ServiceListingView>), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn search_services(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Query(query): Query<ServiceQuery>,
) -> Result<Json<PageOf<ServiceListingView>>, ApiError> {
    require(&principal, Action::DirectoryRead, Resource::Collection)?;
    let search = DirectorySearch {
        category: query
            .category
            .as_deref()
            .map(|c| field("category", c, ServiceCategory::parse))
            .transpose()?,
        governorate: query
            .governorate
            .as_deref()
            .map(|g| field("governorate", g, Governorate::parse))
            .transpose()?,
        language: query.language.clone(),
        accepting_only: query.accepting,
        include_retired: query.include_retired,
    };
    caught_up(&state, min, READS).await?;
    let page = PageParams {
        limit: query.limit,
        cursor: query.cursor,
    }
    .request()?;
    let page = state.models().search_services(&search, &page).await?;
    Ok(Json(PageOf {
        items: page
            .items
            .into_iter()
            .map(|l| ServiceListingView {
                service: service_view(&l.service),
                org_name: l.org_name,
                org_kind: l.org_kind,
            })
            .collect(),
        next: page.next,
    }))
}

/// An organisation in the directory.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct OrganisationView {
    pub id: String,
    pub name: String,
    pub kind: String,
    /// Registered (Unix ms).
    pub registered_at: i64,
    /// Version (the `ETag`).
    pub version: i64,
}

fn organisation_view(row: &OrganisationRow) -> OrganisationView {
    OrganisationView {
        id: row.id.clone(),
        name: row.name.clone(),
        kind: row.kind.clone(),
        registered_at: row.registered_at,
        version: row.version,
    }
}

/// The organisations, by name.
#[utoipa::path(get, path = "/v1/organisations", tag = "directory", operation_id = "list_organisations",
    params(PageParams, ("Wasl-Min-Position" = Option<u64>, Header, description = "Wait until the read model reflects this stream position")),
    responses((status = 200, description = "A page of organisations", body = PageOf<OrganisationView>), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_organisations(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Query(page): Query<PageParams>,
) -> Result<Json<PageOf<OrganisationView>>, ApiError> {
    require(&principal, Action::DirectoryRead, Resource::Collection)?;
    caught_up(&state, min, READS).await?;
    let page = state.models().organisations(&page.request()?).await?;
    Ok(Json(PageOf {
        items: page.items.iter().map(organisation_view).collect(),
        next: page.next,
    }))
}

/// An organisation with its services.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct OrganisationDetail {
    #[serde(flatten)]
    pub organisation: OrganisationView,
    pub services: Vec<ServiceView>,
}

/// Read an organisation and its services.
#[utoipa::path(get, path = "/v1/organisations/{org_id}", tag = "directory", operation_id = "get_organisation",
    params(("org_id" = String, Path, description = "Organisation id"),
           ("Wasl-Min-Position" = Option<u64>, Header, description = "Wait until the read model reflects this stream position")),
    responses((status = 200, description = "The organisation; ETag is its version", body = OrganisationDetail), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn get_organisation(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Path(org_id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&org_id, OrgId::parse)?;
    require(&principal, Action::DirectoryRead, Resource::Organisation(id))?;
    caught_up(&state, min, READS).await?;
    let (org, services) = state.models().organisation(id).await?.ok_or(ApiError::NotFound)?;
    let detail = OrganisationDetail {
        organisation: organisation_view(&org),
        services: services.iter().map(service_view).collect(),
    };
    Ok(with_etag(u64::try_from(org.version).unwrap_or(0), detail))
}

/// Register an organisation.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The organisation's id; generated when absent (send one to register a known partner).
    pub id: Option<String>,
    /// Display name.
    #[schema(example = "Test Health Partner")]
    pub name: String,
    /// Kind: `un_agency`, `international_ngo`, `national_ngo`, `government` or `other`.
    #[schema(example = "national_ngo")]
    pub kind: String,
}

/// Register an organisation in the directory (a coordinator, or an admin for their own).
/// The change is recorded in the access audit (`directory.register`) before it is made; if it cannot be,
/// nothing changes (503).
#[utoipa::path(post, path = "/v1/organisations", tag = "directory", operation_id = "register_organisation",
    request_body = RegisterRequest,
    params(CreateHeaders),
    responses((status = 201, description = "Registered", body = CommandAnswer),
        (status = 200, description = "A retry with the same Idempotency-Key: the original answer, `replayed: true`", body = CommandAnswer), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn register_organisation(
    State(state): State<AppState>,
    request: CommandRequest,
    headers: HeaderMap,
    Json(body): Json<RegisterRequest>,
) -> Result<Response, ApiError> {
    require(&request.principal, Action::DirectoryMaintain, Resource::Collection)?;
    let id = match &body.id {
        Some(text) => field("/id", text, OrgId::parse)?,
        None => request.new_id(OrgId::from_uuid)?,
    };
    require(
        &request.principal,
        Action::DirectoryMaintain,
        Resource::Organisation(id),
    )?;
    let command = OrganisationCommand::Register {
        org_id: id,
        name: field("/name", &body.name, DisplayName::parse)?,
        kind: field("/kind", &body.kind, OrgKind::parse)?,
    };
    audit_change(
        &state,
        &request,
        &headers,
        "directory.register",
        format!("organisation/{id}"),
        "POST /v1/organisations",
    )
    .await?;
    // A new organisation has no version to match.
    let outcome = state
        .store()
        .execute_at::<Organisation>(id, &command, &request.meta, None)
        .await?;
    Ok(answered(
        id.to_string(),
        outcome,
        Some(format!("/v1/organisations/{id}")),
    ))
}

/// A service's description.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct ServiceRequest {
    #[schema(example = "Test clinical management of rape")]
    pub name: String,
    #[schema(example = "health")]
    pub category: String,
    /// Areas served: governorate codes (`IQ-NI`) or district codes.
    pub areas: Vec<String>,
    /// Language tags.
    pub languages: Vec<String>,
    /// Sex codes admitted; absent for any.
    pub sexes: Option<Vec<String>>,
    /// Youngest age admitted (default 0).
    pub min_age: Option<u8>,
    /// Oldest age admitted (default 120).
    pub max_age: Option<u8>,
}

impl ServiceRequest {
    fn spec(&self) -> Result<ServiceSpec, ApiError> {
        let areas = self
            .areas
            .iter()
            .enumerate()
            .map(|(i, a)| match Governorate::parse(a) {
                Ok(g) => Ok(Location::governorate_only(g)),
                Err(_) => {
                    let at = format!("/areas/{i}");
                    let district = field(&at, a, District::parse)?;
                    Location::new(district.governorate(), Some(district)).map_err(|e| ApiError::invalid_field(&at, &e))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let languages = self
            .languages
            .iter()
            .enumerate()
            .map(|(i, l)| field(&format!("/languages/{i}"), l, Language::parse))
            .collect::<Result<Vec<_>, _>>()?;
        let sexes = match &self.sexes {
            None => Scope::Any,
            Some(codes) => {
                let parsed = codes
                    .iter()
                    .enumerate()
                    .map(|(i, s)| field(&format!("/sexes/{i}"), s, Sex::parse))
                    .collect::<Result<Vec<_>, _>>()?;
                Scope::only(parsed, "sexes").map_err(|e| ApiError::invalid_field("/sexes", &e))?
            }
        };
        Ok(ServiceSpec {
            name: field("/name", &self.name, DisplayName::parse)?,
            category: field("/category", &self.category, ServiceCategory::parse)?,
            areas,
            languages,
            eligibility: Eligibility {
                sexes,
                min_age: self.min_age.unwrap_or(0),
                max_age: self.max_age.unwrap_or(120),
            },
        })
    }
}

/// Records a change to the directory in the access audit (`directory.register`,
/// `service.add`, `service.change`, `service.availability`): who, which organisation and
/// service, what kind of change — never the new values. The record is written after the change
/// is allowed and its request is valid, and before its event is appended: if the audit cannot
/// be written, the change is refused (503) and nothing changes. A change refused after that
/// (an `If-Match` that no longer holds, a rule of the directory) leaves its record: the audit
/// then shows an attempt that changed nothing.
async fn audit_change(
    state: &AppState,
    request: &CommandRequest,
    headers: &HeaderMap,
    action: &str,
    resource: String,
    route: &str,
) -> Result<(), ApiError> {
    state
        .audit()
        .record(
            &request.principal.actor,
            action,
            resource,
            route,
            &super::request_id(headers),
        )
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))
}

async fn maintain(state: &AppState, principal: &Principal, id: OrgId, action: Action) -> Result<(), ApiError> {
    require(principal, action, Resource::Organisation(id))?;
    let loaded = state.store().load::<Organisation>(id).await?;
    loaded.state.state().map(|_| ()).ok_or(ApiError::NotFound)
}

/// Add a service to an organisation.
/// The change is recorded in the access audit (`service.add`) before it is made; if it cannot be,
/// nothing changes (503).
#[utoipa::path(post, path = "/v1/organisations/{org_id}/services", tag = "directory", operation_id = "add_service",
    request_body = ServiceRequest,
    params(("org_id" = String, Path, description = "Organisation id"),
           CommandHeaders),
    responses((status = 201, description = "Added; `id` is the service's id", body = CommandAnswer),
        (status = 200, description = "A retry with the same Idempotency-Key: the original answer, `replayed: true`", body = CommandAnswer), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn add_service(
    State(state): State<AppState>,
    request: CommandRequest,
    headers: HeaderMap,
    Path(org_id): Path<String>,
    Json(body): Json<ServiceRequest>,
) -> Result<Response, ApiError> {
    let id = path_id(&org_id, OrgId::parse)?;
    maintain(&state, &request.principal, id, Action::ServiceChange).await?;
    let spec = body.spec()?;
    let service_id = request.new_id(ServiceId::from_uuid)?;
    audit_change(
        &state,
        &request,
        &headers,
        "service.add",
        format!("organisation/{id}/service/{service_id}"),
        "POST /v1/organisations/{org_id}/services",
    )
    .await?;
    let command = OrganisationCommand::AddService { service_id, spec };
    let outcome = request.execute::<Organisation>(&state, id, &command).await?;
    Ok(answered(
        service_id.to_string(),
        outcome,
        Some(format!("/v1/organisations/{id}")),
    ))
}

/// Replace a service's description.
/// The change is recorded in the access audit (`service.change`) before it is made; if it cannot be,
/// nothing changes (503).
#[utoipa::path(put, path = "/v1/organisations/{org_id}/services/{service_id}", tag = "directory", operation_id = "update_service",
    request_body = ServiceRequest,
    params(("org_id" = String, Path, description = "Organisation id"), ("service_id" = String, Path, description = "Service id"),
           CommandHeaders),
    responses((status = 200, description = "Changed", body = CommandAnswer), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn update_service(
    State(state): State<AppState>,
    request: CommandRequest,
    headers: HeaderMap,
    Path((org_id, service_id)): Path<(String, String)>,
    Json(body): Json<ServiceRequest>,
) -> Result<Response, ApiError> {
    let id = path_id(&org_id, OrgId::parse)?;
    let service_id = path_id(&service_id, ServiceId::parse)?;
    maintain(&state, &request.principal, id, Action::ServiceChange).await?;
    let spec = body.spec()?;
    audit_change(
        &state,
        &request,
        &headers,
        "service.change",
        format!("organisation/{id}/service/{service_id}"),
        "PUT /v1/organisations/{org_id}/services/{service_id}",
    )
    .await?;
    let command = OrganisationCommand::UpdateService { service_id, spec };
    let outcome = request.execute::<Organisation>(&state, id, &command).await?;
    Ok(answered(id.to_string(), outcome, None))
}

/// Availability of a service.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityRequest {
    /// Taking referrals now.
    pub accepting: bool,
    /// Places free, if the organisation wants to say.
    pub capacity: Option<u32>,
}

/// Update whether a service takes referrals and how many places it has.
/// The change is recorded in the access audit (`service.availability`) before it is made; if it cannot be,
/// nothing changes (503).
#[utoipa::path(put, path = "/v1/organisations/{org_id}/services/{service_id}/availability", tag = "directory", operation_id = "set_service_availability",
    request_body = AvailabilityRequest,
    params(("org_id" = String, Path, description = "Organisation id"), ("service_id" = String, Path, description = "Service id"),
           CommandHeaders),
    responses((status = 200, description = "Changed", body = CommandAnswer), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn set_availability(
    State(state): State<AppState>,
    request: CommandRequest,
    headers: HeaderMap,
    Path((org_id, service_id)): Path<(String, String)>,
    Json(body): Json<AvailabilityRequest>,
) -> Result<Response, ApiError> {
    let id = path_id(&org_id, OrgId::parse)?;
    let service_id = path_id(&service_id, ServiceId::parse)?;
    maintain(&state, &request.principal, id, Action::AvailabilityChange).await?;
    audit_change(
        &state,
        &request,
        &headers,
        "service.availability",
        format!("organisation/{id}/service/{service_id}"),
        "PUT /v1/organisations/{org_id}/services/{service_id}/availability",
    )
    .await?;
    let command = OrganisationCommand::SetAvailability {
        service_id,
        accepting: body.accepting,
        capacity: body.capacity,
    };
    let outcome = request.execute::<Organisation>(&state, id, &command).await?;
    Ok(answered(id.to_string(), outcome, None))
}
