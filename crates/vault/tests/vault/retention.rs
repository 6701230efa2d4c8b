//! Retention: closed cases past the period are listed (dry run) and erased through the same
//! command; open, reopened and already erased cases are not.

use crate::support::*;
use std::time::Duration;
use wasl_domain::Role;
use wasl_domain::case::{Case, CaseCommand, CloseCase};
use wasl_domain::catalogue::{CloseCode, EraseCode, Reason};
use wasl_domain::ids::CaseId;
use wasl_vault::erase::{due_for_erasure, erase_case};
use wasl_vault::{KeyState, Revealed};

const TWO_YEARS: Duration = Duration::from_secs(730 * 24 * 3600);

async fn close(w: &World, case: CaseId, hours: i64) {
    let close = CaseCommand::Close(CloseCase {
        reason: Reason::coded(CloseCode::NeedsMet),
        open_referrals: vec![],
        cancel_open_referrals: false,
    });
    w.store
        .execute::<Case>(case, &close, &w.meta(Role::Caseworker, hours))
        .await
        .expect("closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cases_closed_longer_than_the_retention_period_are_listed_then_erased() {
    let w = World::start().await;
    let old = w.open_case("MARKER-OLD", "MARKER-P1", "MARKER-N1").await;
    let recent = w.open_case("MARKER-RECENT", "MARKER-P2", "MARKER-N2").await;
    let reopened = w.open_case("MARKER-REOPENED", "MARKER-P3", "MARKER-N3").await;
    let still_open = w.open_case("MARKER-OPEN", "MARKER-P4", "MARKER-N4").await;
    close(&w, old, 10).await;
    close(&w, recent, 24 * 700).await;
    close(&w, reopened, 10).await;
    let reopen = CaseCommand::Reopen { reason: None };
    w.store
        .execute::<Case>(reopened, &reopen, &w.meta(Role::Caseworker, 20))
        .await
        .expect("reopened");

    let now = T0.plus_hours(24 * 731);
    let scan = due_for_erasure(&w.store, TWO_YEARS, now).await.expect("dry run");
    assert!(scan.unreadable.is_empty());
    let due = scan.due;
    assert_eq!(
        due.iter().map(|d| d.case).collect::<Vec<_>>(),
        vec![old],
        "only the case closed two years ago"
    );
    assert_eq!(due[0].closed_at, T0.plus_hours(10));

    for d in &due {
        let reason = Reason::coded(EraseCode::RetentionExpired);
        erase_case(&w.store, &w.vault, d.case, reason, &w.meta(Role::System, 24 * 731))
            .await
            .expect("erased");
    }
    assert!(matches!(w.vault.key(old).await.expect("state"), KeyState::Erased));
    for kept in [recent, reopened, still_open] {
        assert!(matches!(w.vault.key(kept).await.expect("state"), KeyState::Active(_)));
    }
    let (event, field, value) = w.sealed_values(old).await.remove(0);
    assert_eq!(
        w.vault.open(old, event, field, &value).await.expect("read"),
        Revealed::Erased
    );
    assert!(
        due_for_erasure(&w.store, TWO_YEARS, now)
            .await
            .expect("again")
            .due
            .is_empty(),
        "nothing left to erase"
    );
    // The case itself and its non-identifying facts stay, so counts do not change.
    let state = w.store.load::<Case>(old).await.expect("load").state;
    let state = state.state().expect("the case still exists");
    assert!(state.personal_data_erased);
}
