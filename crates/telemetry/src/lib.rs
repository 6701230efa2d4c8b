//! Wasl's traces and metrics.
//!
//! - [`context`]: W3C trace context. A request's `traceparent` becomes the parent of the span
//!   that serves it; the store writes the current span's context into every event's
//!   `traceparent` header, and the projector, the router and partner commands continue the
//!   trace from there. Without an exporter the header is still carried through unchanged.
//! - [`metrics`]: the names and labels of everything Wasl counts, recorded through the
//!   `metrics` facade (a no-op until a recorder is installed).
//! - `export` (feature `export`, used by the `wasl` binary only): logs, the OTLP exporter
//!   when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and the Prometheus recorder behind `/metrics`.
//!
//! Nothing recorded here carries personal data: span fields and metric labels are ids, type
//! names, routes and outcome codes.

pub mod context;
#[cfg(feature = "export")]
pub mod export;
pub mod metrics;

use std::sync::OnceLock;

/// A span of the traced path: at `info` while spans are exported, else at `debug`, so that
/// without an exporter it costs what any debug span costs (nothing unless `WASL_LOG` asks for
/// debug) — the store creates one per command.
#[macro_export]
macro_rules! span {
    ($name:literal $(, $($fields:tt)*)?) => {
        if $crate::context::exporting() {
            ::tracing::info_span!($name $(, $($fields)*)?)
        } else {
            ::tracing::debug_span!($name $(, $($fields)*)?)
        }
    };
}

/// Renders the metrics in the Prometheus text format.
type Render = Box<dyn Fn() -> String + Send + Sync>;

static RENDER: OnceLock<Render> = OnceLock::new();

/// Installs the function behind [`render_metrics`]; the first installation wins.
pub fn set_metrics_renderer(render: impl Fn() -> String + Send + Sync + 'static) {
    let _ = RENDER.set(Box::new(render));
}

/// The process's metrics in the Prometheus text format, or `None` when no recorder is
/// installed (libraries under test, tools that do not serve metrics).
pub fn render_metrics() -> Option<String> {
    RENDER.get().map(|render| render())
}
