//! The dashboards' numbers: a small history whose counts, rates and percentiles are worked out
//! by hand below, projected by the live projector and then rebuilt twice from the log; the
//! aggregate queries and the published reports (`wasl-dashboard`) give exactly those numbers
//! each time, on both databases.
//!
//! The history (all in January 2026, Iraq time, so in 2026-Q1):
//!
//! - 8 health referrals in Ninawa to B, a prompt partner. Referral i (1–8) is received i hours
//!   after its request and answered an hour later; 1–6 accepted, 7 and 8 declined `no_capacity`.
//!   1–5 start an hour after acceptance and complete 24 hours after it; 6 fails. Follow-up of
//!   1–5 reaches the client for 1–4, not for 5.
//! - 6 civil-documentation referrals in Ninawa to C, a late partner: received after 24 hours,
//!   the decision deadline recorded as missed after 48, answered after 72; 9–13 accepted, 14
//!   declined `service_not_offered`. Referral 9 is escalated and not acknowledged.
//! - 3 health referrals in Erbil to B that wait: 15 and 16 past their acknowledgement deadline.
//!
//! And the numbers as they stood on the fifth day, replayed from the log, are those worked out
//! by hand for that moment.

use crate::log::Log;
use crate::support::{Open, TestDb};
use crate::world::{World, consenting_case_in, decline, register, spec, whole};
use std::time::Duration;
use wasl_dashboard::reports;
use wasl_domain::case::Case;
use wasl_domain::catalogue::{DeclineCode, FailCode, Priority, Reason, ServiceCategory};
use wasl_domain::directory::OrgKind;
use wasl_domain::geo::Governorate;
use wasl_domain::ids::{OrgId, ReferralId, ServiceId};
use wasl_domain::referral::{FollowUp, OverdueKind, Referral, ReferralCommand, RequestReferral, ServiceReceived};
use wasl_domain::suppression::Threshold;
use wasl_domain::testing::{T0, actor, id};
use wasl_domain::time::Timestamp;
use wasl_domain::{Actor, Role};
use wasl_projections::query::{Count, DashboardFilter, Dimension, Measure, Span};
use wasl_projections::{Projection, ReadModels};
use wasl_testkit::on_both;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

struct Scenario {
    org_b: OrgId,
    org_c: OrgId,
}

/// Builds the history and returns its events.
fn history(world: &mut World) -> Scenario {
    let (org_a, org_b, org_c): (OrgId, OrgId, OrgId) = (id(1), id(2), id(3));
    let caseworker = actor(id(101), org_a, Role::Caseworker);
    let focal_b = actor(id(102), org_b, Role::FocalPoint);
    let focal_c = actor(id(103), org_c, Role::FocalPoint);
    let system = actor(id(104), id(9), Role::System);
    let (health, documents): (ServiceId, ServiceId) = (id(30), id(31));
    let areas = || vec![whole(Governorate::Ninawa), whole(Governorate::Erbil)];
    let _ = register(world, org_a, "Synthetic Referrer", OrgKind::NationalNgo, vec![]);
    let provider_b = register(
        world,
        org_b,
        "Synthetic Prompt Clinic",
        OrgKind::InternationalNgo,
        vec![(30, spec("Synthetic clinic", ServiceCategory::Health, areas(), &["ar"]))],
    );
    let provider_c = register(
        world,
        org_c,
        "Synthetic Late Registry",
        OrgKind::NationalNgo,
        vec![(
            31,
            spec(
                "Synthetic documents",
                ServiceCategory::CivilDocumentation,
                areas(),
                &["ar"],
            ),
        )],
    );
    let run = |world: &mut World, n: u8, at: i64, command: ReferralCommand, who: &Actor, r: &mut Referral| {
        world.at(Timestamp::from_unix_millis(at));
        world.run(r, id::<ReferralId>(n), command, who);
    };
    let request = |n: u8, case: &Case, provider, service| {
        ReferralCommand::Request(Box::new(RequestReferral {
            referral_id: id(n),
            case: case.clone(),
            provider,
            service_id: service,
            priority: Priority::Routine,
            redirected_from: None,
            consent_override: None,
            notes: None,
        }))
    };
    let day = |d: i64| T0.unix_millis() + d * DAY;
    for i in 1..=8u8 {
        let case = consenting_case_in(world, id(40 + i), &caseworker, whole(Governorate::Ninawa));
        let mut r = Referral::default();
        let t = day(i64::from(i));
        let h = i64::from(i);
        run(
            world,
            i,
            t,
            request(i, &case, provider_b.clone(), health),
            &caseworker,
            &mut r,
        );
        run(world, i, t + h * HOUR, ReferralCommand::Receive, &focal_b, &mut r);
        let answered = t + (h + 1) * HOUR;
        if i <= 6 {
            run(world, i, answered, ReferralCommand::Accept, &focal_b, &mut r);
        } else {
            run(
                world,
                i,
                answered,
                decline(DeclineCode::NoCapacity, None),
                &focal_b,
                &mut r,
            );
            continue;
        }
        if i <= 5 {
            run(world, i, answered + HOUR, ReferralCommand::Start, &focal_b, &mut r);
            run(world, i, answered + DAY, ReferralCommand::Complete, &focal_b, &mut r);
            let follow_up = FollowUp {
                client_reached: i <= 4,
                service_received: if i <= 4 {
                    ServiceReceived::Yes
                } else {
                    ServiceReceived::Unknown
                },
                satisfaction: None,
                note: None,
            };
            run(
                world,
                i,
                answered + 2 * DAY,
                ReferralCommand::RecordFollowUp(follow_up),
                &caseworker,
                &mut r,
            );
        } else {
            let reason = Reason::coded(FailCode::ClientUnreachable);
            run(
                world,
                i,
                answered + DAY,
                ReferralCommand::Fail(reason),
                &focal_b,
                &mut r,
            );
        }
    }
    for i in 9..=14u8 {
        let case = consenting_case_in(world, id(40 + i), &caseworker, whole(Governorate::Ninawa));
        let mut r = Referral::default();
        let t = day(i64::from(i));
        run(
            world,
            i,
            t,
            request(i, &case, provider_c.clone(), documents),
            &caseworker,
            &mut r,
        );
        run(world, i, t + DAY, ReferralCommand::Receive, &focal_c, &mut r);
        let overdue = ReferralCommand::MarkResponseOverdue {
            kind: OverdueKind::Decision,
            due_at: Timestamp::from_unix_millis(t + 2 * DAY - HOUR),
        };
        run(world, i, t + 2 * DAY, overdue, &system, &mut r);
        if i == 9 {
            let escalate = ReferralCommand::Escalate {
                kind: OverdueKind::Decision,
            };
            run(world, i, t + 2 * DAY + HOUR, escalate, &system, &mut r);
        }
        let answer = if i <= 13 {
            ReferralCommand::Accept
        } else {
            decline(DeclineCode::ServiceNotOffered, None)
        };
        run(world, i, t + 3 * DAY, answer, &focal_c, &mut r);
    }
    for i in 15..=17u8 {
        let case = consenting_case_in(world, id(40 + i), &caseworker, whole(Governorate::Erbil));
        let mut r = Referral::default();
        let t = day(i64::from(i));
        run(
            world,
            i,
            t,
            request(i, &case, provider_b.clone(), health),
            &caseworker,
            &mut r,
        );
        if i <= 16 {
            let overdue = ReferralCommand::MarkResponseOverdue {
                kind: OverdueKind::Acknowledgement,
                due_at: Timestamp::from_unix_millis(t + 4 * HOUR),
            };
            run(world, i, t + 5 * HOUR, overdue, &system, &mut r);
        }
    }
    Scenario { org_b, org_c }
}

fn counts(rows: &[Count]) -> Vec<(String, String, u64)> {
    let mut out: Vec<_> = rows
        .iter()
        .map(|c| (c.row.clone(), c.column.clone(), c.count))
        .collect();
    out.sort();
    out
}

fn hours(list: &[i64]) -> Vec<i64> {
    list.iter().map(|h| h * HOUR).collect()
}

/// Checks every hand-computed number against the read models.
async fn check(models: &ReadModels, s: &Scenario) {
    let all = DashboardFilter::default();
    let k = Threshold::DEFAULT;
    let h = models.dashboard_headline(&all).await.expect("headline");
    assert_eq!(
        (
            h.made,
            h.received,
            h.answered,
            h.answered_in_time,
            h.accepted,
            h.declined
        ),
        (17, 14, 14, 8, 11, 3)
    );
    assert_eq!((h.completed, h.failed, h.cancelled, h.open), (5, 1, 0, 8));
    assert_eq!((h.followed_up, h.reached), (5, 4));
    assert_eq!(
        (
            h.overdue_acknowledgement,
            h.overdue_decision,
            h.overdue_stalled,
            h.overdue_follow_up
        ),
        (2, 0, 0, 0)
    );
    assert_eq!(h.open_escalations, 1);

    let by_status = models
        .dashboard_counts(&all, Measure::Made, Dimension::Status, None)
        .await
        .expect("by status");
    let expected = [
        ("accepted", 5),
        ("completed", 5),
        ("failed", 1),
        ("rejected", 3),
        ("requested", 3),
    ];
    assert_eq!(
        counts(&by_status),
        expected.map(|(s, n)| (s.to_owned(), String::new(), n))
    );
    let receive: Vec<i64> = [1, 2, 3, 4, 5, 6, 7, 8, 24, 24, 24, 24, 24, 24].to_vec();
    let answer: Vec<i64> = [2, 3, 4, 5, 6, 7, 8, 9, 72, 72, 72, 72, 72, 72].to_vec();
    let mut durations = Vec::new();
    for (span, expected) in [
        (Span::ToReceive, hours(&receive)),
        (Span::ToAnswer, hours(&answer)),
        (Span::ToService, hours(&[3, 4, 5, 6, 7])),
        (Span::ToComplete, hours(&[26, 27, 28, 29, 30])),
    ] {
        let got = models.dashboard_durations(&all, span).await.expect("durations");
        assert_eq!(got, expected, "{}", span.code());
        durations.push((span, got));
    }

    // The published headline: small counts hidden, rates resting on small counts withheld.
    let report = reports::headline(&h, &by_status, &durations, k);
    let statuses: Vec<(&str, &str)> = report
        .referrals
        .rows
        .iter()
        .map(|r| (r.key.as_str(), r.total.display.as_str()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("accepted", "5"),
            ("completed", "5"),
            ("failed", "<5"),
            ("rejected", "<5"),
            ("requested", "<5")
        ]
    );
    assert_eq!(report.referrals.total.value, Some(17));
    let r = &report.rates;
    assert_eq!(r.acceptance.display, "x", "11 of 14: the 3 declines are a small count");
    assert_eq!(r.completion.value, Some(0.45), "5 of 11");
    assert_eq!(r.failure.display, "x", "1 of 11");
    assert_eq!(r.answered_in_time.value, Some(0.57), "8 of 14");
    assert_eq!(r.follow_up_reached.display, "x", "4 of 5");
    let medians: Vec<(String, Option<f64>, Option<f64>)> = report
        .hours
        .iter()
        .map(|d| (d.span.clone(), d.median.value, d.p90.value))
        .collect();
    assert_eq!(
        medians,
        [
            ("to_receive".to_owned(), Some(7.0), Some(24.0)),
            ("to_answer".to_owned(), Some(8.0), Some(72.0)),
            ("to_service".to_owned(), Some(5.0), Some(7.0)),
            ("to_complete".to_owned(), Some(28.0), Some(30.0)),
        ]
    );
    assert_eq!(report.overdue.acknowledgement.display, "<5");
    assert_eq!(report.overdue.decision.value, Some(0));
    assert_eq!(report.open_escalations.display, "<5");

    // Service gaps by governorate and category; declines by reason in Ninawa.
    let ninawa = DashboardFilter {
        governorate: Some(Governorate::Ninawa),
        ..DashboardFilter::default()
    };
    let made = models
        .dashboard_counts(&all, Measure::Made, Dimension::Governorate, Some(Dimension::Category))
        .await
        .expect("made by place and category");
    assert_eq!(
        counts(&made),
        [
            ("IQ-AR".to_owned(), "health".to_owned(), 3),
            ("IQ-NI".to_owned(), "civil_documentation".to_owned(), 6),
            ("IQ-NI".to_owned(), "health".to_owned(), 8),
        ]
    );
    let gaps = models
        .dashboard_counts(&ninawa, Measure::ServiceGap, Dimension::DeclineReason, None)
        .await
        .expect("gaps");
    assert_eq!(
        counts(&gaps),
        [
            ("no_capacity".to_owned(), String::new(), 2),
            ("service_not_offered".to_owned(), String::new(), 1),
        ]
    );
    let by_category = models
        .dashboard_counts(&ninawa, Measure::Made, Dimension::Category, None)
        .await
        .expect("by category");
    let table = wasl_dashboard::breakdown(
        by_category.into_iter().map(|c| ((c.row, c.column), c.count)),
        "category",
        None,
        k,
    );
    assert_eq!(
        table.to_csv(),
        "category,total\ncivil_documentation,6\nhealth,8\ntotal,14\n"
    );

    // Partner responsiveness.
    let partners = models.dashboard_responsiveness(&all).await.expect("responsiveness");
    let of = |org: OrgId| partners.iter().find(|p| p.org == org.to_string()).expect("the partner");
    let b = of(s.org_b);
    assert_eq!((b.addressed, b.answered, b.answered_in_time), (11, 8, 8));
    assert_eq!(b.answer_millis, hours(&[2, 3, 4, 5, 6, 7, 8, 9]));
    let c = of(s.org_c);
    assert_eq!((c.addressed, c.answered, c.answered_in_time), (6, 6, 0));
    let report = reports::partners(&partners, Some(&s.org_b.to_string()), k);
    assert_eq!(report.answers.rows.len(), 1, "a focal point sees only their own row");
    assert_eq!(report.organisations.len(), 1);
    assert_eq!(report.organisations[0].answered_in_time.value, Some(1.0));
    assert_eq!(report.organisations[0].median_hours_to_answer.value, Some(5.0));
    assert_eq!(report.network.answered_in_time.value, Some(0.57));
    assert_eq!(report.network.median_hours_to_answer.value, Some(8.0));

    // The GCM indicators: health serves objectives 7 and 15, civil documentation 4 and 21.
    let indicators = models.indicator_counts(&all).await.expect("indicators");
    let rows: Vec<(u32, &str, &str, [u64; 4], usize)> = indicators
        .iter()
        .map(|c| {
            (
                c.objective.number(),
                c.governorate.as_str(),
                c.quarter.as_str(),
                [c.made, c.accepted, c.completed, c.unmet_need],
                c.service_millis.len(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (4, "IQ-NI", "2026-Q1", [6, 5, 0, 1], 0),
            (7, "IQ-AR", "2026-Q1", [3, 0, 0, 0], 0),
            (7, "IQ-NI", "2026-Q1", [8, 6, 5, 2], 5),
            (15, "IQ-AR", "2026-Q1", [3, 0, 0, 0], 0),
            (15, "IQ-NI", "2026-Q1", [8, 6, 5, 2], 5),
            (21, "IQ-NI", "2026-Q1", [6, 5, 0, 1], 0),
        ]
    );
    let report = reports::indicators(&indicators, k);
    let csv = report.to_csv();
    assert!(csv.contains("\n4,made,IQ-NI,2026-Q1,6\n"), "{csv}");
    assert!(csv.contains("\n7,unmet_need,IQ-NI,2026-Q1,<5\n"), "{csv}");
    assert!(csv.contains("\n7,median_days_to_service,IQ-NI,2026-Q1,0.2\n"), "{csv}");
    let only_4 = DashboardFilter {
        objective: Some(wasl_domain::gcm::GcmObjective::new(4).expect("objective")),
        ..DashboardFilter::default()
    };
    let headline = models.dashboard_headline(&only_4).await.expect("objective 4");
    assert_eq!(headline.made, 6);
}

/// The numbers as they stood at T0 + 5 days, worked out by hand: referrals 1–4 were made
/// (referral 5 is requested at that very moment, so not yet); 1–3 completed (referral 4
/// completes 29 hours after its request on day 4, after the cut), 4 in progress; follow-up of 1
/// and 2 recorded, both reaching the client (that of 3 comes on day 5 + 4 h).
async fn check_as_of_day_5(models: &ReadModels) {
    let all = DashboardFilter::default();
    let h = models.dashboard_headline(&all).await.expect("headline");
    assert_eq!(
        (
            h.made,
            h.received,
            h.answered,
            h.accepted,
            h.declined,
            h.completed,
            h.open
        ),
        (4, 4, 4, 4, 0, 3, 1)
    );
    assert_eq!((h.followed_up, h.reached, h.open_escalations), (2, 2, 0));
    let by_status = models
        .dashboard_counts(&all, Measure::Made, Dimension::Status, None)
        .await
        .expect("by status");
    assert_eq!(
        counts(&by_status),
        [
            ("completed".to_owned(), String::new(), 3),
            ("in_progress".to_owned(), String::new(), 1),
        ]
    );
    let received = models
        .dashboard_durations(&all, Span::ToReceive)
        .await
        .expect("durations");
    assert_eq!(received, hours(&[1, 2, 3, 4]));
}

async fn golden_numbers(db: TestDb) {
    let mut world = World::new();
    let scenario = history(&mut world);
    let log = Log::start().await;
    let last = log.append(world.events()).await;
    let models = db.open().await;
    // The live projector …
    let projector = wasl_projections::Projector::new(
        models.clone(),
        log.stream.clone(),
        Projection::ALL,
        wasl_projections::ProjectorConfig::default(),
    );
    let running = projector.clone();
    let task = tokio::spawn(async move {
        running.run(std::future::pending()).await.expect("the projector runs");
    });
    models
        .wait_for(&[Projection::Dashboard], last, Duration::from_secs(30))
        .await
        .expect("the dashboard catches up");
    task.abort();
    let _ = task.await;
    check(&models, &scenario).await;
    // … and two rebuilds from the log give the same numbers.
    for generation in [2, 3] {
        let report = wasl_projections::rebuild(
            &models,
            &log.stream,
            &[Projection::Dashboard],
            5,
            wasl_projections::feed::store_decoder,
            None,
            |_| {},
        )
        .await
        .expect("rebuild");
        assert_eq!(report.generation, vec![(Projection::Dashboard, generation)]);
        check(&models, &scenario).await;
    }
    // As of a past moment: the log replayed up to it into a scratch database.
    let scratch = TestDb::sqlite();
    let as_of = scratch.open().await;
    let applied = wasl_projections::replay_until(
        &as_of,
        &log.stream,
        &[Projection::Dashboard],
        Timestamp::from_unix_millis(T0.unix_millis() + 5 * DAY),
        7,
    )
    .await
    .expect("replay");
    assert!(applied > 0);
    check_as_of_day_5(&as_of).await;
    // The live numbers are untouched.
    check(&models, &scenario).await;
}
on_both!(golden, golden_numbers);
