//! The dashboards over HTTP, as coordinators, focal points and caseworkers meet them: who reads
//! what, small counts hidden in JSON and CSV, a filter narrow enough to single out one person
//! answered with `<5`, no personal value, survivor code or id of a case or referral in any
//! answer, bad filters refused, and k as configured.

use crate::support::{Answer, Client, Harness, TestDb, profile};
use reqwest::StatusCode;
use serde_json::{Value, json};
use wasl_api::Limits;
use wasl_domain::Role;
use wasl_domain::ids::OrgId;
use wasl_domain::suppression::Threshold;
use wasl_domain::time::{Date, Timestamp};

const MARKERS: [&str; 3] = ["MarkerNameDq4", "MarkerNotesDq4", "MarkerReasonDq4"];

/// Six referrals to one health partner, made by a caseworker of another organisation: five
/// accepted, one declined for want of capacity. Returns the survivor codes, case ids and
/// referral ids, and the position of the last change.
struct Made {
    secrets: Vec<String>,
    position: u64,
    partner: OrgId,
    referrer: OrgId,
}

async fn six_referrals(h: &Harness) -> Made {
    let (referrer, _) = h.organisation("Test Referring NGO", "psychosocial").await;
    let (partner, service) = h.organisation("Test Health Partner", "health").await;
    let caseworker = h.user(referrer, Role::Caseworker).await;
    let focal = h.user(partner, Role::FocalPoint).await;
    let mut secrets = Vec::new();
    let mut position = 0;
    for i in 0..6 {
        let code = format!("TEST-DASH-{i:03}");
        let opened = caseworker
            .post(
                "/v1/cases",
                json!({"profile": profile(&code), "personal": {"name": MARKERS[0], "notes": MARKERS[1]}}),
            )
            .await;
        assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.body);
        let case = opened.id();
        caseworker.post(&format!("/v1/cases/{case}/consents"), json!({})).await;
        let requested = caseworker
            .post(
                "/v1/referrals",
                json!({"case_id": case, "to_org": partner.to_string(), "service_id": service,
                       "priority": "urgent", "notes": MARKERS[1]}),
            )
            .await;
        assert_eq!(requested.status, StatusCode::CREATED, "{}", requested.body);
        let referral = requested.id();
        let received = focal
            .post(&format!("/v1/referrals/{referral}/receive"), json!({}))
            .await;
        assert!(received.status.is_success(), "{}", received.body);
        let answered = if i < 5 {
            focal.post(&format!("/v1/referrals/{referral}/accept"), json!({})).await
        } else {
            focal
                .post(
                    &format!("/v1/referrals/{referral}/reject"),
                    json!({"reason": {"code": "no_capacity", "text": MARKERS[2]}}),
                )
                .await
        };
        assert!(answered.status.is_success(), "{}", answered.body);
        position = answered.position();
        secrets.extend([code.clone(), code.to_lowercase(), case, referral]);
    }
    Made {
        secrets,
        position,
        partner,
        referrer,
    }
}

fn assert_clean(answer: &Answer, secrets: &[String]) {
    let text = match &answer.body {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    for secret in secrets.iter().map(String::as_str).chain(MARKERS) {
        assert!(
            !text.contains(secret),
            "an answer carries a personal value or an id: {text}"
        );
    }
}

async fn get_ok(client: &Client, path: &str, position: u64, secrets: &[String]) -> Answer {
    let answer = client.get_at(path, position).await;
    assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.body);
    assert_clean(&answer, secrets);
    answer
}

async fn the_dashboards_count_without_singling_anyone_out(db: TestDb) {
    let h = Harness::start(db).await;
    let made = six_referrals(&h).await;
    let (p, s) = (made.position, &made.secrets);
    let coordinator = &h.coordinator;

    let headline = get_ok(coordinator, "/v1/dashboard/headline", p, s).await;
    let b = &headline.body;
    assert_eq!(b["k"], 5);
    assert_eq!(b["referrals"]["total"], json!({"display": "6", "value": 6}));
    let statuses: Vec<(String, String)> = b["referrals"]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_owned(),
                r["total"]["display"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // Five accepted and one declined: the one is hidden, and so is the five — else the total
    // would give the one away.
    assert_eq!(
        statuses,
        [
            ("accepted".to_owned(), "x".to_owned()),
            ("rejected".to_owned(), "<5".to_owned())
        ]
    );
    assert_eq!(b["referrals"]["rows"][0]["total"]["suppressed"], "withheld");
    assert!(
        b["referrals"]["rows"][0]["total"].get("value").is_none(),
        "hidden is never 0"
    );
    // 5 of 6 accepted: the one decline is small, so the rate is withheld too.
    assert_eq!(
        b["rates"]["acceptance"],
        json!({"display": "x", "suppressed": "too_few"})
    );

    // As of a day: replayed from the log. Yesterday nothing was made; today's end is now.
    let today = Date::of(Timestamp::from_unix_millis(wasl_api::auth::accounts::now_millis()));
    let yesterday = get_ok(
        coordinator,
        &format!("/v1/dashboard/headline?as_of={}", today.plus_days(-1)),
        p,
        s,
    )
    .await;
    assert_eq!(
        yesterday.body["referrals"]["total"],
        json!({"display": "0", "value": 0})
    );
    let as_of_today = get_ok(coordinator, &format!("/v1/dashboard/headline?as_of={today}"), p, s).await;
    assert_eq!(as_of_today.body, headline.body);
    let tomorrow = coordinator
        .get(&format!("/v1/dashboard/table?as_of={}", today.plus_days(1)))
        .await;
    assert_eq!(tomorrow.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", tomorrow.body);

    // One person: a filter on the one decline.
    let narrow = get_ok(
        coordinator,
        "/v1/dashboard/headline?decline_reason=no_capacity&sex=female&age_group=25_59&governorate=IQ-NI",
        p,
        s,
    )
    .await;
    assert_eq!(narrow.body["referrals"]["total"]["display"], "<5");
    assert!(narrow.body["referrals"]["total"].get("value").is_none());
    assert!(!narrow.body.to_string().contains("\"value\":1"), "{}", narrow.body);

    // The table and its CSV.
    let table = get_ok(
        coordinator,
        "/v1/dashboard/table?measure=made&rows=receiving_org&columns=category",
        p,
        s,
    )
    .await;
    assert_eq!(table.body["rows"][0]["key"], made.partner.to_string());
    assert_eq!(table.body["rows"][0]["cells"][0]["value"], 6);
    let csv = get_ok(
        coordinator,
        "/v1/dashboard/table?measure=declined&rows=referring_org&format=csv",
        p,
        s,
    )
    .await;
    assert_eq!(
        csv.headers["content-type"], "text/csv; charset=utf-8",
        "{:?}",
        csv.headers
    );
    assert_eq!(
        csv.body.as_str().expect("CSV text"),
        format!("referring_org,total\n{},<5\ntotal,<5\n", made.referrer)
    );

    // The indicator report: health serves objectives 7 and 15.
    let report = get_ok(coordinator, "/v1/indicators/gcm", p, s).await;
    let objectives: Vec<u64> = report.body["objectives"]
        .as_array()
        .expect("objectives")
        .iter()
        .map(|o| o["objective"].as_u64().unwrap())
        .collect();
    assert_eq!(objectives, [7, 15]);
    let csv = get_ok(coordinator, "/v1/indicators/gcm?format=csv&gcm_objective=7", p, s).await;
    let csv = csv.body.as_str().expect("CSV text");
    assert!(
        csv.starts_with("objective,indicator,governorate,quarter,value\n"),
        "{csv}"
    );
    assert!(csv.contains(",made,IQ-NI,"), "{csv}");
    assert!(csv.contains(",unmet_need,IQ-NI,") && csv.contains(",<5\n"), "{csv}");
    assert!(!csv.contains("\n15,"), "only objective 7: {csv}");

    // Who reads what.
    let focal = h.user(made.partner, Role::FocalPoint).await;
    let own = get_ok(&focal, "/v1/dashboard/partners", p, s).await;
    let rows = own.body["answers"]["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["key"], made.partner.to_string());
    let other = h.user(made.referrer, Role::FocalPoint).await;
    let theirs = get_ok(&other, "/v1/dashboard/partners", p, s).await;
    assert!(
        theirs.body["answers"]["rows"].as_array().expect("rows").is_empty(),
        "another organisation's focal point sees no row of the partner"
    );
    assert_eq!(
        theirs.body["answers"]["total"], own.body["answers"]["total"],
        "both see the network's total"
    );
    for role in [Role::Caseworker, Role::Supervisor, Role::PartnerSystem] {
        let client = h.token(made.referrer, role).await;
        for path in ["/v1/dashboard/headline", "/v1/dashboard/table", "/v1/indicators/gcm"] {
            assert_eq!(client.get(path).await.status, StatusCode::FORBIDDEN, "{role:?} {path}");
        }
    }
    assert_eq!(focal.get("/v1/dashboard/headline").await.status, StatusCode::FORBIDDEN);

    // Bad filters are refused (422), naming the parameter; an unknown parameter is 400.
    for (query, field) in [
        ("governorate=IQ-XX", "governorate"),
        ("from=2026-02-30", "from"),
        ("quarter=2026-Q5", "quarter"),
        ("gcm_objective=24", "gcm_objective"),
        ("governorate=IQ-AR&district=mosul", "district"),
    ] {
        let answer = coordinator.get(&format!("/v1/dashboard/headline?{query}")).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert!(answer.body.to_string().contains(field), "{query}: {}", answer.body);
    }
    for query in [
        "rows=nothing",
        "columns=status&rows=status",
        "format=xml",
        "measure=all",
    ] {
        let answer = coordinator.get(&format!("/v1/dashboard/table?{query}")).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {}",
            answer.body
        );
    }
    let unknown = coordinator
        .get("/v1/dashboard/headline?survivor_code=TEST-DASH-000")
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "an unknown filter is refused");
    h.stop().await;
}
wasl_testkit::on_both!(dashboards, the_dashboards_count_without_singling_anyone_out);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_threshold_is_the_one_configured() {
    let limits = Limits {
        suppression_k: Threshold::new(7).expect("k"),
        ..Limits::default()
    };
    let h = Harness::start_with(TestDb::sqlite(), limits).await;
    let made = six_referrals(&h).await;
    let headline = h.coordinator.get_at("/v1/dashboard/headline", made.position).await;
    assert_eq!(headline.body["k"], 7);
    assert_eq!(headline.body["referrals"]["total"]["display"], "<7");
    h.stop().await;
}

/// The next server-sent event of `response`: its name and data.
async fn next_event(response: &mut reqwest::Response, buffer: &mut String) -> (String, Value) {
    loop {
        if let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut name = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if name.is_empty() {
                continue; // a keep-alive comment
            }
            return (name, serde_json::from_str(&data).expect("the data is JSON"));
        }
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(30), response.chunk())
            .await
            .expect("an event within 30 s")
            .expect("the stream reads")
            .expect("the stream goes on");
        buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_headline_follows_new_referrals() {
    let h = Harness::start(TestDb::sqlite()).await;
    let made = six_referrals(&h).await;
    h.models
        .wait_for(
            &[wasl_projections::Projection::Dashboard],
            made.position,
            std::time::Duration::from_secs(10),
        )
        .await
        .expect("caught up");
    let mut response = h.coordinator.stream("/v1/dashboard/live").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut buffer = String::new();
    let (name, first) = next_event(&mut response, &mut buffer).await;
    assert_eq!(name, "headline");
    assert_eq!(first["referrals"]["total"]["value"], 6);
    assert_clean(
        &Answer {
            status: StatusCode::OK,
            headers: Default::default(),
            body: first.clone(),
        },
        &made.secrets,
    );
    // Six more: the next event counts twelve.
    let more = six_referrals(&h).await;
    let mut latest = first;
    while latest["referrals"]["total"]["value"] != 12 {
        latest = next_event(&mut response, &mut buffer).await.1;
    }
    assert_eq!(latest["referrals"]["total"]["value"], 12);
    assert!(more.position > made.position);
    // A live dashboard is of now.
    let as_of = h.coordinator.stream("/v1/dashboard/live?as_of=2026-01-01").await;
    assert_eq!(as_of.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Only coordinators and admins.
    let caseworker = h.token(made.referrer, Role::Caseworker).await;
    assert_eq!(
        caseworker.stream("/v1/dashboard/live").await.status(),
        StatusCode::FORBIDDEN
    );
    drop(response);
    h.stop().await;
}
