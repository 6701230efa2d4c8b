//! What the descriptions of the routes people work from promise, each kept by a test.
//!
//! The descriptions of `GET /v1/escalations`, `POST /v1/referrals/{id}/acknowledge-escalation`,
//! `GET /v1/inbox` and `GET /v1/worklist` list their promises as bullets. [`promises!`] names
//! each bullet (by its opening words) together with the scenario that keeps it, and runs that
//! scenario on SQLite and PostgreSQL; `every_promise_in_these_descriptions_has_a_test` reads
//! the OpenAPI document and fails on a bullet no entry names, or an entry whose bullet is gone.
//! A promise without a test is therefore visible, and so is a test of a promise no longer made.
//!
//! Deadlines come from Wasl's own services in production; here the test plays the follow-up
//! service and records overdues and escalations through the store with the system role.

use crate::support::{Client, Harness, TestDb, profile};
use reqwest::StatusCode;
use serde_json::{Value, json};
use wasl_domain::ids::{CaseId, CommandId, OrgId, ReferralId};
use wasl_domain::referral::{OverdueKind, Referral, ReferralCommand, ReferralEvent};
use wasl_domain::testing::{actor, fresh};
use wasl_domain::time::Timestamp;
use wasl_domain::{Context, Role};
use wasl_events::DomainEvent;
use wasl_store::CommandMeta;
use wasl_testkit::on_both;
use wasl_vault::{PiiField, Revealed};

/// Declares the promises: `"<operation id>", "<opening words of the bullet>" => scenario;`.
/// Each scenario becomes a test module of its own name, on both databases.
macro_rules! promises {
    ($($op:literal, $promise:literal => $scenario:ident;)*) => {
        /// (operation id, the promise's opening words, the scenario that keeps it)
        const PROMISES: &[(&str, &str, &str)] = &[$(($op, $promise, stringify!($scenario))),*];
        $(on_both!($scenario, $scenario);)*
    };
}

promises! {
    "list_escalations", "Coordinators and admins only" => escalations_are_for_coordinators_and_admins_only;
    "list_escalations", "Open and acknowledged escalations alike" => escalations_open_and_acknowledged_alike;
    "list_escalations", "Filters:" => escalations_filter_by_place_category_organisation;
    "list_escalations", "Newest escalation first" => escalations_newest_first;
    "list_escalations", "No personal data" => escalations_carry_no_personal_data;
    "acknowledge_escalation", "Only a coordinator may acknowledge" => only_a_coordinator_acknowledges;
    "acknowledge_escalation", "The note's code is shown" => the_note_is_coded_and_its_text_sealed;
    "acknowledge_escalation", "The note is optional" => the_note_is_optional_and_other_needs_text;
    "acknowledge_escalation", "Acknowledging twice" => acknowledging_twice_or_nothing_is_refused;
    "acknowledge_escalation", "A referral that was never escalated" => a_referral_never_escalated_is_not_found;
    "inbox", "Overdue first" => the_inbox_puts_overdue_first_then_newest;
    "inbox", "Only referrals addressed to the caller's organisation" => the_inbox_holds_only_the_minimum;
    "worklist", "Every decline, with its coded reason" => declines_with_their_reasons;
    "worklist", "A decline as `redirected` becomes a suggested follow-on referral" => redirects_become_suggestions;
    "worklist", "Overdue referrals" => overdue_referrals_on_the_worklist;
    "worklist", "Follow-ups due" => follow_ups_due_on_the_worklist;
    "worklist", "Newest action first" => the_worklist_is_newest_first;
    "worklist", "Only the caller's own referrals" => the_worklist_is_the_callers_own;
    "withdraw_consent", "The follow-up service cancels every open referral" => withdrawal_cancels_what_rested_on_it;
    "withdraw_consent", "Each receiving organisation gets that referral" => withdrawal_tells_the_partner_to_redact;
    "withdraw_consent", "Referrals that rested on another consent" => withdrawal_leaves_the_rest_alone;
    "close_case", "With open referrals the close is refused" => closing_with_open_referrals_is_refused;
    "close_case", "With `cancel_open_referrals` the follow-up service cancels" => closing_with_its_referrals_cancels_them;
}

/// The bullets (`- …`, continuation lines joined) of an operation's description.
fn bullets(description: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in description.lines() {
        let line = line.trim();
        if let Some(start) = line.strip_prefix("- ") {
            out.push(start.to_owned());
        } else if let Some(last) = out.last_mut().filter(|_| !line.is_empty()) {
            last.push(' ');
            last.push_str(line);
        }
    }
    out
}

#[test]
fn every_promise_in_these_descriptions_has_a_test() {
    let doc = serde_json::to_value(wasl_api::openapi()).expect("the document");
    let mut operations = std::collections::BTreeMap::new();
    for item in doc["paths"].as_object().expect("paths").values() {
        for operation in item.as_object().expect("a path item").values() {
            if let Some(id) = operation["operationId"].as_str() {
                operations.insert(
                    id.to_owned(),
                    operation["description"].as_str().unwrap_or("").to_owned(),
                );
            }
        }
    }
    let covered: std::collections::BTreeSet<&str> = PROMISES.iter().map(|(op, ..)| *op).collect();
    for op in &covered {
        let description = operations
            .get(*op)
            .unwrap_or_else(|| panic!("{op} is not in the document"));
        let made = bullets(description);
        assert!(!made.is_empty(), "{op} lists its promises as bullets");
        for promise in &made {
            assert!(
                PROMISES.iter().any(|(o, p, _)| o == op && promise.starts_with(p)),
                "{op} promises \"{promise}\" and no test keeps it: add it to promises!"
            );
        }
        for (o, p, test) in PROMISES.iter().filter(|(o, ..)| o == op) {
            assert!(
                made.iter().any(|m| m.starts_with(p)),
                "{test} keeps \"{p}\", which {o} no longer promises"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A small network: A refers, B receives (health), C is the organisation a decline may suggest.

const SURVIVOR_CODE: &str = "TEST-7301";
const NAME: &str = "MarkerNameEsc9";
const REFERRAL_NOTE: &str = "MarkerReferralNoteEsc9";
const ACK_NOTE: &str = "MarkerAckNoteEsc9";

struct Net {
    h: Harness,
    a: OrgId,
    b: OrgId,
    c: OrgId,
    service_b: String,
    caseworker: Client,
    focal: Client,
    case: String,
}

impl Net {
    async fn start(db: TestDb) -> Self {
        let h = Harness::start(db).await;
        let (a, _) = h.organisation("Test Referring NGO", "psychosocial").await;
        let (b, service_b) = h.organisation("Test Health Partner", "health").await;
        let (c, _) = h.organisation("Test Second Health Partner", "health").await;
        let caseworker = h.user(a, Role::Caseworker).await;
        let focal = h.user(b, Role::FocalPoint).await;
        let opened = caseworker
            .post(
                "/v1/cases",
                json!({"profile": profile(SURVIVOR_CODE), "personal": {"name": NAME}}),
            )
            .await;
        assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.body);
        let case = opened.id();
        let consent = caseworker.post(&format!("/v1/cases/{case}/consents"), json!({})).await;
        assert_eq!(consent.status, StatusCode::CREATED, "{}", consent.body);
        Self {
            h,
            a,
            b,
            c,
            service_b,
            caseworker,
            focal,
            case,
        }
    }

    /// An urgent health referral from A to B, with a note; its id and position.
    async fn refer(&self) -> (String, u64) {
        let r = self
            .caseworker
            .post(
                "/v1/referrals",
                json!({"case_id": self.case, "to_org": self.b.to_string(), "service_id": self.service_b,
                       "priority": "urgent", "notes": REFERRAL_NOTE}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        apart().await;
        (r.id(), r.position())
    }

    /// A command of Wasl's own services (the follow-up service's part), now.
    async fn system(&self, referral: &str, command: ReferralCommand) -> u64 {
        let id = ReferralId::parse(referral).expect("a referral id");
        apart().await;
        let meta = CommandMeta {
            command_id: fresh::<CommandId>(),
            context: Context {
                now: now(),
                actor: actor(fresh(), self.h.hub, Role::System),
            },
            traceparent: None,
        };
        let position = self
            .h
            .state
            .store()
            .execute::<Referral>(id, &command, &meta)
            .await
            .expect("the system's command")
            .position;
        apart().await;
        position
    }

    /// Records that `kind`'s deadline passed a minute ago.
    async fn overdue(&self, referral: &str, kind: OverdueKind) -> u64 {
        let due_at = now().plus_millis(-60_000);
        let command = match kind {
            OverdueKind::FollowUp => ReferralCommand::MarkFollowUpOverdue { due_at },
            _ => ReferralCommand::MarkResponseOverdue { kind, due_at },
        };
        self.system(referral, command).await
    }

    /// Records the overdue and escalates it.
    async fn escalate(&self, referral: &str, kind: OverdueKind) -> u64 {
        self.overdue(referral, kind).await;
        self.system(referral, ReferralCommand::Escalate { kind }).await
    }

    /// A coordinator of the hub.
    fn coordinator(&self) -> &Client {
        &self.h.coordinator
    }

    async fn stop(self) {
        self.h.stop().await;
    }
}

/// The orders under test go by the millisecond an event happened: two steps of a scenario must
/// not share one, or the tie-break by id would decide instead. Not a wait for any deadline.
async fn apart() {
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
}

fn now() -> Timestamp {
    Timestamp::from_unix_millis(wasl_api::auth::accounts::now_millis())
}

fn items(answer: &crate::support::Answer) -> Vec<Value> {
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.body["items"].as_array().expect("items").clone()
}

fn ids(items: &[Value], key: &str) -> Vec<String> {
    items
        .iter()
        .map(|i| i[key].as_str().expect("an id").to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// GET /v1/escalations

async fn escalations_are_for_coordinators_and_admins_only(db: TestDb) {
    let net = Net::start(db).await;
    let (referral, _) = net.refer().await;
    let at = net.escalate(&referral, OverdueKind::Acknowledgement).await;
    let admin = net.h.token(net.h.hub, Role::Admin).await;
    for client in [net.coordinator(), &admin] {
        assert_eq!(
            ids(&items(&client.get_at("/v1/escalations", at).await), "referral_id"),
            std::slice::from_ref(&referral)
        );
    }
    for (org, role) in [
        (net.a, Role::Caseworker),
        (net.a, Role::Supervisor),
        (net.b, Role::FocalPoint),
        (net.b, Role::PartnerSystem),
    ] {
        let r = net.h.token(org, role).await.get("/v1/escalations").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{role}: {}", r.body);
    }
    net.stop().await;
}

async fn escalations_open_and_acknowledged_alike(db: TestDb) {
    let net = Net::start(db).await;
    let (open, _) = net.refer().await;
    let (done, _) = net.refer().await;
    net.escalate(&open, OverdueKind::Decision).await;
    net.escalate(&done, OverdueKind::Decision).await;
    let ack = net
        .coordinator()
        .post(
            &format!("/v1/referrals/{done}/acknowledge-escalation"),
            json!({"kind": "decision"}),
        )
        .await;
    assert_eq!(ack.status, StatusCode::OK, "{}", ack.body);
    let list = |q: &'static str| net.coordinator().get_at(q, ack.position());
    let all = items(&list("/v1/escalations").await);
    let mut both = ids(&all, "referral_id");
    both.sort();
    let mut expected = vec![open.clone(), done.clone()];
    expected.sort();
    assert_eq!(both, expected);
    let flags: Vec<(String, bool)> = all
        .iter()
        .map(|i| (i["referral_id"].as_str().unwrap_or("").to_owned(), i["open"] == true))
        .collect();
    assert!(flags.contains(&(open.clone(), true)) && flags.contains(&(done.clone(), false)));
    assert_eq!(
        ids(&items(&list("/v1/escalations?acknowledged=false").await), "referral_id"),
        [open]
    );
    let acknowledged = items(&list("/v1/escalations?acknowledged=true").await);
    assert_eq!(ids(&acknowledged, "referral_id"), [done]);
    assert_eq!(acknowledged[0]["acknowledged"], json!(["decision"]));
    net.stop().await;
}

async fn escalations_filter_by_place_category_organisation(db: TestDb) {
    let net = Net::start(db).await;
    let (referral, _) = net.refer().await;
    let at = net.escalate(&referral, OverdueKind::Acknowledgement).await;
    let b = net.b.to_string();
    let c = net.c.to_string();
    let matching = [
        "governorate=IQ-NI".to_owned(),
        "category=health".to_owned(),
        format!("organisation={b}"),
        format!("governorate=IQ-NI&category=health&organisation={b}&acknowledged=false"),
    ];
    let other = [
        "governorate=IQ-BG".to_owned(),
        "category=legal".to_owned(),
        format!("organisation={c}"),
    ];
    for query in matching {
        let found = items(&net.coordinator().get_at(&format!("/v1/escalations?{query}"), at).await);
        assert_eq!(ids(&found, "referral_id"), std::slice::from_ref(&referral), "{query}");
    }
    for query in other {
        let found = items(&net.coordinator().get_at(&format!("/v1/escalations?{query}"), at).await);
        assert!(found.is_empty(), "{query}");
    }
    let bad = net.coordinator().get("/v1/escalations?governorate=nowhere").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    net.stop().await;
}

async fn escalations_newest_first(db: TestDb) {
    let net = Net::start(db).await;
    let (first, _) = net.refer().await;
    let (second, _) = net.refer().await;
    // The older referral is escalated last: the order follows the escalation, not the request.
    net.escalate(&second, OverdueKind::Acknowledgement).await;
    let at = net.escalate(&first, OverdueKind::Acknowledgement).await;
    let found = items(&net.coordinator().get_at("/v1/escalations", at).await);
    assert_eq!(ids(&found, "referral_id"), [first.clone(), second.clone()]);
    assert!(found[0]["escalated_at"].as_i64() >= found[1]["escalated_at"].as_i64());
    // Paged one at a time, the same order.
    let page = items(&net.coordinator().get("/v1/escalations?limit=1").await);
    assert_eq!(ids(&page, "referral_id"), [first]);
    net.stop().await;
}

async fn escalations_carry_no_personal_data(db: TestDb) {
    let net = Net::start(db).await;
    let (referral, _) = net.refer().await;
    net.escalate(&referral, OverdueKind::Decision).await;
    let ack = net
        .coordinator()
        .post(
            &format!("/v1/referrals/{referral}/acknowledge-escalation"),
            json!({"kind": "decision", "note": {"code": "other", "text": ACK_NOTE}}),
        )
        .await;
    assert_eq!(ack.status, StatusCode::OK, "{}", ack.body);
    let list = net.coordinator().get_at("/v1/escalations", ack.position()).await;
    let found = items(&list);
    assert_eq!(found.len(), 1);
    let text = list.body.to_string();
    for marker in [SURVIVOR_CODE, NAME, REFERRAL_NOTE, ACK_NOTE, net.case.as_str()] {
        assert!(!text.contains(marker), "the escalation list shows a personal value");
    }
    let keys: Vec<&str> = found[0]
        .as_object()
        .expect("an item")
        .keys()
        .map(String::as_str)
        .collect();
    for personal in [
        "case_id",
        "client",
        "from_user",
        "notes",
        "survivor_code",
        "sex",
        "age_group",
    ] {
        assert!(!keys.contains(&personal), "the escalation list has a {personal} field");
    }
    // What it does show: ids, codes and times.
    let item = &found[0];
    assert_eq!(item["to_org"], net.b.to_string());
    assert_eq!(item["from_org"], net.a.to_string());
    assert_eq!(item["governorate"], "IQ-NI");
    assert_eq!(item["category"], "health");
    assert_eq!(item["priority"], "urgent");
    assert_eq!(item["status"], "requested");
    assert_eq!(item["overdue"][0]["kind"], "decision");
    assert!(item["overdue"][0]["due_at"].as_i64().is_some());
    assert_eq!(item["escalated"], json!(["decision"]));
    assert_eq!(item["acknowledge_code"], "other");
    net.stop().await;
}

// ---------------------------------------------------------------------------------------------
// POST /v1/referrals/{id}/acknowledge-escalation

async fn only_a_coordinator_acknowledges(db: TestDb) {
    let net = Net::start(db).await;
    let (referral, _) = net.refer().await;
    net.escalate(&referral, OverdueKind::Acknowledgement).await;
    let path = format!("/v1/referrals/{referral}/acknowledge-escalation");
    let body = json!({"kind": "acknowledgement"});
    for (org, role) in [
        (net.h.hub, Role::Admin),
        (net.a, Role::Caseworker),
        (net.a, Role::Supervisor),
        (net.b, Role::FocalPoint),
    ] {
        let r = net.h.token(org, role).await.post(&path, body.clone()).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{role}: {}", r.body);
    }
    let r = net.coordinator().post(&path, body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    net.stop().await;
}

async fn the_note_is_coded_and_its_text_sealed(db: TestDb) {
    let net = Net::start(db).await;
    let (referral, _) = net.refer().await;
    net.escalate(&referral, OverdueKind::Decision).await;
    let ack = net
        .coordinator()
        .post(
            &format!("/v1/referrals/{referral}/acknowledge-escalation"),
            json!({"kind": "decision", "note": {"code": "partner_contacted", "text": ACK_NOTE}}),
        )
        .await;
    assert_eq!(ack.status, StatusCode::OK, "{}", ack.body);
    let list = net.coordinator().get_at("/v1/escalations", ack.position()).await;
    assert_eq!(items(&list)[0]["acknowledge_code"], "partner_contacted");
    assert!(!list.body.to_string().contains(ACK_NOTE));

    // In the log the text is sealed under the case's own key, bound to its event, and opens
    // only through the vault.
    let history = net
        .h
        .state
        .store()
        .read_history(&format!("wasl.evt.referral.{referral}"), 1)
        .await
        .expect("the referral's history");
    let last = history.last().expect("events");
    let DomainEvent::Referral(_, ReferralEvent::EscalationAcknowledged { note: Some(note), .. }) = &last.event.event
    else {
        panic!("the last event is the acknowledgement with its note");
    };
    assert_eq!(note.code.code(), "partner_contacted");
    let sealed = note.text.as_ref().expect("the sealed text");
    let case = CaseId::parse(&net.case).expect("a case id");
    assert_eq!(sealed.key_id(), &wasl_vault::seal::key_id(case));
    assert!(
        !sealed
            .ciphertext()
            .windows(ACK_NOTE.len())
            .any(|w| w == ACK_NOTE.as_bytes())
    );
    let opened = net
        .h
        .state
        .vault()
        .open(case, last.event.meta.event_id, PiiField::REASON_TEXT, sealed)
        .await
        .expect("the vault opens it");
    assert_eq!(opened, Revealed::Plain(ACK_NOTE.to_owned().into()));
    net.stop().await;
}

async fn the_note_is_optional_and_other_needs_text(db: TestDb) {
    let net = Net::start(db).await;
    let (referral, _) = net.refer().await;
    net.escalate(&referral, OverdueKind::Acknowledgement).await;
    net.escalate(&referral, OverdueKind::Decision).await;
    let path = format!("/v1/referrals/{referral}/acknowledge-escalation");
    let without_text = net
        .coordinator()
        .post(&path, json!({"kind": "decision", "note": {"code": "other"}}))
        .await;
    assert_eq!(
        without_text.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        without_text.body
    );
    assert_eq!(without_text.body["code"], "reason_required");
    let unknown = net
        .coordinator()
        .post(&path, json!({"kind": "decision", "note": {"code": "no_such_code"}}))
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", unknown.body);
    assert_eq!(unknown.body["errors"][0]["field"], "/note/code");
    let without_note = net.coordinator().post(&path, json!({"kind": "decision"})).await;
    assert_eq!(without_note.status, StatusCode::OK, "{}", without_note.body);
    let with_text = net
        .coordinator()
        .post(
            &path,
            json!({"kind": "acknowledgement", "note": {"code": "other", "text": "Test note"}}),
        )
        .await;
    assert_eq!(with_text.status, StatusCode::OK, "{}", with_text.body);
    net.stop().await;
}

async fn a_referral_never_escalated_is_not_found(db: TestDb) {
    let net = Net::start(db).await;
    let (referral, _) = net.refer().await;
    let path = format!("/v1/referrals/{referral}/acknowledge-escalation");
    // Never escalated: answered exactly as a referral that does not exist, whatever the
    // request's version says (coordinators see escalated referrals only).
    let never = net.coordinator().post(&path, json!({"kind": "decision"})).await;
    assert_eq!(never.status, StatusCode::NOT_FOUND, "{}", never.body);
    let stale = net
        .coordinator()
        .post_with(
            &path,
            json!({"kind": "decision"}),
            &[("if-match", "\"999\"".to_owned())],
        )
        .await;
    assert_eq!(stale.status, StatusCode::NOT_FOUND, "{}", stale.body);
    let missing = net
        .coordinator()
        .post(
            &format!("/v1/referrals/{}/acknowledge-escalation", uuid::Uuid::now_v7()),
            json!({"kind": "decision"}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);
    assert_eq!(never.body["type"], missing.body["type"]);
    net.stop().await;
}

async fn acknowledging_twice_or_nothing_is_refused(db: TestDb) {
    let net = Net::start(db).await;
    let (referral, _) = net.refer().await;
    let path = format!("/v1/referrals/{referral}/acknowledge-escalation");
    // Escalated for one kind, acknowledged for another: the domain refuses it.
    net.escalate(&referral, OverdueKind::Decision).await;
    let other_kind = net
        .coordinator()
        .post_with(
            &path,
            json!({"kind": "follow_up"}),
            &[("idempotency-key", "other-kind".to_owned())],
        )
        .await;
    assert_eq!(
        other_kind.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        other_kind.body
    );
    assert_eq!(other_kind.body["code"], "nothing_escalated");
    let once = net.coordinator().post(&path, json!({"kind": "decision"})).await;
    assert_eq!(once.status, StatusCode::OK, "{}", once.body);
    let twice = net
        .coordinator()
        .post_with(
            &path,
            json!({"kind": "decision"}),
            &[("idempotency-key", "another".to_owned())],
        )
        .await;
    assert_eq!(twice.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", twice.body);
    assert_eq!(twice.body["code"], "already_recorded");
    net.stop().await;
}

/// The request example in the OpenAPI document works when sent as it is.
async fn the_acknowledgement_example_works_as_sent(db: TestDb) {
    let net = Net::start(db).await;
    let doc = serde_json::to_value(wasl_api::openapi()).expect("the document");
    let example = doc["components"]["schemas"]["AcknowledgeRequest"]["example"].clone();
    assert!(example.is_object(), "AcknowledgeRequest has an example");
    let (referral, _) = net.refer().await;
    let kind = OverdueKind::parse(example["kind"].as_str().expect("a kind")).expect("a known kind");
    net.escalate(&referral, kind).await;
    let r = net
        .coordinator()
        .post(&format!("/v1/referrals/{referral}/acknowledge-escalation"), example)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    net.stop().await;
}
on_both!(acknowledgement_example, the_acknowledgement_example_works_as_sent);

// ---------------------------------------------------------------------------------------------
// GET /v1/inbox

async fn the_inbox_puts_overdue_first_then_newest(db: TestDb) {
    let net = Net::start(db).await;
    let (oldest, _) = net.refer().await;
    let (late, _) = net.refer().await;
    let (newest, _) = net.refer().await;
    let at = net.overdue(&late, OverdueKind::Acknowledgement).await;
    let inbox = items(&net.focal.get_at("/v1/inbox", at).await);
    assert_eq!(ids(&inbox, "id"), [late.clone(), newest.clone(), oldest.clone()]);
    assert_eq!(inbox[0]["response_overdue"], true);
    assert!(inbox[0]["missed_deadlines"]["acknowledgement"].as_i64().is_some());
    assert_eq!(inbox[1]["response_overdue"], false);
    // Paged one at a time, the same order.
    let mut paged = Vec::new();
    let mut path = "/v1/inbox?limit=1".to_owned();
    loop {
        let page = net.focal.get(&path).await;
        paged.extend(ids(&items(&page), "id"));
        match page.body["next"].as_str() {
            Some(next) => path = format!("/v1/inbox?limit=1&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(paged, [late.clone(), newest.clone(), oldest.clone()]);
    // Acknowledged, the acknowledgement deadline no longer applies: back among the others.
    let received = net
        .focal
        .post(&format!("/v1/referrals/{late}/receive"), json!({}))
        .await;
    assert_eq!(received.status, StatusCode::OK, "{}", received.body);
    let inbox = items(&net.focal.get_at("/v1/inbox", received.position()).await);
    assert_eq!(ids(&inbox, "id"), [newest, late, oldest]);
    net.stop().await;
}

async fn the_inbox_holds_only_the_minimum(db: TestDb) {
    let net = Net::start(db).await;
    let (referral, at) = net.refer().await;
    let inbox = net.focal.get_at("/v1/inbox", at).await;
    let found = items(&inbox);
    assert_eq!(ids(&found, "id"), [referral]);
    let text = inbox.body.to_string();
    for marker in [SURVIVOR_CODE, NAME, REFERRAL_NOTE, net.case.as_str()] {
        assert!(!text.contains(marker), "the inbox shows a personal value");
    }
    assert!(found[0].get("case_id").is_none() && found[0].get("from_user").is_none());
    // Another organisation's inbox does not hold it.
    let other = net.h.user(net.c, Role::FocalPoint).await;
    assert!(items(&other.get_at("/v1/inbox", at).await).is_empty());
    net.stop().await;
}

// ---------------------------------------------------------------------------------------------
// GET /v1/worklist

async fn decline(net: &Net, referral: &str, body: Value) -> u64 {
    let r = net.focal.post(&format!("/v1/referrals/{referral}/reject"), body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    apart().await;
    r.position()
}

async fn declines_with_their_reasons(db: TestDb) {
    let net = Net::start(db).await;
    let (first, _) = net.refer().await;
    let (second, _) = net.refer().await;
    decline(&net, &first, json!({"reason": {"code": "no_capacity"}})).await;
    let at = decline(&net, &second, json!({"reason": {"code": "not_eligible"}})).await;
    let work = items(&net.caseworker.get_at("/v1/worklist", at).await);
    let got: Vec<(String, String, String)> = work
        .iter()
        .map(|i| {
            (
                i["referral"]["id"].as_str().unwrap_or("").to_owned(),
                i["kind"].as_str().unwrap_or("").to_owned(),
                i["decline_code"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let item = |r: &str, code: &str| (r.to_owned(), "declined".to_owned(), code.to_owned());
    assert_eq!(got, [item(&second, "not_eligible"), item(&first, "no_capacity")]);
    // Referring the client again for health care deals with both.
    let (_, again) = net.refer().await;
    assert!(items(&net.caseworker.get_at("/v1/worklist", again).await).is_empty());
    net.stop().await;
}

async fn redirects_become_suggestions(db: TestDb) {
    let net = Net::start(db).await;
    let (referral, _) = net.refer().await;
    let at = decline(
        &net,
        &referral,
        json!({"reason": {"code": "redirected"}, "suggested_org": net.c.to_string()}),
    )
    .await;
    let work = items(&net.caseworker.get_at("/v1/worklist", at).await);
    assert_eq!(work.len(), 1);
    let item = &work[0];
    assert_eq!(item["kind"], "suggested_referral");
    assert_eq!(item["decline_code"], "redirected");
    let suggestion = &item["suggestion"];
    assert_eq!(suggestion["to_org"], net.c.to_string());
    assert_eq!(suggestion["redirected_from"], referral.as_str());
    // Nothing was sent: the suggested organisation has nothing in its inbox.
    let c_focal = net.h.user(net.c, Role::FocalPoint).await;
    assert!(items(&c_focal.get_at("/v1/inbox", at).await).is_empty());
    // The link gives the candidates, the suggested organisation's service among them.
    let link = suggestion["candidates"].as_str().expect("a link");
    let candidates = net.caseworker.get(link).await;
    assert_eq!(candidates.status, StatusCode::OK, "{}", candidates.body);
    let offer = candidates
        .body
        .as_array()
        .expect("candidates")
        .iter()
        .find(|c| c["org_id"] == net.c.to_string())
        .expect("the suggested organisation is a candidate")
        .clone();
    // The caseworker makes the follow-on referral; the suggestion is done.
    let made = net
        .caseworker
        .post(
            "/v1/referrals",
            json!({"case_id": net.case, "to_org": net.c.to_string(), "service_id": offer["service_id"],
                   "priority": "urgent", "redirected_from": referral}),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    assert!(items(&net.caseworker.get_at("/v1/worklist", made.position()).await).is_empty());
    net.stop().await;
}

async fn overdue_referrals_on_the_worklist(db: TestDb) {
    let net = Net::start(db).await;
    let (referral, _) = net.refer().await;
    let at = net.overdue(&referral, OverdueKind::Decision).await;
    let work = items(&net.caseworker.get_at("/v1/worklist", at).await);
    assert_eq!(work.len(), 1);
    assert_eq!(work[0]["kind"], "overdue");
    assert_eq!(work[0]["referral"]["response_overdue"], true);
    assert!(work[0]["referral"]["missed_deadlines"]["decision"].as_i64().is_some());
    // Once the partner decides, nothing is left to chase.
    let accepted = net
        .focal
        .post(&format!("/v1/referrals/{referral}/accept"), json!({}))
        .await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.body);
    assert!(items(&net.caseworker.get_at("/v1/worklist", accepted.position()).await).is_empty());
    // Accepted and then left: stalled, on the worklist and first in the partner's inbox.
    let at = net.overdue(&referral, OverdueKind::Stalled).await;
    let work = items(&net.caseworker.get_at("/v1/worklist", at).await);
    assert_eq!(work.len(), 1);
    assert_eq!(work[0]["kind"], "overdue");
    assert!(work[0]["referral"]["missed_deadlines"]["stalled"].as_i64().is_some());
    let inbox = items(&net.focal.get_at("/v1/inbox", at).await);
    assert_eq!(inbox[0]["id"], referral.as_str());
    assert_eq!(inbox[0]["response_overdue"], true);
    // Once the partner starts, nothing is left to chase.
    let started = net
        .focal
        .post(&format!("/v1/referrals/{referral}/start"), json!({}))
        .await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.body);
    assert!(items(&net.caseworker.get_at("/v1/worklist", started.position()).await).is_empty());
    net.stop().await;
}

async fn follow_ups_due_on_the_worklist(db: TestDb) {
    let net = Net::start(db).await;
    let (done, _) = net.refer().await;
    let (failed, _) = net.refer().await;
    for (referral, last) in [(&done, "complete"), (&failed, "fail")] {
        for verb in ["receive", "accept", last] {
            let body = if verb == "fail" {
                json!({"reason": {"code": "client_unreachable"}})
            } else {
                json!({})
            };
            let r = net.focal.post(&format!("/v1/referrals/{referral}/{verb}"), body).await;
            assert_eq!(r.status, StatusCode::OK, "{verb}: {}", r.body);
        }
    }
    let at = net.overdue(&done, OverdueKind::FollowUp).await;
    let work = items(&net.caseworker.get_at("/v1/worklist", at).await);
    let kinds: Vec<(String, String)> = work
        .iter()
        .map(|i| {
            (
                i["referral"]["id"].as_str().unwrap_or("").to_owned(),
                i["kind"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (done.clone(), "follow_up_due".to_owned()),
            (failed.clone(), "follow_up_due".to_owned())
        ]
    );
    assert!(work[0]["referral"]["missed_deadlines"]["follow_up"].as_i64().is_some());
    let followed = net
        .caseworker
        .post(
            &format!("/v1/referrals/{done}/follow-up"),
            json!({"client_reached": true, "service_received": "yes"}),
        )
        .await;
    assert_eq!(followed.status, StatusCode::OK, "{}", followed.body);
    let work = items(&net.caseworker.get_at("/v1/worklist", followed.position()).await);
    assert_eq!(
        ids(&work.iter().map(|i| i["referral"].clone()).collect::<Vec<_>>(), "id"),
        [failed]
    );
    net.stop().await;
}

async fn the_worklist_is_newest_first(db: TestDb) {
    let net = Net::start(db).await;
    let (a, _) = net.refer().await;
    let (b, _) = net.refer().await;
    let (c, _) = net.refer().await;
    net.overdue(&c, OverdueKind::Acknowledgement).await;
    decline(
        &net,
        &b,
        json!({"reason": {"code": "redirected"}, "suggested_org": net.c.to_string()}),
    )
    .await;
    let at = decline(&net, &a, json!({"reason": {"code": "service_not_offered"}})).await;
    let work = items(&net.caseworker.get_at("/v1/worklist", at).await);
    let got: Vec<String> = work
        .iter()
        .map(|i| i["referral"]["id"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(got, [a, b, c]);
    let times: Vec<i64> = work.iter().map(|i| i["at"].as_i64().unwrap_or(0)).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    net.stop().await;
}

async fn the_worklist_is_the_callers_own(db: TestDb) {
    let net = Net::start(db).await;
    let (referral, _) = net.refer().await;
    let at = decline(&net, &referral, json!({"reason": {"code": "no_capacity"}})).await;
    assert_eq!(items(&net.caseworker.get_at("/v1/worklist", at).await).len(), 1);
    let colleague = net.h.user(net.a, Role::Caseworker).await;
    assert!(items(&colleague.get_at("/v1/worklist", at).await).is_empty());
    let elsewhere = net.h.user(net.b, Role::Caseworker).await;
    assert!(items(&elsewhere.get_at("/v1/worklist", at).await).is_empty());
    net.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Withdrawing consent and closing a case: the follow-up service (and the router) running.

impl Net {
    /// Runs the follow-up service and the router on this network until the test ends.
    async fn services(&self) {
        let store = std::sync::Arc::new(
            wasl_store::EventStore::open(
                async_nats::connect(self.h.nats.url()).await.expect("connect"),
                wasl_store::StoreConfig::default(),
            )
            .await
            .expect("a store"),
        );
        let followup = wasl_followup::Followup::open(
            &self.h.db.url,
            store,
            std::sync::Arc::new(wasl_followup::SystemClock),
            wasl_followup::FollowupConfig::default(),
        )
        .await
        .expect("the follow-up service");
        tokio::spawn(async move { followup.run(std::future::pending()).await });
        let client = async_nats::connect(self.h.nats.url()).await.expect("connect");
        tokio::spawn(async move {
            wasl_router::run(client, wasl_router::RouterConfig::default(), std::future::pending()).await
        });
    }

    /// Waits until the referral has `status` (as the caseworker sees it); its history.
    async fn until_status(&self, referral: &str, status: &str) -> Value {
        let began = std::time::Instant::now();
        loop {
            let got = self.caseworker.get(&format!("/v1/referrals/{referral}")).await;
            if got.body["status"] == status {
                return self
                    .caseworker
                    .get(&format!("/v1/referrals/{referral}/history"))
                    .await
                    .body;
            }
            assert!(
                began.elapsed() < std::time::Duration::from_secs(60),
                "{referral}: {}",
                got.body
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    async fn consent_of(&self, case: &str) -> String {
        let got = self.caseworker.get(&format!("/v1/cases/{case}")).await;
        got.body["consents"][0]["id"].as_str().expect("a consent").to_owned()
    }
}

async fn withdrawal_cancels_what_rested_on_it(db: TestDb) {
    let net = Net::start(db).await;
    net.services().await;
    let (first, _) = net.refer().await;
    let (second, _) = net.refer().await;
    let consent = net.consent_of(&net.case).await;
    let withdrawn = net
        .caseworker
        .post(
            &format!("/v1/cases/{}/consents/{consent}/withdraw", net.case),
            json!({}),
        )
        .await;
    assert_eq!(withdrawn.status, StatusCode::OK, "{}", withdrawn.body);
    for referral in [first, second] {
        let history = net.until_status(&referral, "cancelled").await;
        assert!(history.to_string().contains("consent_withdrawn"), "{history}");
    }
}

async fn withdrawal_tells_the_partner_to_redact(db: TestDb) {
    let net = Net::start(db).await;
    net.services().await;
    let (referral, _) = net.refer().await;
    let consent = net.consent_of(&net.case).await;
    net.caseworker
        .post(
            &format!("/v1/cases/{}/consents/{consent}/withdraw", net.case),
            json!({}),
        )
        .await;
    net.until_status(&referral, "cancelled").await;
    let js = async_nats::jetstream::new(async_nats::connect(net.h.nats.url()).await.expect("connect"));
    let began = std::time::Instant::now();
    loop {
        let last = js
            .get_stream(format!("WASL_OUT_{}", net.b))
            .await
            .expect("B's feed")
            .get_last_raw_message_by_subject(&format!("wasl.out.{}.referral.{referral}", net.b))
            .await
            .ok()
            .map(|m| serde_json::from_slice::<Value>(&m.payload).expect("a partner message"));
        if let Some(last) = last.filter(|m| m["status"] == "cancelled") {
            assert_eq!(last["redact"], true, "{last}");
            break;
        }
        assert!(began.elapsed() < std::time::Duration::from_secs(60), "B was not told");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn withdrawal_leaves_the_rest_alone(db: TestDb) {
    let net = Net::start(db).await;
    net.services().await;
    // Another case of the same client's caseworker, its own consent and referral.
    let other = net
        .caseworker
        .post("/v1/cases", json!({"profile": profile("TEST-7302")}))
        .await
        .id();
    net.caseworker
        .post(&format!("/v1/cases/{other}/consents"), json!({}))
        .await;
    let elsewhere = net
        .caseworker
        .post(
            "/v1/referrals",
            json!({"case_id": other, "to_org": net.b.to_string(), "service_id": net.service_b, "priority": "routine"}),
        )
        .await
        .id();
    // A referral under the withdrawn consent that was already completed.
    let (done, _) = net.refer().await;
    for step in ["receive", "accept", "start", "complete"] {
        let moved = net.focal.post(&format!("/v1/referrals/{done}/{step}"), json!({})).await;
        assert_eq!(moved.status, StatusCode::OK, "{step}: {}", moved.body);
    }
    let (open, _) = net.refer().await;
    let consent = net.consent_of(&net.case).await;
    net.caseworker
        .post(
            &format!("/v1/cases/{}/consents/{consent}/withdraw", net.case),
            json!({}),
        )
        .await;
    net.until_status(&open, "cancelled").await;
    net.until_status(&done, "completed").await;
    net.until_status(&elsewhere, "requested").await;
}

async fn closing_with_open_referrals_is_refused(db: TestDb) {
    let net = Net::start(db).await;
    let (referral, _) = net.refer().await;
    let refused = net
        .caseworker
        .post(
            &format!("/v1/cases/{}/close", net.case),
            json!({"reason": {"code": "needs_met"}}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
    assert_eq!(refused.body["code"], "open_referrals");
    net.until_status(&referral, "requested").await;
}

async fn closing_with_its_referrals_cancels_them(db: TestDb) {
    let net = Net::start(db).await;
    net.services().await;
    let (first, _) = net.refer().await;
    let (second, _) = net.refer().await;
    let closed = net
        .caseworker
        .post(
            &format!("/v1/cases/{}/close", net.case),
            json!({"reason": {"code": "needs_met"}, "cancel_open_referrals": true}),
        )
        .await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.body);
    for referral in [first, second] {
        let history = net.until_status(&referral, "cancelled").await;
        assert!(history.to_string().contains("case_closed"), "{history}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_a_case_is_erased_its_referrals_say_so_and_show_nothing_personal() {
    let net = Net::start(TestDb::sqlite()).await;
    let (referral, position) = net.refer().await;
    let path = format!("/v1/referrals/{referral}");
    for reader in [&net.caseworker, &net.focal] {
        let before = reader.get_at(&path, position).await;
        assert_eq!(before.status, StatusCode::OK, "{}", before.body);
        assert_eq!(before.body["notes"], REFERRAL_NOTE);
        assert_eq!(before.body["personal_data_erased"], false);
    }
    let case = wasl_domain::ids::CaseId::parse(&net.case).expect("a case id");
    net.h.state.vault().erase(case).await.expect("erased");
    for reader in [&net.caseworker, &net.focal] {
        let after = reader.get(&path).await;
        assert_eq!(after.status, StatusCode::OK, "{}", after.body);
        assert_eq!(after.body["personal_data_erased"], true, "{}", after.body);
        assert!(after.body.get("notes").is_none(), "{}", after.body);
        assert!(!after.body.to_string().contains(REFERRAL_NOTE));
    }
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_text_of_a_reason_is_shown_to_those_who_see_the_referral() {
    const DECLINE_TEXT: &str = "MarkerDeclineTextEsc9";
    let net = Net::start(TestDb::sqlite()).await;
    let (referral, _) = net.refer().await;
    let declined = net
        .focal
        .post(
            &format!("/v1/referrals/{referral}/reject"),
            json!({"reason": {"code": "other", "text": DECLINE_TEXT}}),
        )
        .await;
    assert_eq!(declined.status, StatusCode::OK, "{}", declined.body);
    let path = format!("/v1/referrals/{referral}");
    for reader in [&net.caseworker, &net.focal] {
        let read = reader.get_at(&path, declined.position()).await;
        assert_eq!(read.status, StatusCode::OK, "{}", read.body);
        let texts = read.body["texts"].as_array().expect("texts");
        assert_eq!(texts.len(), 1, "{}", read.body);
        assert_eq!(texts[0]["event"], "rejected");
        assert_eq!(texts[0]["code"], "other");
        assert_eq!(texts[0]["text"], DECLINE_TEXT);
    }
    // Nobody else learns it: not even that the referral exists.
    let outsider = net.h.user(net.c, Role::FocalPoint).await;
    let hidden = outsider.get(&path).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    assert!(!hidden.body.to_string().contains(DECLINE_TEXT));
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_erases_a_case_at_the_persons_request_and_it_reads_erased_everywhere() {
    let net = Net::start(TestDb::sqlite()).await;
    let (referral, position) = net.refer().await;
    let erase = format!("/v1/cases/{}/erase", net.case);
    let body = json!({"reason": {"code": "client_request"}});
    // A caseworker may not erase (the case is answered as missing), nor a supervisor elsewhere.
    assert_eq!(
        net.caseworker.post(&erase, body.clone()).await.status,
        StatusCode::NOT_FOUND
    );
    let elsewhere = net.h.user(net.b, Role::Supervisor).await;
    assert_eq!(elsewhere.post(&erase, body.clone()).await.status, StatusCode::NOT_FOUND);
    let supervisor = net.h.user(net.a, Role::Supervisor).await;
    let erased = supervisor.post(&erase, body.clone()).await;
    assert_eq!(erased.status, StatusCode::OK, "{}", erased.body);
    // Sent again (another key, as after a failure), it finishes nothing new and says so.
    let again = supervisor
        .post_with(&erase, body, &[("idempotency-key", "erase-again".to_owned())])
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["replayed"], true, "{}", again.body);
    let case = net
        .caseworker
        .get_at(&format!("/v1/cases/{}", net.case), erased.position())
        .await;
    assert_eq!(case.status, StatusCode::OK, "{}", case.body);
    assert!(!case.body.to_string().contains(NAME), "{}", case.body);
    let read = net.focal.get_at(&format!("/v1/referrals/{referral}"), position).await;
    assert_eq!(read.body["personal_data_erased"], true, "{}", read.body);
    assert!(!read.body.to_string().contains(REFERRAL_NOTE));
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_exports_everything_held_about_a_case_for_the_person() {
    let net = Net::start(TestDb::sqlite()).await;
    let (referral, position) = net.refer().await;
    let export = format!("/v1/cases/{}/export", net.case);
    assert_eq!(net.caseworker.get(&export).await.status, StatusCode::NOT_FOUND);
    let supervisor = net.h.user(net.a, Role::Supervisor).await;
    let exported = supervisor.get_at(&export, position).await;
    assert_eq!(exported.status, StatusCode::OK, "{}", exported.body);
    assert_eq!(
        exported.body["case"]["profile"]["survivor_code"], SURVIVOR_CODE,
        "{}",
        exported.body
    );
    assert_eq!(exported.body["case"]["personal"]["name"], NAME, "{}", exported.body);
    let referrals = exported.body["referrals"].as_array().expect("referrals");
    assert_eq!(referrals.len(), 1);
    assert_eq!(referrals[0]["id"], referral.as_str());
    assert_eq!(referrals[0]["notes"], REFERRAL_NOTE);
    assert!(!referrals[0]["history"].as_array().expect("history").is_empty());
    let records = wasl_api::audit::records(net.h.state.audit().stream())
        .await
        .expect("records");
    assert!(
        records
            .iter()
            .any(|r| r.action == "case.export" && r.resource == format!("case/{}", net.case))
    );
    net.stop().await;
}

/// The profile events of the case in the log, each with its event id.
async fn logged_profiles(
    net: &Net,
    case: CaseId,
) -> Vec<(wasl_domain::ids::EventId, wasl_domain::client::ClientProfile)> {
    let history = net
        .h
        .state
        .store()
        .read_history(&format!("wasl.evt.case.{case}"), 1)
        .await
        .expect("history");
    history
        .into_iter()
        .filter_map(|r| match r.event.event {
            DomainEvent::Case(_, wasl_domain::case::CaseEvent::Opened { profile, .. })
            | DomainEvent::Case(_, wasl_domain::case::CaseEvent::ProfileUpdated { profile }) => {
                Some((r.event.meta.event_id, profile))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_survivor_code_exact_age_and_vulnerabilities_are_sealed_in_the_log_and_gone_once_erased() {
    use wasl_domain::client::Identifying;
    let net = Net::start(TestDb::sqlite()).await;
    let case = CaseId::parse(&net.case).expect("case id");
    let path = format!("/v1/cases/{case}");
    let mut stated = profile(SURVIVOR_CODE);
    stated["age_years"] = json!(47);
    stated["vulnerabilities"] = json!(["gbv_survivor", "detention_survivor"]);
    let put = |body: Value| {
        let (client, path) = (&net.caseworker, format!("{path}/profile"));
        async move { client.send(reqwest::Method::PUT, &path, Some(body), &[]).await }
    };
    let updated = put(stated.clone()).await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    // The same profile again changes nothing, though every seal of it differs.
    let same = put(stated.clone()).await;
    assert_eq!(same.body["code"], "nothing_to_change", "{}", same.body);

    // In the log: sealed, never in the clear, in the open and in the update alike.
    let logged = logged_profiles(&net, case).await;
    assert_eq!(logged.len(), 2);
    for (_, p) in &logged {
        assert!(
            matches!(p.identifying, Identifying::Sealed(_)),
            "a profile in the clear in the log"
        );
    }
    let raw = net
        .h
        .state
        .store()
        .stream()
        .get_last_raw_message_by_subject(&format!("wasl.evt.case.{case}"))
        .await
        .expect("the last event");
    assert!(
        !raw.payload
            .windows(SURVIVOR_CODE.len())
            .any(|w| w == SURVIVOR_CODE.as_bytes()),
        "the survivor code is in the log's bytes"
    );

    // The caseworker reads them opened, and finds the case by its code as typed.
    let read = net.caseworker.get_at(&path, updated.position()).await;
    let shown = &read.body["profile"];
    assert_eq!(shown["survivor_code"], SURVIVOR_CODE, "{}", read.body);
    assert_eq!(shown["age_years"], 47);
    assert_eq!(shown["age_group"], "25_59");
    assert_eq!(shown["vulnerabilities"], json!(["gbv_survivor", "detention_survivor"]));
    let query = format!("/v1/cases?survivor_code={}", SURVIVOR_CODE.to_ascii_lowercase());
    let found = net.caseworker.get_at(&query, updated.position()).await;
    assert_eq!(found.body["items"].as_array().map(Vec::len), Some(1), "{}", found.body);
    assert_eq!(found.body["items"][0]["profile"]["survivor_code"], SURVIVOR_CODE);

    // Erased: the read model forgets them, the lookup finds nothing, and what the log still
    // holds can no longer be opened by anyone.
    let supervisor = net.h.user(net.a, Role::Supervisor).await;
    let erased = supervisor
        .post(&format!("{path}/erase"), json!({"reason": {"code": "client_request"}}))
        .await;
    assert_eq!(erased.status, StatusCode::OK, "{}", erased.body);
    let read = net.caseworker.get_at(&path, erased.position()).await;
    let shown = &read.body["profile"];
    assert_eq!(shown["survivor_code"], "", "{}", read.body);
    assert!(shown.get("age_years").is_none(), "{}", read.body);
    assert_eq!(shown["vulnerabilities"], json!([]));
    assert_eq!(
        shown["age_group"], "25_59",
        "the coded categories stay for the statistics"
    );
    assert_eq!(shown["sex"], "female");
    let found = net.caseworker.get_at(&query, erased.position()).await;
    assert_eq!(found.body["items"], json!([]), "{}", found.body);
    for (event, p) in logged_profiles(&net, case).await {
        let Identifying::Sealed(sealed) = &p.identifying else {
            panic!("a profile in the clear in the log");
        };
        let opened = net.h.state.vault().open_identifying(case, event, sealed).await;
        assert!(matches!(opened, Ok(None)), "{opened:?}");
    }
    net.stop().await;
}
