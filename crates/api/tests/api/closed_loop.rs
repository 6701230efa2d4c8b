//! A referral's whole closed loop over HTTP: a caseworker opens a case and refers the client, the
//! partner receives, accepts, starts and completes, the caseworker follows up.

use crate::support::{Harness, TestDb, profile};
use reqwest::StatusCode;
use serde_json::json;
use wasl_domain::Role;
use wasl_testkit::on_both;

on_both!(a_referral_goes_round_the_whole_loop, whole_loop);

async fn whole_loop(db: TestDb) {
    let h = Harness::start(db).await;
    let (referrer, _) = h.organisation("Test Referring NGO", "psychosocial").await;
    let (partner, service) = h.organisation("Test Health Partner", "health").await;
    let caseworker = h.user(referrer, Role::Caseworker).await;
    let focal = h.user(partner, Role::FocalPoint).await;

    // The caseworker opens a case with personal data and records consent.
    let opened = caseworker
        .post(
            "/v1/cases",
            json!({"profile": profile("TEST-0001"), "personal": {"name": "Test Person Alpha", "phone": "+964-000-0001"}}),
        )
        .await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.body);
    let case = opened.id();
    let consent = caseworker.post(&format!("/v1/cases/{case}/consents"), json!({})).await;
    assert_eq!(consent.status, StatusCode::CREATED, "{}", consent.body);

    // They refer the client to the partner's health service, with a note.
    let requested = caseworker
        .post(
            "/v1/referrals",
            json!({"case_id": case, "to_org": partner.to_string(), "service_id": service,
                   "priority": "urgent", "notes": "Test note for the partner"}),
        )
        .await;
    assert_eq!(requested.status, StatusCode::CREATED, "{}", requested.body);
    let referral = requested.id();

    // The partner sees it in the inbox as soon as the read model has the request.
    let inbox = focal.get_at("/v1/inbox", requested.position()).await;
    assert_eq!(inbox.status, StatusCode::OK, "{}", inbox.body);
    let items = inbox.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], referral.as_str());
    assert_eq!(items[0]["status"], "requested");
    assert!(
        items[0].get("case_id").is_none(),
        "the partner does not see the case id"
    );

    // The partner reads the details with the note; no name reaches them.
    let detail = focal.get(&format!("/v1/referrals/{referral}")).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    assert_eq!(detail.body["notes"], "Test note for the partner");
    assert!(!detail.body.to_string().contains("Test Person Alpha"));

    // The partner moves it through its lifecycle.
    let mut last = 0;
    for verb in ["receive", "accept", "start", "complete"] {
        let r = focal.post(&format!("/v1/referrals/{referral}/{verb}"), json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "{verb}: {}", r.body);
        assert!(r.position() > last);
        last = r.position();
    }

    // The caseworker sees it completed and needing follow-up.
    let seen = caseworker.get_at(&format!("/v1/referrals/{referral}"), last).await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.body);
    assert_eq!(seen.body["status"], "completed");
    assert_eq!(seen.body["case_id"], case.as_str());
    let worklist = caseworker.get_at("/v1/worklist", last).await;
    let items = worklist.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{}", worklist.body);
    assert_eq!(items[0]["kind"], "follow_up_due");

    // Follow-up closes the loop.
    let followed = caseworker
        .post(
            &format!("/v1/referrals/{referral}/follow-up"),
            json!({"client_reached": true, "service_received": "yes", "satisfaction": 5}),
        )
        .await;
    assert_eq!(followed.status, StatusCode::OK, "{}", followed.body);
    let worklist = caseworker.get_at("/v1/worklist", followed.position()).await;
    assert_eq!(
        worklist.body["items"].as_array().map(Vec::len),
        Some(0),
        "{}",
        worklist.body
    );

    let history = caseworker.get(&format!("/v1/referrals/{referral}/history")).await;
    let steps: Vec<&str> = history
        .body
        .as_array()
        .expect("a timeline")
        .iter()
        .map(|h| h["to_status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        steps,
        [
            "requested",
            "received",
            "accepted",
            "in_progress",
            "completed",
            "completed"
        ]
    );

    // The caseworker reads the case with its personal data; both reads are in the audit.
    let case_view = caseworker.get(&format!("/v1/cases/{case}")).await;
    assert_eq!(case_view.status, StatusCode::OK, "{}", case_view.body);
    assert_eq!(case_view.body["personal"]["name"], "Test Person Alpha");
    let records = wasl_api::audit::records(h.state.audit().stream())
        .await
        .expect("audit records");
    let actions: Vec<(&str, &str)> = records.iter().map(|r| (r.action.as_str(), r.org.as_str())).collect();
    let partner_text = partner.to_string();
    let referrer_text = referrer.to_string();
    assert!(actions.contains(&("referral.read", partner_text.as_str())));
    assert!(actions.contains(&("case.read", referrer_text.as_str())));
    assert_eq!(
        wasl_api::audit::verify(h.state.audit().stream(), h.state.audit().key(), None)
            .await
            .expect("the chain holds")
            .sequence,
        records.len() as u64
    );
    h.stop().await;
}
