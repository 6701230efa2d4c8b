//! The names on the partner side of NATS: each organisation's own feed (`WASL_OUT_<org>`,
//! subjects `wasl.out.<org>.referral.<id>` and `wasl.out.<org>.redaction.<notice id>`), the
//! subjects its systems send commands on (`wasl.cmd.<org>.referral.<id>.<verb>`) and the inbox
//! prefix its clients must use for replies (`_INBOX_<org>`). The router, the command service,
//! `wasl nats-config` and the partner CLI all take them from here, so the permissions a
//! partner's credential is given always name the subjects the hub uses. `<org>` is the
//! organisation id as everywhere in subjects: the hyphenated lower-case UUID.

use wasl_domain::ids::{OrgId, ReferralId};

/// The JetStream stream holding what is addressed to `org`.
pub fn out_stream(org: OrgId) -> String {
    format!("{}{org}", out_stream_prefix())
}

/// What every organisation's feed stream's name starts with.
pub const fn out_stream_prefix() -> &'static str {
    "WASL_OUT_"
}

/// Every subject of `org`'s feed, the only subjects of its stream.
pub fn out_subjects(org: OrgId) -> String {
    format!("wasl.out.{org}.>")
}

/// The subject of the partner messages about `referral` in `org`'s feed.
pub fn out_subject(org: OrgId, referral: ReferralId) -> String {
    format!("wasl.out.{org}.referral.{referral}")
}

/// The subject of the redaction notice `notice` in `org`'s feed: one notice per organisation
/// and erased case, so it has a subject of its own rather than one of the referrals it names.
pub fn redaction_subject(org: OrgId, notice: uuid::Uuid) -> String {
    format!("wasl.out.{org}.redaction.{}", notice.hyphenated())
}

/// Every subject on which `org`'s systems may send commands.
pub fn command_subjects(org: OrgId) -> String {
    format!("wasl.cmd.{org}.>")
}

/// What the hub's command service listens to: every organisation's commands.
pub const ALL_COMMAND_SUBJECTS: &str = "wasl.cmd.>";

/// The subject on which `org` asks for `verb` (receive, accept, …) on `referral`.
pub fn command_subject(org: OrgId, referral: ReferralId, verb: &str) -> String {
    format!("wasl.cmd.{org}.referral.{referral}.{verb}")
}

/// The durable pull consumers the hub keeps on every organisation's feed, for the organisation
/// to read with: `referrals` for its own systems, `wasl-partner-cli` for `wasl partner listen`.
/// Partners cannot create consumers (a consumer's deliver subject could point into another
/// organisation's inbox); each of these remembers its own position, so two systems of one
/// organisation read the feed independently.
pub const PARTNER_CONSUMERS: [&str; 2] = ["referrals", "wasl-partner-cli"];

/// The inbox prefix `org`'s clients use (`nats --inbox-prefix`, nats.py `inbox_prefix`,
/// async-nats `custom_inbox_prefix`): the only subjects they may subscribe to outside JetStream,
/// so no organisation can listen to another's replies. The command service answers only
/// requests whose reply subject starts with it.
pub fn inbox_prefix(org: OrgId) -> String {
    format!("_INBOX_{org}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (OrgId, ReferralId) {
        let org = OrgId::from_uuid(uuid::Uuid::from_u128(0x0190_b2c4_0000_7000_8000_0000_0000_000a)).unwrap();
        let referral = ReferralId::from_uuid(uuid::Uuid::from_u128(0x0190_b2c4_0000_7000_8000_0000_0000_000b)).unwrap();
        (org, referral)
    }

    #[test]
    fn names_follow_the_design() {
        let (org, referral) = ids();
        assert_eq!(out_stream(org), "WASL_OUT_0190b2c4-0000-7000-8000-00000000000a");
        assert_eq!(
            out_subject(org, referral),
            "wasl.out.0190b2c4-0000-7000-8000-00000000000a.referral.0190b2c4-0000-7000-8000-00000000000b"
        );
        assert_eq!(
            command_subject(org, referral, "accept"),
            "wasl.cmd.0190b2c4-0000-7000-8000-00000000000a.referral.0190b2c4-0000-7000-8000-00000000000b.accept"
        );
        assert_eq!(inbox_prefix(org), "_INBOX_0190b2c4-0000-7000-8000-00000000000a");
        let notice = uuid::Uuid::from_u128(0x0190_b2c4_0000_7000_8000_0000_0000_000c);
        assert_eq!(
            redaction_subject(org, notice),
            "wasl.out.0190b2c4-0000-7000-8000-00000000000a.redaction.0190b2c4-0000-7000-8000-00000000000c"
        );
    }

    #[test]
    fn each_subject_is_under_its_wildcard() {
        let (org, referral) = ids();
        let under = |subject: String, wildcard: String| subject.starts_with(wildcard.trim_end_matches('>'));
        assert!(under(out_subject(org, referral), out_subjects(org)));
        assert!(under(redaction_subject(org, uuid::Uuid::nil()), out_subjects(org)));
        assert!(under(command_subject(org, referral, "start"), command_subjects(org)));
        assert!(under(
            command_subject(org, referral, "start"),
            ALL_COMMAND_SUBJECTS.to_owned()
        ));
    }
}
