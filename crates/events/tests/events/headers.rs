//! CloudEvents headers: built from a stored event, parsed back, and refused when incomplete.

use crate::samples::{T0, sample, samples};
use wasl_domain::AggregateKind;
use wasl_domain::time::Timestamp;
use wasl_events::headers::{
    CE_ID, CE_SOURCE, CE_SPECVERSION, CE_SUBJECT, CE_TIME, CE_TYPE, CONTENT_TYPE, DEFAULT_SOURCE, TRACEPARENT,
    WASL_COMMAND_ID, WASL_SCHEMA,
};
use wasl_events::{
    CURRENT_SCHEMA_VERSION, CloudEventHeaders, EventType, HeaderError, build_headers, decode_versioned, encode,
    parse_headers,
};

fn value<'a>(headers: &'a [(&'static str, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("{name} not set"))
}

#[test]
fn headers_carry_the_cloudevents_attributes() {
    let event = sample(EventType::ReferralAccepted);
    let index = crate::samples::sample_number(EventType::ReferralAccepted) as i64;
    let headers = build_headers(&event, DEFAULT_SOURCE).unwrap();
    assert_eq!(value(&headers, CE_SPECVERSION), "1.0");
    assert_eq!(value(&headers, CE_ID), event.meta.event_id.to_string());
    assert_eq!(value(&headers, CE_TYPE), "wasl.referral.accepted.v1");
    assert_eq!(value(&headers, CE_SOURCE), "/wasl");
    assert_eq!(
        value(&headers, CE_SUBJECT),
        format!("referral/{}", crate::samples::referral_id())
    );
    let time = Timestamp::from_unix_millis(T0 + index * 60_000 + 7);
    assert_eq!(event.meta.occurred_at, time);
    assert_eq!(value(&headers, CE_TIME), format!("2026-01-01T00:{index:02}:00.007Z"));
    assert_eq!(value(&headers, CONTENT_TYPE), "application/protobuf");
    assert_eq!(value(&headers, WASL_COMMAND_ID), event.meta.command_id.to_string());
    assert_eq!(value(&headers, WASL_SCHEMA), "1");
    assert!(headers.iter().all(|(n, _)| *n != TRACEPARENT));
}

#[test]
fn headers_of_every_sample_parse_back() {
    for event in samples() {
        let headers = build_headers(&event, "/wasl/test").unwrap();
        let parsed = parse_headers(headers).unwrap();
        assert_eq!(parsed, CloudEventHeaders::for_event(&event, "/wasl/test"));
        assert_eq!(parsed.event_type, event.event.kind());
        assert_eq!(parsed.subject.kind, event.event.aggregate_kind());
        assert_eq!(parsed.subject.id, event.event.aggregate_id());
        assert_eq!(parsed.time, event.meta.occurred_at);
        assert_eq!(parsed.schema_version, CURRENT_SCHEMA_VERSION);
    }
}

#[test]
fn headers_and_body_together_give_back_the_event() {
    let event = sample(EventType::ServiceAdded);
    let headers = build_headers(&event, DEFAULT_SOURCE).unwrap();
    let body = encode(&event);
    let parsed = parse_headers(headers.iter().map(|(n, v)| (*n, v.as_str()))).unwrap();
    assert_eq!(parsed.subject.kind, AggregateKind::Organisation);
    let decoded = decode_versioned(parsed.schema_version, &body).unwrap();
    assert_eq!(decoded.meta.event_id, parsed.id);
    assert_eq!(decoded, event);
}

#[test]
fn every_missing_header_is_named() {
    let event = sample(EventType::CaseOpened);
    let headers = build_headers(&event, DEFAULT_SOURCE).unwrap();
    for (missing, _) in &headers {
        let rest = headers.iter().filter(|(n, _)| n != missing).cloned();
        assert_eq!(parse_headers(rest), Err(HeaderError::Missing { name: missing }));
    }
}

#[test]
fn names_match_case_insensitively_and_unknown_headers_are_ignored() {
    let event = sample(EventType::CaseOpened);
    let mut headers: Vec<(String, String)> = build_headers(&event, DEFAULT_SOURCE)
        .unwrap()
        .into_iter()
        .map(|(n, v)| (n.to_uppercase(), v))
        .collect();
    headers.push((
        TRACEPARENT.into(),
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
    ));
    headers.push(("Nats-Msg-Id".into(), "whatever".into()));
    assert_eq!(
        parse_headers(headers).unwrap(),
        CloudEventHeaders::for_event(&event, DEFAULT_SOURCE)
    );
}

#[test]
fn a_header_given_twice_is_refused() {
    let event = sample(EventType::CaseOpened);
    let mut headers = build_headers(&event, DEFAULT_SOURCE).unwrap();
    headers.push((CE_ID, event.meta.event_id.to_string()));
    assert_eq!(parse_headers(headers), Err(HeaderError::Duplicate { name: CE_ID }));
}

/// The headers of a sample with one value replaced.
fn with(name: &str, new_value: &str) -> Result<CloudEventHeaders, HeaderError> {
    let event = sample(EventType::CaseOpened);
    let headers = build_headers(&event, DEFAULT_SOURCE)
        .unwrap()
        .into_iter()
        .map(|(n, v)| if n == name { (n, new_value.to_owned()) } else { (n, v) });
    parse_headers(headers)
}

#[test]
fn malformed_headers_are_refused_by_name() {
    let invalid = |name: &'static str, value: &str| {
        assert!(
            matches!(with(name, value), Err(HeaderError::Invalid { name: n, .. }) if n == name),
            "{name}"
        );
    };
    invalid(CE_SPECVERSION, "0.3");
    invalid(CE_ID, "not-a-uuid");
    invalid(CE_SOURCE, "");
    invalid(CE_SUBJECT, "case/not-a-uuid");
    invalid(CE_SUBJECT, &format!("referral/{}", crate::samples::case_id()));
    invalid(CE_TIME, "yesterday");
    invalid(CE_TIME, "2026-01-01T00:00:00.000123Z");
    invalid(CONTENT_TYPE, "application/json");
    invalid(WASL_COMMAND_ID, "");
    invalid(WASL_SCHEMA, "one");
    assert_eq!(with(CE_TYPE, "wasl.case.opened.v9"), Err(HeaderError::UnknownEventType));
    // Parameters of the media type are allowed.
    assert!(with(CONTENT_TYPE, "application/protobuf; proto=wasl.v1.Event").is_ok());
}

#[test]
fn a_time_rfc3339_cannot_carry_is_refused_when_building() {
    let mut event = sample(EventType::CaseOpened);
    event.meta.occurred_at = Timestamp::from_unix_millis(-1);
    assert!(matches!(
        build_headers(&event, DEFAULT_SOURCE),
        Err(HeaderError::Invalid { name: CE_TIME, .. })
    ));
    assert!(matches!(
        build_headers(&sample(EventType::CaseOpened), ""),
        Err(HeaderError::Invalid { name: CE_SOURCE, .. })
    ));
}
