//! Wasl's notifications: when something in a person's work needs them, they are told by email
//! — what happened and a link, never who it is about.
//!
//! - **Who is told** ([`NotifyService`]): a new referral → the focal points of the receiving
//!   organisation; a decision on it (accepted, declined, on hold, completed, failed, expired
//!   unanswered) → the caseworker who made it; a response deadline missed → the receiving
//!   focal points and the caseworker; follow-up overdue → the caseworker; an escalation → the
//!   network's coordinators. Each only if they set an address and did not opt out
//!   (`PUT /v1/me/notifications`), read from `WASL_ACCOUNTS` ([`Directory`]).
//! - **What they are told** ([`Notification`]): the event's kind, the referral's category and
//!   priority codes, a closed detail code, the time and `<base url>/v1/referrals/<id>`. No
//!   field can hold a name, phone, address, survivor code or free text.
//! - **How** ([`Notifier`]): pluggable; [`SmtpNotifier`] sends plain-text mail with lettre
//!   (`smtps://`, STARTTLS, or plain to loopback), one message per person.
//!
//! At most once per (event, person), and never lost: the service follows the event log from
//! its own checkpoint, kept in the read-model database with one `notify_mail` row per (event,
//! person) in the same transaction, so a replay queues nothing twice. A row is claimed with a
//! lease, sent, then marked sent; a crash between the server's 250 and that mark can mail it
//! once more (with the same Message-ID), never zero times. A failing server is retried with
//! back-off; an unreadable log message is parked and counted. See `docs/notifications.md`.

mod db;
pub mod directory;
mod error;
pub mod notifier;
mod service;
pub mod smtp;

pub use directory::Directory;
pub use error::{DeliveryError, NotifyError};
pub use notifier::{Audience, Delivery, Kind, Notification, Notifier, Recipient};
pub use service::{MailCounts, NotifyConfig, NotifyMetrics, NotifyService, REFERRAL_PATH, link, message_id};
pub use smtp::{SmtpConfig, SmtpNotifier, SmtpUrl, TlsMode};
