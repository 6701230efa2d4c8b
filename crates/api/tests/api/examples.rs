//! Every example a request body shows in `/openapi.json` works when sent: a whole-body example
//! is sent as it is, and each field's example is sent in an otherwise valid request, to a
//! running API. A client copying an example from the document must never get a 4xx.
//!
//! The examples are read from the document itself, so a new one is tested without being listed
//! here; an operation that gains examples but has no request below fails the test until it
//! gets one.

use crate::support::{Client, Harness, TestDb, profile};
use serde_json::{Map, Value, json};
use wasl_domain::ids::{CommandId, ReferralId};
use wasl_domain::referral::{OverdueKind, Referral, ReferralCommand};
use wasl_domain::testing::{actor, fresh};
use wasl_domain::time::Timestamp;
use wasl_domain::{Context, Role};
use wasl_store::CommandMeta;

/// One example: the operation, where it sits in the request body (a JSON pointer; empty for
/// the whole body) and its value.
#[derive(Debug, Clone)]
struct Example {
    operation: String,
    method: String,
    path: String,
    pointer: String,
    value: Value,
}

/// Every example in the request bodies of `doc`.
fn request_examples(doc: &Value) -> Vec<Example> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
            if schema.is_null() {
                continue;
            }
            let mut found = Vec::new();
            examples_in(doc, schema, String::new(), &mut found, 0);
            for (pointer, value) in found {
                out.push(Example {
                    operation: operation["operationId"].as_str().expect("an operation id").to_owned(),
                    method: method.to_uppercase(),
                    path: path.clone(),
                    pointer,
                    value,
                });
            }
        }
    }
    out
}

fn examples_in(doc: &Value, schema: &Value, pointer: String, out: &mut Vec<(String, Value)>, depth: usize) {
    assert!(depth < 16, "a schema nests deeper than any request body should");
    if let Some(target) = schema["$ref"].as_str() {
        let name = target
            .strip_prefix("#/components/schemas/")
            .expect("a schema reference");
        let resolved = &doc["components"]["schemas"][name];
        return examples_in(doc, resolved, pointer, out, depth + 1);
    }
    if let Some(example) = schema.get("example") {
        out.push((pointer.clone(), example.clone()));
    }
    if let Some(examples) = schema["examples"].as_array() {
        out.extend(examples.iter().map(|e| (pointer.clone(), e.clone())));
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        for option in schema[key].as_array().into_iter().flatten() {
            examples_in(doc, option, pointer.clone(), out, depth + 1);
        }
    }
    for (name, property) in schema["properties"].as_object().into_iter().flatten() {
        examples_in(doc, property, format!("{pointer}/{name}"), out, depth + 1);
    }
}

/// `base` with `value` at `pointer` (the whole body for an empty pointer).
fn with(mut base: Value, pointer: &str, value: Value) -> Value {
    if pointer.is_empty() {
        return value;
    }
    let mut at = &mut base;
    let mut names = pointer.trim_start_matches('/').split('/').peekable();
    while let Some(name) = names.next() {
        let object = at.as_object_mut().expect("an example inside an object");
        if names.peek().is_none() {
            object.insert(name.to_owned(), value);
            break;
        }
        at = object.entry(name).or_insert_with(|| Value::Object(Map::new()));
    }
    base
}

/// A network to send the examples into: a referring organisation A with a caseworker, an admin
/// and an open case with consent, and a receiving organisation B with a health service.
struct Net {
    h: Harness,
    caseworker: Client,
    supervisor: Client,
    admin: Client,
    org_b: String,
    service_b: String,
    case: String,
}

impl Net {
    async fn start() -> Self {
        let h = Harness::start(TestDb::sqlite()).await;
        let (a, _) = h.organisation("Test Referring NGO", "psychosocial").await;
        let (b, service_b) = h.organisation("Test Health Partner", "health").await;
        let caseworker = h.user(a, Role::Caseworker).await;
        let admin = h.user(a, Role::Admin).await;
        let supervisor = h.user(a, Role::Supervisor).await;
        // The colleague the share example names.
        h.state
            .accounts()
            .create_user(
                None,
                a,
                "test-example-colleague",
                &[Role::Caseworker],
                "test password 0004",
            )
            .await
            .expect("the example's colleague");
        let opened = caseworker
            .post("/v1/cases", json!({"profile": profile("TEST-4000")}))
            .await;
        assert!(opened.status.is_success(), "{}", opened.body);
        let case = opened.id();
        let consent = caseworker.post(&format!("/v1/cases/{case}/consents"), json!({})).await;
        assert!(consent.status.is_success(), "{}", consent.body);
        Self {
            h,
            caseworker,
            supervisor,
            admin,
            org_b: b.to_string(),
            service_b,
            case,
        }
    }

    /// A referral from A to B whose `kind` deadline was missed and escalated, as the follow-up
    /// service would record it.
    async fn escalated(&self, kind: OverdueKind) -> String {
        let requested = self
            .caseworker
            .post(
                "/v1/referrals",
                json!({"case_id": self.case, "to_org": self.org_b, "service_id": self.service_b, "priority": "routine"}),
            )
            .await;
        assert!(requested.status.is_success(), "{}", requested.body);
        let id = ReferralId::parse(&requested.id()).expect("a referral id");
        let now = Timestamp::from_unix_millis(wasl_api::auth::accounts::now_millis());
        for command in [
            ReferralCommand::MarkResponseOverdue {
                kind,
                due_at: now.plus_millis(-60_000),
            },
            ReferralCommand::Escalate { kind },
        ] {
            let meta = CommandMeta {
                command_id: fresh::<CommandId>(),
                context: Context {
                    now,
                    actor: actor(fresh(), self.h.hub, Role::System),
                },
                traceparent: None,
            };
            self.h
                .state
                .store()
                .execute::<Referral>(id, &command, &meta)
                .await
                .expect("the follow-up service's command");
        }
        id.to_string()
    }

    /// Sends `example` in an otherwise valid request of its operation.
    async fn send(&self, example: &Example) -> crate::support::Answer {
        let e = example;
        let method = reqwest::Method::from_bytes(e.method.as_bytes()).expect("a method");
        let (client, path, base) = match e.operation.as_str() {
            "open_case" => (
                &self.caseworker,
                e.path.clone(),
                json!({"profile": profile("TEST-4001")}),
            ),
            "update_case_profile" => {
                // A case of its own, whose profile the example's request changes.
                let opened = self
                    .caseworker
                    .post("/v1/cases", json!({"profile": profile("TEST-4100")}))
                    .await;
                assert!(opened.status.is_success(), "{}", opened.body);
                (
                    &self.caseworker,
                    e.path.replace("{case_id}", &opened.id()),
                    profile("TEST-4002"),
                )
            }
            "share_case" => (
                &self.caseworker,
                e.path.replace("{case_id}", &self.case),
                json!({"user": "test-example-colleague"}),
            ),
            "request_referral" => (
                &self.caseworker,
                e.path.clone(),
                json!({"case_id": self.case, "to_org": self.org_b, "service_id": self.service_b, "priority": "routine"}),
            ),
            "register_organisation" => (
                &self.h.coordinator,
                e.path.clone(),
                json!({"name": "Test Example NGO", "kind": "national_ngo"}),
            ),
            "add_service" | "update_service" => (
                &self.h.coordinator,
                e.path
                    .replace("{org_id}", &self.org_b)
                    .replace("{service_id}", &self.service_b),
                json!({"name": "Test example service", "category": "health", "areas": ["IQ-NI"], "languages": ["ar"]}),
            ),
            "set_my_notifications" => (
                &self.caseworker,
                e.path.clone(),
                json!({"email": "test-examples@example.org"}),
            ),
            "issue_token" => (
                &self.admin,
                e.path.clone(),
                json!({"label": "test example system", "role": "partner_system", "expires_in_days": 30}),
            ),
            "erase_case" => {
                // A case of its own: the example erases it.
                let opened = self
                    .caseworker
                    .post("/v1/cases", json!({"profile": profile("TEST-4101")}))
                    .await;
                assert!(opened.status.is_success(), "{}", opened.body);
                (
                    &self.supervisor,
                    e.path.replace("{case_id}", &opened.id()),
                    json!({"reason": {"code": "client_request"}}),
                )
            }
            "set_user_roles" => {
                // A user of its own, whose roles the example sets.
                let created = self
                    .admin
                    .post(
                        "/v1/users",
                        json!({"username": format!("test-{}", uuid::Uuid::new_v4().simple()),
                            "password": "test password 0004", "roles": ["focal_point"]}),
                    )
                    .await;
                assert!(created.status.is_success(), "{}", created.body);
                (
                    &self.admin,
                    e.path.replace("{user_id}", &created.id()),
                    json!({"roles": ["caseworker"]}),
                )
            }
            "acknowledge_escalation" => {
                // The escalation must be of the kind the example acknowledges.
                let body = with(json!({"kind": "decision"}), &e.pointer, e.value.clone());
                let kind = OverdueKind::parse(body["kind"].as_str().expect("a kind")).expect("a known kind");
                let referral = self.escalated(kind).await;
                (
                    &self.h.coordinator,
                    e.path.replace("{referral_id}", &referral),
                    json!({"kind": "decision"}),
                )
            }
            other => panic!(
                "{other} shows request examples in the OpenAPI document; add a valid request for it to \
                 this test so that they are checked"
            ),
        };
        let body = with(base, &e.pointer, e.value.clone());
        client.send(method, &path, Some(body), &[]).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_example_in_the_document_works_when_sent() {
    let doc = serde_json::to_value(wasl_api::openapi()).expect("the document");
    let examples = request_examples(&doc);
    assert!(
        examples.iter().any(|e| e.pointer.is_empty()),
        "the document has a whole-body example"
    );
    assert!(examples.len() >= 10, "{} examples", examples.len());
    let net = Net::start().await;
    let mut refused = Vec::new();
    for example in &examples {
        let answer = net.send(example).await;
        if !answer.status.is_success() {
            refused.push(format!(
                "{} {} with {} = {}: {} {}",
                example.method, example.path, example.pointer, example.value, answer.status, answer.body
            ));
        }
    }
    assert!(refused.is_empty(), "examples the API refuses:\n{}", refused.join("\n"));
    eprintln!("{} request examples sent, all accepted", examples.len());
    net.h.stop().await;
}
