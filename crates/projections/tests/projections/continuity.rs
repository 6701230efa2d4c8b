//! The read models against a log they cannot trust, on SQLite and PostgreSQL: a log that went
//! backwards under them stops the projector — with the reason where `/readyz` reads it — until
//! the read models are rebuilt from it; a message an operator skipped is passed over.

use crate::log::Log;
use crate::support::{Open, TestDb};
use std::time::Duration;
use wasl_events::{DomainEvent, StoredEvent};
use wasl_projections::{Projection, Projector, ProjectorConfig, ReadModels};
use wasl_store::skips::{Skip, Skips};
use wasl_store::testing::Poison;
use wasl_synth::{Generator, HistoryConfig};
use wasl_testkit::on_both;

const WAIT: Duration = Duration::from_secs(120);

fn history(seed: u64, referrals: usize) -> Vec<StoredEvent> {
    Generator::new(HistoryConfig::new(seed, referrals)).collect()
}

fn spawn(models: &ReadModels, log: &Log) -> tokio::task::JoinHandle<()> {
    let projector = Projector::new(
        models.clone(),
        log.stream.clone(),
        Projection::ALL,
        ProjectorConfig {
            batch_size: 50,
            retry_delay: Duration::from_millis(50),
            check_interval: Duration::from_millis(100),
            skips: Some(Skips::new(log.js.clone())),
            ..ProjectorConfig::default()
        },
    );
    tokio::spawn(async move {
        projector
            .run(std::future::pending())
            .await
            .expect("the projector never stops on data");
    })
}

async fn rows(models: &ReadModels, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(models.pool())
        .await
        .expect("count")
}

/// Waits until every projection is stopped with a reason that contains `expected` (the log may
/// be seen while it is being replaced, and the reason follows what the log is now).
async fn halted(models: &ReadModels, expected: &str) -> String {
    let began = std::time::Instant::now();
    loop {
        let standings = wasl_projections::standings(models, Projection::ALL)
            .await
            .expect("standings");
        if standings
            .iter()
            .all(|s| s.halted.as_deref().is_some_and(|why| why.contains(expected)))
        {
            return standings[0].halted.clone().expect("a reason");
        }
        assert!(began.elapsed() < WAIT, "the projector did not stop: {standings:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Deletes the event log and starts a new one holding `events` (a wiped store, a restored
/// backup); returns its last sequence.
async fn replace_log(log: &Log, events: &[StoredEvent]) -> u64 {
    log.js.delete_stream("WASL_EVENTS").await.expect("delete the log");
    wasl_store::provision::ensure_stream(&log.js, &wasl_store::StoreConfig::default())
        .await
        .expect("a new log");
    crate::log::append(&log.js, events.iter().cloned(), |_, _| {}).await
}

async fn a_shorter_log_stops_the_projector_until_rebuilt(db: TestDb) {
    let events = history(21, 60);
    let log = Log::start().await;
    let last = log.append(events.iter().cloned()).await;
    let models = db.open().await;
    let task = spawn(&models, &log);
    models.wait_for(Projection::ALL, last, WAIT).await.expect("caught up");
    assert!(models.ready(last, 10_000).await.is_ok());
    let referrals = rows(&models, "referrals").await;

    // An older backup is restored under the live read models: the log holds a prefix.
    let older = events.len() / 2;
    let shorter = replace_log(&log, &events[..older]).await;
    assert!(shorter < last);
    let reason = halted(&models, &format!("ends at sequence {shorter}")).await;
    assert!(
        reason.contains(&format!("but sequence {last} had already been read")),
        "{reason}"
    );
    let not_ready = models.ready(shorter, 10_000).await.expect_err("not ready");
    assert!(not_ready.contains("stopped"), "{not_ready}");

    // New events in the shorter log are not applied under the old checkpoint.
    let more = history(22, 5);
    let grown = crate::log::append(&log.js, more.iter().cloned(), |_, _| {}).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        rows(&models, "referrals").await,
        referrals,
        "nothing applied while stopped"
    );
    let standings = wasl_projections::standings(&models, Projection::ALL)
        .await
        .expect("standings");
    assert!(standings.iter().all(|s| s.checkpoint == last && s.halted.is_some()));

    // The operator accepts the log as it is: a rebuild swaps in tables built from it, and the
    // running projector goes on by itself.
    let report = wasl_projections::rebuild(
        &models,
        &log.stream,
        Projection::ALL,
        100,
        wasl_projections::feed::store_decoder,
        None,
        |_| {},
    )
    .await
    .expect("rebuild");
    assert_eq!(report.checkpoint, grown);
    let began = std::time::Instant::now();
    while models.ready(grown, 0).await.is_err() {
        assert!(began.elapsed() < WAIT, "{:?}", models.ready(grown, 0).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let standings = wasl_projections::standings(&models, Projection::ALL)
        .await
        .expect("standings");
    assert!(standings.iter().all(|s| s.halted.is_none() && s.checkpoint == grown));
    let expected = events[..older]
        .iter()
        .chain(&more)
        .filter(|e| {
            matches!(
                e.event,
                DomainEvent::Referral(_, wasl_domain::referral::ReferralEvent::Requested(_))
            )
        })
        .count() as i64;
    assert_eq!(
        rows(&models, "referrals").await,
        expected,
        "the tables say what the log says"
    );
    task.abort();
}

on_both!(a_shorter_log, a_shorter_log_stops_the_projector_until_rebuilt);

async fn another_log_of_the_same_length_is_recognised(db: TestDb) {
    let events = history(23, 20);
    let log = Log::start().await;
    let last = log.append(events.iter().cloned()).await;
    let models = db.open().await;
    let task = spawn(&models, &log);
    models.wait_for(Projection::ALL, last, WAIT).await.expect("caught up");

    // Another network's log, at least as long: every sequence exists, the events are others.
    let other = history(24, 40);
    let other_last = replace_log(&log, &other).await;
    assert!(other_last >= last);
    halted(&models, "is not the event that was read there").await;
    assert!(models.ready(other_last, 10_000).await.is_err());
    task.abort();
}

on_both!(another_log, another_log_of_the_same_length_is_recognised);

async fn a_skipped_message_is_passed_over_and_releases_what_waited_behind_it(db: TestDb) {
    let events = history(25, 10);
    let log = Log::start().await;
    // The first case gets poison in its history, then its later events.
    let case_subject = events
        .iter()
        .find(|e| matches!(e.event, DomainEvent::Case(..)))
        .expect("a case event")
        .event
        .subject();
    let first_case_events: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.event.subject() == case_subject)
        .map(|(i, _)| i)
        .collect();
    assert!(first_case_events.len() >= 2, "the case has later events");
    let split = first_case_events[0] + 1;
    log.append(events[..split].iter().cloned()).await;
    let poison = Poison::GarbageWithHeaders.publish(&log.client, &case_subject).await;
    let last = log.append(events[split..].iter().cloned()).await;

    let models = db.open().await;
    let task = spawn(&models, &log);
    models.wait_for(Projection::ALL, last, WAIT).await.expect("caught up");
    task.abort();
    let parked = wasl_projections::parked::list(&models, &[Projection::Cases])
        .await
        .expect("list");
    assert_eq!(parked[0].seq, poison);
    assert_eq!(
        parked.len(),
        first_case_events.len(),
        "the poison and what waits behind it"
    );

    // The operator skips it in the log: a retry passes over it and applies the rest in order.
    let skips = Skips::new(log.js.clone());
    skips
        .record(
            &Skip {
                sequence: poison,
                subject: case_subject.clone(),
                error: parked[0].error.clone(),
                reason: "test: stray bytes from a broken tool".to_owned(),
                by: "test.operator".to_owned(),
                skipped_at: "2026-12-07T00:00:00.000Z".to_owned(),
            },
            1,
        )
        .await
        .expect("skip");
    let report = wasl_projections::parked::retry(
        &models,
        &log.stream,
        Projection::Cases,
        wasl_projections::feed::store_decoder,
        Some(&skips),
    )
    .await
    .expect("retry");
    assert_eq!((report.applied, report.still_parked), (parked.len() as u64, 0));
    let after_retry = crate::support::dump(&models, "cases", "id").await;

    // A rebuild with the skip gives the same tables and parks nothing.
    let report = wasl_projections::rebuild(
        &models,
        &log.stream,
        &[Projection::Cases],
        100,
        wasl_projections::feed::store_decoder,
        Some(&skips),
        |_| {},
    )
    .await
    .expect("rebuild");
    assert_eq!(report.parked, 0);
    assert_eq!(crate::support::dump(&models, "cases", "id").await, after_retry);
}

on_both!(
    a_skipped_message,
    a_skipped_message_is_passed_over_and_releases_what_waited_behind_it
);
