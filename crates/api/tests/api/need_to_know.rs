//! Need-to-know: a caseworker sees and acts on the cases they are responsible for or that are
//! shared with them, and the referrals made for them; a colleague's case answers like a case
//! that does not exist. A supervisor sees the whole organisation's. The receiving
//! organisation's side is unchanged.

use crate::support::{Answer, Client, Harness, TestDb, profile};
use reqwest::{Method, StatusCode};
use serde_json::json;
use wasl_domain::Role;
use wasl_testkit::on_both;

on_both!(
    a_caseworker_sees_only_their_cases_and_a_supervisor_all,
    only_their_cases
);

/// The user id behind a client.
async fn user_id(client: &Client) -> String {
    client.get("/v1/me").await.body["user_id"]
        .as_str()
        .expect("a user id")
        .to_owned()
}

/// The ids of a page's items.
fn ids(page: &Answer) -> Vec<String> {
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["id"].as_str().expect("an id").to_owned())
        .collect()
}

/// The referral ids on a worklist, once the read model has reached `at`.
async fn worklist(client: &Client, at: u64) -> Vec<String> {
    let page = client.get_at("/v1/worklist", at).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["referral"]["id"].as_str().expect("an id").to_owned())
        .collect()
}

/// Asserts `answer` is the 404 a case or referral that does not exist gets (`missing`).
fn as_if_missing(answer: &Answer, missing: &Answer, what: &str) {
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{what}: {}", answer.body);
    assert_eq!(answer.problem(), missing.problem(), "{what}");
}

async fn only_their_cases(db: TestDb) {
    let h = Harness::start(db).await;
    let (org_a, _) = h.organisation("Test Referring NGO", "psychosocial").await;
    let (org_b, service) = h.organisation("Test Health Partner", "health").await;
    let ana = h.user(org_a, Role::Caseworker).await;
    let ben = h.user(org_a, Role::Caseworker).await;
    let sam = h.user(org_a, Role::Supervisor).await;
    let partner = h.user(org_b, Role::FocalPoint).await;

    let opened = ana.post("/v1/cases", json!({"profile": profile("TEST-4001")})).await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.body);
    let case = opened.id();
    let consent = ana.post(&format!("/v1/cases/{case}/consents"), json!({})).await;
    assert_eq!(consent.status, StatusCode::CREATED, "{}", consent.body);
    let refer = |case: &str| json!({"case_id": case, "to_org": org_b.to_string(), "service_id": service, "priority": "routine"});
    let referred = ana.post("/v1/referrals", refer(&case)).await;
    assert_eq!(referred.status, StatusCode::CREATED, "{}", referred.body);
    let referral = referred.id();
    let bens = ben.post("/v1/cases", json!({"profile": profile("TEST-4002")})).await;
    assert_eq!(bens.status, StatusCode::CREATED, "{}", bens.body);
    let bens_case = bens.id();
    let at = bens.position();

    // The list: each caseworker their own, the supervisor both.
    assert_eq!(ids(&ana.get_at("/v1/cases", at).await), vec![case.clone()]);
    assert_eq!(ids(&ben.get_at("/v1/cases", at).await), vec![bens_case.clone()]);
    let mut all = ids(&sam.get_at("/v1/cases", at).await);
    all.sort();
    let mut both = vec![case.clone(), bens_case.clone()];
    both.sort();
    assert_eq!(all, both);
    // Not even a search by the colleague's survivor code finds it.
    assert!(ids(&ben.get_at("/v1/cases?survivor_code=TEST-4001", at).await).is_empty());
    // Referrals follow their case on the referring side.
    assert_eq!(
        ids(&ana.get_at("/v1/referrals?direction=sent", at).await),
        vec![referral.clone()]
    );
    assert!(ids(&ben.get_at("/v1/referrals?direction=sent", at).await).is_empty());
    assert_eq!(
        ids(&sam.get_at("/v1/referrals?direction=sent", at).await),
        vec![referral.clone()]
    );

    // The colleague's case, and its referral, answer as if they did not exist.
    let no_case = ben.get_at(&format!("/v1/cases/{}", uuid::Uuid::now_v7()), at).await;
    let no_referral = ben.get_at(&format!("/v1/referrals/{}", uuid::Uuid::now_v7()), at).await;
    let ifm = [("if-match", "\"2\"".to_owned())];
    let hidden = [
        ("read", ben.get_at(&format!("/v1/cases/{case}"), at).await, &no_case),
        (
            "update",
            ben.send(
                Method::PUT,
                &format!("/v1/cases/{case}/profile"),
                Some(profile("TEST-4003")),
                &ifm,
            )
            .await,
            &no_case,
        ),
        (
            "close",
            ben.post_with(
                &format!("/v1/cases/{case}/close"),
                json!({"reason": {"code": "needs_met"}}),
                &ifm,
            )
            .await,
            &no_case,
        ),
        ("refer", ben.post("/v1/referrals", refer(&case)).await, &no_case),
        (
            "candidates",
            ben.get(&format!("/v1/referrals/candidates?case_id={case}&category=health"))
                .await,
            &no_case,
        ),
        (
            "referral read",
            ben.get_at(&format!("/v1/referrals/{referral}"), at).await,
            &no_referral,
        ),
        (
            "referral history",
            ben.get_at(&format!("/v1/referrals/{referral}/history"), at).await,
            &no_referral,
        ),
        (
            "referral cancel",
            ben.post_with(
                &format!("/v1/referrals/{referral}/cancel"),
                json!({"reason": {"code": "client_request"}}),
                &[("if-match", "\"1\"".to_owned())],
            )
            .await,
            &no_referral,
        ),
    ];
    for (what, answer, missing) in &hidden {
        as_if_missing(answer, missing, what);
    }

    // The supervisor reads both; the receiving partner still reads the referral.
    for client in [&sam, &ana] {
        let read = client.get_at(&format!("/v1/cases/{case}"), at).await;
        assert_eq!(read.status, StatusCode::OK, "{}", read.body);
        let read = client.get_at(&format!("/v1/referrals/{referral}"), at).await;
        assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    }
    let read = sam.get_at(&format!("/v1/cases/{bens_case}"), at).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    let read = partner.get_at(&format!("/v1/referrals/{referral}"), at).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);

    // Declined, the referral is on its caseworker's worklist.
    let received = partner
        .send(Method::POST, &format!("/v1/referrals/{referral}/receive"), None, &[])
        .await;
    assert_eq!(received.status, StatusCode::OK, "{}", received.body);
    let declined = partner
        .post(
            &format!("/v1/referrals/{referral}/reject"),
            json!({"reason": {"code": "no_capacity"}}),
        )
        .await;
    assert_eq!(declined.status, StatusCode::OK, "{}", declined.body);
    assert_eq!(worklist(&ana, declined.position()).await, vec![referral.clone()]);

    // Assigned to the colleague, the case moves with its referrals.
    let assigned = sam
        .post(
            &format!("/v1/cases/{case}/assign"),
            json!({"caseworker": user_id(&ben).await}),
        )
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.body);
    let at = assigned.position();
    let read = ben.get_at(&format!("/v1/cases/{case}"), at).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    as_if_missing(
        &ana.get_at(&format!("/v1/cases/{case}"), at).await,
        &no_case,
        "read after reassignment",
    );
    as_if_missing(
        &ana.send(
            Method::PUT,
            &format!("/v1/cases/{case}/profile"),
            Some(profile("TEST-4003")),
            &[],
        )
        .await,
        &no_case,
        "update after reassignment",
    );
    assert!(ids(&ana.get_at("/v1/cases", at).await).is_empty());
    assert!(ids(&ana.get_at("/v1/referrals?direction=sent", at).await).is_empty());
    assert!(worklist(&ana, at).await.is_empty());
    assert_eq!(
        ids(&ben.get_at("/v1/referrals?direction=sent", at).await),
        vec![referral.clone()]
    );

    // Shared with a colleague, the case and its referral are theirs to see and work on.
    let shares = format!("/v1/cases/{case}/shares");
    let ana_id = user_id(&ana).await;
    let shared = ben.post(&shares, json!({"user": ana_id})).await;
    assert_eq!(shared.status, StatusCode::OK, "{}", shared.body);
    let at = shared.position();
    let read = ana.get_at(&format!("/v1/cases/{case}"), at).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    assert_eq!(read.body["shared_with"], json!([ana_id]));
    assert_eq!(ids(&ana.get_at("/v1/cases", at).await), vec![case.clone()]);
    assert_eq!(
        ids(&ana.get_at("/v1/referrals?direction=sent", at).await),
        vec![referral.clone()]
    );
    let read = ana.get_at(&format!("/v1/referrals/{referral}"), at).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    let changed = ana
        .send(
            Method::PUT,
            &format!("/v1/cases/{case}/profile"),
            Some(profile("TEST-4004")),
            &[],
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    // Once is enough; the one it is shared with does not pass it on; a share stays within the
    // organisation.
    let again = sam.post(&shares, json!({"user": ana_id})).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", again.body);
    assert_eq!(again.body["code"], "already_recorded");
    let carl = h.user(org_a, Role::Caseworker).await;
    let passed_on = ana.post(&shares, json!({"user": user_id(&carl).await})).await;
    assert_eq!(passed_on.status, StatusCode::FORBIDDEN, "{}", passed_on.body);
    let outside = ben.post(&shares, json!({"user": user_id(&partner).await})).await;
    assert_eq!(outside.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", outside.body);
    assert_eq!(outside.body["errors"][0]["field"], "/user");
    let unknown = ben.post(&shares, json!({"user": "test-no-such-user"})).await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", unknown.body);

    // Taken back, the case is hidden again.
    let unshared = sam.send(Method::DELETE, &format!("{shares}/{ana_id}"), None, &[]).await;
    assert_eq!(unshared.status, StatusCode::OK, "{}", unshared.body);
    let at = unshared.position();
    as_if_missing(
        &ana.get_at(&format!("/v1/cases/{case}"), at).await,
        &no_case,
        "read after unsharing",
    );
    as_if_missing(
        &ana.get_at(&format!("/v1/referrals/{referral}"), at).await,
        &no_referral,
        "referral read after unsharing",
    );
    assert!(ids(&ana.get_at("/v1/cases", at).await).is_empty());
    assert!(ids(&ana.get_at("/v1/referrals?direction=sent", at).await).is_empty());
    let again = ben.send(Method::DELETE, &format!("{shares}/{ana_id}"), None, &[]).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", again.body);
    assert_eq!(again.body["code"], "nothing_to_change");
    h.stop().await;
}
