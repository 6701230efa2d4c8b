//! Signing in and out, `/v1/me` and the caller's notification address, and an admin's users and
//! partner API tokens.

use super::{PageOf, Problems, field, now, path_id, require};
use crate::auth::accounts::{
    AccountError, NotificationSettings, RoleRequest, Token, User, needs_second_admin, normalise_username, valid_email,
};
use crate::auth::session::COOKIE;
use crate::auth::{Principal, Via, password};
use crate::error::ApiError;
use crate::http::{Json, Path};
use crate::policy::{Action, Resource};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wasl_domain::Role;
use wasl_domain::ids::UserId;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(my_notifications, set_my_notifications))
        .routes(routes!(create_user, list_users))
        .routes(routes!(set_roles))
        .routes(routes!(list_role_requests))
        .routes(routes!(approve_role_request))
        .routes(routes!(reject_role_request))
        .routes(routes!(disable_user))
        .routes(routes!(issue_token, list_tokens))
        .routes(routes!(revoke_token))
        .routes(routes!(read_audit))
}

/// Filters of the access audit.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only reads by this user (id).
    pub user: Option<String>,
    /// Only reads of records naming this id (a case, a referral).
    pub record: Option<String>,
    /// Only from this time on (Unix ms).
    pub from_ms: Option<i64>,
    /// Only before this time (Unix ms).
    pub to_ms: Option<i64>,
    /// Records to scan at most for this page (1–500, default 50).
    pub limit: Option<u32>,
    /// Pass `next` of the previous page.
    pub cursor: Option<String>,
}

/// The access audit of the organisation (admins): who of its users read which record, when and
/// why, oldest first. Reading it is audited too (`audit.read`).
#[utoipa::path(get, path = "/v1/audit", tag = "accounts", operation_id = "read_audit",
    params(AuditQuery),
    responses((status = 200, description = "A page of access records", body = PageOf<crate::audit::AccessRecord>), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn read_audit(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    crate::http::Query(query): crate::http::Query<AuditQuery>,
) -> Result<Json<PageOf<crate::audit::AccessRecord>>, ApiError> {
    require(&principal, Action::AuditRead, Resource::Collection)?;
    let limit = match query.limit {
        None => 50,
        Some(n @ 1..=500) => n as usize,
        Some(_) => return Err(ApiError::invalid("limit", "must be 1 to 500")),
    };
    let after = match query.cursor.as_deref() {
        None => 0,
        Some(text) => text
            .parse::<u64>()
            .map_err(|_| ApiError::invalid("cursor", "is not a cursor this list gave out"))?,
    };
    let user = match query.user.as_deref() {
        Some(text) => Some(field("user", text, UserId::parse)?.to_string()),
        None => None,
    };
    let filter = crate::audit::RecordFilter {
        user,
        // An organisation's admin sees the reads of its own users.
        org: Some(principal.actor.org.to_string()),
        record: query.record.clone(),
        from_ms: query.from_ms,
        to_ms: query.to_ms,
    };
    state
        .audit()
        .record(
            &principal.actor,
            "audit.read",
            "audit".to_owned(),
            "GET /v1/audit",
            &crate::routes::request_id(&headers),
        )
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let (items, next) = crate::audit::records_page(state.audit().stream(), after, limit, &filter)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(Json(PageOf {
        items,
        next: next.map(|n| n.to_string()),
    }))
}

impl From<AccountError> for ApiError {
    fn from(err: AccountError) -> Self {
        match err {
            AccountError::UsernameTaken => ApiError::invalid("/username", "is taken"),
            AccountError::NotFound => ApiError::NotFound,
            AccountError::InvalidEmail => ApiError::invalid("/email", "is not an email address Wasl can send to"),
            AccountError::Unavailable(reason) => ApiError::Unavailable(reason),
            corrupt @ AccountError::Corrupt { .. } => ApiError::internal(corrupt),
        }
    }
}

/// Sign in with a local account.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct LoginRequest {
    /// Login name.
    pub username: String,
    #[schema(format = Password)]
    pub password: String,
}

/// Who is signed in.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct MeView {
    /// User id (for a token: the token's id).
    pub user_id: String,
    pub org: String,
    pub roles: Vec<String>,
    /// `session`, `token` or `oidc`.
    pub authenticated_by: String,
    /// For a session: the token to send as `X-CSRF-Token` with every change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

fn roles_of(roles: &[Role]) -> Vec<String> {
    roles.iter().map(|r| r.code().to_owned()).collect()
}

/// How long a sign-in waits for its turn to have its password checked.
const PASSWORD_CHECK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Signs in: sets the session cookie and answers with the CSRF token. After five failures in
/// a row a login name must wait, doubling from 1 s up to 15 min; after twenty failures from one
/// client address (whatever the names) so must that address; after 300 failed sign-ins across
/// everyone within a minute, every sign-in waits for the minute to pass. While the server
/// checks its most passwords at once, a sign-in that gets no turn within 5 s is answered 429.
#[utoipa::path(post, path = "/v1/login", tag = "accounts", operation_id = "login",
    request_body = LoginRequest,
    responses((status = 200, description = "Signed in; the session cookie is set", body = MeView), Problems))]
pub async fn login(
    State(state): State<AppState>,
    connection: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    Json(body): Json<LoginRequest>,
) -> Result<Response, ApiError> {
    let username = normalise_username(&body.username);
    let client = connection.map(|c| c.0.0.ip());
    if let Some(throttled) = state.sessions().locked_for(&username, client) {
        wasl_telemetry::metrics::sign_in_throttled(throttled.why);
        return Err(ApiError::TooManyAttempts {
            retry_after: throttled.retry_after,
        });
    }
    let user = state.accounts().user_by_name(&username).filter(|u| !u.disabled);
    let stored = user
        .as_ref()
        .map_or(password::decoy(), |u| u.password_hash.as_str())
        .to_owned();
    // At most a few passwords are checked at once (19 MiB each), on threads of their own; a
    // sign-in that cannot get a turn within a few seconds is asked to come back.
    let Some(matches) = state
        .sessions()
        .check_password(body.password.clone(), stored, PASSWORD_CHECK_PATIENCE)
        .await
    else {
        wasl_telemetry::metrics::sign_in_throttled("busy");
        return Err(ApiError::TooManyAttempts { retry_after: 1 });
    };
    let Some(user) = user.filter(|_| matches) else {
        state.sessions().failed(&username, client);
        tracing::info!("sign-in refused");
        return Err(ApiError::Unauthenticated);
    };
    state.sessions().succeeded(&username);
    let (secret, session) = state
        .sessions()
        .start(user.id)
        .await
        .map_err(|err| ApiError::Unavailable(err.to_string()))?;
    let secure = if state.limits().secure_cookies { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict{secure}");
    let mut headers = HeaderMap::new();
    headers.insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(ApiError::internal)?,
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let body = MeView {
        user_id: user.id.to_string(),
        org: user.org.to_string(),
        roles: roles_of(&user.roles),
        authenticated_by: "session".to_owned(),
        csrf_token: Some(session.csrf),
    };
    Ok((headers, axum::Json(body)).into_response())
}

/// Signs out: ends the session and clears the cookie.
#[utoipa::path(post, path = "/v1/logout", tag = "accounts", operation_id = "logout",
    params(("X-CSRF-Token" = String, Header, description = "The session's CSRF token")),
    responses((status = 204, description = "Signed out"), Problems),
    security(("session" = [])))]
pub async fn logout(State(state): State<AppState>, principal: Principal) -> Result<Response, ApiError> {
    let Via::Session { secret } = &principal.via else {
        return Err(ApiError::bad_request(
            "only a session can be signed out; revoke a token instead",
        ));
    };
    state
        .sessions()
        .end(secret)
        .await
        .map_err(|err| ApiError::Unavailable(err.to_string()))?;
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    let mut headers = HeaderMap::new();
    headers.insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(ApiError::internal)?,
    );
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}

/// Who the caller is.
#[utoipa::path(get, path = "/v1/me", tag = "accounts", operation_id = "me",
    responses((status = 200, description = "The caller", body = MeView), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn me(principal: Principal) -> Result<Json<MeView>, ApiError> {
    let (by, csrf) = match &principal.via {
        Via::Session { secret } => ("session", Some(crate::auth::session::csrf_token(secret))),
        Via::Token => ("token", None),
        Via::Oidc => ("oidc", None),
    };
    Ok(Json(MeView {
        user_id: principal.actor.user.to_string(),
        org: principal.actor.org.to_string(),
        roles: roles_of(&principal.actor.roles),
        authenticated_by: by.to_owned(),
        csrf_token: csrf,
    }))
}

/// Where the caller wants notifications mailed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NotificationsView {
    /// The address Wasl mails; absent when none is set.
    #[schema(example = "focal.point@example.org")]
    pub email: Option<String>,
    /// Whether Wasl mails it (never true without an address).
    pub enabled: bool,
}

impl From<NotificationSettings> for NotificationsView {
    fn from(settings: NotificationSettings) -> Self {
        Self {
            email: settings.email,
            enabled: settings.enabled,
        }
    }
}

/// Where to mail the caller's notifications, and whether to.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationsRequest {
    /// The address to mail (at most 254 characters, `local@domain`); `null` or absent removes
    /// it, and with it all mail.
    #[schema(example = "focal.point@example.org", max_length = 254)]
    pub email: Option<String>,
    /// Whether to mail it; `true` when omitted with an address. Cannot be `true` without one.
    #[schema(example = true)]
    pub enabled: Option<bool>,
}

/// Notifications are for people: a partner system's token has its feed and webhooks instead.
fn person(principal: &Principal) -> Result<(), ApiError> {
    if principal.via == Via::Token {
        return Err(ApiError::bad_request(
            "a partner token is not a person: notifications are mailed to people who sign in; a partner system has its feed and webhooks",
        ));
    }
    Ok(())
}

/// Where the caller's notifications are mailed, if anywhere. Wasl mails a person when
/// something in their work needs them (a new referral for their organisation, a decision on
/// their referral, an overdue, an escalation; see docs/notifications.md); the mail says what
/// happened and links to the referral, never who it is about.
#[utoipa::path(get, path = "/v1/me/notifications", tag = "accounts", operation_id = "get_my_notifications",
    responses((status = 200, description = "The caller's notification settings", body = NotificationsView), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn my_notifications(State(state): State<AppState>, principal: Principal) -> Result<Response, ApiError> {
    person(&principal)?;
    let view = NotificationsView::from(state.accounts().notifications(principal.actor.user));
    Ok(([(header::CACHE_CONTROL, "no-store")], axum::Json(view)).into_response())
}

/// Sets where the caller's notifications are mailed and whether they are: only the caller's
/// own (there is no route to set another person's). Setting an address turns mail on unless
/// `enabled` is `false`; `"enabled": false` keeps the address and stops the mail. The change
/// is recorded in the accounts log with who made it and when, like every account change.
#[utoipa::path(put, path = "/v1/me/notifications", tag = "accounts", operation_id = "set_my_notifications",
    request_body = NotificationsRequest,
    responses((status = 200, description = "Set; the caller's notification settings now", body = NotificationsView), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn set_my_notifications(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<NotificationsRequest>,
) -> Result<Response, ApiError> {
    person(&principal)?;
    let email = body.email.map(|e| e.trim().to_owned());
    if email.as_deref().is_some_and(|e| !valid_email(e)) {
        return Err(ApiError::invalid(
            "/email",
            "is not an email address Wasl can send to (local@domain, ASCII, at most 254 characters)",
        ));
    }
    let enabled = body.enabled.unwrap_or(email.is_some());
    if enabled && email.is_none() {
        return Err(ApiError::invalid("/enabled", "needs an email address to mail"));
    }
    let settings = state
        .accounts()
        .set_notifications(&principal.actor, email, enabled)
        .await?;
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(NotificationsView::from(settings)),
    )
        .into_response())
}

/// A user as an admin sees them.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct UserView {
    /// User id.
    pub id: String,
    /// Login name.
    pub username: String,
    pub org: String,
    pub roles: Vec<String>,
    pub disabled: bool,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            id: u.id.to_string(),
            username: u.username,
            org: u.org.to_string(),
            roles: roles_of(&u.roles),
            disabled: u.disabled,
        }
    }
}

/// Roles a person or token may be given here: every role but Wasl's own `system`. `at` is
/// the JSON pointer of the codes in the request body: an array (`/roles`) when `listed`, else
/// one code (`/role`).
fn assignable_roles(codes: &[String], at: &str, listed: bool) -> Result<Vec<Role>, ApiError> {
    if codes.is_empty() {
        return Err(ApiError::invalid(at, "must name at least one role"));
    }
    let mut roles = Vec::new();
    for (i, code) in codes.iter().enumerate() {
        let pointer = if listed { format!("{at}/{i}") } else { at.to_owned() };
        let role = field(&pointer, code, Role::parse)?;
        if role == Role::System {
            return Err(ApiError::invalid(pointer, "system is Wasl's own role"));
        }
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    Ok(roles)
}

/// Create a local account in the admin's organisation.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct CreateUserRequest {
    /// Login name (3–64 of a-z, 0-9, '.', '-', '_').
    pub username: String,
    /// Initial password (at least 12 characters).
    #[schema(format = Password)]
    pub password: String,
    pub roles: Vec<String>,
}

/// Create a local account in the caller's organisation (an admin).
#[utoipa::path(post, path = "/v1/users", tag = "accounts", operation_id = "create_user",
    request_body = CreateUserRequest,
    responses((status = 201, description = "Created", body = UserView), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn create_user(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<CreateUserRequest>,
) -> Result<Response, ApiError> {
    require(&principal, Action::UserAdmin, Resource::Collection)?;
    let username = normalise_username(&body.username);
    let valid_name = (3..=64).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if !valid_name {
        return Err(ApiError::invalid(
            "/username",
            "must be 3 to 64 of a-z, 0-9, '.', '-', '_'",
        ));
    }
    if body.password.chars().count() < password::MIN_LENGTH {
        return Err(ApiError::invalid("/password", "must be at least 12 characters"));
    }
    let roles = assignable_roles(&body.roles, "/roles", true)?;
    if needs_second_admin(&[], &roles) {
        // The four-eyes rule of `PUT /v1/users/{id}/roles` cannot be stepped around by
        // creating the account with the roles at once.
        return Err(ApiError::invalid(
            "/roles",
            "an admin with a role that reads personal data needs a second admin: create the account without it, then ask for it with PUT /v1/users/{user_id}/roles",
        ));
    }
    let user = state
        .accounts()
        .create_user(
            Some(principal.actor.user),
            principal.actor.org,
            &username,
            &roles,
            &body.password,
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(UserView::from(user))).into_response())
}

/// The users of the caller's organisation (an admin).
#[utoipa::path(get, path = "/v1/users", tag = "accounts", operation_id = "list_users",
    responses((status = 200, description = "The users", body = Vec<UserView>), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_users(State(state): State<AppState>, principal: Principal) -> Result<Json<Vec<UserView>>, ApiError> {
    require(&principal, Action::UserAdmin, Resource::Collection)?;
    Ok(Json(
        state
            .accounts()
            .users_of(principal.actor.org)
            .into_iter()
            .map(UserView::from)
            .collect(),
    ))
}

/// New roles.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolesRequest {
    /// The whole new set of roles (it replaces the user's).
    #[schema(example = json!(["caseworker"]))]
    pub roles: Vec<String>,
}

/// A request for roles waiting for a second admin.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RoleRequestView {
    /// The request's id.
    pub id: String,
    /// Whose roles.
    pub user_id: String,
    /// The whole new set of roles it asks for.
    pub roles: Vec<String>,
    /// The admin who asked.
    pub requested_by: Option<String>,
    /// When (Unix ms).
    pub requested_at: i64,
    /// Always `pending`: a decided request is no longer listed.
    pub status: String,
}

impl From<RoleRequest> for RoleRequestView {
    fn from(r: RoleRequest) -> Self {
        Self {
            id: r.id.to_string(),
            user_id: r.user.to_string(),
            roles: roles_of(&r.roles),
            requested_by: r.requested_by.map(|u| u.to_string()),
            requested_at: r.requested_at.unix_millis(),
            status: "pending".to_owned(),
        }
    }
}

fn user_in_scope(state: &AppState, principal: &Principal, id: &str) -> Result<User, ApiError> {
    let id = path_id(id, UserId::parse)?;
    let user = state.accounts().user(id).ok_or(ApiError::NotFound)?;
    require(principal, Action::UserAdmin, Resource::Organisation(user.org))?;
    Ok(user)
}

/// Replace a user's roles (an admin of their organisation, never their own: 403). When the
/// user is or will be an `admin` and the change adds a role that reads personal data
/// (`caseworker`, `supervisor`, `focal_point`, `partner_system`), nothing changes yet: the
/// answer is 202 with a pending request, which a different admin of the organisation approves
/// (`POST /v1/users/{user_id}/role-requests/{request_id}/approve`). Removing roles never waits.
#[utoipa::path(put, path = "/v1/users/{user_id}/roles", tag = "accounts", operation_id = "set_user_roles",
    request_body = RolesRequest,
    params(("user_id" = String, Path, description = "User id")),
    responses((status = 200, description = "Changed", body = UserView),
        (status = 202, description = "Needs a second admin: the pending request; the roles are unchanged", body = RoleRequestView),
        Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn set_roles(
    State(state): State<AppState>,
    principal: Principal,
    Path(user_id): Path<String>,
    Json(body): Json<RolesRequest>,
) -> Result<Response, ApiError> {
    let user = user_in_scope(&state, &principal, &user_id)?;
    if user.id == principal.actor.user {
        // An admin who could give itself `supervisor` could read every case file.
        return Err(ApiError::Forbidden);
    }
    let roles = assignable_roles(&body.roles, "/roles", true)?;
    if needs_second_admin(&user.roles, &roles) {
        // Nor may one admin give another (or an admin account it holds) `supervisor` alone.
        let request = state
            .accounts()
            .request_roles(principal.actor.user, user.id, &roles)
            .await?;
        return Ok((StatusCode::ACCEPTED, axum::Json(RoleRequestView::from(request))).into_response());
    }
    let user = state
        .accounts()
        .set_roles(principal.actor.user, user.id, &roles)
        .await?;
    Ok(axum::Json(UserView::from(user)).into_response())
}

/// The pending role requests for a user, oldest first (an admin of their organisation).
#[utoipa::path(get, path = "/v1/users/{user_id}/role-requests", tag = "accounts", operation_id = "list_role_requests",
    params(("user_id" = String, Path, description = "User id")),
    responses((status = 200, description = "The pending requests", body = Vec<RoleRequestView>), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_role_requests(
    State(state): State<AppState>,
    principal: Principal,
    Path(user_id): Path<String>,
) -> Result<Json<Vec<RoleRequestView>>, ApiError> {
    let user = user_in_scope(&state, &principal, &user_id)?;
    Ok(Json(
        state
            .accounts()
            .role_requests_for(user.id)
            .into_iter()
            .map(RoleRequestView::from)
            .collect(),
    ))
}

/// The pending request `request_id` for `user_id`, for a decision by the caller: an admin of the
/// user's organisation (another organisation's: 404) who is neither the admin who asked nor
/// the user (403).
fn decidable(
    state: &AppState,
    principal: &Principal,
    user_id: &str,
    request_id: &str,
) -> Result<RoleRequest, ApiError> {
    let user = user_in_scope(state, principal, user_id)?;
    let id = path_id(request_id, UserId::parse)?;
    let request = state
        .accounts()
        .role_request(id)
        .filter(|r| r.user == user.id)
        .ok_or(ApiError::NotFound)?;
    let me = principal.actor.user;
    if request.requested_by == Some(me) || request.user == me {
        return Err(ApiError::Forbidden);
    }
    Ok(request)
}

/// Approve a pending role request: the user's roles become the requested ones. A different
/// admin of the organisation than the one who asked, and not the user themself (403).
#[utoipa::path(post, path = "/v1/users/{user_id}/role-requests/{request_id}/approve", tag = "accounts", operation_id = "approve_role_request",
    params(("user_id" = String, Path, description = "User id"), ("request_id" = String, Path, description = "Role request id")),
    responses((status = 200, description = "Approved; the user now", body = UserView), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn approve_role_request(
    State(state): State<AppState>,
    principal: Principal,
    Path((user_id, request_id)): Path<(String, String)>,
) -> Result<Json<UserView>, ApiError> {
    let request = decidable(&state, &principal, &user_id, &request_id)?;
    let user = state
        .accounts()
        .decide_role_request(Some(principal.actor.user), request.id, true)
        .await?;
    Ok(Json(UserView::from(user)))
}

/// Reject a pending role request: nothing changes and it is no longer listed. The same admins
/// may as may approve it.
#[utoipa::path(post, path = "/v1/users/{user_id}/role-requests/{request_id}/reject", tag = "accounts", operation_id = "reject_role_request",
    params(("user_id" = String, Path, description = "User id"), ("request_id" = String, Path, description = "Role request id")),
    responses((status = 204, description = "Rejected"), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn reject_role_request(
    State(state): State<AppState>,
    principal: Principal,
    Path((user_id, request_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let request = decidable(&state, &principal, &user_id, &request_id)?;
    state
        .accounts()
        .decide_role_request(Some(principal.actor.user), request.id, false)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Disable a user: they can no longer sign in, and their sessions stop working (an admin of
/// their organisation).
#[utoipa::path(post, path = "/v1/users/{user_id}/disable", tag = "accounts", operation_id = "disable_user",
    params(("user_id" = String, Path, description = "User id")),
    responses((status = 204, description = "Disabled"), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn disable_user(
    State(state): State<AppState>,
    principal: Principal,
    Path(user_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let user = user_in_scope(&state, &principal, &user_id)?;
    state.accounts().disable(principal.actor.user, user.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Issue a partner API token.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// What it is for (a system's name).
    #[schema(max_length = 200)]
    pub label: String,
    /// The role it acts under: `partner_system`, the only role a token may have — people sign
    /// in, they do not carry tokens.
    #[schema(example = "partner_system")]
    pub role: String,
    /// Days until it expires (1–90).
    #[schema(minimum = 1, maximum = 90, example = 30)]
    pub expires_in_days: u32,
}

/// A token (without its secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct TokenView {
    /// Token id (also the actor id of what it does).
    pub id: String,
    pub org: String,
    pub role: String,
    pub label: String,
    /// Expiry (Unix ms).
    pub expires_at: i64,
    pub revoked: bool,
}

impl From<Token> for TokenView {
    fn from(t: Token) -> Self {
        Self {
            id: t.id.to_string(),
            org: t.org.to_string(),
            role: t.role.code().to_owned(),
            label: t.label,
            expires_at: t.expires_at.unix_millis(),
            revoked: t.revoked,
        }
    }
}

/// A new token with its secret, shown this once.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct IssuedToken {
    #[serde(flatten)]
    pub token: TokenView,
    /// The secret to send as `Authorization: Bearer …`. It is not stored and cannot be shown
    /// again.
    pub secret: String,
}

/// The longest a token issued over the API lives.
const MAX_TOKEN_DAYS: u32 = 90;

/// Issue an API token for the caller's organisation (an admin): for a partner system only
/// (`partner_system`), for at most 90 days. The secret is in this answer only.
#[utoipa::path(post, path = "/v1/tokens", tag = "accounts", operation_id = "issue_token",
    request_body = TokenRequest,
    responses((status = 201, description = "Issued", body = IssuedToken), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn issue_token(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<TokenRequest>,
) -> Result<Response, ApiError> {
    require(&principal, Action::TokenAdmin, Resource::Collection)?;
    let label = body.label.trim();
    if label.is_empty() || label.chars().count() > 200 {
        return Err(ApiError::invalid("/label", "must be 1 to 200 characters"));
    }
    if !(1..=MAX_TOKEN_DAYS).contains(&body.expires_in_days) {
        return Err(ApiError::invalid("/expires_in_days", "must be 1 to 90"));
    }
    let role = assignable_roles(std::slice::from_ref(&body.role), "/role", false)?[0];
    if role != Role::PartnerSystem {
        // A bearer token with a casework or admin role would read case files for months
        // without a sign-in, a password or a session to end.
        return Err(ApiError::invalid(
            "/role",
            "a token acts for a partner system only (partner_system)",
        ));
    }
    let expires_at = now().plus_hours(24 * i64::from(body.expires_in_days));
    let (token, secret) = state
        .accounts()
        .issue_token(principal.actor.user, principal.actor.org, role, label, expires_at)
        .await?;
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let body = IssuedToken {
        token: TokenView::from(token),
        secret,
    };
    Ok((StatusCode::CREATED, headers, axum::Json(body)).into_response())
}

/// The tokens of the caller's organisation (an admin).
#[utoipa::path(get, path = "/v1/tokens", tag = "accounts", operation_id = "list_tokens",
    responses((status = 200, description = "The tokens, newest first", body = Vec<TokenView>), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_tokens(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    require(&principal, Action::TokenAdmin, Resource::Collection)?;
    Ok(Json(
        state
            .accounts()
            .tokens_of(principal.actor.org)
            .into_iter()
            .map(TokenView::from)
            .collect(),
    ))
}

/// Revoke a token at once (an admin of its organisation).
#[utoipa::path(delete, path = "/v1/tokens/{token_id}", tag = "accounts", operation_id = "revoke_token",
    params(("token_id" = String, Path, description = "Token id")),
    responses((status = 204, description = "Revoked"), Problems),
    security(("bearer" = []), ("session" = [])))]
pub async fn revoke_token(
    State(state): State<AppState>,
    principal: Principal,
    Path(token_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&token_id, UserId::parse)?;
    let token = state.accounts().token(id).ok_or(ApiError::NotFound)?;
    require(&principal, Action::TokenAdmin, Resource::Organisation(token.org))?;
    state.accounts().revoke_token(principal.actor.user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
