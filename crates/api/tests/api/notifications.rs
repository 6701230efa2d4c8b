//! `GET` and `PUT /v1/me/notifications`: a person sets and reads only their own address, the
//! address is validated, partner tokens are refused, and each change is on record in
//! `WASL_ACCOUNTS` with who made it.

use crate::support::{Harness, TestDb};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use wasl_domain::Role;

const PATH: &str = "/v1/me/notifications";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_sets_and_reads_their_own_notification_address() {
    let h = Harness::start(TestDb::sqlite()).await;
    let (org, _) = h.organisation("Test Health Partner", "health").await;
    let focal = h.user(org, Role::FocalPoint).await;

    let unset = focal.get(PATH).await;
    assert_eq!(unset.status, StatusCode::OK, "{}", unset.body);
    assert_eq!(unset.body, json!({"email": null, "enabled": false}));

    // An address alone turns mail on.
    let set = focal
        .send(
            Method::PUT,
            PATH,
            Some(json!({"email": " test-focal@example.org "})),
            &[],
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body, json!({"email": "test-focal@example.org", "enabled": true}));
    assert_eq!(focal.get(PATH).await.body, set.body);

    // Off, keeping the address; then the address removed.
    let off = focal
        .send(
            Method::PUT,
            PATH,
            Some(json!({"email": "test-focal@example.org", "enabled": false})),
            &[],
        )
        .await;
    assert_eq!(off.body, json!({"email": "test-focal@example.org", "enabled": false}));
    let removed = focal.send(Method::PUT, PATH, Some(json!({"email": null})), &[]).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert_eq!(removed.body, json!({"email": null, "enabled": false}));
    assert_eq!(
        removed.headers.get("cache-control").and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_that_are_not_addresses_are_refused_field_by_field() {
    let h = Harness::start(TestDb::sqlite()).await;
    let (org, _) = h.organisation("Test Health Partner", "health").await;
    let caseworker = h.user(org, Role::Caseworker).await;
    let long = format!("{}@example.org", "a".repeat(250));
    for (body, field) in [
        (json!({"email": "not an address"}), "/email"),
        (json!({"email": "test@localhost"}), "/email"),
        (json!({"email": "test@example.org\r\nBcc: x@example.org"}), "/email"),
        (json!({"email": long}), "/email"),
        (json!({"email": null, "enabled": true}), "/enabled"),
        (json!({"enabled": true}), "/enabled"),
    ] {
        let answer = caseworker.send(Method::PUT, PATH, Some(body.clone()), &[]).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            answer.body
        );
        assert_eq!(fields(&answer.body), [field], "{body}");
    }
    // Unknown fields and wrong types are malformed requests.
    for body in [
        json!({"email": "test@example.org", "user_id": "someone"}),
        json!({"email": 42}),
    ] {
        let answer = caseworker.send(Method::PUT, PATH, Some(body.clone()), &[]).await;
        assert!(answer.status.is_client_error(), "{body}: {}", answer.status);
        assert_ne!(answer.status, StatusCode::OK);
    }
    assert_eq!(
        caseworker.get(PATH).await.body,
        json!({"email": null, "enabled": false})
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_sets_another_persons_address_and_every_change_is_on_record() {
    let h = Harness::start(TestDb::sqlite()).await;
    let (org, _) = h.organisation("Test Health Partner", "health").await;
    let one = h.user(org, Role::FocalPoint).await;
    let two = h.user(org, Role::FocalPoint).await;
    let admin = h.user(org, Role::Admin).await;
    let two_id = two.get("/v1/me").await.body["user_id"]
        .as_str()
        .expect("an id")
        .to_owned();

    let set = two
        .send(Method::PUT, PATH, Some(json!({"email": "test-two@example.org"})), &[])
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let mine = one
        .send(Method::PUT, PATH, Some(json!({"email": "test-one@example.org"})), &[])
        .await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    // There is no route that names another person, not even for an admin.
    for client in [&one, &admin] {
        let answer = client
            .send(
                Method::PUT,
                &format!("/v1/users/{two_id}/notifications"),
                Some(json!({"email": "test-hijack@example.org"})),
                &[],
            )
            .await;
        assert!(
            matches!(answer.status, StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED),
            "{}",
            answer.status
        );
    }
    assert_eq!(
        two.get(PATH).await.body,
        json!({"email": "test-two@example.org", "enabled": true})
    );

    // The change is an account record by the person themself.
    let js = async_nats::jetstream::new(async_nats::connect(h.nats.url()).await.expect("connect"));
    let stream = js.get_stream("WASL_ACCOUNTS").await.expect("the accounts log");
    let last = stream
        .get_last_raw_message_by_subject(&format!("wasl.acct.notify.{two_id}"))
        .await
        .expect("the record");
    let record: Value = serde_json::from_slice(&last.payload).expect("JSON");
    assert_eq!(record["by"], json!(two_id));
    assert_eq!(record["event"]["type"], json!("notifications_set"));
    assert_eq!(record["event"]["user_id"], json!(two_id));
    assert!(record["at"].as_i64().is_some());

    // A change by session needs the CSRF token like every other.
    let forged = two
        .without_csrf()
        .send(
            Method::PUT,
            PATH,
            Some(json!({"email": "test-forged@example.org"})),
            &[],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_token_is_not_a_person_and_strangers_are_not_let_in() {
    let h = Harness::start(TestDb::sqlite()).await;
    let (org, _) = h.organisation("Test Health Partner", "health").await;
    let token = h.token(org, Role::PartnerSystem).await;
    for method in [Method::GET, Method::PUT] {
        let body = (method == Method::PUT).then(|| json!({"email": "test-system@example.org"}));
        let answer = token.send(method.clone(), PATH, body.clone(), &[]).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{method}: {}", answer.body);
        let anonymous = h.anonymous().send(method.clone(), PATH, body, &[]).await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{method}");
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_example_works_as_sent() {
    let h = Harness::start(TestDb::sqlite()).await;
    let (org, _) = h.organisation("Test Health Partner", "health").await;
    let coordinator = h.user(org, Role::Coordinator).await;
    let doc = coordinator.get("/openapi.json").await.body;
    let operation = &doc["paths"][PATH]["put"];
    assert_eq!(operation["operationId"], json!("set_my_notifications"));
    let reference = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        .as_str()
        .expect("a schema reference");
    let name = reference.rsplit('/').next().expect("a name");
    let properties = doc["components"]["schemas"][name]["properties"]
        .as_object()
        .expect("properties");
    let example: serde_json::Map<String, Value> = properties
        .iter()
        .map(|(field, schema)| (field.clone(), schema["example"].clone()))
        .collect();
    assert!(
        example.values().all(|v| !v.is_null()),
        "every field has an example: {example:?}"
    );
    let answer = coordinator
        .send(Method::PUT, PATH, Some(Value::Object(example)), &[])
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["enabled"], json!(true));
    h.stop().await;
}

/// The fields a 422 names.
fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
