//! What a notification says and the trait that delivers one.
//!
//! A [`Notification`] is built only from codes, ids and times: the event's kind and the
//! referral's category and priority codes, a closed code for the detail (which deadline, which
//! decline reason), when it happened, and a link. There is no field that could carry a name, a
//! phone number, an address, a survivor code or free text, so no mail can: email leaves the
//! network's control (forwarded, synced to phones, kept by providers), while the link leads
//! back to Wasl, where reading the referral is authenticated, scoped and audited.

use crate::error::DeliveryError;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, UNIX_EPOCH};
use wasl_domain::time::Timestamp;

/// What happened, as far as a notification tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A new referral to the recipient's organisation.
    Requested,
    /// The receiving organisation accepted the recipient's referral.
    Accepted,
    /// … declined it (detail: the decline code).
    Rejected,
    /// … put the service on hold (detail: the hold code).
    OnHold,
    /// … completed the service: follow-up is the caseworker's next step.
    Completed,
    /// … could not deliver it (detail: the failure code).
    Failed,
    /// Wasl cancelled the referral because nobody answered in time (`expired`).
    Expired,
    /// A response deadline passed (detail: `acknowledgement` or `decision`).
    ResponseOverdue,
    /// The follow-up deadline passed.
    FollowUpOverdue,
    /// An overdue was escalated to the coordinators (detail: which deadline).
    Escalated,
}

impl Kind {
    /// Every kind.
    pub const ALL: &[Kind] = &[
        Self::Requested,
        Self::Accepted,
        Self::Rejected,
        Self::OnHold,
        Self::Completed,
        Self::Failed,
        Self::Expired,
        Self::ResponseOverdue,
        Self::FollowUpOverdue,
        Self::Escalated,
    ];

    /// The stable code (the event's kind as docs/events.md names it, `expired` for the
    /// cancellation Wasl makes).
    pub const fn code(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::OnHold => "on_hold",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Expired => "expired",
            Self::ResponseOverdue => "response_overdue",
            Self::FollowUpOverdue => "follow_up_overdue",
            Self::Escalated => "escalated",
        }
    }

    /// The kind of a code.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.code() == code)
    }

    fn headline(self) -> &'static str {
        match self {
            Self::Requested => "New referral for your organisation",
            Self::Accepted => "Your referral was accepted",
            Self::Rejected => "Your referral was declined",
            Self::OnHold => "Your referral was put on hold",
            Self::Completed => "Your referral was completed: please record follow-up",
            Self::Failed => "Your referral could not be delivered",
            Self::Expired => "Your referral expired unanswered: please refer elsewhere",
            Self::ResponseOverdue => "A referral has missed a deadline",
            Self::FollowUpOverdue => "Follow-up on your referral is overdue",
            Self::Escalated => "A referral was escalated to the coordinators",
        }
    }
}

/// Why a person is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Audience {
    /// A focal point of the receiving organisation.
    FocalPoint,
    /// The caseworker who made the referral.
    Caseworker,
    /// A coordinator of the network.
    Coordinator,
}

impl Audience {
    /// The stable code.
    pub const fn code(self) -> &'static str {
        match self {
            Self::FocalPoint => "focal_point",
            Self::Caseworker => "caseworker",
            Self::Coordinator => "coordinator",
        }
    }

    /// The audience of a code.
    pub fn parse(code: &str) -> Option<Self> {
        [Self::FocalPoint, Self::Caseworker, Self::Coordinator]
            .into_iter()
            .find(|a| a.code() == code)
    }

    fn reason(self) -> &'static str {
        match self {
            Self::FocalPoint => "You receive this as a focal point of the organisation the referral is addressed to.",
            Self::Caseworker => "You receive this because you made the referral.",
            Self::Coordinator => "You receive this as a coordinator of the referral network.",
        }
    }
}

/// Who a notification goes to. The address is personal data of staff: `Debug` and `Display`
/// never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The person's user id.
    pub user_id: String,
    address: String,
}

impl Recipient {
    /// A recipient.
    pub fn new(user_id: impl Into<String>, address: impl Into<String>) -> Self {
        Self {
            user_id: user_id.into(),
            address: address.into(),
        }
    }

    /// Where to mail them.
    pub fn address(&self) -> &str {
        &self.address
    }
}

impl std::fmt::Debug for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recipient")
            .field("user_id", &self.user_id)
            .field("address", &"<redacted>")
            .finish()
    }
}

/// One message to one person about one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Derived from the event id and the recipient: the same notification always carries the
    /// same id, so a resend after a crash is recognisably the same message.
    pub id: String,
    /// To whom.
    pub to: Recipient,
    /// Why them.
    pub audience: Audience,
    /// What happened.
    pub kind: Kind,
    /// A closed code that says more (which deadline, which reason), if any.
    pub detail: Option<String>,
    /// The referral (a UUID: not personal data).
    pub referral_id: String,
    /// The referral's service category code.
    pub category: String,
    /// The referral's priority code.
    pub priority: String,
    /// When it happened (the event's time).
    pub at: Timestamp,
    /// Where to read the referral.
    pub link: String,
}

impl Notification {
    /// The subject line: what happened, the category and priority.
    pub fn subject(&self) -> String {
        let detail = self.detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
        format!(
            "[Wasl] {}{detail}: {}, {}",
            self.kind.headline(),
            self.category,
            self.priority
        )
    }

    /// The plain-text body.
    pub fn body(&self) -> String {
        let detail = self.detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
        format!(
            "{headline}.\r\n\
             \r\n\
             What happened:    {kind}{detail}\r\n\
             Service category: {category}\r\n\
             Priority:         {priority}\r\n\
             When:             {when}\r\n\
             Referral:         {link}\r\n\
             \r\n\
             Sign in to Wasl to see the referral and act on it. This message says only what\r\n\
             happened: no name, contact detail, case code or note travels by email.\r\n\
             \r\n\
             {reason}\r\n\
             To stop these messages, turn notifications off in Wasl\r\n\
             (PUT /v1/me/notifications with \"enabled\": false).\r\n",
            headline = self.kind.headline(),
            kind = self.kind.code(),
            category = self.category,
            priority = self.priority,
            when = rfc3339(self.at),
            link = self.link,
            reason = self.audience.reason(),
        )
    }
}

/// A timestamp as RFC 3339 UTC to the second.
pub fn rfc3339(at: Timestamp) -> String {
    let millis = u64::try_from(at.unix_millis()).unwrap_or(0);
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(millis)).to_string()
}

/// A delivery in progress.
pub type Delivery<'a> = Pin<Box<dyn Future<Output = Result<(), DeliveryError>> + Send + 'a>>;

/// Delivers notifications: SMTP ([`crate::SmtpNotifier`]) today; anything that can tell a
/// person (another mail API, a chat bridge) tomorrow. Object-safe, so the service holds an
/// `Arc<dyn Notifier>`.
///
/// `Ok` must mean the message was handed over for good (an SMTP server's 250 after `DATA`):
/// the service records it as sent and never sends it again.
pub trait Notifier: Send + Sync {
    /// Delivers one notification to its one recipient.
    fn deliver<'a>(&'a self, notification: &'a Notification) -> Delivery<'a>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(kind: Kind) -> Notification {
        Notification {
            id: "<x@example.org>".to_owned(),
            to: Recipient::new("u", "person@example.org"),
            audience: Audience::Caseworker,
            kind,
            detail: Some("decision".to_owned()),
            referral_id: "r".to_owned(),
            category: "health".to_owned(),
            priority: "urgent".to_owned(),
            at: Timestamp::from_unix_millis(1_767_225_600_000),
            link: "https://wasl.example.org/v1/referrals/r".to_owned(),
        }
    }

    #[test]
    fn every_kind_code_parses_back() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.code()), Some(*kind));
        }
        assert_eq!(Kind::parse("nothing"), None);
    }

    #[test]
    fn the_body_says_what_when_and_where_and_never_the_address() {
        let n = sample(Kind::ResponseOverdue);
        let body = n.body();
        assert!(body.contains("response_overdue (decision)"));
        assert!(body.contains("health") && body.contains("urgent"));
        assert!(body.contains("2026-01-01T00:00:00Z"));
        assert!(body.contains(&n.link));
        assert!(!body.contains("person@example.org"));
        assert!(!format!("{n:?}").contains("person@example.org"));
        assert!(n.subject().starts_with("[Wasl] "));
    }
}
