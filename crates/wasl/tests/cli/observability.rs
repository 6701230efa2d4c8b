//! Observability of `wasl up` as an operator sees it: one trace from an HTTP request through
//! the store, the projector and the router into the partner's message, and from a partner's
//! command over NATS back into the store, exported over OTLP to a receiver in this test; and
//! the Prometheus counters of the same work on `/metrics`.

use crate::http::http;
use crate::up::{Up, free_port, settled_log_position, sign_in};
use axum::body::Bytes;
use axum::extract::State;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A span as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    name: String,
    trace: String,
    span: String,
    parent: String,
    attributes: Vec<(String, String)>,
}

type Spans = Arc<Mutex<Vec<Received>>>;

/// An OTLP/HTTP receiver (`POST /v1/traces`, protobuf) on a free port, in a thread of its own.
fn otlp_receiver() -> (u16, Spans) {
    let spans: Spans = Arc::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port for the receiver");
    let port = listener.local_addr().expect("address").port();
    listener.set_nonblocking(true).expect("non-blocking");
    let state = spans.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let app = axum::Router::new()
                .route("/v1/traces", axum::routing::post(receive))
                .with_state(state);
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            axum::serve(listener, app).await.expect("the receiver serves");
        });
    });
    (port, spans)
}

async fn receive(State(spans): State<Spans>, body: Bytes) -> axum::http::StatusCode {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return axum::http::StatusCode::BAD_REQUEST;
    };
    let mut out = spans.lock().expect("spans");
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|a| a.key == "service.name")
            .map(|a| value_text(a.value.as_ref()))
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                out.push(Received {
                    service: service.clone(),
                    name: span.name,
                    trace: hex::encode(span.trace_id),
                    span: hex::encode(span.span_id),
                    parent: hex::encode(span.parent_span_id),
                    attributes: span
                        .attributes
                        .iter()
                        .map(|a| (a.key.clone(), value_text(a.value.as_ref())))
                        .collect(),
                });
            }
        }
    }
    axum::http::StatusCode::OK
}

fn value_text(value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        _ => String::new(),
    }
}

/// Waits until the receiver holds a span named `name` in `trace` whose parent is `parent`
/// (any parent when `None`).
fn span(spans: &Spans, trace: &str, name: &str, parent: Option<&str>) -> Received {
    let began = Instant::now();
    loop {
        let found = spans
            .lock()
            .expect("spans")
            .iter()
            .find(|s| s.trace == trace && s.name == name && parent.is_none_or(|p| s.parent == p))
            .cloned();
        if let Some(found) = found {
            return found;
        }
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "no span {name} (parent {parent:?}) in trace {trace}; got: {:?}",
            spans
                .lock()
                .expect("spans")
                .iter()
                .filter(|s| s.trace == trace)
                .map(|s| (&s.name, &s.span, &s.parent))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| panic!("JSON: {text}"))
}

/// The value of the first sample of `metric` whose labels include every one of `labels`.
fn sample(metrics: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| line.split(['{', ' ']).next() == Some(metric) && labels.iter().all(|label| line.contains(label)))
        .find_map(|line| line.rsplit(' ').next()?.parse().ok())
}

#[test]
fn one_trace_runs_from_the_request_to_the_partner_and_back_and_metrics_count_it() {
    let (receiver, spans) = otlp_receiver();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let (api, nats, metrics_port) = (free_port(), free_port(), free_port());
    let endpoint = format!("http://127.0.0.1:{receiver}");
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let (up, banner) = Up::start_with_env(
        &data,
        api,
        nats,
        &["--demo", "--metrics-addr", &metrics_addr],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let password = banner
        .split("Password for all: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the demo password is printed")
        .to_owned();

    settled_log_position(api);

    // A focal point with an open referral in its inbox (which ones are open depends on the time
    // of day the demo's 90 days end) takes its next step over HTTP, in a trace the test starts;
    // its partner system takes the step after that over NATS.
    let focal = [
        "medrelief",
        "unhealth",
        "unmigration",
        "unchildren",
        "protection",
        "legalaid",
        "safehouse",
        "ninewa",
        "basrah",
        "health.duhok",
        "social.anbar",
        "civil.kirkuk",
    ];
    let steps = [
        ("requested", "receive", "accept"),
        ("received", "accept", "start"),
        ("accepted", "start", "complete"),
    ];
    let (cookie, csrf, org, referral, first, second) = focal
        .iter()
        .find_map(|name| {
            let (cookie, csrf) = sign_in(api, &format!("demo.focal.{name}"), &password);
            let (status, _, inbox) = http(api, "GET", "/v1/inbox", &[("cookie", &cookie)], "");
            assert_eq!(status, 200, "{inbox}");
            let (referral, first, second) = json(&inbox)["items"].as_array()?.iter().find_map(|r| {
                let (_, first, second) = steps.iter().find(|(status, _, _)| r["status"] == *status)?;
                Some((r["id"].as_str()?.to_owned(), *first, *second))
            })?;
            let (_, _, me) = http(api, "GET", "/v1/me", &[("cookie", &cookie)], "");
            let org = json(&me)["org"]
                .as_str()
                .expect("the focal point's organisation")
                .to_owned();
            Some((cookie, csrf, org, referral, first, second))
        })
        .expect("some demo organisation has an open referral in its inbox");

    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace}-{caller}-01");
    let (status, answer_headers, answer) = http(
        api,
        "POST",
        &format!("/v1/referrals/{referral}/{first}"),
        &[
            ("cookie", &cookie),
            ("x-csrf-token", &csrf),
            ("idempotency-key", "observability-step-1"),
            ("traceparent", &traceparent),
        ],
        "",
    );
    assert_eq!(status, 200, "{first}: {answer}");
    let request = span(&spans, trace, "http.request", Some(caller));
    assert_eq!(request.service, "wasl-up");
    let returned = answer_headers
        .iter()
        .find(|(k, _)| k == "traceparent")
        .map(|(_, v)| v.clone())
        .expect("the answer names its trace");
    assert_eq!(returned, format!("00-{trace}-{}-01", request.span));
    let execute = span(&spans, trace, "store.execute", Some(&request.span));
    assert!(
        execute.attributes.contains(&("command".to_owned(), first.to_owned())),
        "{execute:?}"
    );
    span(&spans, trace, "projector.apply", Some(&execute.span));
    let deliver = span(&spans, trace, "router.deliver", Some(&execute.span));

    // The partner's message carries the router's span as its parent.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let seed = std::fs::read_to_string(crate::up::seed(&data)).expect("wasl up's NKey seed");
        let client = async_nats::ConnectOptions::with_nkey(seed.trim().to_owned())
            .custom_inbox_prefix(format!("_INBOX_{org}"))
            .connect(format!("nats://127.0.0.1:{nats}"))
            .await
            .expect("connect to up's NATS");
        let js = async_nats::jetstream::new(client.clone());
        let feed = js
            .get_stream(wasl_events::partner::out_stream(org.parse().expect("org id")))
            .await
            .expect("the partner's feed");
        let message = feed
            .get_last_raw_message_by_subject(&format!("wasl.out.{org}.referral.{referral}"))
            .await
            .expect("the partner message");
        let header = message
            .headers
            .get("traceparent")
            .map(|v| v.as_str().to_owned())
            .expect("the partner message carries a traceparent");
        assert_eq!(header, format!("00-{trace}-{}-01", deliver.span));

        // And back: the partner system takes the next step over NATS, in a trace of its own.
        let back = "0af7651916cd43dd8448eb211c80319c";
        let partner_span = "b7ad6b7169203331";
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("traceparent", format!("00-{back}-{partner_span}-01").as_str());
        let reply = client
            .request_with_headers(
                format!("wasl.cmd.{org}.referral.{referral}.{second}"),
                headers,
                r#"{"command_id":"0190b2c4-0000-7000-8000-00000000b001"}"#.into(),
            )
            .await
            .expect("the command is answered");
        let reply: serde_json::Value = serde_json::from_slice(&reply.payload).expect("JSON reply");
        assert_eq!(reply["ok"], true, "{reply}");
        let command = span(&spans, back, "partner.command", Some(partner_span));
        span(&spans, back, "store.execute", Some(&command.span));
    });

    // The same work, counted — on the metrics address only: the API's own address does not
    // show the network's counts.
    assert!(
        banner.contains(&metrics_addr),
        "the banner says where metrics are: {banner}"
    );
    let (status, _, _) = http(api, "GET", "/metrics", &[], "");
    assert_eq!(status, 404);
    let (status, headers, metrics) = http(metrics_port, "GET", "/metrics", &[], "");
    assert_eq!(status, 200);
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "content-type" && v.starts_with("text/plain")),
        "{headers:?}"
    );
    let receives = sample(
        &metrics,
        "wasl_commands_total",
        &[
            r#"aggregate="referral""#,
            &format!(r#"command="{first}""#),
            r#"outcome="ok""#,
        ],
    );
    assert!(receives >= Some(1.0), "the {first} is counted: {receives:?}");
    assert!(
        sample(
            &metrics,
            "wasl_commands_total",
            &[r#"command="request""#, r#"outcome="ok""#]
        ) > Some(100.0),
        "the demo's referrals are counted"
    );
    assert!(
        sample(
            &metrics,
            "wasl_append_duration_seconds_count",
            &[r#"aggregate="referral""#]
        ) > Some(0.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "wasl_partner_commands_total",
            &[&format!(r#"verb="{second}""#), r#"outcome="ok""#]
        ),
        Some(1.0)
    );
    assert!(sample(&metrics, "wasl_partner_messages_total", &[r#"outcome="published""#]) > Some(100.0));
    for projection in ["cases", "referrals", "directory"] {
        let label = format!(r#"projection="{projection}""#);
        assert!(
            sample(&metrics, "wasl_projection_position", &[&label]) > Some(0.0),
            "{projection}: {metrics}"
        );
        assert!(sample(&metrics, "wasl_projection_lag_events", &[&label]).is_some());
    }
    assert_eq!(
        sample(
            &metrics,
            "wasl_http_requests_total",
            &[
                &format!(r#"route="/v1/referrals/{{referral_id}}/{first}""#),
                r#"status="200""#
            ]
        ),
        Some(1.0),
        "requests are counted by route template, never by path: {metrics}"
    );

    // A refused command is counted as refused: the first step again, on a referral past it.
    let (status, _, _) = http(
        api,
        "POST",
        &format!("/v1/referrals/{referral}/{first}"),
        &[
            ("cookie", &cookie),
            ("x-csrf-token", &csrf),
            ("idempotency-key", "observability-step-2"),
        ],
        "",
    );
    assert!(status >= 400, "the step taken twice is refused");
    let (_, _, metrics) = http(metrics_port, "GET", "/metrics", &[], "");
    assert!(
        sample(
            &metrics,
            "wasl_commands_total",
            &[&format!(r#"command="{first}""#), r#"outcome="rejected""#]
        ) >= Some(1.0),
        "{metrics}"
    );
    assert!(up.interrupt().success());

    // What is exported is ids, type names, routes and codes: every attribute key is one Wasl or
    // the tracing bridge sets on purpose, so a field carrying personal data cannot slip in.
    let allowed = [
        "aggregate",
        "command",
        "command_id",
        "kind",
        "seq",
        "event_type",
        "org",
        "verb",
        "method",
        "route",
        "status",
        "request_id",
        "case",
        "webhook_id",
        "attempt",
        "attempts",
        "stream",
        "projection",
        "target",
        "level",
        "error",
        "events",
        "expected",
        "subject",
        "days",
        "seed",
    ];
    let all = spans.lock().expect("spans").clone();
    assert!(!all.is_empty());
    let unvetted: std::collections::BTreeSet<String> = all
        .iter()
        .flat_map(|span| {
            span.attributes
                .iter()
                .map(move |(key, _)| format!("{}: {key}", span.name))
        })
        .filter(|entry| !allowed.contains(&entry.rsplit(": ").next().unwrap_or_default()))
        .collect();
    assert!(unvetted.is_empty(), "attributes no one vetted: {unvetted:?}");
}
