//! Domain → protobuf → bytes → protobuf → domain gives the same value, for every event.

use crate::samples::{sample, samples, variations};
use std::collections::HashSet;
use wasl_events::{EventType, StoredEvent, decode, decode_versioned, encode, pb};

fn assert_round_trips(event: &StoredEvent) {
    let bytes = encode(event);
    let back = decode(&bytes).unwrap_or_else(|e| panic!("{} does not decode: {e}", event.event.event_type()));
    assert_eq!(&back, event, "{}", event.event.event_type());
    // The protobuf form in between is the same either way.
    assert_eq!(pb::Event::from(&back), pb::Event::from(event));
}

#[test]
fn every_sample_round_trips() {
    for event in samples() {
        assert_round_trips(&event);
    }
}

#[test]
fn every_variation_of_optional_and_alternative_parts_round_trips() {
    for event in variations() {
        assert_round_trips(&event);
    }
}

#[test]
fn every_event_type_has_a_sample_of_that_type() {
    let mut seen = HashSet::new();
    for t in EventType::ALL {
        let event = sample(*t);
        assert_eq!(event.event.kind(), *t);
        assert_eq!(event.event.event_type(), t.as_str());
        assert_eq!(event.event.aggregate_kind(), t.aggregate_kind());
        assert!(seen.insert(event.meta.event_id), "event ids of samples must differ");
    }
}

#[test]
fn the_current_schema_version_decodes_like_decode() {
    let event = sample(EventType::ReferralRequested);
    assert_eq!(
        decode_versioned(wasl_events::CURRENT_SCHEMA_VERSION, &encode(&event)).unwrap(),
        event
    );
}

#[test]
fn subjects_follow_the_aggregate() {
    let subject = |t| sample(t).event.subject();
    assert_eq!(
        subject(EventType::CaseOpened),
        "wasl.evt.case.019b7728-0000-7000-8000-00000000ca5e"
    );
    assert_eq!(
        subject(EventType::ReferralAccepted),
        "wasl.evt.referral.019b7728-0000-7000-8000-0000000004ef"
    );
    assert_eq!(
        subject(EventType::ServiceAdded),
        "wasl.evt.org.019b7728-0000-7000-8000-0000000000b1"
    );
}
