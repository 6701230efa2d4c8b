//! What a partner organisation's credential may do, subject by subject. Everything not listed is
//! denied: the server treats an `allow` list as deny-by-default. The reasons are in
//! `docs/nats-security.md`; the integration tests in `tests/nats_config/` check each line against
//! a real nats-server.

use wasl_domain::ids::OrgId;
use wasl_events::partner::{command_subjects, inbox_prefix, out_stream};

/// One subject a partner may publish or subscribe to, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The subject or wildcard, as nats-server reads it.
    pub subject: String,
    /// Why the partner needs it (written as a comment into the generated config).
    pub reason: &'static str,
}

/// The permissions of one partner organisation's user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerPermissions {
    /// Subjects the partner may publish to (JetStream API requests, acks, commands).
    pub publish: Vec<Grant>,
    /// Subjects the partner may subscribe to (its inbox only).
    pub subscribe: Vec<Grant>,
}

fn grant(subject: String, reason: &'static str) -> Grant {
    Grant { subject, reason }
}

/// The permissions of `org`'s user: read its own stream through the durable pull consumers the
/// hub keeps on it ([`wasl_events::partner::PARTNER_CONSUMERS`]), send commands under its own
/// id, receive replies on its own inbox prefix. Nothing else: in particular it cannot create,
/// change or delete a consumer, since a push consumer's deliver subject could be another
/// organisation's inbox (the server does not check it against the creator's permissions).
pub fn partner_permissions(org: OrgId) -> PartnerPermissions {
    let stream = out_stream(org);
    let api = "$JS.API";
    let publish = vec![
        grant(
            format!("{api}.STREAM.INFO.{stream}"),
            "look up its own stream (every client library does before binding a consumer)",
        ),
        grant(
            format!("{api}.CONSUMER.INFO.{stream}.*"),
            "look up a consumer of its stream (clients do before fetching, and bind to the hub's durable when it exists)",
        ),
        grant(
            format!("{api}.CONSUMER.LIST.{stream}"),
            "list the consumers of its own stream",
        ),
        grant(
            format!("{api}.CONSUMER.NAMES.{stream}"),
            "list the consumer names of its own stream",
        ),
        grant(
            format!("{api}.CONSUMER.MSG.NEXT.{stream}.*"),
            "pull messages (fetch, next, consume)",
        ),
        grant(
            format!("{api}.DIRECT.GET.{stream}"),
            "read one message of its stream by sequence (direct get)",
        ),
        grant(
            format!("{api}.DIRECT.GET.{stream}.>"),
            "read the last message of a subject of its stream (direct get by subject)",
        ),
        grant(
            format!("{api}.STREAM.MSG.GET.{stream}"),
            "read one message of its stream through the stream leader",
        ),
        grant(format!("$JS.ACK.{stream}.>"), "acknowledge the messages it pulled"),
        grant(
            command_subjects(org),
            "send commands as itself: the command service takes the acting organisation from this subject",
        ),
    ];
    let subscribe = vec![grant(
        format!("{}.>", inbox_prefix(org)),
        "replies to its requests (API, pulls, commands): clients must set this inbox prefix",
    )];
    PartnerPermissions { publish, subscribe }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(n: u128) -> OrgId {
        OrgId::from_uuid(uuid::Uuid::from_u128(0x0190_b2c4_0000_7000_8000_0000_0000_0000 | n)).unwrap()
    }

    #[test]
    fn every_publish_grant_names_the_organisation_or_its_stream() {
        let a = org(0xa);
        for g in partner_permissions(a).publish {
            assert!(g.subject.contains(&a.to_string()), "{} names no org", g.subject);
        }
    }

    #[test]
    fn no_grant_is_a_bare_wildcard_or_reaches_another_organisation() {
        let (a, b) = (org(0xa), org(0xb));
        let perms = partner_permissions(a);
        for g in perms.publish.iter().chain(&perms.subscribe) {
            assert!(!g.subject.contains(&b.to_string()));
            assert!(!g.subject.starts_with('>') && !g.subject.starts_with('*'));
            assert!(!g.subject.starts_with("_INBOX."), "{}", g.subject);
            assert!(!g.subject.starts_with("$KV"), "{}", g.subject);
        }
    }

    #[test]
    fn the_partner_may_not_create_change_or_delete_a_consumer() {
        for g in partner_permissions(org(0xa)).publish {
            for refused in ["CONSUMER.CREATE", "CONSUMER.DURABLE", "CONSUMER.DELETE"] {
                assert!(!g.subject.contains(refused), "{}", g.subject);
            }
        }
    }

    #[test]
    fn the_partner_may_subscribe_to_its_inbox_only() {
        let a = org(0xa);
        let subscribe: Vec<String> = partner_permissions(a)
            .subscribe
            .into_iter()
            .map(|g| g.subject)
            .collect();
        assert_eq!(subscribe, vec![format!("_INBOX_{a}.>")]);
    }
}
