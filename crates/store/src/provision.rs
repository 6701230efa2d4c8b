//! Creates the event stream, or checks that the one already there is fit for the log.

use crate::config::{EVENT_SUBJECTS, StoreConfig};
use crate::error::StoreError;
use async_nats::jetstream::{self, stream};

/// The stream configuration the event log needs.
pub fn stream_config(config: &StoreConfig) -> stream::Config {
    stream::Config {
        name: config.stream.clone(),
        description: Some("Wasl event log: one subject per aggregate".to_owned()),
        subjects: vec![EVENT_SUBJECTS.to_owned()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::New,
        max_messages: -1,
        max_bytes: -1,
        max_messages_per_subject: -1,
        num_replicas: config.replicas,
        duplicate_window: config.duplicate_window,
        deny_delete: true,
        deny_purge: true,
        allow_direct: true,
        allow_atomic_publish: true,
        ..Default::default()
    }
}

/// Creates the stream when missing; accepts an existing one only when it matches in every
/// setting the log depends on, and otherwise names each difference. Never changes an existing
/// stream: changing the production log is an operator's decision.
#[tracing::instrument(skip_all, fields(stream = %config.stream), err)]
pub async fn ensure_stream(js: &jetstream::Context, config: &StoreConfig) -> Result<stream::Stream, StoreError> {
    if let Some(existing) = existing_stream(js, config).await? {
        return Ok(existing);
    }
    let stream = js
        .create_stream(stream_config(config))
        .await
        .map_err(|err| match err.kind() {
            jetstream::context::CreateStreamErrorKind::JetStreamUnavailable
            | jetstream::context::CreateStreamErrorKind::TimedOut => StoreError::unavailable(err),
            _ => StoreError::Api {
                code: 0,
                err_code: 0,
                description: err.to_string(),
            },
        })?;
    wait_for_leader(&stream).await?;
    Ok(stream)
}

/// Waits until a new replicated stream has elected its leader, so the first commands do not race
/// the election (a single server's stream has no cluster and is ready at once).
async fn wait_for_leader(stream: &stream::Stream) -> Result<(), StoreError> {
    for _ in 0..100 {
        let info = stream.get_info().await.map_err(StoreError::unavailable)?;
        match info.cluster {
            Some(cluster) if cluster.leader.is_none() => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            _ => return Ok(()),
        }
    }
    Err(StoreError::Unavailable(
        "the new event stream elected no leader within 10 s".to_owned(),
    ))
}

/// The existing event stream when its settings match what the log needs, `None` when the server
/// has none, and [`StoreError::IncompatibleStream`] naming each difference otherwise. Never
/// creates a stream: tools that only report (a dry run) use this directly.
pub async fn existing_stream(
    js: &jetstream::Context,
    config: &StoreConfig,
) -> Result<Option<stream::Stream>, StoreError> {
    let mut existing = match js.get_stream(&config.stream).await {
        Ok(existing) => existing,
        Err(err)
            if matches!(err.kind(), jetstream::context::GetStreamErrorKind::JetStream(api)
                if api.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
        {
            return Ok(None);
        }
        Err(err) => return Err(StoreError::unavailable(err)),
    };
    let info = existing.info().await.map_err(StoreError::unavailable)?;
    let differences = differences(&stream_config(config), &info.config);
    if differences.is_empty() {
        Ok(Some(existing))
    } else {
        Err(StoreError::IncompatibleStream {
            stream: config.stream.clone(),
            differences: differences.join("; "),
        })
    }
}

/// The settings of `found` that differ from `wanted`, as `field: expected X, found Y`.
pub fn differences(wanted: &stream::Config, found: &stream::Config) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |field: &str, expected: String, actual: String| {
        if expected != actual {
            out.push(format!("{field}: expected {expected}, found {actual}"));
        }
    };
    check(
        "subjects",
        format!("{:?}", wanted.subjects),
        format!("{:?}", found.subjects),
    );
    check(
        "storage",
        format!("{:?}", wanted.storage),
        format!("{:?}", found.storage),
    );
    check(
        "retention",
        format!("{:?}", wanted.retention),
        format!("{:?}", found.retention),
    );
    check(
        "replicas",
        wanted.num_replicas.to_string(),
        found.num_replicas.to_string(),
    );
    check(
        "duplicate_window",
        format!("{:?}", wanted.duplicate_window),
        format!("{:?}", found.duplicate_window),
    );
    check(
        "max_msgs",
        wanted.max_messages.to_string(),
        found.max_messages.to_string(),
    );
    check("max_bytes", wanted.max_bytes.to_string(), found.max_bytes.to_string());
    check(
        "max_msgs_per_subject",
        wanted.max_messages_per_subject.to_string(),
        found.max_messages_per_subject.to_string(),
    );
    check(
        "max_age",
        format!("{:?}", wanted.max_age),
        format!("{:?}", found.max_age),
    );
    check(
        "deny_delete",
        wanted.deny_delete.to_string(),
        found.deny_delete.to_string(),
    );
    check(
        "deny_purge",
        wanted.deny_purge.to_string(),
        found.deny_purge.to_string(),
    );
    check(
        "allow_direct",
        wanted.allow_direct.to_string(),
        found.allow_direct.to_string(),
    );
    check(
        "allow_atomic",
        wanted.allow_atomic_publish.to_string(),
        found.allow_atomic_publish.to_string(),
    );
    check("sealed", "false".to_owned(), found.sealed.to_string());
    out
}
