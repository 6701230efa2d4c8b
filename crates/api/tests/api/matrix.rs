//! The authorisation matrix, generated from the API's own route table (its OpenAPI document):
//! every route × every role × an actor in the referring organisation (A, which owns the case),
//! the receiving organisation (B) and an unrelated one (Z), with the exact status expected. In
//! A the caseworker is the case's responsible caseworker; a colleague (another caseworker of A,
//! the case neither assigned nor shared to them) is one more column: need-to-know.
//!
//! The expected answers below are the policy written out as a table, independently of the code
//! that enforces it. A route without an entry fails the test, so a new route cannot slip in
//! without its rule. Commands carry `If-Match: "999999"`: an allowed command stops at the
//! version check (412) and changes nothing, so every cell sees the same world.

use crate::support::{Client, Harness, TestDb, profile};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use wasl_domain::Role;
use wasl_domain::ids::OrgId;

const ROLES: [Role; 6] = [
    Role::Caseworker,
    Role::Supervisor,
    Role::FocalPoint,
    Role::PartnerSystem,
    Role::Coordinator,
    Role::Admin,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Org {
    /// Referring: owns the case and made the referral.
    A,
    /// Referring, as a caseworker of A who is not the case's responsible caseworker and with
    /// whom it is not shared (only asked with the caseworker role).
    AColleague,
    /// Receiving: the referral is addressed to it; the service is its.
    B,
    /// Unrelated.
    Z,
}

/// The status the policy prescribes for `op` by `role` in `org`.
fn expected(op: &str, role: Role, org: Org) -> StatusCode {
    use Role::*;
    let casework = matches!(role, Caseworker | Supervisor);
    let partner = matches!(role, FocalPoint | PartnerSystem);
    let maintainer = matches!(role, Coordinator | Admin);
    let ok = StatusCode::OK;
    let created = StatusCode::CREATED;
    let changed = StatusCode::PRECONDITION_FAILED; // allowed, stopped by If-Match
    let done = StatusCode::NO_CONTENT;
    let forbidden = StatusCode::FORBIDDEN;
    let hidden = StatusCode::NOT_FOUND;
    let pick = |allowed: bool, yes: StatusCode, no: StatusCode| if allowed { yes } else { no };
    // Need-to-know: the organisation's colleague does not see the case nor its referral, as if
    // they did not exist; they may still list (their own), open cases and see their worklist.
    if org == Org::AColleague {
        return match op {
            "get_case"
            | "referral_candidates"
            | "update_case_profile"
            | "update_case_personal_data"
            | "assign_case"
            | "share_case"
            | "unshare_case"
            | "give_consent"
            | "narrow_consent"
            | "withdraw_consent"
            | "close_case"
            | "reopen_case"
            | "request_referral"
            | "get_referral"
            | "referral_history"
            | "cancel_referral"
            | "record_follow_up" => hidden,
            _ => expected(op, role, Org::A),
        };
    }
    match op {
        "healthz" | "readyz" | "me" | "search_services" | "list_organisations" | "get_organisation" => ok,
        // A token is not a session: there is nothing to sign out.
        "logout" => StatusCode::BAD_REQUEST,
        // Nor a person with a mailbox.
        "get_my_notifications" | "set_my_notifications" => StatusCode::BAD_REQUEST,
        "create_user" | "issue_token" => pick(role == Admin, created, forbidden),
        "list_users" | "list_tokens" | "read_audit" => pick(role == Admin, ok, forbidden),
        "set_user_roles" => match (role, org) {
            (Admin, Org::A) => ok,
            (Admin, _) => hidden,
            _ => forbidden,
        },
        // Only an admin of the user's organisation sees or decides their role requests; the
        // matrix's admin is neither the admin who asked nor the user (privilege.rs: those 403).
        "list_role_requests" | "approve_role_request" => match (role, org) {
            (Admin, Org::A) => ok,
            (Admin, _) => hidden,
            _ => forbidden,
        },
        "disable_user" | "revoke_token" | "reject_role_request" => match (role, org) {
            (Admin, Org::A) => done,
            (Admin, _) => hidden,
            _ => forbidden,
        },
        "open_case" => pick(casework, created, forbidden),
        "list_cases" | "worklist" => pick(casework, ok, forbidden),
        "get_case" | "referral_candidates" => pick(casework && org == Org::A, ok, hidden),
        "update_case_profile"
        | "update_case_personal_data"
        | "assign_case"
        | "give_consent"
        | "narrow_consent"
        | "withdraw_consent"
        | "close_case"
        | "reopen_case" => pick(casework && org == Org::A, changed, hidden),
        // The responsible caseworker (the matrix's caseworker of A) or a supervisor shares.
        "share_case" | "unshare_case" => pick(casework && org == Org::A, changed, hidden),
        "request_referral" => pick(casework && org == Org::A, created, hidden),
        "list_referrals" => pick(casework || partner, ok, forbidden),
        "get_referral" | "referral_history" => {
            pick((casework && org == Org::A) || (partner && org == Org::B), ok, hidden)
        }
        "receive_referral" | "accept_referral" | "reject_referral" | "start_referral" | "hold_referral"
        | "resume_referral" | "complete_referral" | "fail_referral" => pick(partner && org == Org::B, changed, hidden),
        "cancel_referral" | "record_follow_up" => pick(casework && org == Org::A, changed, hidden),
        "mark_referral_entered_in_error" => pick(role == Supervisor && org == Org::A, changed, hidden),
        "erase_case" => pick(role == Supervisor && org == Org::A, changed, hidden),
        "export_case" => pick(role == Supervisor && org == Org::A, ok, hidden),
        // The world's referral was never escalated: not even a coordinator sees it (an
        // escalated one: promises.rs).
        "acknowledge_escalation" => hidden,
        "inbox" | "inbox_counts" => pick(partner, ok, forbidden),
        "list_escalations" => pick(maintainer, ok, forbidden),
        // The network's aggregates: coordinators and admins; how an organisation answers: also
        // its focal points (their own row beside the network's figures).
        "dashboard_headline" | "dashboard_live" | "dashboard_table" | "gcm_indicators" => {
            pick(maintainer, ok, forbidden)
        }
        "dashboard_partners" => pick(maintainer || role == FocalPoint, ok, forbidden),
        // A new organisation is the coordination hub's to register (an admin registers only
        // its own organisation's id, which the matrix's body does not name).
        "register_organisation" => pick(role == Coordinator, created, forbidden),
        // An organisation's services are its own and the hub's to change: never another
        // organisation's admin.
        "add_service" | "update_service" => pick(
            role == Coordinator || (org == Org::B && matches!(role, Supervisor | FocalPoint | Admin)),
            changed,
            forbidden,
        ),
        "set_service_availability" => pick(
            role == Coordinator || (org == Org::B && (partner || matches!(role, Supervisor | Admin))),
            changed,
            forbidden,
        ),
        other => panic!("route {other} has no entry in the authorisation matrix: add its rule here and to the policy"),
    }
}

/// The world every cell acts on.
struct World {
    case: String,
    consent: String,
    referral: String,
    org_b: String,
    service: String,
    user_a: String,
    token_a: String,
    /// Admins of A with a pending request for `supervisor`: one to approve, one to reject.
    approve: (String, String),
    reject: (String, String),
}

/// A valid body for `op`, so that only the policy and the version decide the answer.
fn body(op: &str, w: &World) -> Option<Value> {
    let reason = |code: &str| json!({"reason": {"code": code}});
    match op {
        "get_my_notifications" => None,
        "set_my_notifications" => Some(json!({"email": "test-matrix@example.org"})),
        "healthz"
        | "readyz"
        | "me"
        | "search_services"
        | "list_organisations"
        | "get_organisation"
        | "logout"
        | "list_users"
        | "list_tokens"
        | "read_audit"
        | "export_case"
        | "disable_user"
        | "revoke_token"
        | "list_role_requests"
        | "approve_role_request"
        | "reject_role_request"
        | "unshare_case"
        | "list_cases"
        | "worklist"
        | "get_case"
        | "referral_candidates"
        | "list_referrals"
        | "get_referral"
        | "referral_history"
        | "inbox"
        | "inbox_counts"
        | "list_escalations"
        | "dashboard_headline"
        | "dashboard_live"
        | "dashboard_table"
        | "dashboard_partners"
        | "gcm_indicators"
        | "withdraw_consent"
        | "receive_referral"
        | "accept_referral"
        | "start_referral"
        | "resume_referral"
        | "complete_referral" => None,
        "create_user" => Some(json!({"username": format!("test-{}", uuid::Uuid::new_v4().simple()),
            "password": "test password 0002", "roles": ["caseworker"]})),
        "issue_token" => Some(json!({"label": "test system", "role": "partner_system", "expires_in_days": 30})),
        "set_user_roles" => Some(json!({"roles": ["caseworker"]})),
        "open_case" => Some(json!({"profile": profile("TEST-3001")})),
        "update_case_profile" => Some(profile("TEST-3002")),
        "update_case_personal_data" => Some(json!({"name": "Test Person Gamma"})),
        "assign_case" => Some(json!({"caseworker": w.user_a})),
        "share_case" => Some(json!({"user": w.user_a})),
        "give_consent" | "narrow_consent" => Some(json!({"categories": ["health"]})),
        "close_case" => Some(json!({"reason": {"code": "needs_met"}, "cancel_open_referrals": true})),
        "reopen_case" => Some(json!({})),
        "request_referral" => {
            Some(json!({"case_id": w.case, "to_org": w.org_b, "service_id": w.service, "priority": "routine"}))
        }
        "reject_referral" => Some(reason("no_capacity")),
        "hold_referral" => Some(reason("awaiting_capacity")),
        "fail_referral" => Some(reason("client_unreachable")),
        "cancel_referral" => Some(reason("client_request")),
        "mark_referral_entered_in_error" => Some(json!({"reason": {"code": "duplicate"}})),
        "erase_case" => Some(json!({"reason": {"code": "client_request"}})),
        "record_follow_up" => Some(json!({"client_reached": true, "service_received": "yes"})),
        "acknowledge_escalation" => Some(json!({"kind": "acknowledgement"})),
        "register_organisation" => Some(json!({"name": "Test Registered NGO", "kind": "national_ngo"})),
        "add_service" | "update_service" => Some(json!({"name": "Test service", "category": "health",
            "areas": ["IQ-NI"], "languages": ["ar"]})),
        "set_service_availability" => Some(json!({"accepting": false, "capacity": 3})),
        other => panic!("route {other} has no body in the authorisation matrix"),
    }
}

/// The path with the world's ids, and the required query of the routes that have one.
fn fill(path: &str, op: &str, w: &World) -> String {
    let query = match op {
        "referral_candidates" => format!("?case_id={}&category=health", w.case),
        _ => String::new(),
    };
    let (user, request) = match op {
        "approve_role_request" => (&w.approve.0, &w.approve.1),
        "reject_role_request" | "list_role_requests" => (&w.reject.0, &w.reject.1),
        _ => (&w.user_a, &w.reject.1),
    };
    let path = path
        .replace("{request_id}", request)
        .replace("{case_id}", &w.case)
        .replace("{consent_id}", &w.consent)
        .replace("{referral_id}", &w.referral)
        .replace("{org_id}", &w.org_b)
        .replace("{service_id}", &w.service)
        .replace("{user_id}", user)
        .replace("{user}", &w.user_a)
        .replace("{token_id}", &w.token_a);
    format!("{path}{query}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_role_in_every_organisation_as_the_policy_says() {
    let h = Harness::start(TestDb::sqlite()).await;
    let (org_a, _) = h.organisation("Test Referring NGO", "psychosocial").await;
    let (org_b, service) = h.organisation("Test Health Partner", "health").await;
    let org_z: OrgId = wasl_domain::testing::fresh();
    // The matrix's caseworker of A is the case's responsible caseworker.
    let caseworker = h.token(org_a, Role::Caseworker).await;
    let opened = caseworker
        .post("/v1/cases", json!({"profile": profile("TEST-3000")}))
        .await;
    let case = opened.id();
    let consent = caseworker
        .post(&format!("/v1/cases/{case}/consents"), json!({}))
        .await
        .id();
    let requested = caseworker
        .post(
            "/v1/referrals",
            json!({"case_id": case, "to_org": org_b.to_string(), "service_id": service, "priority": "routine"}),
        )
        .await;
    assert_eq!(requested.status, StatusCode::CREATED, "{}", requested.body);
    // Everything above is in the read models before the matrix starts.
    caseworker.get_at("/v1/cases", requested.position()).await;
    let user_a = h
        .state
        .accounts()
        .create_user(
            None,
            org_a,
            "test-matrix-target",
            &[Role::Caseworker],
            "test password 0003",
        )
        .await
        .expect("a target user")
        .id
        .to_string();
    let expires = wasl_domain::time::Timestamp::from_unix_millis(wasl_api::auth::accounts::now_millis()).plus_hours(24);
    let token_a = h
        .state
        .accounts()
        .issue_token(
            wasl_domain::testing::fresh(),
            org_a,
            Role::PartnerSystem,
            "test target",
            expires,
        )
        .await
        .expect("a target token")
        .0
        .id
        .to_string();
    let mut pending = Vec::new();
    for name in ["test-matrix-approve", "test-matrix-reject"] {
        let accounts = h.state.accounts();
        let admin = accounts
            .create_user(None, org_a, name, &[Role::Admin], "test password 0005")
            .await
            .expect("an admin");
        let request = accounts
            .request_roles(
                wasl_domain::testing::fresh(),
                admin.id,
                &[Role::Admin, Role::Supervisor],
            )
            .await
            .expect("a role request");
        pending.push((admin.id.to_string(), request.id.to_string()));
    }
    let world = World {
        approve: pending[0].clone(),
        reject: pending[1].clone(),
        case,
        consent,
        referral: requested.id(),
        org_b: org_b.to_string(),
        service,
        user_a,
        token_a,
    };

    let doc = serde_json::to_value(wasl_api::openapi()).expect("the document");
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            let op = operation["operationId"]
                .as_str()
                .expect("every operation has an id")
                .to_owned();
            routes.push((method.to_uppercase(), path.clone(), op));
        }
    }
    assert!(routes.len() >= 50, "the route table has {} routes", routes.len());

    let mut clients: Vec<(Role, Org, Client)> = Vec::new();
    for role in ROLES {
        for (org, id) in [(Org::A, org_a), (Org::B, org_b), (Org::Z, org_z)] {
            let client = if (role, org) == (Role::Caseworker, Org::A) {
                caseworker.clone()
            } else {
                h.token(id, role).await
            };
            clients.push((role, org, client));
        }
    }
    clients.push((
        Role::Caseworker,
        Org::AColleague,
        h.token(org_a, Role::Caseworker).await,
    ));
    let mut wrong = BTreeMap::new();
    let mut cells = 0;
    for (method, path, op) in &routes {
        if op == "login" {
            continue; // Anyone may try to sign in; covered by the account tests.
        }
        for (role, org, client) in &clients {
            let method = Method::from_bytes(method.as_bytes()).expect("a method");
            let headers = [("if-match", "\"999999\"".to_owned())];
            let answer = if op == "dashboard_live" {
                // An event stream does not end: its status is what the matrix checks.
                let response = client.stream(&fill(path, op, &world)).await;
                crate::support::Answer {
                    status: response.status(),
                    headers: response.headers().clone(),
                    body: Value::Null,
                }
            } else {
                client
                    .send(method.clone(), &fill(path, op, &world), body(op, &world), &headers)
                    .await
            };
            let want = expected(op, *role, *org);
            cells += 1;
            if answer.status != want {
                wrong.insert(
                    format!("{op} as {} of {org:?}", role.code()),
                    format!("{} instead of {want}: {}", answer.status, answer.body),
                );
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {cells} cells differ from the policy:\n{wrong:#?}",
        wrong.len()
    );
    eprintln!("authorisation matrix: {cells} cells, {} routes", routes.len());
    h.stop().await;
}
