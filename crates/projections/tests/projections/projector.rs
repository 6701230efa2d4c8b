//! The projector against a real nats-server, on SQLite and PostgreSQL: convergence with the
//! domain, restarts at any moment, parked events and their retry, rebuild beside live tables,
//! and read-your-writes.

use crate::log::Log;
use crate::support::{Open, TestDb, dump};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::time::Duration;
use wasl_domain::case::CaseStatus;
use wasl_domain::referral::ReferralStatus;
use wasl_events::{DomainEvent, StoredEvent};
use wasl_projections::rows::referral::ReferralRow;
use wasl_projections::{Projection, Projector, ProjectorConfig, ReadModels};
use wasl_synth::{Generator, HistoryConfig};
use wasl_testkit::on_both;

const WAIT: Duration = Duration::from_secs(120);

fn history(seed: u64, referrals: usize) -> (Vec<StoredEvent>, Generator) {
    let mut generator = Generator::new(HistoryConfig::new(seed, referrals));
    let events: Vec<StoredEvent> = generator.by_ref().collect();
    (events, generator)
}

fn spawn_projector(models: &ReadModels, log: &Log, batch_size: usize) -> (tokio::task::JoinHandle<()>, Projector) {
    let projector = Projector::new(
        models.clone(),
        log.stream.clone(),
        Projection::ALL,
        ProjectorConfig {
            batch_size,
            retry_delay: Duration::from_millis(50),
            ..ProjectorConfig::default()
        },
    );
    let running = projector.clone();
    let task = tokio::spawn(async move {
        running.run(std::future::pending()).await.expect("the projector runs");
    });
    (task, projector)
}

async fn count(models: &ReadModels, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(models.pool())
        .await
        .expect("count")
}

/// Every table of every projection, row by row.
async fn dump_all(models: &ReadModels) -> BTreeMap<&'static str, Vec<Vec<String>>> {
    let mut out = BTreeMap::new();
    for (table, order) in [
        ("cases", "id"),
        ("referrals", "id"),
        ("referral_history", "seq"),
        ("organisations", "id"),
        ("services", "id"),
    ] {
        out.insert(table, dump(models, table, order).await);
    }
    out
}

// --- 10,000 referrals: the tables say what replaying the domain says ------------------------

async fn ten_thousand_referrals_match_the_domain(db: TestDb) {
    let (events, generator) = history(10_000, 10_000);
    let log = Log::start().await;
    let last = log.append(events.iter().cloned()).await;
    let models = db.open().await;
    let (task, _) = spawn_projector(&models, &log, 1_000);
    models
        .wait_for(Projection::ALL, last, WAIT)
        .await
        .expect("the projector catches up");
    task.abort();

    // Referrals: one row each, with the domain's status and facts.
    let referrals = generator.referrals();
    assert!(
        referrals.len() >= 9_000,
        "the generator made {} referrals",
        referrals.len()
    );
    let stored = all_referrals(&models).await;
    assert_eq!(stored.len(), referrals.len(), "one row per referral");
    let mut by_status_domain: HashMap<&str, usize> = HashMap::new();
    for (id, referral) in referrals {
        let state = referral.state().expect("every generated referral exists");
        let row = stored.get(&id.to_string()).expect("the referral has a row");
        *by_status_domain.entry(state.status.code()).or_default() += 1;
        assert_eq!(row.status, state.status.code(), "status of a referral");
        assert_eq!(row.case_id, state.case_id.to_string());
        assert_eq!(row.from_org, state.from_org.to_string());
        assert_eq!(row.to_org, state.to_org.to_string());
        assert_eq!(row.service_id, state.service_id.to_string());
        assert_eq!(row.category, state.category.code());
        assert_eq!(row.priority, state.priority.code());
        assert_eq!(row.redirected_from, state.redirected_from.map(|r| r.to_string()));
        assert_eq!(row.followed_up == 1, state.followed_up);
        assert_eq!(
            row.decline_code,
            state.decline.as_ref().map(|d| d.reason.code.code().to_owned())
        );
        let codes = |set: &std::collections::BTreeSet<wasl_domain::referral::OverdueKind>| {
            let mut v: Vec<&str> = set.iter().map(|k| k.code()).collect();
            v.sort_unstable();
            format!(",{}", v.iter().map(|c| format!("{c},")).collect::<String>())
        };
        assert_eq!(row.overdue, codes(&state.overdue));
        assert_eq!(row.escalated, codes(&state.escalated));
        assert_eq!(row.acknowledged, codes(&state.acknowledged));
        // A status reached has its time; the current one always.
        let reached = match state.status {
            ReferralStatus::Requested => Some(row.requested_at),
            ReferralStatus::Received => row.received_at,
            ReferralStatus::Accepted => row.accepted_at,
            ReferralStatus::Rejected => row.rejected_at,
            ReferralStatus::InProgress => row.in_progress_at,
            ReferralStatus::OnHold => row.on_hold_at,
            ReferralStatus::Completed => row.completed_at,
            ReferralStatus::Failed => row.failed_at,
            ReferralStatus::Cancelled => row.cancelled_at,
            ReferralStatus::EnteredInError => row.entered_in_error_at,
        };
        assert!(reached.is_some(), "the time of the current status is recorded");
    }
    // Counts by status, as a coordinator's dashboard would show them.
    for status in ReferralStatus::ALL {
        let n = count(
            &models,
            &format!("SELECT COUNT(*) FROM referrals WHERE status = '{}'", status.code()),
        )
        .await;
        assert_eq!(
            n as usize,
            by_status_domain.get(status.code()).copied().unwrap_or(0),
            "{status}"
        );
    }
    // The timeline: one row per referral event, versions 1..n per referral.
    let referral_events = events
        .iter()
        .filter(|e| matches!(e.event, DomainEvent::Referral(..)))
        .count();
    assert_eq!(
        count(&models, "SELECT COUNT(*) FROM referral_history").await as usize,
        referral_events
    );
    assert_eq!(
        count(&models, "SELECT COUNT(*) FROM referrals r WHERE r.version <> (SELECT COUNT(*) FROM referral_history h WHERE h.referral_id = r.id)").await,
        0
    );

    // Cases.
    let cases = generator.cases();
    assert_eq!(count(&models, "SELECT COUNT(*) FROM cases").await as usize, cases.len());
    for status in [CaseStatus::Open, CaseStatus::Closed] {
        let code = wasl_projections::rows::case::status_code(status);
        let domain = cases
            .values()
            .filter(|c| c.state().is_some_and(|s| s.status == status))
            .count();
        let n = count(&models, &format!("SELECT COUNT(*) FROM cases WHERE status = '{code}'")).await;
        assert_eq!(n as usize, domain, "cases {code}");
    }
    let erased = cases
        .values()
        .filter(|c| c.state().is_some_and(|s| s.personal_data_erased))
        .count();
    assert_eq!(
        count(&models, "SELECT COUNT(*) FROM cases WHERE personal_data_erased = 1 AND name IS NULL AND phone IS NULL AND address IS NULL AND notes IS NULL AND survivor_code = '' AND age_years IS NULL AND vulnerabilities = ''").await as usize,
        erased
    );
    let active_consents: usize = cases
        .values()
        .filter_map(|c| c.state())
        .map(|s| s.consents.values().filter(|c| !c.withdrawn).count())
        .sum();
    assert_eq!(
        count(
            &models,
            "SELECT CAST(COALESCE(SUM(consents_active), 0) AS BIGINT) FROM cases"
        )
        .await as usize,
        active_consents
    );

    // Directory.
    let orgs = generator.organisations();
    assert_eq!(
        count(&models, "SELECT COUNT(*) FROM organisations").await as usize,
        orgs.len()
    );
    let services: Vec<_> = orgs
        .values()
        .filter_map(|o| o.state())
        .flat_map(|o| o.services.values())
        .collect();
    assert_eq!(
        count(&models, "SELECT COUNT(*) FROM services").await as usize,
        services.len()
    );
    assert_eq!(
        count(
            &models,
            "SELECT COUNT(*) FROM services WHERE accepting = 1 AND retired = 0"
        )
        .await as usize,
        services.iter().filter(|s| s.accepting && !s.retired).count()
    );
    assert_eq!(
        count(&models, "SELECT COUNT(*) FROM parked_events").await,
        0,
        "nothing parked"
    );
}

async fn all_referrals(models: &ReadModels) -> HashMap<String, ReferralRow> {
    let cols = ReferralRow::COLUMNS.join(", ");
    sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {cols} FROM referrals")))
        .fetch_all(models.pool())
        .await
        .expect("referrals")
        .iter()
        .map(|r| {
            let row = ReferralRow::from_row(r).expect("a referral row");
            (row.id.clone(), row)
        })
        .collect()
}

on_both!(ten_thousand_referrals, ten_thousand_referrals_match_the_domain);

// --- Killed at any moment, restarted: the same tables as a full rebuild ----------------------

async fn killed_and_restarted_converges_to_a_full_rebuild(db: TestDb) {
    let (events, _) = history(7, 800);
    let log = Log::start().await;
    let last = log.append(events).await;
    let models = db.open().await;
    // Small batches, aborted after random short times, again and again: many aborts land inside
    // a transaction (between the checkpoint update and the commit). The window grows while the
    // projector makes no progress (starting it takes tens of milliseconds on PostgreSQL) and
    // shrinks again when it does.
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut kills = 0;
    let mut window = 40_u64;
    loop {
        let before = wasl_projections::live_state(&models, Projection::Referrals)
            .await
            .expect("state")
            .checkpoint;
        if before >= last {
            break;
        }
        let (task, _) = spawn_projector(&models, &log, 37);
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        tokio::time::sleep(Duration::from_millis(5 + rng % window)).await;
        task.abort();
        let _ = task.await;
        kills += 1;
        let after = wasl_projections::live_state(&models, Projection::Referrals)
            .await
            .expect("state")
            .checkpoint;
        window = if after == before {
            (window * 2).min(5_000)
        } else {
            (window / 2).max(40)
        };
        assert!(kills < 2_000, "the projector makes progress between kills");
    }
    assert!(kills >= 3, "the projector was killed {kills} times");
    for projection in Projection::ALL {
        assert_eq!(
            wasl_projections::live_state(&models, *projection)
                .await
                .expect("state")
                .checkpoint,
            last
        );
    }
    let restarted = dump_all(&models).await;

    let report = wasl_projections::rebuild(
        &models,
        &log.stream,
        Projection::ALL,
        1_000,
        wasl_projections::feed::store_decoder,
        None,
        |_| {},
    )
    .await
    .expect("rebuild");
    assert_eq!(report.checkpoint, last);
    assert!(
        report.generation.iter().all(|(_, g)| *g == 2),
        "the rebuild is generation 2"
    );
    let rebuilt = dump_all(&models).await;
    for (table, rows) in &rebuilt {
        assert!(!rows.is_empty(), "{table} has rows");
        assert_eq!(restarted[table].len(), rows.len(), "{table}: same number of rows");
        for (a, b) in restarted[table].iter().zip(rows) {
            assert_eq!(a, b, "{table}: the same row after {kills} kills as in a full rebuild");
        }
    }
}

on_both!(killed_and_restarted, killed_and_restarted_converges_to_a_full_rebuild);

// --- An unreadable event is parked, the rest applied; a retry after the fix applies it -------

/// What an upgraded Wasl would do: read schema version 2 (here: the same body).
fn upgraded_decoder(
    _seq: u64,
    _subject: &str,
    _headers: Option<&async_nats::HeaderMap>,
    payload: &[u8],
) -> Result<StoredEvent, String> {
    wasl_events::decode(payload).map_err(|e| e.to_string())
}

async fn parked_then_retried(db: TestDb) {
    let (events, generator) = history(11, 120);
    // The victim: a referral with at least three events; its second event is written in a
    // schema version this Wasl cannot read.
    let mut per_referral: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        if let DomainEvent::Referral(id, _) = &e.event {
            per_referral.entry(id.to_string()).or_default().push(i);
        }
    }
    let (victim, indexes) = per_referral
        .iter()
        .filter(|(_, v)| v.len() >= 3)
        .min_by_key(|(id, _)| (*id).clone())
        .expect("a referral with three events");
    let bad = indexes[1];
    let log = Log::start().await;
    let last = log
        .append_tampered(events.iter().cloned(), |i, headers| {
            if i == bad {
                headers.insert(wasl_events::headers::WASL_SCHEMA, "2");
            }
        })
        .await;
    let models = db.open().await;
    let (task, projector) = spawn_projector(&models, &log, 50);
    models
        .wait_for(Projection::ALL, last, WAIT)
        .await
        .expect("the projector goes on past the bad event");
    task.abort();

    let parked = wasl_projections::parked::list(&models, &[Projection::Referrals])
        .await
        .expect("list");
    let victim_subject = format!("wasl.evt.referral.{victim}");
    assert_eq!(
        parked.len(),
        indexes.len() - 1,
        "the bad event and the later ones of its referral"
    );
    assert!(parked.iter().all(|p| p.subject == victim_subject));
    assert_eq!(parked[0].seq, bad as u64 + 1);
    assert!(
        parked[0].error.contains("schema"),
        "the error says why: {}",
        parked[0].error
    );
    assert!(parked[1..].iter().all(|p| p.error == wasl_projections::apply::WAITING));
    // The dashboard reads referral events too: it parked the same ones, and the metric counts
    // both.
    let dashboard = wasl_projections::parked::list(&models, &[Projection::Dashboard])
        .await
        .expect("list");
    assert_eq!(
        dashboard.iter().map(|p| p.seq).collect::<Vec<_>>(),
        parked.iter().map(|p| p.seq).collect::<Vec<_>>()
    );
    assert_eq!(
        projector.metrics().parked.load(Ordering::Relaxed),
        (parked.len() + dashboard.len()) as u64,
        "counted"
    );
    // Other projections do not read referral events and parked nothing.
    assert!(
        wasl_projections::parked::list(&models, &[Projection::Cases, Projection::Directory])
            .await
            .expect("list")
            .is_empty()
    );
    // Everything else was applied.
    let stored = all_referrals(&models).await;
    let row = &stored[victim];
    assert_eq!(row.version, 1, "the victim stays as its first event left it");
    let others_ok = generator
        .referrals()
        .iter()
        .filter(|(id, _)| id.to_string() != *victim)
        .all(|(id, r)| stored[&id.to_string()].status == r.status().expect("exists").code());
    assert!(others_ok, "every other referral is up to date");

    // A retry with the same Wasl fails again and keeps the order.
    let same = wasl_projections::parked::retry(
        &models,
        &log.stream,
        Projection::Referrals,
        wasl_projections::feed::store_decoder,
        None,
    )
    .await
    .expect("retry");
    assert_eq!((same.applied, same.still_parked), (0, parked.len() as u64));
    let again = wasl_projections::parked::list(&models, &[Projection::Referrals])
        .await
        .expect("list");
    assert_eq!(again[0].attempts, 2);

    // After the fix (an upgraded decoder), the retry applies all of them in order.
    let fixed = wasl_projections::parked::retry(&models, &log.stream, Projection::Referrals, upgraded_decoder, None)
        .await
        .expect("retry");
    assert_eq!((fixed.applied, fixed.still_parked), (parked.len() as u64, 0));
    assert!(
        wasl_projections::parked::list(&models, &[Projection::Referrals])
            .await
            .expect("list")
            .is_empty()
    );
    let row = &all_referrals(&models).await[victim];
    let domain = generator
        .referrals()
        .iter()
        .find(|(id, _)| id.to_string() == *victim)
        .expect("victim")
        .1;
    assert_eq!(row.status, domain.status().expect("exists").code());
    assert_eq!(row.version as usize, indexes.len());
}

on_both!(parked_and_retried, parked_then_retried);

// --- A rebuild beside the live tables, swapped in while the projector runs -------------------

async fn rebuild_while_live(db: TestDb) {
    let (events, generator) = history(21, 1_500);
    let half = events.len() / 2;
    let log = Log::start().await;
    let first = log.append(events[..half].iter().cloned()).await;
    let models = db.open().await;
    let (task, _) = spawn_projector(&models, &log, 200);
    models.wait_for(Projection::ALL, first, WAIT).await.expect("caught up");
    let before = count(&models, "SELECT COUNT(*) FROM referrals").await;

    // Rebuild the referrals while the rest of the log arrives and the live tables serve.
    let writer = {
        let rest: Vec<StoredEvent> = events[half..].to_vec();
        let js = log.js.clone();
        tokio::spawn(async move { crate::log::append(&js, rest, |_, _| {}).await })
    };
    let reader = {
        let models = models.clone();
        tokio::spawn(async move {
            let mut served = 0;
            for _ in 0..50 {
                let n = count(&models, "SELECT COUNT(*) FROM referrals").await;
                assert!(n >= before, "the live table never shrinks during the rebuild");
                served += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            served
        })
    };
    let mut progress = Vec::new();
    let report = wasl_projections::rebuild(
        &models,
        &log.stream,
        &[Projection::Referrals],
        100,
        wasl_projections::feed::store_decoder,
        None,
        |p| progress.push(*p),
    )
    .await
    .expect("rebuild");
    let last = writer.await.expect("writer");
    assert_eq!(
        reader.await.expect("reader"),
        50,
        "queries were answered during the rebuild"
    );
    assert!(
        !progress.is_empty() && progress.windows(2).all(|w| w[0].done <= w[1].done),
        "progress grows"
    );
    assert_eq!(report.generation, vec![(Projection::Referrals, 2)]);

    // The live projector notices the swap and carries on in the new generation.
    models
        .wait_for(Projection::ALL, last, WAIT)
        .await
        .expect("caught up after the swap");
    task.abort();
    let state = wasl_projections::live_state(&models, Projection::Referrals)
        .await
        .expect("state");
    assert_eq!((state.generation, state.checkpoint), (2, last));
    let stored = all_referrals(&models).await;
    assert_eq!(stored.len(), generator.referrals().len());
    for (id, referral) in generator.referrals() {
        assert_eq!(
            stored[&id.to_string()].status,
            referral.status().expect("exists").code()
        );
    }
    // The old generation is gone.
    let old = sqlx::query("SELECT COUNT(*) FROM referrals_g1")
        .fetch_one(models.pool())
        .await;
    assert!(old.is_err(), "generation 1 was dropped");
}

on_both!(rebuild_beside_live, rebuild_while_live);

// --- Read-your-writes --------------------------------------------------------------------------

async fn read_your_writes(db: TestDb) {
    let (events, _) = history(5, 30);
    let log = Log::start().await;
    let models = db.open().await;
    // Without a projector, waiting for a position times out and says how far it got.
    let last = log.append(events.iter().take(10).cloned()).await;
    let err = models
        .wait_for(&[Projection::Cases], last, Duration::from_millis(200))
        .await
        .expect_err("nothing projects");
    assert!(
        matches!(err, wasl_projections::ProjectionError::Timeout { reached: 0, wanted, .. } if wanted == last),
        "{err}"
    );
    // With one, a write is visible as soon as the wait returns.
    let (task, _) = spawn_projector(&models, &log, 1_000);
    let last = log.append(events.iter().skip(10).cloned()).await;
    models.wait_for(Projection::ALL, last, WAIT).await.expect("caught up");
    let last_case = events
        .iter()
        .rev()
        .find_map(|e| match &e.event {
            DomainEvent::Case(id, _) => Some(*id),
            _ => None,
        })
        .expect("a case event");
    let row = models.case(last_case).await.expect("query");
    assert!(row.is_some(), "the case written last is readable right after the wait");
    task.abort();
}

on_both!(read_your_writes_waits, read_your_writes);

// --- A new table layout: a fresh generation, filled from the start -----------------------------

async fn a_new_layout_is_rebuilt_from_the_start(db: TestDb) {
    let (events, generator) = history(31, 60);
    let log = Log::start().await;
    let last = log.append(events).await;
    let models = db.open().await;
    let (task, _) = spawn_projector(&models, &log, 500);
    models.wait_for(Projection::ALL, last, WAIT).await.expect("caught up");
    task.abort();
    let _ = task.await;
    // As if the stored tables were written by a Wasl with another layout of `cases`.
    sqlx::query("UPDATE projection_state SET schema_version = 0 WHERE name = 'cases'")
        .execute(models.pool())
        .await
        .expect("pretend an old layout");
    models.close().await;

    let models = db.open().await;
    let cases = wasl_projections::live_state(&models, Projection::Cases)
        .await
        .expect("state");
    assert_eq!(
        (cases.generation, cases.checkpoint),
        (2, 0),
        "a fresh generation from the start"
    );
    assert_eq!(count(&models, "SELECT COUNT(*) FROM cases").await, 0);
    let referrals = wasl_projections::live_state(&models, Projection::Referrals)
        .await
        .expect("state");
    assert_eq!(
        (referrals.generation, referrals.checkpoint),
        (1, last),
        "other projections are untouched"
    );
    let (task, _) = spawn_projector(&models, &log, 500);
    models
        .wait_for(Projection::ALL, last, WAIT)
        .await
        .expect("caught up again");
    task.abort();
    assert_eq!(
        count(&models, "SELECT COUNT(*) FROM cases").await as usize,
        generator.cases().len()
    );
}

on_both!(new_layout, a_new_layout_is_rebuilt_from_the_start);
