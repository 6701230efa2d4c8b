//! What each of the hub's own credentials may do. One all-powerful hub user meant that whoever
//! held any service's seed could forge events, rewrite the audit and read every data key; now
//! each service has a user of its own, with the least it needs:
//!
//! | user | seed | runs | may not |
//! |---|---|---|---|
//! | operator | `hub.nk` | set-up, `wasl nats-config`, backup and restore, `wasl log skip`, `wasl audit` | delete or purge the log, the audit or the data keys |
//! | api | `api.nk` | `wasl api`, `wasl notify` | the above; publish to partner feeds or send partner commands; delete or reconfigure any stream |
//! | store | `store.nk` | the partner command service (`wasl router --commands-nkey`), `wasl followup` | the above; write or read the audit, the accounts, the sessions or the webhook secrets |
//! | router | `router.nk` | `wasl router` (feeds, partner consumers, webhooks) | the above; append to the log, read or write the data keys |
//! | projector | `projector.nk` | `wasl projector` | anything but reading the log and the skip list |
//!
//! The operator, api, store and router users are *deny lists* over everything else: those
//! services create streams whose names vary (each partner's feed) and NATS subjects cannot
//! match part of a token, so an allow list would have to be as broad. The projector reads only,
//! so its user is an *allow list*. A denial always wins over an allowance in nats-server.
//! The residual risks (a user that may create streams could create one sourcing another) are in
//! `docs/nats-security.md`.

use crate::permissions::Grant;

/// The event log's stream (the store's default name).
pub const EVENTS_STREAM: &str = "WASL_EVENTS";
/// The event log's subjects.
pub const EVENT_SUBJECTS: &str = "wasl.evt.>";
/// The access audit's stream.
pub const AUDIT_STREAM: &str = "WASL_AUDIT";
/// The access audit's subjects.
pub const AUDIT_SUBJECTS: &str = "wasl.audit.>";
/// The user accounts' stream (password hashes, token hashes).
pub const ACCOUNTS_STREAM: &str = "WASL_ACCOUNTS";
/// The user accounts' subjects.
pub const ACCOUNT_SUBJECTS: &str = "wasl.acct.>";
/// The KV bucket of the cases' wrapped data keys.
pub const KEYS_BUCKET: &str = "WASL_KEYS";
/// The KV bucket of the webhook endpoints and their signing secrets.
pub const WEBHOOKS_BUCKET: &str = "WASL_WEBHOOKS";
/// The KV bucket of the API's sessions.
pub const SESSIONS_BUCKET: &str = "WASL_SESSIONS";
/// The KV bucket of the router's checkpoint.
pub const ROUTER_BUCKET: &str = "WASL_ROUTER";
/// The KV bucket of the operator's skip decisions.
pub const SKIPS_BUCKET: &str = "WASL_LOG_SKIPS";

/// One of the hub's own users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HubUser {
    /// The operator's tools: set-up, backup and restore, skip decisions, audit export.
    Operator,
    /// The HTTP API: appends events, writes the audit, keeps accounts, sessions and data keys.
    Api,
    /// Appends events for the partner command service and the follow-up service.
    Store,
    /// Delivers the log to the partners' feeds and webhooks.
    Router,
    /// Projects the log into the read models.
    Projector,
}

/// A hub user's permissions: a deny list over everything else, or an allow list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubPermissions {
    /// Everything except these.
    Deny {
        /// Subjects it may not publish to.
        publish: Vec<Grant>,
        /// Subjects it may not subscribe to.
        subscribe: Vec<Grant>,
    },
    /// Only these.
    Allow {
        /// Subjects it may publish to.
        publish: Vec<Grant>,
        /// Subjects it may subscribe to.
        subscribe: Vec<Grant>,
    },
}

impl HubUser {
    /// Every hub user, in the order they are written into `auth.conf`.
    pub const ALL: [HubUser; 5] = [
        HubUser::Operator,
        HubUser::Api,
        HubUser::Store,
        HubUser::Router,
        HubUser::Projector,
    ];

    /// The file name of its seed in `wasl nats-config`'s folder.
    pub fn seed_file(self) -> &'static str {
        match self {
            HubUser::Operator => "hub.nk",
            HubUser::Api => "api.nk",
            HubUser::Store => "store.nk",
            HubUser::Router => "router.nk",
            HubUser::Projector => "projector.nk",
        }
    }

    /// Its name, as in comments and `docs/nats-security.md`.
    pub fn name(self) -> &'static str {
        match self {
            HubUser::Operator => "operator",
            HubUser::Api => "api",
            HubUser::Store => "store",
            HubUser::Router => "router",
            HubUser::Projector => "projector",
        }
    }

    /// What runs with it.
    pub fn runs(self) -> &'static str {
        match self {
            HubUser::Operator => {
                "the operator's tools: set-up, wasl nats-config, backup, restore, wasl log, wasl audit"
            }
            HubUser::Api => "wasl api and wasl notify",
            HubUser::Store => "the partner command service (wasl router --commands-nkey) and wasl followup",
            HubUser::Router => "wasl router: partner feeds, partner consumers, webhooks",
            HubUser::Projector => "wasl projector",
        }
    }

    /// What it may do.
    pub fn permissions(self) -> HubPermissions {
        match self {
            HubUser::Operator => HubPermissions::Deny {
                publish: never_removed(),
                subscribe: Vec::new(),
            },
            HubUser::Api => {
                let mut publish = never_removed();
                // The API keeps the session bucket's age at the configured session lifetime.
                publish.extend(no_stream_removal_or_reconfiguration_of_the_hub(&[SESSIONS_BUCKET]));
                publish.push(grant("wasl.out.>", "the partner feeds are the router's"));
                publish.push(grant("wasl.cmd.>", "partner commands come from partners"));
                publish.push(grant(&kv(ROUTER_BUCKET), "the router's checkpoint is the router's"));
                HubPermissions::Deny {
                    publish,
                    subscribe: vec![grant("wasl.cmd.>", "partner commands are for the command service")],
                }
            }
            HubUser::Store => {
                let mut publish = never_removed();
                publish.extend(no_stream_removal_or_reconfiguration_of_the_hub(&[]));
                publish.push(grant(AUDIT_SUBJECTS, "only the API writes the audit"));
                publish.push(grant(ACCOUNT_SUBJECTS, "only the API keeps the accounts"));
                publish.push(grant("wasl.out.>", "the partner feeds are the router's"));
                publish.push(grant(&kv(SESSIONS_BUCKET), "sessions are the API's"));
                publish.push(grant(&kv(WEBHOOKS_BUCKET), "webhook endpoints are set through the API"));
                publish.push(grant(&kv(ROUTER_BUCKET), "the router's checkpoint is the router's"));
                let subscribe = keep_from_reading(
                    &mut publish,
                    &[
                        AUDIT,
                        ACCOUNTS,
                        Private::Bucket(SESSIONS_BUCKET),
                        Private::Bucket(WEBHOOKS_BUCKET),
                    ],
                    "not the store's to read",
                );
                HubPermissions::Deny { publish, subscribe }
            }
            HubUser::Router => {
                let mut publish = never_removed();
                publish.extend(no_stream_removal_or_reconfiguration_of_the_hub(&[]));
                publish.push(grant(EVENT_SUBJECTS, "only the store's users append to the log"));
                publish.push(grant(AUDIT_SUBJECTS, "only the API writes the audit"));
                publish.push(grant(ACCOUNT_SUBJECTS, "only the API keeps the accounts"));
                publish.push(grant(&kv(KEYS_BUCKET), "the data keys are the vault's"));
                publish.push(grant(&kv(SESSIONS_BUCKET), "sessions are the API's"));
                let subscribe = keep_from_reading(
                    &mut publish,
                    &[
                        AUDIT,
                        ACCOUNTS,
                        Private::Bucket(KEYS_BUCKET),
                        Private::Bucket(SESSIONS_BUCKET),
                    ],
                    "not the router's to read",
                );
                HubPermissions::Deny { publish, subscribe }
            }
            HubUser::Projector => {
                let mut publish = vec![grant("$JS.API.INFO", "check that JetStream is there")];
                for stream in [EVENTS_STREAM.to_owned(), kv_stream(SKIPS_BUCKET)] {
                    publish.extend(reading(&stream));
                }
                publish.push(grant("$JS.FC.>", "answer the flow control of ordered consumers"));
                HubPermissions::Allow {
                    publish,
                    subscribe: vec![grant("_INBOX.>", "replies and the deliveries of its ordered consumers")],
                }
            }
        }
    }
}

fn grant(subject: &str, reason: &'static str) -> Grant {
    Grant {
        subject: subject.to_owned(),
        reason,
    }
}

fn grant_owned(subject: String, reason: &'static str) -> Grant {
    Grant { subject, reason }
}

/// The subjects of a KV bucket.
fn kv(bucket: &str) -> String {
    format!("$KV.{bucket}.>")
}

/// The stream behind a KV bucket.
fn kv_stream(bucket: &str) -> String {
    format!("KV_{bucket}")
}

/// What no user, not even the operator, may do: delete or purge the event log, the audit or the
/// data keys, or delete a message of them. Erasing one case's key is a KV purge (a publish to
/// its key), not a stream purge, so erasure still works.
fn never_removed() -> Vec<Grant> {
    let mut out = Vec::new();
    for stream in [
        EVENTS_STREAM.to_owned(),
        AUDIT_STREAM.to_owned(),
        kv_stream(KEYS_BUCKET),
    ] {
        for action in ["STREAM.DELETE", "STREAM.PURGE", "STREAM.MSG.DELETE"] {
            out.push(grant_owned(
                format!("$JS.API.{action}.{stream}"),
                "the log, the audit and the data keys are never removed",
            ));
        }
    }
    out
}

/// A service removes no stream and no message, and changes none of the hub's own streams (the
/// operator does) except `own_buckets`. It may change the streams it keeps itself: the router a
/// partner's feed and the webhook bucket, the API its session bucket.
fn no_stream_removal_or_reconfiguration_of_the_hub(own_buckets: &[&str]) -> Vec<Grant> {
    let mut out = vec![
        grant("$JS.API.STREAM.DELETE.*", "services delete no stream"),
        grant("$JS.API.STREAM.PURGE.*", "services purge no stream"),
        grant("$JS.API.STREAM.MSG.DELETE.*", "services delete no message"),
    ];
    let hub_streams = [
        EVENTS_STREAM.to_owned(),
        AUDIT_STREAM.to_owned(),
        ACCOUNTS_STREAM.to_owned(),
        kv_stream(KEYS_BUCKET),
        kv_stream(SESSIONS_BUCKET),
    ];
    let own: Vec<String> = own_buckets.iter().map(|b| kv_stream(b)).collect();
    for stream in hub_streams.into_iter().filter(|s| !own.contains(s)) {
        out.push(grant_owned(
            format!("$JS.API.STREAM.UPDATE.{stream}"),
            "the hub's own streams are changed by the operator only",
        ));
    }
    out
}

/// Something a user may not read: a stream with its subjects, or a KV bucket.
#[derive(Clone, Copy)]
enum Private {
    Stream(&'static str, &'static str),
    Bucket(&'static str),
}

const AUDIT: Private = Private::Stream(AUDIT_STREAM, AUDIT_SUBJECTS);
const ACCOUNTS: Private = Private::Stream(ACCOUNTS_STREAM, ACCOUNT_SUBJECTS);

/// Denies reading each of `private` through JetStream (added to `publish`, where the API
/// requests go) and returns the subscriptions to deny (a core subscription on the subjects
/// would see every new message).
fn keep_from_reading(publish: &mut Vec<Grant>, private: &[Private], reason: &'static str) -> Vec<Grant> {
    let mut subscribe = Vec::new();
    for p in private {
        let (stream, subjects) = match *p {
            Private::Stream(stream, subjects) => (stream.to_owned(), subjects.to_owned()),
            Private::Bucket(bucket) => (kv_stream(bucket), kv(bucket)),
        };
        publish.extend(reads_of(&stream));
        subscribe.push(grant_owned(subjects, reason));
    }
    subscribe
}

/// Every JetStream API request that reads a stream's messages.
fn reads_of(stream: &str) -> Vec<Grant> {
    let reason = "not this user's to read";
    [
        format!("$JS.API.CONSUMER.CREATE.{stream}"),
        format!("$JS.API.CONSUMER.CREATE.{stream}.>"),
        format!("$JS.API.CONSUMER.DURABLE.CREATE.{stream}.>"),
        format!("$JS.API.DIRECT.GET.{stream}"),
        format!("$JS.API.DIRECT.GET.{stream}.>"),
        format!("$JS.API.STREAM.MSG.GET.{stream}"),
    ]
    .into_iter()
    .map(|subject| grant_owned(subject, reason))
    .collect()
}

/// What reading a stream takes: its info, consumers of it, pulling and acknowledging, direct
/// gets.
fn reading(stream: &str) -> Vec<Grant> {
    let reason = "read the log or the skip list";
    [
        format!("$JS.API.STREAM.INFO.{stream}"),
        format!("$JS.API.CONSUMER.CREATE.{stream}"),
        format!("$JS.API.CONSUMER.CREATE.{stream}.>"),
        format!("$JS.API.CONSUMER.INFO.{stream}.*"),
        format!("$JS.API.CONSUMER.DELETE.{stream}.*"),
        format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.*"),
        format!("$JS.API.DIRECT.GET.{stream}"),
        format!("$JS.API.DIRECT.GET.{stream}.>"),
        format!("$JS.API.STREAM.MSG.GET.{stream}"),
        format!("$JS.ACK.{stream}.>"),
    ]
    .into_iter()
    .map(|subject| grant_owned(subject, reason))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(user: HubUser) -> Vec<String> {
        match user.permissions() {
            HubPermissions::Deny { publish, .. } => publish.into_iter().map(|g| g.subject).collect(),
            HubPermissions::Allow { .. } => panic!("{user:?} has an allow list"),
        }
    }

    #[test]
    fn nobody_may_delete_the_log_or_the_audit() {
        for user in [HubUser::Operator, HubUser::Api, HubUser::Store, HubUser::Router] {
            let denied = denied(user);
            for subject in ["$JS.API.STREAM.DELETE.WASL_EVENTS", "$JS.API.STREAM.DELETE.WASL_AUDIT"] {
                assert!(denied.iter().any(|d| d == subject), "{user:?} may {subject}");
            }
        }
        let HubPermissions::Allow { publish, .. } = HubUser::Projector.permissions() else {
            panic!("the projector has an allow list")
        };
        for g in publish {
            for refused in [
                "STREAM.DELETE",
                "STREAM.PURGE",
                "MSG.DELETE",
                "STREAM.UPDATE",
                "STREAM.CREATE",
            ] {
                assert!(!g.subject.contains(refused), "the projector may {}", g.subject);
            }
        }
    }

    #[test]
    fn only_the_api_and_the_store_append_to_the_log() {
        assert!(denied(HubUser::Router).iter().any(|d| d == EVENT_SUBJECTS));
        assert!(!denied(HubUser::Api).iter().any(|d| d == EVENT_SUBJECTS));
        assert!(!denied(HubUser::Store).iter().any(|d| d == EVENT_SUBJECTS));
        assert!(denied(HubUser::Store).iter().any(|d| d == AUDIT_SUBJECTS));
    }

    #[test]
    fn every_user_has_its_own_seed_file() {
        let files: std::collections::BTreeSet<_> = HubUser::ALL.iter().map(|u| u.seed_file()).collect();
        assert_eq!(files.len(), HubUser::ALL.len());
    }
}
