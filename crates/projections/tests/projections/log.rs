//! A real nats-server with Wasl's event log, and ways to fill it.

#![allow(dead_code)]

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream::Stream};
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use wasl_events::StoredEvent;
use wasl_store::StoreConfig;
use wasl_testkit::NatsServer;

/// A nats-server holding an empty event log.
pub struct Log {
    pub server: NatsServer,
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub stream: Stream,
}

impl Log {
    pub async fn start() -> Self {
        let server = NatsServer::start().expect("start a nats-server (run ./scripts/install-nats-server)");
        let client = async_nats::connect(server.url()).await.expect("connect");
        let js = jetstream::new(client.clone());
        let stream = wasl_store::provision::ensure_stream(&js, &StoreConfig::default())
            .await
            .expect("create the event log");
        Self {
            server,
            client,
            js,
            stream,
        }
    }

    /// Appends events as the store would (subjects, headers, bodies); returns the last sequence.
    pub async fn append(&self, events: impl IntoIterator<Item = StoredEvent>) -> u64 {
        self.append_tampered(events, |_, _| {}).await
    }

    /// Appends events, letting `tamper(index, headers)` change the headers of any of them.
    pub async fn append_tampered(
        &self,
        events: impl IntoIterator<Item = StoredEvent>,
        tamper: impl Fn(usize, &mut HeaderMap),
    ) -> u64 {
        append(&self.js, events, tamper).await
    }
}

/// Publishes events as the store would, after `tamper(index, headers)`; returns the last sequence.
pub async fn append(
    js: &jetstream::Context,
    events: impl IntoIterator<Item = StoredEvent>,
    tamper: impl Fn(usize, &mut HeaderMap),
) -> u64 {
    let mut acks = FuturesOrdered::new();
    let mut last = 0;
    for (index, event) in events.into_iter().enumerate() {
        let mut headers = HeaderMap::new();
        for (name, value) in wasl_events::build_headers(&event, wasl_events::headers::DEFAULT_SOURCE).expect("headers")
        {
            headers.insert(name, value);
        }
        tamper(index, &mut headers);
        let ack = js
            .publish_with_headers(event.event.subject(), headers, wasl_events::encode(&event).into())
            .await
            .expect("publish");
        acks.push_back(ack.into_future());
        if acks.len() >= 512 {
            last = acks.next().await.expect("an ack").expect("stored").sequence;
        }
    }
    while let Some(ack) = acks.next().await {
        last = ack.expect("stored").sequence;
    }
    last
}
