//! The hub's own users: each can do its work and is refused what it does not need, shown by a
//! refused attempt against a real nats-server (docs/nats-security.md, "The hub's users").

use async_nats::jetstream::stream;
use wasl_nats_config::HubUser;
use wasl_nats_config::services::{ACCOUNTS_STREAM, AUDIT_STREAM, EVENTS_STREAM, KEYS_BUCKET, SESSIONS_BUCKET};

use crate::support::*;

/// The hub's streams, made by the operator as the services would on first start.
async fn hub_streams(net: &Net) {
    for (name, subjects) in [
        (EVENTS_STREAM, "wasl.evt.>"),
        (AUDIT_STREAM, "wasl.audit.>"),
        (ACCOUNTS_STREAM, "wasl.acct.>"),
    ] {
        net.hub_js
            .create_stream(stream::Config {
                name: name.into(),
                subjects: vec![subjects.into()],
                allow_direct: true,
                ..Default::default()
            })
            .await
            .expect("hub stream");
    }
    let keys = net
        .hub_js
        .create_key_value(async_nats::jetstream::kv::Config {
            bucket: KEYS_BUCKET.into(),
            history: 1,
            ..Default::default()
        })
        .await
        .expect("keys bucket");
    keys.put("case.x", "wrapped-key".into()).await.expect("a key");
    net.hub_js
        .publish("wasl.audit.x", "record".into())
        .await
        .expect("publish")
        .await
        .expect("ack");
}

async fn messages(net: &Net, name: &str) -> u64 {
    let mut stream = net.hub_js.get_stream(name).await.expect("stream still there");
    stream.info().await.expect("info").state.messages
}

/// A JetStream publish that the server must refuse: no acknowledgement, a violation.
async fn denied_publish(user: &mut Partner, subject: &str) {
    let ack = user.js.publish(subject.to_owned(), "forged".into()).await;
    let acked = match ack {
        Ok(ack) => ack.await.is_ok(),
        Err(_) => false,
    };
    assert!(!acked, "{subject} was stored");
    user.expect_violation(subject).await;
}

#[tokio::test]
async fn nobody_deletes_or_purges_the_log_the_audit_or_the_keys_not_even_the_operator() {
    let net = Net::start().await;
    hub_streams(&net).await;
    for hub_user in HubUser::ALL {
        let mut user = net.hub_user(hub_user).await;
        for stream in [EVENTS_STREAM, AUDIT_STREAM, "KV_WASL_KEYS"] {
            user.denied_request(&format!("$JS.API.STREAM.DELETE.{stream}"), "")
                .await;
            user.denied_request(&format!("$JS.API.STREAM.PURGE.{stream}"), "{}")
                .await;
            user.denied_request(&format!("$JS.API.STREAM.MSG.DELETE.{stream}"), r#"{"seq":1}"#)
                .await;
        }
    }
    assert_eq!(messages(&net, AUDIT_STREAM).await, 1);
    assert_eq!(messages(&net, "KV_WASL_KEYS").await, 1);
    // The control: the operator may still remove a stream of its own making.
    let operator = net.hub_user(HubUser::Operator).await;
    operator
        .js
        .create_stream(stream::Config {
            name: "SCRATCH".into(),
            subjects: vec!["scratch.>".into()],
            ..Default::default()
        })
        .await
        .expect("create");
    operator
        .js
        .delete_stream("SCRATCH")
        .await
        .expect("the operator deletes its own stream");
}

#[tokio::test]
async fn only_the_api_and_the_store_append_to_the_log() {
    let net = Net::start().await;
    hub_streams(&net).await;
    for appender in [HubUser::Api, HubUser::Store] {
        let user = net.hub_user(appender).await;
        user.js
            .publish("wasl.evt.referral.x", "event".into())
            .await
            .expect("publish")
            .await
            .expect("stored");
    }
    for forger in [HubUser::Router, HubUser::Projector] {
        let mut user = net.hub_user(forger).await;
        denied_publish(&mut user, "wasl.evt.referral.x").await;
    }
    assert_eq!(messages(&net, EVENTS_STREAM).await, 2);
}

#[tokio::test]
async fn only_the_api_writes_the_audit() {
    let net = Net::start().await;
    hub_streams(&net).await;
    let api = net.hub_user(HubUser::Api).await;
    api.js
        .publish("wasl.audit.y", "record".into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    for other in [HubUser::Store, HubUser::Router, HubUser::Projector] {
        let mut user = net.hub_user(other).await;
        denied_publish(&mut user, "wasl.audit.z").await;
    }
    assert_eq!(messages(&net, AUDIT_STREAM).await, 2);
}

#[tokio::test]
async fn the_router_and_the_projector_cannot_read_the_data_keys() {
    let net = Net::start().await;
    hub_streams(&net).await;
    for reader in [HubUser::Router, HubUser::Projector] {
        let mut user = net.hub_user(reader).await;
        user.denied_request("$JS.API.DIRECT.GET.KV_WASL_KEYS.$KV.WASL_KEYS.case.x", "")
            .await;
        user.denied_request("$JS.API.STREAM.MSG.GET.KV_WASL_KEYS", r#"{"seq":1}"#)
            .await;
        user.denied_request("$JS.API.CONSUMER.CREATE.KV_WASL_KEYS", "{}").await;
        user.denied_subscription("$KV.WASL_KEYS.>").await;
        denied_publish(&mut user, "$KV.WASL_KEYS.case.x").await;
    }
    // The control: the API (the vault) reads them.
    let api = net.hub_user(HubUser::Api).await;
    let keys = api.js.get_key_value(KEYS_BUCKET).await.expect("bucket");
    assert!(keys.get("case.x").await.expect("get").is_some());
}

#[tokio::test]
async fn the_store_user_cannot_read_the_accounts_or_the_audit() {
    let net = Net::start().await;
    hub_streams(&net).await;
    let mut store = net.hub_user(HubUser::Store).await;
    for stream in [ACCOUNTS_STREAM, AUDIT_STREAM] {
        store
            .denied_request(&format!("$JS.API.CONSUMER.CREATE.{stream}"), "{}")
            .await;
        store
            .denied_request(&format!("$JS.API.STREAM.MSG.GET.{stream}"), r#"{"seq":1}"#)
            .await;
    }
    store.denied_subscription("wasl.acct.>").await;
}

#[tokio::test]
async fn the_projector_reads_the_log_and_nothing_else() {
    let net = Net::start().await;
    hub_streams(&net).await;
    net.hub_js
        .publish("wasl.evt.referral.y", "event".into())
        .await
        .expect("publish")
        .await
        .expect("ack");
    let mut projector = net.hub_user(HubUser::Projector).await;
    let log = projector.js.get_stream(EVENTS_STREAM).await.expect("the log");
    assert_eq!(
        log.direct_get(1).await.expect("read an event").payload.as_ref(),
        b"event"
    );
    projector
        .denied_request(&format!("$JS.API.STREAM.INFO.{AUDIT_STREAM}"), "")
        .await;
    projector
        .denied_request(&format!("$JS.API.STREAM.INFO.{ACCOUNTS_STREAM}"), "")
        .await;
    projector
        .denied_request(
            "$JS.API.STREAM.CREATE.COPY",
            r#"{"name":"COPY","sources":[{"name":"KV_WASL_KEYS"}]}"#,
        )
        .await;
    projector.denied_request("$JS.API.STREAM.NAMES", "{}").await;
}

#[tokio::test]
async fn the_api_does_not_write_the_partners_feeds() {
    let net = Net::start().await;
    let mut api = net.hub_user(HubUser::Api).await;
    denied_publish(&mut api, &wasl_events::partner::out_subject(net.a, fresh())).await;
    assert_eq!(net.feed_len(net.a).await, MESSAGES_PER_FEED as u64);
    // The control: the router does.
    let router = net.hub_user(HubUser::Router).await;
    router
        .js
        .publish(wasl_events::partner::out_subject(net.a, fresh()), "m".into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    assert_eq!(net.feed_len(net.a).await, MESSAGES_PER_FEED as u64 + 1);
}

#[tokio::test]
async fn only_the_api_changes_the_session_bucket_and_nobody_the_logs_settings() {
    let net = Net::start().await;
    hub_streams(&net).await;
    let operator = net.hub_user(HubUser::Operator).await;
    let sessions = operator
        .js
        .create_key_value(async_nats::jetstream::kv::Config {
            bucket: SESSIONS_BUCKET.into(),
            history: 1,
            max_age: std::time::Duration::from_secs(3600),
            ..Default::default()
        })
        .await
        .expect("sessions bucket");
    drop(sessions);
    let mut config = operator
        .js
        .get_stream("KV_WASL_SESSIONS")
        .await
        .expect("bucket stream")
        .cached_info()
        .config
        .clone();
    config.max_age = std::time::Duration::from_secs(7200);
    let api = net.hub_user(HubUser::Api).await;
    api.js
        .update_stream(config.clone())
        .await
        .expect("the API sets its sessions' lifetime");
    for other in [HubUser::Store, HubUser::Router] {
        let mut user = net.hub_user(other).await;
        assert!(user.js.update_stream(config.clone()).await.is_err());
        user.expect_violation("$JS.API.STREAM.UPDATE.KV_WASL_SESSIONS").await;
    }
    for user in [HubUser::Api, HubUser::Store, HubUser::Router] {
        let mut user = net.hub_user(user).await;
        for stream in [EVENTS_STREAM, AUDIT_STREAM] {
            user.denied_request(&format!("$JS.API.STREAM.UPDATE.{stream}"), r#"{"max_age":1}"#)
                .await;
        }
    }
}
