//! Retention on a schedule: daily, a dry run unless the service holds the vault.

use crate::support::*;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use wasl_domain::case::CaseEvent;
use wasl_events::DomainEvent;
use wasl_followup::{FollowupConfig, RetentionSchedule};
use wasl_testkit::on_both;

const DAY: Duration = Duration::from_secs(24 * 3_600);
const MASTER_HEX: &str = "1111111111111111111111111111111111111111111111111111111111111111";

async fn erasures(world: &World, case: wasl_domain::ids::CaseId) -> usize {
    world
        .store
        .read_history(&format!("wasl.evt.case.{case}"), 1)
        .await
        .expect("history")
        .iter()
        .filter(|r| {
            matches!(
                r.event.event,
                DomainEvent::Case(_, CaseEvent::PersonalDataErased { .. })
            )
        })
        .count()
}

async fn wait_runs(running: &Running, runs: u64) {
    let metrics = running.service.metrics();
    eventually("the retention run", || {
        let done = metrics.retention_runs.load(Ordering::Relaxed) >= runs;
        async move { done }
    })
    .await;
}

async fn retention_runs_daily_and_erases_what_is_due(db: wasl_testkit::db::TestDb) {
    let world = World::start(db).await;
    let net = world.network().await;
    net.close_case(&world.store, net.case, vec![]).await;
    let js = async_nats::jetstream::new(world.store.client().clone());
    let master = wasl_vault::LocalMasterKey::from_hex("local-1", MASTER_HEX).expect("key");
    let vault = wasl_vault::Vault::connect(&js, master, &wasl_vault::VaultConfig::default())
        .await
        .expect("vault");
    let schedule = RetentionSchedule {
        period: DAY,
        every: DAY,
        apply: Some(Arc::new(vault)),
    };
    let running = world
        .followup(FollowupConfig {
            retention: Some(schedule),
            ..FollowupConfig::default()
        })
        .await;
    // At start: the case closed today is not due.
    wait_runs(&running, 1).await;
    assert_eq!(erasures(&world, net.case).await, 0);
    // A day later the second run erases it, once.
    world.clock.advance(DAY);
    wait_runs(&running, 2).await;
    assert_eq!(erasures(&world, net.case).await, 1);
    world.clock.advance(DAY);
    wait_runs(&running, 3).await;
    assert_eq!(erasures(&world, net.case).await, 1, "erased once");
    assert_eq!(running.service.metrics().erased.load(Ordering::Relaxed), 1);
    running.stop().await;
}

on_both!(retention_daily, retention_runs_daily_and_erases_what_is_due);

async fn without_the_vault_retention_only_reports(db: wasl_testkit::db::TestDb) {
    let world = World::start(db).await;
    let net = world.network().await;
    net.close_case(&world.store, net.case, vec![]).await;
    let running = world
        .followup(FollowupConfig {
            retention: Some(RetentionSchedule {
                period: DAY,
                every: DAY,
                apply: None,
            }),
            ..FollowupConfig::default()
        })
        .await;
    wait_runs(&running, 1).await;
    world.clock.advance(2 * DAY);
    wait_runs(&running, 2).await;
    assert_eq!(erasures(&world, net.case).await, 0, "a dry run erases nothing");
    running.stop().await;
}

on_both!(retention_dry_run, without_the_vault_retention_only_reports);
