//! Wasl's HTTP API: how caseworkers, supervisors, partner focal points, coordinators and partner
//! systems use Wasl. JSON under `/v1`, described by `/openapi.json` (OpenAPI 3.1, generated from
//! the route table itself, so it cannot drift), errors as RFC 9457 problem documents.
//!
//! - [`app`]: the one place the API is assembled ([`Application::build`]) and served until its
//!   [`CancellationToken`] is cancelled.
//! - [`auth`]: who is calling (OIDC JWT, local accounts with sessions, partner API tokens).
//! - [`policy`]: the one function that decides who may do what; lists are scoped in SQL.
//! - [`audit`]: every read of personal data is appended to `WASL_AUDIT` first.
//! - [`routes`]: one module per resource; commands go through the event store's handler, queries
//!   to the read models.
//! - [`command`]: what every command route extracts before its body (caller, idempotency key,
//!   expected version, trace context, and the command id derived from them).
//! - [`http`]: the conventions every route shares (`Idempotency-Key`, `If-Match`/`ETag`,
//!   `Wasl-Min-Position`, JSON that refuses unknown fields).
//!
//! See docs/api.md.

pub mod app;
pub mod asof;
pub mod audit;
pub mod auth;
pub mod command;
pub mod config;
pub mod error;
pub mod http;
pub mod personal;
pub mod policy;
pub mod routes;
pub mod serve;
pub mod state;

pub use app::{AppSettings, Application, CancellationToken};
pub use config::{ApiConfig, StartError};
pub use state::{AppState, Limits, Parts, ServiceCheck};

use crate::error::{ApiError, ProblemMarker};
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use std::future::Future;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder};
use utoipa_axum::router::OpenApiRouter;

/// The header carrying the request id, in requests (set if absent) and responses.
pub const REQUEST_ID: &str = "x-request-id";

/// The API's route table with its OpenAPI document: both come from the same registrations.
pub fn api() -> (Router<AppState>, OpenApi) {
    let base = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Wasl API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Referral coordination for humanitarian organisations. Errors are RFC 9457 problem \
                     documents; commands accept Idempotency-Key and If-Match and answer with the stream \
                     position; queries accept Wasl-Min-Position. See docs/api.md.",
                ))
                .build(),
        )
        .build();
    let (router, mut doc) = OpenApiRouter::with_openapi(base)
        .merge(routes::health::routes())
        .merge(routes::accounts::routes())
        .merge(routes::cases::routes())
        .merge(routes::referrals::routes())
        .merge(routes::work::routes())
        .merge(routes::directory::routes())
        .merge(routes::dashboard::routes())
        .split_for_parts();
    let components = doc.components.get_or_insert_with(Default::default);
    components.schemas.extend(routes::problem_schemas());
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("A partner API token (wasl_pat_…) or an OIDC access token (JWT)"))
                .build(),
        ),
    );
    components.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            auth::session::COOKIE,
            "The session of a local account, from POST /v1/login; changes also need X-CSRF-Token",
        ))),
    );
    (router, doc)
}

/// The OpenAPI document, as served at `/openapi.json`.
pub fn openapi() -> OpenApi {
    api().1
}

/// The complete application: routes, `/openapi.json`, problem documents for unknown routes and
/// methods, request ids, and the body limit.
pub fn router(state: AppState) -> Router {
    let (routes, doc) = api();
    let doc = std::sync::Arc::new(doc);
    let body_limit = state.limits().body_limit;
    let https = state.limits().secure_cookies;
    let request_id = HeaderName::from_static(REQUEST_ID);
    routes
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(problem_request_id))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            security_headers(request, next, https)
        }))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        // The request id is the server's own: a client's `X-Request-Id` (any length, any text)
        // is dropped before a fresh one is made, so logs and the audit never store it.
        .layer(middleware::map_request(|mut request: Request| async move {
            request.headers_mut().remove(REQUEST_ID);
            request
        }))
        .with_state(state)
}

/// Headers on every answer: nothing is sniffed, framed, sent on as a referrer or run as a
/// script (the API serves JSON only), and no `/v1` answer — they carry personal data — is kept
/// by a browser or a proxy. When Wasl is served over HTTPS (`--secure-cookies`: TLS ends at the
/// proxy in front, the API itself speaks plain HTTP), browsers are also told to use nothing but
/// HTTPS for a year (HSTS), so a session cookie never travels in clear after a downgrade.
async fn security_headers(request: Request, next: Next, https: bool) -> Response {
    let personal = request.uri().path().starts_with("/v1/") || request.uri().path() == "/v1";
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    if personal {
        headers.insert(axum::http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if https {
        headers.insert(
            axum::http::header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    response
}

/// What the metrics listener (`--metrics-addr`) serves: `GET /metrics` and nothing else. Not on
/// the public address: the counts are of the whole network (referrals by outcome, partners'
/// commands), which no caller of the API is to see unsuppressed.
pub fn metrics_router() -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
}

/// `GET /metrics`: the process's metrics in the Prometheus text format (counts, latencies and
/// positions; no personal data). Not found when the process installed no recorder.
async fn metrics() -> Response {
    metrics_response().unwrap_or_else(|| ApiError::NotFound.into_response())
}

/// The process's metrics as a Prometheus text response; `None` when no recorder is installed.
/// Also what the projector's and router's health listener serve.
pub fn metrics_response() -> Option<Response> {
    let text = wasl_telemetry::render_metrics()?;
    let content_type = (
        axum::http::header::CONTENT_TYPE,
        "text/plain; version=0.0.4; charset=utf-8",
    );
    Some(([content_type], text).into_response())
}

/// Writes the request id into problem documents, so a user can quote it and an operator find
/// the cause in the log.
async fn problem_request_id(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let method = request.method().clone();
    let path = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let span = wasl_telemetry::span!(
        "http.request",
        request_id = id.as_deref().unwrap_or(""),
        %method,
        route = path.as_deref().unwrap_or("?"),
        status = tracing::field::Empty
    );
    // The caller's trace context (W3C `traceparent`) is the parent of everything the request
    // causes: the store's append, and through the event's headers the projector and router.
    let traceparent = request.headers().get("traceparent").and_then(|v| v.to_str().ok());
    wasl_telemetry::context::set_parent(&span, traceparent);
    let started = std::time::Instant::now();
    let mut response = tracing::Instrument::instrument(next.run(request), span.clone()).await;
    span.record("status", response.status().as_u16());
    wasl_telemetry::metrics::http_request(
        method.to_string(),
        path.clone().unwrap_or_else(|| "unmatched".to_owned()),
        response.status().as_u16(),
        started.elapsed(),
    );
    if let Some(value) = wasl_telemetry::context::of(&span).and_then(|tp| HeaderValue::from_str(&tp).ok()) {
        response.headers_mut().insert("traceparent", value);
    }
    let Some(marker) = response.extensions().get::<ProblemMarker>().cloned() else {
        return response;
    };
    if let Some(cause) = &marker.cause {
        let request_id = id.as_deref().unwrap_or("");
        let route = path.as_deref().unwrap_or("?");
        if response.status().is_server_error() && response.status() != axum::http::StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(request_id, %method, route, %cause, "internal error");
        } else {
            tracing::warn!(request_id, %method, route, %cause, "dependency unavailable");
        }
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return ApiError::internal("a problem body could not be read").into_response();
    };
    let mut value: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(_) => return Response::from_parts(parts, Body::from(bytes)),
    };
    if let (Some(id), Some(object)) = (&id, value.as_object_mut()) {
        object.insert("request_id".to_owned(), serde_json::Value::String(id.clone()));
    }
    let body = serde_json::to_vec(&value).unwrap_or_else(|_| bytes.to_vec());
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    if let Ok(len) = HeaderValue::from_str(&body.len().to_string()) {
        parts.headers.insert(axum::http::header::CONTENT_LENGTH, len);
    }
    Response::from_parts(parts, Body::from(body))
}

/// Serves the API on `listener` until `shutdown` completes, then finishes the requests in
/// flight.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.limits().server;
    serve::serve(listener, router(state), limits, shutdown).await
}
