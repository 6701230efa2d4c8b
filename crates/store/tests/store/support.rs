//! The shared synthetic network (`wasl_synth::network`) on a fresh nats-server drives referrals
//! through the real command handler; the fixtures are `wasl_domain::testing`'s and
//! `wasl_store::testing`'s. Here only what the store's own tests add: reading the log back.

use std::time::Duration;
use wasl_store::EventStore;

pub use wasl_domain::testing::fresh;
pub use wasl_store::testing::{connect, last_sequence, meta, open_store};
pub use wasl_synth::network::Network;

/// Every event on the stream, in order, read through a subscription.
pub async fn all_events(store: &EventStore) -> Vec<wasl_store::load::Recorded> {
    use futures_util::StreamExt;
    let last = last_sequence(store).await;
    let mut feed = wasl_store::subscribe::subscribe(store.stream(), 1, None)
        .await
        .expect("subscribe");
    let mut out = Vec::new();
    while out
        .last()
        .is_none_or(|r: &wasl_store::load::Recorded| r.sequence < last)
    {
        let next = tokio::time::timeout(Duration::from_secs(10), feed.next())
            .await
            .expect("the feed keeps up");
        out.push(next.expect("the feed does not end").expect("a readable event"));
    }
    out
}
