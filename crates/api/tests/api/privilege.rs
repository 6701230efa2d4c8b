//! What no one may give themselves, and what no organisation may do to another: the cases the
//! security review found beside the authorisation matrix.

use crate::support::{Client, Harness, TestDb, profile};
use reqwest::{Method, StatusCode};
use serde_json::json;
use wasl_domain::Role;

/// The user id behind a client.
async fn user_id(client: &Client) -> String {
    client.get("/v1/me").await.body["user_id"]
        .as_str()
        .expect("a user id")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_one_changes_their_own_roles_and_tokens_are_for_partner_systems_for_90_days_at_most() {
    let h = Harness::start(TestDb::sqlite()).await;
    let (org, _) = h.organisation("Test Referring NGO", "health").await;
    let admin = h.user(org, Role::Admin).await;
    let me = user_id(&admin).await;
    let roles = |id: &str| format!("/v1/users/{id}/roles");
    let selfish = admin
        .send(
            Method::PUT,
            &roles(&me),
            Some(json!({"roles": ["admin", "supervisor"]})),
            &[],
        )
        .await;
    assert_eq!(selfish.status, StatusCode::FORBIDDEN, "{}", selfish.body);
    assert_eq!(admin.get("/v1/me").await.body["roles"], json!(["admin"]));
    // A second admin only asks: a third must approve (see below).
    let second = h.user(org, Role::Admin).await;
    let asked = second
        .send(
            Method::PUT,
            &roles(&me),
            Some(json!({"roles": ["admin", "supervisor"]})),
            &[],
        )
        .await;
    assert_eq!(asked.status, StatusCode::ACCEPTED, "{}", asked.body);
    assert_eq!(admin.get("/v1/me").await.body["roles"], json!(["admin"]));

    for (body, field) in [
        (
            json!({"label": "test", "role": "supervisor", "expires_in_days": 30}),
            "/role",
        ),
        (
            json!({"label": "test", "role": "caseworker", "expires_in_days": 30}),
            "/role",
        ),
        (
            json!({"label": "test", "role": "partner_system", "expires_in_days": 91}),
            "/expires_in_days",
        ),
        (
            json!({"label": "test", "role": "partner_system", "expires_in_days": 730}),
            "/expires_in_days",
        ),
    ] {
        let refused = admin.post("/v1/tokens", body.clone()).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            refused.body
        );
        assert_eq!(refused.body["errors"][0]["field"], field, "{body}");
    }
    let issued = admin
        .post(
            "/v1/tokens",
            json!({"label": "test", "role": "partner_system", "expires_in_days": 90}),
        )
        .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_is_assigned_only_to_a_caseworker_of_its_organisation() {
    let h = Harness::start(TestDb::sqlite()).await;
    let (org, _) = h.organisation("Test Referring NGO", "health").await;
    let (other, _) = h.organisation("Test Other NGO", "legal").await;
    let caseworker = h.user(org, Role::Caseworker).await;
    let colleague = user_id(&h.user(org, Role::Caseworker).await).await;
    let stranger = user_id(&h.user(other, Role::Caseworker).await).await;
    let admin = user_id(&h.user(org, Role::Admin).await).await;
    let nobody = uuid::Uuid::now_v7().to_string();
    let opened = caseworker
        .post("/v1/cases", json!({"profile": profile("TEST-4001")}))
        .await;
    let assign = format!("/v1/cases/{}/assign", opened.id());
    for who in [&stranger, &admin, &nobody] {
        let refused = caseworker.post(&assign, json!({"caseworker": who})).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
        assert_eq!(refused.body["errors"][0]["field"], "/caseworker");
        let refused = caseworker
            .post("/v1/cases", json!({"profile": profile("TEST-4002"), "caseworker": who}))
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
    }
    let assigned = caseworker.post(&assign, json!({"caseworker": colleague})).await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_organisations_admin_cannot_touch_its_services_or_register_organisations() {
    let h = Harness::start(TestDb::sqlite()).await;
    let (shelter, service) = h.organisation("Test Safe House", "shelter").await;
    let (other, _) = h.organisation("Test Other NGO", "legal").await;
    let outsider = h.user(other, Role::Admin).await;
    let closed = outsider
        .send(
            Method::PUT,
            &format!("/v1/organisations/{shelter}/services/{service}/availability"),
            Some(json!({"accepting": false})),
            &[],
        )
        .await;
    assert_eq!(closed.status, StatusCode::FORBIDDEN, "{}", closed.body);
    let added = outsider
        .post(
            &format!("/v1/organisations/{shelter}/services"),
            json!({"name": "Test fake service", "category": "health", "areas": ["IQ-NI"], "languages": ["ar"]}),
        )
        .await;
    assert_eq!(added.status, StatusCode::FORBIDDEN, "{}", added.body);
    let registered = outsider
        .post(
            "/v1/organisations",
            json!({"name": "Test Rogue NGO", "kind": "national_ngo"}),
        )
        .await;
    assert_eq!(registered.status, StatusCode::FORBIDDEN, "{}", registered.body);
    // The organisation's own admin may.
    let own = h.user(shelter, Role::Admin).await;
    let changed = own
        .send(
            Method::PUT,
            &format!("/v1/organisations/{shelter}/services/{service}/availability"),
            Some(json!({"accepting": false})),
            &[],
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_casework_role_for_an_admin_needs_a_second_admin_who_is_neither_the_asker_nor_the_user() {
    let h = Harness::start(TestDb::sqlite()).await;
    let (org, _) = h.organisation("Test Referring NGO", "health").await;
    let (other, _) = h.organisation("Test Other NGO", "legal").await;
    let caseworker = h.user(org, Role::Caseworker).await;
    let opened = caseworker
        .post("/v1/cases", json!({"profile": profile("TEST-4201")}))
        .await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.body);
    let case = format!("/v1/cases/{}", opened.id());
    let asker = h.user(org, Role::Admin).await;
    let target = h.user(org, Role::Admin).await;
    let approver = h.user(org, Role::Admin).await;
    let outsider = h.user(other, Role::Admin).await;
    let target_id = user_id(&target).await;
    let asker_id = user_id(&asker).await;

    let asked = asker
        .send(
            Method::PUT,
            &format!("/v1/users/{target_id}/roles"),
            Some(json!({"roles": ["admin", "supervisor"]})),
            &[],
        )
        .await;
    assert_eq!(asked.status, StatusCode::ACCEPTED, "{}", asked.body);
    assert_eq!(asked.body["status"], "pending");
    assert_eq!(asked.body["requested_by"], json!(asker_id));
    assert_eq!(asked.body["roles"], json!(["admin", "supervisor"]));
    let request = asked.id();
    // Nothing changed yet: the target is still only an admin and reads no case file.
    assert_eq!(target.get("/v1/me").await.body["roles"], json!(["admin"]));
    assert_eq!(target.get(&case).await.status, StatusCode::NOT_FOUND);
    let requests = format!("/v1/users/{target_id}/role-requests");
    let listed = approver.get(&requests).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.body[0]["id"], json!(request));
    assert_eq!(outsider.get(&requests).await.status, StatusCode::NOT_FOUND);

    let approve = format!("{requests}/{request}/approve");
    for (who, want) in [
        (&asker, StatusCode::FORBIDDEN),
        (&target, StatusCode::FORBIDDEN),
        (&outsider, StatusCode::NOT_FOUND),
        (&caseworker, StatusCode::FORBIDDEN),
    ] {
        let refused = who.post(&approve, json!({})).await;
        assert_eq!(refused.status, want, "{}", refused.body);
    }
    let refused = asker.post(&format!("{requests}/{request}/reject"), json!({})).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(target.get("/v1/me").await.body["roles"], json!(["admin"]));

    let approved = approver.post(&approve, json!({})).await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    assert_eq!(approved.body["roles"], json!(["admin", "supervisor"]));
    assert_eq!(target.get("/v1/me").await.body["roles"], json!(["admin", "supervisor"]));
    assert_eq!(target.get(&case).await.status, StatusCode::OK);
    assert_eq!(approver.get(&requests).await.body, json!([]));
    // Decided once: it is gone.
    assert_eq!(approver.post(&approve, json!({})).await.status, StatusCode::NOT_FOUND);

    // Taking a role away never waits.
    let removed = approver
        .send(
            Method::PUT,
            &format!("/v1/users/{target_id}/roles"),
            Some(json!({"roles": ["admin"]})),
            &[],
        )
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    // Making a user an admin who already reads personal data waits too; a rejection changes
    // nothing.
    let worker_id = user_id(&caseworker).await;
    let asked = asker
        .send(
            Method::PUT,
            &format!("/v1/users/{worker_id}/roles"),
            Some(json!({"roles": ["caseworker", "admin"]})),
            &[],
        )
        .await;
    assert_eq!(asked.status, StatusCode::ACCEPTED, "{}", asked.body);
    let rejected = approver
        .post(
            &format!("/v1/users/{worker_id}/role-requests/{}/reject", asked.id()),
            json!({}),
        )
        .await;
    assert_eq!(rejected.status, StatusCode::NO_CONTENT, "{}", rejected.body);
    assert_eq!(caseworker.get("/v1/me").await.body["roles"], json!(["caseworker"]));
    // Nor can the rule be stepped around by creating the account with both.
    let created = asker
        .post(
            "/v1/users",
            json!({"username": "test-both-roles", "password": "test password 0006", "roles": ["admin", "supervisor"]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", created.body);
    assert_eq!(created.body["errors"][0]["field"], "/roles");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_directory_change_is_audited_and_none_is_made_when_the_audit_cannot_be_written() {
    let h = Harness::start(TestDb::sqlite()).await;
    let (org, service) = h.organisation("Test Safe House", "shelter").await;
    let admin = h.user(org, Role::Admin).await;
    let admin_id = user_id(&admin).await;
    let services = format!("/v1/organisations/{org}/services");
    let added = admin
        .post(
            &services,
            json!({"name": "Test second service", "category": "health", "areas": ["IQ-NI"], "languages": ["ar"]}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    let changed = admin
        .send(
            Method::PUT,
            &format!("{services}/{service}"),
            Some(
                json!({"name": "Test renamed service", "category": "shelter", "areas": ["IQ-NI"], "languages": ["ar"]}),
            ),
            &[],
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    let availability = format!("{services}/{service}/availability");
    let closed = admin
        .send(Method::PUT, &availability, Some(json!({"accepting": false})), &[])
        .await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.body);

    // The organisation's admin reads its own changes in its audit.
    let audit = admin.get("/v1/audit").await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.body);
    let records = audit.body["items"].as_array().expect("records").clone();
    let mut seen: Vec<(String, String)> = records
        .iter()
        .filter(|r| r["user"] == json!(admin_id))
        .map(|r| {
            (
                r["action"].as_str().unwrap_or_default().to_owned(),
                r["resource"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    seen.retain(|(action, _)| action != "audit.read");
    assert_eq!(
        seen,
        vec![
            (
                "service.add".to_owned(),
                format!("organisation/{org}/service/{}", added.id())
            ),
            (
                "service.change".to_owned(),
                format!("organisation/{org}/service/{service}")
            ),
            (
                "service.availability".to_owned(),
                format!("organisation/{org}/service/{service}")
            ),
        ]
    );
    // The hub's registration and first service are in the audit under the coordinator.
    let all = wasl_api::audit::records(h.state.audit().stream())
        .await
        .expect("the audit");
    let by_hub: Vec<&str> = all
        .iter()
        .filter(|r| r.org == h.hub.to_string() && r.resource.contains(&org.to_string()))
        .map(|r| r.action.as_str())
        .collect();
    assert_eq!(by_hub, ["directory.register", "service.add"]);

    // Without an audit, no change is made.
    let before = h
        .state
        .store()
        .load::<wasl_domain::directory::Organisation>(org)
        .await
        .expect("the organisation")
        .version;
    let js = async_nats::jetstream::new(async_nats::connect(h.nats.url()).await.expect("NATS"));
    js.delete_stream(wasl_api::audit::STREAM)
        .await
        .expect("delete the audit stream");
    let refused = admin
        .send(Method::PUT, &availability, Some(json!({"accepting": true})), &[])
        .await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE, "{}", refused.body);
    let refused = h
        .coordinator
        .post(
            "/v1/organisations",
            json!({"name": "Test Unaudited NGO", "kind": "national_ngo"}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE, "{}", refused.body);
    let after = h
        .state
        .store()
        .load::<wasl_domain::directory::Organisation>(org)
        .await
        .expect("the organisation")
        .version;
    assert_eq!(after, before, "a change was made without its audit record");
    h.stop().await;
}
