//! `/healthz`, `/readyz` and `/metrics` for the services without an HTTP API of their own (`wasl projector`,
//! `wasl router`), on the address of `--health-listen`. `/healthz` says the process is alive;
//! `/readyz` runs the service's readiness check: 200 with what it found, or 503 with why not.

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

/// A readiness check: what was found (JSON), or why the service is not ready.
pub type Check = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<serde_json::Value, String>> + Send>> + Send + Sync>;

/// Options shared by the services that serve health endpoints.
#[derive(Debug, Clone, clap::Args)]
pub struct HealthArgs {
    /// Serve /healthz and /readyz on this address (e.g. 127.0.0.1:9091); none by default.
    #[arg(long, env = "WASL_HEALTH_LISTEN")]
    pub health_listen: Option<SocketAddr>,
    /// /readyz answers 503 while the service is more than this many events behind the log.
    #[arg(long, env = "WASL_READY_MAX_LAG", default_value_t = 10_000)]
    pub ready_max_lag: u64,
}

/// Serves the endpoints on `listen` until `shutdown`, in the background; returns the bound
/// address.
pub async fn serve(
    listen: SocketAddr,
    check: Check,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<SocketAddr> {
    let app = Router::new()
        .route("/healthz", get(|| async { Json(serde_json::json!({"status": "ok"})) }))
        .route("/metrics", get(metrics))
        .route(
            "/readyz",
            get(move || {
                let check = check.clone();
                async move {
                    match check().await {
                        Ok(mut found) => {
                            found["status"] = "ready".into();
                            (StatusCode::OK, Json(found)).into_response()
                        }
                        Err(why) => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            Json(serde_json::json!({"status": "not ready", "reason": why})),
                        )
                            .into_response(),
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::warn!(error = %e, "the health endpoints stopped");
        }
    });
    Ok(bound)
}

/// The process's metrics in the Prometheus text format.
async fn metrics() -> Response {
    wasl_api::metrics_response()
        .unwrap_or_else(|| (StatusCode::NOT_FOUND, "metrics are not recorded by this process\n").into_response())
}

/// JSON with its content type.
struct Json(serde_json::Value);

impl IntoResponse for Json {
    fn into_response(self) -> Response {
        (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            self.0.to_string(),
        )
            .into_response()
    }
}

/// How far the event log reaches: its last sequence.
pub async fn log_end(stream: &async_nats::jetstream::stream::Stream) -> Result<u64, String> {
    let mut stream = stream.clone();
    stream
        .info()
        .await
        .map(|info| info.state.last_sequence)
        .map_err(|e| format!("the event log: {e}"))
}
