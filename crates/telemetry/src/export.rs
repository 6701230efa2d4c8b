//! The exporters the `wasl` binary installs: logs on standard error, OpenTelemetry traces over
//! OTLP/HTTP (protobuf) when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set,
//! and the Prometheus recorder whose text [`crate::render_metrics`] returns.
//!
//! Environment: `WASL_LOG` filters the logs (default `info`), `WASL_LOG_FORMAT=json|text`
//! chooses their form (default: JSON unless standard error is a terminal), `WASL_TRACE` filters
//! the exported spans (default `info`); the standard `OTEL_*` variables configure the exporter
//! (`OTEL_SERVICE_NAME`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_SCHEDULE_DELAY`, …).

use metrics_exporter_prometheus::PrometheusBuilder;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::future::Future;
use std::io::{self, IsTerminal as _};
use std::pin::Pin;
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// The installed exporters; [`Telemetry::shutdown`] flushes the spans still buffered.
#[derive(Debug)]
#[must_use = "shut it down on exit, or buffered spans are lost"]
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.traces.is_some()
    }

    /// Exports what is buffered and stops the exporter. Blocking: call it outside the runtime
    /// or from `spawn_blocking`.
    pub fn shutdown(self) {
        if let Some(provider) = self.traces {
            crate::context::set_exporting(false);
            if let Err(error) = provider.shutdown() {
                eprintln!("wasl: exporting the last spans failed: {error}");
            }
        }
    }
}

/// The OTLP endpoint configured in the environment, if any.
pub fn otlp_endpoint() -> Option<String> {
    ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"]
        .into_iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|value| !value.trim().is_empty())
}

/// Installs logs, traces (when an OTLP endpoint is configured) and the metrics recorder, for
/// the service `service` (`wasl-api`, `wasl-up`, …; `OTEL_SERVICE_NAME` overrides it). Call it
/// once, first thing.
pub fn init(service: &str) -> Telemetry {
    let json = match std::env::var("WASL_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") => false,
        _ => !io::stderr().is_terminal(),
    };
    let log_filter = EnvFilter::try_from_env("WASL_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt::layer().with_writer(io::stderr);
    let logs = if json {
        logs.json().with_filter(log_filter).boxed()
    } else {
        logs.with_filter(log_filter).boxed()
    };

    let (traces, trace_error) = match otlp_endpoint() {
        None => (None, None),
        Some(_) => match tracer_provider(service) {
            Ok(provider) => (Some(provider), None),
            Err(error) => (None, Some(error)),
        },
    };
    let spans = traces.as_ref().map(|provider| {
        let filter = EnvFilter::try_from_env("WASL_TRACE").unwrap_or_else(|_| EnvFilter::new("info"));
        // Span name, fields, parent and timing are what a trace needs; the source location,
        // the thread and busy/idle time per span cost more than they tell.
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("wasl"))
            .with_location(false)
            .with_threads(false)
            .with_tracked_inactivity(false)
            .with_filter(filter)
    });
    tracing_subscriber::registry().with(logs).with(spans).init();
    crate::context::set_exporting(traces.is_some());
    if let Some(error) = trace_error {
        tracing::error!(%error, "traces are not exported: the OTLP exporter could not be set up");
    }

    install_metrics();
    Telemetry { traces }
}

fn tracer_provider(service: &str) -> Result<SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_http_client(BlockingClient::new()?)
        .build()
        .map_err(|e| e.to_string())?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service.to_owned());
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

/// Buckets of the latency histograms, in seconds: 0.5 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

fn install_metrics() {
    let recorder = PrometheusBuilder::new()
        .set_buckets(LATENCY_BUCKETS)
        .map(|b| b.build_recorder());
    let recorder = match recorder {
        Ok(recorder) => recorder,
        Err(error) => {
            tracing::error!(%error, "metrics are not recorded");
            return;
        }
    };
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        return;
    }
    for (name, help) in crate::metrics::DESCRIPTIONS {
        metrics::describe_counter!(*name, *help);
    }
    let upkeep = handle.clone();
    // Histograms keep their samples in buffers that upkeep drains; without it they grow.
    let _ = std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(5));
                upkeep.run_upkeep();
            }
        });
    crate::set_metrics_renderer(move || handle.render());
}

/// The OTLP exporter's HTTP client: the batch processor exports from its own thread, outside
/// any async runtime, so a blocking client fits and adds no second HTTP stack.
#[derive(Debug)]
struct BlockingClient(reqwest::blocking::Client);

impl BlockingClient {
    fn new() -> Result<Self, String> {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map(Self)
            .map_err(|e| e.to_string())
    }

    fn send(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (parts, body) = request.into_parts();
        let response = self
            .0
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body.to_vec())
            .send()?;
        let mut builder = Response::builder().status(response.status().as_u16());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let body = response.bytes()?;
        Ok(builder.body(body)?)
    }
}

impl HttpClient for BlockingClient {
    fn send_bytes<'a, 'b>(
        &'a self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(async move { self.send(request) })
    }
}
