//! Personal data never reaches the logs: marker values planted in every personal field, and in
//! requests that fail, are searched for in everything the API and the projector log at TRACE
//! level during a whole referral loop.

use crate::support::{Harness, TestDb, profile};
use reqwest::StatusCode;
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};
use wasl_domain::Role;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const MARKERS: [&str; 8] = [
    "MarkerNameQx7",
    "MarkerPhoneQx7",
    "MarkerAddressQx7",
    "MarkerNotesQx7",
    "MarkerReferralNoteQx7",
    "MarkerReasonQx7",
    "MarkerFollowUpQx7",
    "MarkerPasswordQx7",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_personal_values_never_appear_in_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let h = Harness::start(TestDb::sqlite()).await;
    let (referrer, _) = h.organisation("Test Referring NGO", "psychosocial").await;
    let (partner, service) = h.organisation("Test Health Partner", "health").await;
    let caseworker = h.user(referrer, Role::Caseworker).await;
    let focal = h.user(partner, Role::FocalPoint).await;
    let opened = caseworker
        .post(
            "/v1/cases",
            json!({"profile": profile("TEST-4001"), "personal": {"name": MARKERS[0], "phone": MARKERS[1],
                   "address": MARKERS[2], "notes": MARKERS[3]}}),
        )
        .await;
    assert_eq!(opened.status, StatusCode::CREATED);
    let case = opened.id();
    caseworker.post(&format!("/v1/cases/{case}/consents"), json!({})).await;
    let requested = caseworker
        .post(
            "/v1/referrals",
            json!({"case_id": case, "to_org": partner.to_string(), "service_id": service,
            "priority": "emergency", "notes": MARKERS[4]}),
        )
        .await;
    let referral = requested.id();
    focal
        .get_at(&format!("/v1/referrals/{referral}"), requested.position())
        .await;
    focal
        .post(
            &format!("/v1/referrals/{referral}/reject"),
            json!({"reason": {"code": "other", "text": MARKERS[5]}}),
        )
        .await;
    let case_view = caseworker.get(&format!("/v1/cases/{case}")).await;
    assert_eq!(
        case_view.body["personal"]["name"], MARKERS[0],
        "the markers were really stored and read"
    );
    // Failing requests that carry personal values must not log them either.
    caseworker
        .post(
            "/v1/cases",
            json!({"profile": profile("TEST-4002"), "personal": {"name": MARKERS[0]}, "extra": MARKERS[1]}),
        )
        .await;
    caseworker
        .post(
            "/v1/cases",
            json!({"profile": {"survivor_code": MARKERS[2], "sex": MARKERS[3], "age_years": 30,
            "population_group": "idp", "nationality": "IQ", "governorate": "IQ-NI", "language": "ar"}}),
        )
        .await;
    caseworker
        .post(
            &format!("/v1/referrals/{referral}/follow-up"),
            json!({"client_reached": false, "service_received": "no", "note": MARKERS[6]}),
        )
        .await;
    h.anonymous()
        .post("/v1/login", json!({"username": "test-nobody", "password": MARKERS[7]}))
        .await;
    h.stop().await;

    let log = String::from_utf8_lossy(&captured.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
    assert!(
        log.lines().count() > 20,
        "the capture works: {} lines",
        log.lines().count()
    );
    for marker in MARKERS {
        assert!(!log.contains(marker), "a personal value reached the log: {marker}");
    }
}
