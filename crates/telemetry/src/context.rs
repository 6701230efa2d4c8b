//! W3C trace context (`traceparent`) between tracing spans and message headers.
//!
//! With the OpenTelemetry layer installed, spans carry an OpenTelemetry context: [`set_parent`]
//! makes an incoming `traceparent` the parent of a span, [`current`] formats the current span's
//! context for an outgoing header. Without the layer (no exporter configured) spans have no
//! context; callers then pass the incoming header on unchanged ([`outgoing`]), so a trace id
//! still travels from the HTTP request to the partner's message.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported. Hot loops (the projector, the router) create a span per event
/// only then: without an exporter nobody would see it.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// Records that the OpenTelemetry layer is installed (the exporter's set-up calls it).
pub fn set_exporting(on: bool) {
    EXPORTING.store(on, Ordering::Relaxed);
}

/// Parses a W3C `traceparent` (version 00); `None` when malformed or all-zero.
pub fn parse(traceparent: &str) -> Option<SpanContext> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let lower_hex =
        |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if parts.next().is_some()
        || version != "00"
        || !lower_hex(trace, 32)
        || !lower_hex(span, 16)
        || !lower_hex(flags, 2)
    {
        return None;
    }
    let trace_id = TraceId::from_hex(trace).ok()?;
    let span_id = SpanId::from_hex(span).ok()?;
    let flags = TraceFlags::new(u8::from_str_radix(flags, 16).ok()?);
    let context = SpanContext::new(trace_id, span_id, flags, true, TraceState::default());
    context.is_valid().then_some(context)
}

/// Formats a span context as a `traceparent`; `None` for an invalid (empty) context.
pub fn format(context: &SpanContext) -> Option<String> {
    context.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            context.trace_id(),
            context.span_id(),
            context.trace_flags().to_u8()
        )
    })
}

/// The `traceparent` of `span`, when the OpenTelemetry layer gave it a context.
pub fn of(span: &tracing::Span) -> Option<String> {
    // Without the layer no span has a context: skip the lookup (the store asks per command).
    if !exporting() {
        return None;
    }
    format(&span.context().span().span_context().clone())
}

/// The `traceparent` of the current span, when the OpenTelemetry layer gave it a context.
pub fn current() -> Option<String> {
    of(&tracing::Span::current())
}

/// Makes the remote span `traceparent` the parent of `span` (nothing happens when the header is
/// absent or malformed, or when no OpenTelemetry layer is installed).
pub fn set_parent(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(parent) = traceparent.and_then(parse) {
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
    }
}

/// The `traceparent` to send on: the current span's when it has one, else `incoming` as it was
/// received (when well-formed).
pub fn outgoing(incoming: Option<&str>) -> Option<String> {
    current().or_else(|| incoming.filter(|tp| parse(tp).is_some()).map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_round_trips() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = parse(tp).expect("valid");
        assert_eq!(context.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(context.is_remote());
        assert_eq!(format(&context).as_deref(), Some(tp));
    }

    #[test]
    fn malformed_or_empty_contexts_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert!(parse(bad).is_none(), "{bad:?} parsed");
        }
    }

    #[test]
    fn without_a_layer_the_incoming_header_is_passed_on() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(outgoing(Some(tp)).as_deref(), Some(tp));
        assert_eq!(outgoing(Some("garbage")), None);
        assert_eq!(outgoing(None), None);
    }
}
