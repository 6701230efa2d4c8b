//! Decoding is strict and says which field is wrong, without repeating what was in it.

use crate::samples::sample;
use prost::Message;
use wasl_events::pb::event::Payload as P;
use wasl_events::{DecodeError, EventType, decode, decode_versioned, encode, pb};

/// The protobuf form of a sample, to break one field of.
fn wire(t: EventType) -> pb::Event {
    pb::Event::from(&sample(t))
}

fn decode_wire(event: &pb::Event) -> Result<wasl_events::StoredEvent, DecodeError> {
    decode(&event.encode_to_vec())
}

fn assert_invalid(event: &pb::Event, expected_field: &str) {
    match decode_wire(event) {
        Err(DecodeError::Invalid { field, .. }) => assert_eq!(field, expected_field),
        other => panic!("expected Invalid in {expected_field}, got {other:?}"),
    }
}

fn assert_missing(event: &pb::Event, expected_field: &str) {
    match decode_wire(event) {
        Err(DecodeError::MissingField { field }) => assert_eq!(field, expected_field),
        other => panic!("expected MissingField {expected_field}, got {other:?}"),
    }
}

#[test]
fn an_empty_payload_is_an_error_not_a_skipped_event() {
    let mut event = wire(EventType::CaseOpened);
    event.payload = None;
    assert_eq!(decode_wire(&event), Err(DecodeError::MissingPayload));
}

#[test]
fn an_unspecified_enum_is_an_error_not_a_default() {
    let mut event = wire(EventType::ReferralRequested);
    let Some(P::ReferralRequested(r)) = &mut event.payload else {
        unreachable!()
    };
    r.category = pb::ServiceCategory::Unspecified as i32;
    assert_eq!(
        decode_wire(&event),
        Err(DecodeError::UnknownEnumValue {
            field: "ReferralRequested.category",
            number: 0
        })
    );
}

#[test]
fn an_unknown_enum_number_is_an_error_with_its_number() {
    let mut event = wire(EventType::ReferralRequested);
    let Some(P::ReferralRequested(r)) = &mut event.payload else {
        unreachable!()
    };
    r.priority = 99;
    assert_eq!(
        decode_wire(&event),
        Err(DecodeError::UnknownEnumValue {
            field: "ReferralRequested.priority",
            number: 99
        })
    );

    let mut event = wire(EventType::ReferralAccepted);
    event.actor.as_mut().unwrap().roles.push(42);
    assert_eq!(
        decode_wire(&event),
        Err(DecodeError::UnknownEnumValue {
            field: "Actor.roles",
            number: 42
        })
    );

    let mut event = wire(EventType::CaseOpened);
    let Some(P::CaseOpened(c)) = &mut event.payload else {
        unreachable!()
    };
    c.personal.as_mut().unwrap().name.as_mut().unwrap().cipher = 0;
    assert_eq!(
        decode_wire(&event),
        Err(DecodeError::UnknownEnumValue {
            field: "EncryptedPii.cipher",
            number: 0
        })
    );
}

#[test]
fn ids_that_are_not_hyphenated_uuid_v7_are_invalid() {
    let mut event = wire(EventType::ReferralAccepted);
    event.event_id = "not-a-uuid".into();
    assert_invalid(&event, "Event.event_id");

    let mut event = wire(EventType::ReferralAccepted);
    event.aggregate_id = "3b241101-e2bb-4255-8caf-4136c566a962".into(); // v4
    assert_invalid(&event, "Event.aggregate_id");

    let mut event = wire(EventType::ReferralAccepted);
    event.command_id = event.command_id.replace('-', "");
    assert_invalid(&event, "Event.command_id");

    let mut event = wire(EventType::ConsentNarrowed);
    let Some(P::ConsentNarrowed(c)) = &mut event.payload else {
        unreachable!()
    };
    let Some(pb::org_scope::Scope::Only(list)) = &mut c.scope.as_mut().unwrap().organisations.as_mut().unwrap().scope
    else {
        unreachable!()
    };
    list.values[0] = "".into();
    assert_invalid(&event, "OrgIdList.values");
}

#[test]
fn a_sub_millisecond_timestamp_is_invalid() {
    let mut event = wire(EventType::ReferralAccepted);
    event.occurred_at.as_mut().unwrap().nanos += 1;
    assert_invalid(&event, "Event.occurred_at");

    let mut event = wire(EventType::FollowUpOverdue);
    let Some(P::FollowUpOverdue(f)) = &mut event.payload else {
        unreachable!()
    };
    f.due_at.as_mut().unwrap().nanos = 500;
    assert_invalid(&event, "FollowUpOverdue.due_at");
}

#[test]
fn garbage_and_truncated_bytes_are_protobuf_errors() {
    assert!(matches!(decode(&[0xff; 16]), Err(DecodeError::Protobuf(_))));
    let bytes = encode(&sample(EventType::CaseOpened));
    assert!(matches!(
        decode(&bytes[..bytes.len() - 3]),
        Err(DecodeError::Protobuf(_))
    ));
}

#[test]
fn empty_bytes_are_an_event_with_nothing_in_it() {
    // Zero bytes are a valid protobuf message with every field at its default; the first
    // required field then fails.
    assert!(matches!(
        decode(&[]),
        Err(DecodeError::Invalid {
            field: "Event.event_id",
            ..
        })
    ));
}

#[test]
fn missing_required_fields_are_named() {
    let mut event = wire(EventType::ReferralAccepted);
    event.occurred_at = None;
    assert_missing(&event, "Event.occurred_at");

    let mut event = wire(EventType::ReferralAccepted);
    event.actor = None;
    assert_missing(&event, "Event.actor");

    let mut event = wire(EventType::CaseOpened);
    let Some(P::CaseOpened(c)) = &mut event.payload else {
        unreachable!()
    };
    c.profile = None;
    assert_missing(&event, "CaseOpened.profile");

    let mut event = wire(EventType::ReferralRequested);
    let Some(P::ReferralRequested(r)) = &mut event.payload else {
        unreachable!()
    };
    r.consent_basis = None;
    assert_missing(&event, "ReferralRequested.consent_basis");

    let mut event = wire(EventType::ConsentGiven);
    let Some(P::ConsentGiven(c)) = &mut event.payload else {
        unreachable!()
    };
    c.scope.as_mut().unwrap().categories.as_mut().unwrap().scope = None;
    assert_missing(&event, "ServiceCategoryScope.scope");

    let mut event = wire(EventType::ReferralCancelled);
    let Some(P::ReferralCancelled(c)) = &mut event.payload else {
        unreachable!()
    };
    c.reason = None;
    assert_missing(&event, "ReferralCancelled.reason");
}

#[test]
fn values_the_domain_refuses_are_invalid() {
    let mut event = wire(EventType::CaseOpened);
    let Some(P::CaseOpened(c)) = &mut event.payload else {
        unreachable!()
    };
    c.profile.as_mut().unwrap().location.as_mut().unwrap().governorate = "IQ-XX".into();
    assert_invalid(&event, "Location.governorate");

    let mut event = wire(EventType::CaseOpened);
    let Some(P::CaseOpened(c)) = &mut event.payload else {
        unreachable!()
    };
    c.profile.as_mut().unwrap().location.as_mut().unwrap().governorate = "IQ-BG".into();
    assert_invalid(&event, "Location.district");

    let mut event = wire(EventType::CaseOpened);
    let Some(P::CaseOpened(c)) = &mut event.payload else {
        unreachable!()
    };
    c.profile.as_mut().unwrap().age_years = Some(15);
    assert_invalid(&event, "ClientProfile.age_years");

    let mut event = wire(EventType::CaseOpened);
    let Some(P::CaseOpened(c)) = &mut event.payload else {
        unreachable!()
    };
    c.personal.as_mut().unwrap().phone.as_mut().unwrap().nonce.pop();
    assert_invalid(&event, "EncryptedPii.nonce");

    let mut event = wire(EventType::FollowUpRecorded);
    let Some(P::FollowUpRecorded(f)) = &mut event.payload else {
        unreachable!()
    };
    f.satisfaction = Some(6);
    assert_invalid(&event, "FollowUpRecorded.satisfaction");

    let mut event = wire(EventType::ServiceAdded);
    let Some(P::ServiceAdded(s)) = &mut event.payload else {
        unreachable!()
    };
    s.spec.as_mut().unwrap().eligibility.as_mut().unwrap().max_age = 256;
    assert_invalid(&event, "Eligibility.max_age");

    // GCM objectives: 1 to 23, ascending, once each.
    for objectives in [vec![24], vec![0], vec![15, 7], vec![7, 7]] {
        let mut event = wire(EventType::ReferralRequested);
        let Some(P::ReferralRequested(r)) = &mut event.payload else {
            unreachable!()
        };
        r.gcm_objectives = objectives;
        assert_invalid(&event, "ReferralRequested.gcm_objectives");
    }
}

#[test]
fn a_creation_event_must_name_the_aggregate_of_its_stream() {
    let mut event = wire(EventType::CaseOpened);
    event.aggregate_id = crate::samples::uuid(0xdead).hyphenated().to_string();
    assert_invalid(&event, "CaseOpened.case_id");

    let mut event = wire(EventType::ReferralRequested);
    event.aggregate_id = crate::samples::uuid(0xdead).hyphenated().to_string();
    assert_invalid(&event, "ReferralRequested.referral_id");

    let mut event = wire(EventType::OrganisationRegistered);
    event.aggregate_id = crate::samples::uuid(0xdead).hyphenated().to_string();
    assert_invalid(&event, "OrganisationRegistered.org_id");
}

#[test]
fn an_unsupported_schema_version_is_refused() {
    let bytes = encode(&sample(EventType::ReferralAccepted));
    assert_eq!(
        decode_versioned(2, &bytes),
        Err(DecodeError::UnsupportedSchemaVersion { version: 2 })
    );
    assert_eq!(
        decode_versioned(0, &bytes),
        Err(DecodeError::UnsupportedSchemaVersion { version: 0 })
    );
}

#[test]
fn errors_never_repeat_the_value_they_refuse() {
    const MARKER: &str = "Amira";
    let planted = |event: pb::Event| {
        let err = decode_wire(&event).unwrap_err();
        for shown in [
            err.to_string(),
            format!("{err:?}"),
            format!("{:?}", std::error::Error::source(&err)),
        ] {
            assert!(!shown.contains(MARKER), "{shown}");
        }
    };
    let profile = |f: &dyn Fn(&mut pb::ClientProfile)| {
        let mut event = wire(EventType::CaseOpened);
        let Some(P::CaseOpened(c)) = &mut event.payload else {
            unreachable!()
        };
        f(c.profile.as_mut().unwrap());
        event
    };
    planted(profile(&|p| p.survivor_code = format!("{MARKER} 42")));
    planted(profile(&|p| p.nationality = MARKER.into()));
    planted(profile(&|p| p.language = format!("{MARKER} language")));
    planted(profile(&|p| p.location.as_mut().unwrap().governorate = MARKER.into()));
    planted(profile(&|p| {
        p.location.as_mut().unwrap().district = Some(MARKER.into())
    }));
    let mut event = wire(EventType::CaseOpened);
    event.event_id = MARKER.into();
    planted(event);
    let mut event = wire(EventType::CaseOpened);
    let Some(P::CaseOpened(c)) = &mut event.payload else {
        unreachable!()
    };
    c.personal.as_mut().unwrap().name.as_mut().unwrap().key_id = format!("{MARKER} key");
    planted(event);
}

/// `expired` was added after the first events were written: it takes the next free number and
/// every earlier code keeps its own, so the log already written reads the same. A reader built
/// before it refuses the number by name ("readers before writers").
#[test]
fn an_expired_cancellation_travels_as_the_next_free_number() {
    use wasl_domain::catalogue::{CancelCode, Reason};
    use wasl_domain::referral::ReferralEvent;
    let mut stored = sample(EventType::ReferralCancelled);
    if let wasl_events::DomainEvent::Referral(_, event) = &mut stored.event {
        *event = ReferralEvent::Cancelled(Reason::coded(CancelCode::Expired));
    }
    let mut event = pb::Event::from(&stored);
    let Some(P::ReferralCancelled(c)) = &mut event.payload else {
        unreachable!()
    };
    let code = c.reason.as_ref().expect("a reason").code;
    assert_eq!(code, pb::CancelCode::Expired as i32);
    assert_eq!(code, 8);
    assert_eq!(pb::CancelCode::Other as i32, 7, "earlier codes keep their numbers");
    c.reason.as_mut().expect("a reason").code = 9;
    let mut known = event.clone();
    let Some(P::ReferralCancelled(k)) = &mut known.payload else {
        unreachable!()
    };
    k.reason.as_mut().expect("a reason").code = code;
    assert_eq!(decode_wire(&known), Ok(stored));
    assert_eq!(
        decode_wire(&event),
        Err(DecodeError::UnknownEnumValue {
            field: "CancelReason.code",
            number: 9
        })
    );
}

#[test]
fn a_profile_with_identifying_facts_both_sealed_and_in_the_clear_is_refused() {
    let sealed = || {
        let mut event = wire(EventType::CaseOpened);
        let Some(P::CaseOpened(c)) = &mut event.payload else {
            unreachable!()
        };
        let profile = c.profile.as_mut().unwrap();
        let seal = |tag: u8| pb::EncryptedPii {
            cipher: pb::Cipher::Xchacha20Poly1305 as i32,
            key_id: "case:test".into(),
            nonce: vec![tag; 24],
            ciphertext: vec![tag; 40],
        };
        profile.survivor_code = String::new();
        profile.age_years = None;
        profile.vulnerabilities = Vec::new();
        profile.sealed_survivor_code = Some(seal(1));
        profile.survivor_code_lookup = vec![7; 32];
        profile.sealed_age_years = Some(seal(2));
        profile.sealed_vulnerabilities = Some(seal(3));
        event
    };
    assert!(decode_wire(&sealed()).is_ok(), "the sealed form alone reads");
    let broken = |f: &dyn Fn(&mut pb::ClientProfile), field: &str| {
        let mut event = sealed();
        let Some(P::CaseOpened(c)) = &mut event.payload else {
            unreachable!()
        };
        f(c.profile.as_mut().unwrap());
        match decode_wire(&event) {
            Err(DecodeError::Invalid { field: got, .. }) | Err(DecodeError::MissingField { field: got }) => {
                assert_eq!(got, field);
            }
            other => panic!("expected an error in {field}, got {other:?}"),
        }
    };
    broken(&|p| p.survivor_code = "TEST-0001".into(), "ClientProfile.survivor_code");
    broken(&|p| p.age_years = Some(30), "ClientProfile.age_years");
    broken(
        &|p| p.vulnerabilities = vec![pb::Vulnerability::GbvSurvivor as i32],
        "ClientProfile.vulnerabilities",
    );
    broken(
        &|p| p.survivor_code_lookup = vec![7; 31],
        "ClientProfile.survivor_code_lookup",
    );
    broken(&|p| p.sealed_age_years = None, "ClientProfile.sealed_age_years");
}
