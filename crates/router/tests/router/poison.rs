//! Whatever anyone allowed to publish on a command subject sends: answered `bad_request` where an
//! answer may go, refused unanswered where none may, counted, and the service goes on serving.

use crate::commands::{RunningCommands, ask, code, first_answer, partner, version};
use crate::support::{connect, network, open_store, server, wait_until};
use async_nats::HeaderMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use wasl_domain::referral::ReferralStatus;
use wasl_events::partner::command_subject;
use wasl_router::CommandReply;
use wasl_router::commands::MAX_BODY;
use wasl_store::StoreConfig;

async fn request(client: &async_nats::Client, subject: String, headers: HeaderMap, body: Vec<u8>) -> CommandReply {
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        client.request_with_headers(subject, headers, body.into()),
    )
    .await
    .expect("an answer in time")
    .expect("an answer");
    serde_json::from_slice(&reply.payload).expect("a command reply")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_requests_are_answered_bad_request_and_the_service_keeps_serving() {
    let server = server();
    let store = Arc::new(open_store(&server.url(), StoreConfig::default()).await);
    let net = network(&store).await;
    let referral = net.refer(&store).await;
    let running = RunningCommands::start(&server.url()).await;
    let metrics = running.metrics.clone();
    let provider = partner(&server.url(), net.provider()).await;
    first_answer(&provider, command_subject(net.provider(), referral, "accept"), "x").await;
    let bad_before = metrics.bad_requests.load(Ordering::Relaxed);

    let received = ask(
        &provider,
        net.provider(),
        referral,
        "receive",
        r#"{"command_id":"0190b2c4-0000-7000-8000-0000000000a1"}"#,
    )
    .await;
    assert_eq!(received.version, Some(2), "{received:?}");

    let on = |verb: &str| command_subject(net.provider(), referral, verb);
    let org_prefix = format!("wasl.cmd.{}", net.provider());
    let huge = vec![b'{'; MAX_BODY * 8];
    let poison: Vec<(String, Vec<u8>)> = vec![
        (on("accept"), b"\xff\xfe\x00garbage".to_vec()),
        (on("accept"), b"[1,2,3]".to_vec()),
        (on("accept"), br#""a JSON string""#.to_vec()),
        (on("accept"), br#"{"command_id":5}"#.to_vec()),
        // Another verb's body.
        (
            on("accept"),
            br#"{"command_id":"0190b2c4-0000-7000-8000-0000000000a2","reason":{"code":"awaiting_capacity"}}"#.to_vec(),
        ),
        (on("accept"), huge),
        (
            on("approve"),
            br#"{"command_id":"0190b2c4-0000-7000-8000-0000000000a3"}"#.to_vec(),
        ),
        (
            format!("{org_prefix}.referral.not-a-referral-id.accept"),
            br#"{"command_id":"0190b2c4-0000-7000-8000-0000000000a4"}"#.to_vec(),
        ),
        (format!("{org_prefix}.referral.{referral}"), b"{}".to_vec()),
        (format!("{org_prefix}.referral.{referral}.accept.more"), b"{}".to_vec()),
        (format!("{org_prefix}.case.{referral}.accept"), b"{}".to_vec()),
    ];
    for (subject, body) in &poison {
        let reply = request(&provider, subject.clone(), HeaderMap::new(), body.clone()).await;
        assert_eq!(code(&reply), "bad_request", "{subject}");
        let message = &reply.error.as_ref().expect("an error").message;
        assert!(message.len() < 400, "a short answer, however big the request");
    }
    assert_eq!(
        metrics.bad_requests.load(Ordering::Relaxed),
        bad_before + poison.len() as u64
    );
    assert_eq!(version(&store, referral).await, (2, Some(ReferralStatus::Received)));

    // Not answered where no answer may go: no reply subject, a reply outside the inbox, a
    // subject without an organisation.
    let stranger = connect(&server.url()).await;
    let refused_before = metrics.refused.load(Ordering::Relaxed);
    stranger.publish(on("accept"), "garbage".into()).await.expect("publish");
    stranger
        .publish_with_reply(on("accept"), "_INBOX.elsewhere.1", "garbage".into())
        .await
        .expect("publish");
    stranger
        .publish_with_reply(
            "wasl.cmd.not-an-org.referral.x.accept",
            "_INBOX.elsewhere.2",
            "garbage".into(),
        )
        .await
        .expect("publish");
    stranger.flush().await.expect("flush");
    wait_until("the three are refused", || {
        metrics.refused.load(Ordering::Relaxed) >= refused_before + 3
    })
    .await;

    // A malformed trace context is not carried into the log.
    let mut headers = HeaderMap::new();
    headers.insert("traceparent", "00-not-a-trace-context-01");
    let accepted = request(
        &provider,
        on("accept"),
        headers,
        br#"{"command_id":"0190b2c4-0000-7000-8000-0000000000a5"}"#.to_vec(),
    )
    .await;
    assert_eq!(accepted.version, Some(3), "{accepted:?}");
    let stored = store
        .stream()
        .get_raw_message(accepted.position.expect("a position"))
        .await
        .expect("the event");
    assert!(
        stored
            .headers
            .get("traceparent")
            .is_none_or(|v| wasl_telemetry::context::parse(v.as_str()).is_some()),
        "only a well-formed traceparent is stored"
    );

    // And the service goes on.
    let started = ask(
        &provider,
        net.provider(),
        referral,
        "start",
        r#"{"command_id":"0190b2c4-0000-7000-8000-0000000000a6"}"#,
    )
    .await;
    assert_eq!(started.version, Some(4), "{started:?}");
    assert_eq!(version(&store, referral).await, (4, Some(ReferralStatus::InProgress)));

    running.stop().await;
}
