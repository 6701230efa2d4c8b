//! No personal field ever reaches a partner feed: markers planted in every personal field of
//! the case and the referrals are searched for in the raw bytes (subject, headers, payload) of
//! every message of every feed.

use crate::support::{
    Running, SURVIVOR_CODE, connect, feed, last_sequence, network, open_store, router_config, sealed, server,
};
use async_nats::jetstream;
use futures_util::TryStreamExt;
use wasl_domain::catalogue::{CancelCode, Decline, DeclineCode, ErrorCode, FailCode, HoldCode, Reason};
use wasl_domain::referral::{FollowUp, ReferralCommand, ServiceReceived};
use wasl_router::PartnerMessage;
use wasl_store::StoreConfig;

const MARKERS: &[&str] = &[
    "MRK-NAME",
    "MRK-PHONE",
    "MRK-ADDRESS",
    "MRK-CASENOTES",
    "MRK-REFNOTES",
    "MRK-REJECT",
    "MRK-HOLD",
    "MRK-FAIL",
    "MRK-CANCEL",
    "MRK-FOLLOWUP",
    "MRK-ERROR",
    "Zzyzx",
    SURVIVOR_CODE,
    // The key id of the sealed values: nothing sealed is copied, not even its envelope.
    "case-test-key-1",
];

fn reason<C>(code: C, marker: &str) -> Reason<C> {
    Reason {
        code,
        text: Some(sealed(marker)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_personal_field_appears_in_any_partner_message() {
    let server = server();
    let store = open_store(&server.url(), StoreConfig::default()).await;
    let net = network(&store).await;

    // Every lifecycle path that carries a sealed text.
    let served = net.refer(&store).await;
    for command in [
        ReferralCommand::Receive,
        ReferralCommand::Accept,
        ReferralCommand::Start,
        ReferralCommand::Hold(reason(HoldCode::Other, "MRK-HOLD-text-of-a-hold")),
        ReferralCommand::Resume,
        ReferralCommand::Complete,
    ] {
        net.act(&store, served, command).await;
    }
    let follow_up = FollowUp {
        client_reached: true,
        service_received: ServiceReceived::Yes,
        satisfaction: None,
        note: Some(sealed("MRK-FOLLOWUP-note-of-a-follow-up")),
    };
    net.refer_side(&store, served, ReferralCommand::RecordFollowUp(follow_up))
        .await;

    let declined = net.refer(&store).await;
    let decline = Decline {
        reason: reason(DeclineCode::Other, "MRK-REJECT-text-of-a-decline"),
        suggested_org: None,
    };
    net.act(&store, declined, ReferralCommand::Reject(decline)).await;

    let failed = net.refer(&store).await;
    net.act(&store, failed, ReferralCommand::Accept).await;
    net.act(
        &store,
        failed,
        ReferralCommand::Fail(reason(FailCode::Other, "MRK-FAIL-text-of-a-failure")),
    )
    .await;

    let cancelled = net.refer(&store).await;
    net.refer_side(
        &store,
        cancelled,
        ReferralCommand::Cancel(reason(CancelCode::Other, "MRK-CANCEL-text-of-a-cancel")),
    )
    .await;

    let withdrawn = net.refer(&store).await;
    net.refer_side(
        &store,
        withdrawn,
        ReferralCommand::Cancel(Reason::coded(CancelCode::ConsentWithdrawn)),
    )
    .await;

    let erroneous = net.refer(&store).await;
    store
        .execute::<wasl_domain::referral::Referral>(
            erroneous,
            &ReferralCommand::MarkEnteredInError(reason(ErrorCode::Other, "MRK-ERROR-text-of-an-error")),
            &crate::support::meta(net.supervisor()),
        )
        .await
        .expect("entered in error");

    let running = Running::start(&server.url(), router_config()).await;
    running.wait_for(last_sequence(&store).await).await;
    running.stop().await.expect("a clean stop");

    let js = jetstream::new(connect(&server.url()).await);
    let names: Vec<String> = js.stream_names().try_collect().await.expect("stream names");
    let feeds: Vec<&String> = names.iter().filter(|n| n.starts_with("WASL_OUT_")).collect();
    assert_eq!(feeds.len(), 3, "one feed per registered organisation");
    let provider_feed = feed(&js, net.provider()).await;
    assert_eq!(provider_feed.len(), 19, "every referral event reached the provider");
    // Redaction: a withdrawn consent and an entry in error tell the partner to delete what it
    // holds; an ordinary cancel does not.
    for message in &provider_feed {
        let body: PartnerMessage = serde_json::from_slice(&message.payload).expect("the documented schema");
        let must_redact = (body.referral_id == withdrawn.to_string() && body.status == "cancelled")
            || (body.referral_id == erroneous.to_string() && body.status == "entered_in_error");
        assert_eq!(
            body.redact, must_redact,
            "redact of {} in {}",
            body.event_type, body.status
        );
    }
    let mut searched = 0;
    for org in [net.referring, net.provider(), net.others[0]] {
        for message in feed(&js, org).await {
            let raw = crate::support::raw_bytes(&message);
            let lower = String::from_utf8_lossy(&raw).to_lowercase();
            for marker in MARKERS {
                assert!(
                    !raw.windows(marker.len()).any(|w| w == marker.as_bytes())
                        && !lower.contains(&marker.to_lowercase()),
                    "a personal marker reached a partner feed"
                );
            }
            assert!(
                !lower.contains(&net.case.to_string()),
                "the case id never reaches a partner"
            );
            let body: PartnerMessage = serde_json::from_slice(&message.payload).expect("the documented schema");
            assert_eq!(body.client.sex, "female");
            searched += 1;
        }
    }
    assert_eq!(searched, 19);
}
