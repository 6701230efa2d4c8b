//! Partner commands over NATS request/reply against a real server and the real command
//! handler.

use crate::support::{connect, connect_with, fresh, network, open_store, server, wait_until};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use wasl_domain::ids::{OrgId, ReferralId};
use wasl_domain::referral::{Referral, ReferralStatus};
use wasl_events::partner::{command_subject, inbox_prefix};
use wasl_router::{CommandReply, CommandService, CommandServiceConfig};
use wasl_store::{EventStore, StoreConfig};

/// A partner's connection: replies come to its own inbox prefix, as its credential requires.
pub async fn partner(url: &str, org: OrgId) -> async_nats::Client {
    connect_with(
        url,
        async_nats::ConnectOptions::new().custom_inbox_prefix(inbox_prefix(org)),
    )
    .await
}

pub async fn ask(
    client: &async_nats::Client,
    org: OrgId,
    referral: ReferralId,
    verb: &str,
    body: &str,
) -> CommandReply {
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        client.request(command_subject(org, referral, verb), body.to_owned().into()),
    )
    .await
    .expect("an answer in time")
    .expect("an answer");
    serde_json::from_slice(&reply.payload).expect("a command reply")
}

pub fn code(reply: &CommandReply) -> &str {
    assert!(!reply.ok, "expected a refusal");
    &reply.error.as_ref().expect("an error").code
}

/// A command service on its own store, running in a task until [`RunningCommands::stop`].
pub struct RunningCommands {
    pub metrics: Arc<wasl_router::CommandMetrics>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), wasl_router::RouterError>>,
}

impl RunningCommands {
    pub async fn start(url: &str) -> Self {
        let service = CommandService::new(
            Arc::new(open_store(url, StoreConfig::default()).await),
            CommandServiceConfig::default(),
        );
        let metrics = service.metrics();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            service
                .run(async {
                    let _ = stopped.await;
                })
                .await
        });
        Self { metrics, stop, task }
    }

    /// Stops it; it must stop cleanly.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("no panic").expect("a clean stop");
    }
}

/// Sends `body` to `subject` until the service answers (its subscription is in place); the
/// first answer.
pub async fn first_answer(client: &async_nats::Client, subject: String, body: &'static str) -> async_nats::Message {
    for _ in 0..100 {
        if let Ok(answer) = client.request(subject.clone(), body.into()).await {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the command service never answered");
}

pub async fn version(store: &EventStore, referral: ReferralId) -> (u64, Option<ReferralStatus>) {
    let loaded = store.load::<Referral>(referral).await.expect("load");
    (loaded.version, loaded.state.status())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_commands_change_referrals_idempotently_and_only_their_own() {
    let server = server();
    let store = Arc::new(open_store(&server.url(), StoreConfig::default()).await);
    let net = network(&store).await;
    let referral = net.refer(&store).await;

    let running = RunningCommands::start(&server.url()).await;
    let metrics = running.metrics.clone();
    let provider = partner(&server.url(), net.provider()).await;
    let other = partner(&server.url(), net.others[0]).await;
    let first = first_answer(&provider, command_subject(net.provider(), referral, "nope"), "{}").await;
    let unknown_verb: CommandReply = serde_json::from_slice(&first.payload).expect("reply");
    assert_eq!(code(&unknown_verb), "bad_request");

    // receive, then accept: each changes the referral and answers version and position.
    let received = ask(
        &provider,
        net.provider(),
        referral,
        "receive",
        r#"{"command_id":"0190b2c4-0000-7000-8000-000000000001"}"#,
    )
    .await;
    assert!(received.ok, "{received:?}");
    assert_eq!(received.version, Some(2));
    let accept = r#"{"command_id":"0190b2c4-0000-7000-8000-000000000002"}"#;
    let accepted = ask(&provider, net.provider(), referral, "accept", accept).await;
    assert_eq!(accepted.version, Some(3));
    let position = store.stream().get_info().await.expect("info").state.last_sequence;
    assert_eq!(accepted.position, Some(position));
    assert_eq!(version(&store, referral).await, (3, Some(ReferralStatus::Accepted)));

    // The same command id again: the same answer, nothing stored.
    let again = ask(&provider, net.provider(), referral, "accept", accept).await;
    assert_eq!(again, accepted);
    assert_eq!(version(&store, referral).await.0, 3);
    assert_eq!(
        store.stream().get_info().await.expect("info").state.last_sequence,
        position
    );

    // A refusal of the domain keeps its code.
    let reject = ask(
        &provider,
        net.provider(),
        referral,
        "reject",
        r#"{"command_id":"0190b2c4-0000-7000-8000-000000000003","reason":{"code":"no_capacity"}}"#,
    )
    .await;
    assert_eq!(code(&reject), "invalid_transition");

    // Reasons as codes; free text is refused.
    let start = ask(
        &provider,
        net.provider(),
        referral,
        "start",
        r#"{"command_id":"0190b2c4-0000-7000-8000-000000000004"}"#,
    )
    .await;
    assert_eq!(start.version, Some(4));
    let text = ask(
        &provider,
        net.provider(),
        referral,
        "hold",
        r#"{"command_id":"0190b2c4-0000-7000-8000-000000000005","reason":{"code":"other","text":"MRK-free-text"}}"#,
    )
    .await;
    assert_eq!(code(&text), "bad_request");
    let hold = ask(
        &provider,
        net.provider(),
        referral,
        "hold",
        r#"{"command_id":"0190b2c4-0000-7000-8000-000000000006","reason":{"code":"awaiting_capacity"}}"#,
    )
    .await;
    assert_eq!(hold.version, Some(5));
    let other_code = ask(
        &provider,
        net.provider(),
        referral,
        "resume",
        r#"{"command_id":"0190b2c4-0000-7000-8000-000000000006"}"#,
    )
    .await;
    assert!(
        other_code.ok,
        "the same command id under another verb is another command"
    );
    assert_eq!(version(&store, referral).await, (6, Some(ReferralStatus::InProgress)));

    // Another organisation: as if the referral did not exist.
    let foreign = ask(
        &other,
        net.others[0],
        referral,
        "complete",
        r#"{"command_id":"0190b2c4-0000-7000-8000-000000000007"}"#,
    )
    .await;
    assert_eq!(code(&foreign), "not_found");
    let missing: ReferralId = fresh();
    let absent = ask(
        &provider,
        net.provider(),
        missing,
        "accept",
        r#"{"command_id":"0190b2c4-0000-7000-8000-000000000008"}"#,
    )
    .await;
    assert_eq!(code(&absent), "not_found");

    // Bad bodies.
    for body in [
        "not json",
        "{}",
        r#"{"command_id":"0190b2c4-0000-7000-8000-000000000009","extra":true}"#,
        r#"{"command_id":"not-a-uuid"}"#,
    ] {
        let bad = ask(&provider, net.provider(), referral, "complete", body).await;
        assert_eq!(code(&bad), "bad_request");
    }
    assert_eq!(version(&store, referral).await.0, 6);

    // A message whose reply subject lies outside the organisation's inbox is not executed and
    // not answered (e.g. a JetStream push consumer delivering onto a command subject).
    let plain = connect(&server.url()).await;
    let mut elsewhere = plain.subscribe("_INBOX.elsewhere.>").await.expect("subscribe");
    plain.flush().await.expect("flush");
    let refused_before = metrics.refused.load(Ordering::Relaxed);
    plain
        .publish_with_reply(
            command_subject(net.provider(), referral, "complete"),
            "_INBOX.elsewhere.1",
            r#"{"command_id":"0190b2c4-0000-7000-8000-00000000000a"}"#.into(),
        )
        .await
        .expect("publish");
    plain
        .publish(
            command_subject(net.provider(), referral, "complete"),
            r#"{"command_id":"0190b2c4-0000-7000-8000-00000000000b"}"#.into(),
        )
        .await
        .expect("publish");
    plain.flush().await.expect("flush");
    wait_until("both messages are refused", || {
        metrics.refused.load(Ordering::Relaxed) >= refused_before + 2
    })
    .await;
    assert_eq!(version(&store, referral).await, (6, Some(ReferralStatus::InProgress)));
    let answer = tokio::time::timeout(
        Duration::from_millis(300),
        futures_util::StreamExt::next(&mut elsewhere),
    )
    .await;
    assert!(answer.is_err(), "no answer goes outside the organisation's inbox");

    running.stop().await;
}
