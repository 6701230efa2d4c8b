//! The service: two loops over one database.
//!
//! - **follow** reads the log from the checkpoint and, per batch, in one transaction, keeps
//!   what later events of a referral do not carry (who made it, who receives it, its codes),
//!   writes one `notify_mail` row per (event, person to tell) and moves the checkpoint (a
//!   compare-and-set, so two instances never apply a batch twice);
//! - **send** claims due rows one at a time (a lease), delivers each through the [`Notifier`]
//!   and records the outcome; a failure is retried with back-off, never stopping the service.

use crate::db::{self, STATE, now_millis};
use crate::directory::Directory;
use crate::error::{DeliveryError, NotifyError};
use crate::notifier::{Audience, Kind, Notification, Notifier};
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, AnyPool, Row};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use wasl_domain::catalogue::CancelCode;
use wasl_domain::ids::ReferralId;
use wasl_domain::referral::ReferralEvent;
use wasl_domain::time::Timestamp;
use wasl_events::DomainEvent;
use wasl_store::EventStore;
use wasl_store::continuity::Mark;
use wasl_store::continuity::{FollowLoop, Interruption};
use wasl_store::follow::{Entry, Follower, Step};

/// The path of a referral under the base URL (the API's; the web page's once it exists).
pub const REFERRAL_PATH: &str = "/v1/referrals/";

/// How the service runs.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// Where people read a referral: links are `<base_url>/v1/referrals/<id>`.
    pub base_url: String,
    /// On the very first start, mail for the whole log as well (tests, a new network). Without
    /// it the first start reads the history only to learn the referrals, and mails for what is
    /// appended from then on: years of old events are not news.
    pub mail_history: bool,
    /// Most log entries per transaction.
    pub batch_size: usize,
    /// How often the log is checked to still hold the event at the checkpoint (also before
    /// every batch), and how often a stopped service looks again.
    pub check_interval: Duration,
    /// Pause after an error of the log, the accounts or the database before trying again.
    pub retry_delay: Duration,
    /// The first wait after a failed delivery; doubled at each failure up to `max_retry`.
    pub first_retry: Duration,
    /// The longest wait between two attempts of one mail.
    pub max_retry: Duration,
    /// Attempts after which a mail the server refuses for good (5xx) is given up. A server
    /// that fails for now (no answer, 4xx) is tried for ever.
    pub give_up_after: u32,
    /// Most time for one delivery.
    pub send_timeout: Duration,
    /// How long a claimed mail is left to its sender before another attempt may take it; must
    /// be longer than `send_timeout`.
    pub lease: Duration,
    /// Most time to wait for the accounts log before a batch (so an address set a moment ago
    /// counts).
    pub accounts_wait: Duration,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:8080".to_owned(),
            mail_history: false,
            batch_size: 500,
            check_interval: Duration::from_secs(5),
            retry_delay: Duration::from_millis(500),
            first_retry: Duration::from_secs(2),
            max_retry: Duration::from_secs(15 * 60),
            give_up_after: 10,
            send_timeout: Duration::from_secs(60),
            lease: Duration::from_secs(5 * 60),
            accounts_wait: Duration::from_secs(30),
        }
    }
}

/// Counters of the service, shared with whoever reports them.
#[derive(Debug, Default)]
pub struct NotifyMetrics {
    /// The checkpoint: every event up to this log position was taken into account.
    pub position: AtomicU64,
    /// Mails the server accepted.
    pub sent: AtomicU64,
    /// Mails not sent because the person no longer wants mail (opted out, address removed,
    /// account disabled) by the time of sending.
    pub dropped: AtomicU64,
    /// Mails given up after the server refused them `give_up_after` times.
    pub failed: AtomicU64,
    /// Failed attempts that will be tried again.
    pub retried: AtomicU64,
    /// Log messages the service could not read.
    pub parked: AtomicU64,
    /// Why the service stopped following the log, while it is stopped.
    pub diverged: RwLock<Option<String>>,
}

impl NotifyMetrics {
    /// Why the service stopped, if it did.
    pub fn diverged(&self) -> Option<String> {
        self.diverged.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_diverged(&self, reason: Option<String>) -> bool {
        let mut current = self.diverged.write().unwrap_or_else(|p| p.into_inner());
        let changed = *current != reason;
        *current = reason;
        changed
    }
}

/// The mail the service holds, by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailCounts {
    /// Not sent yet (waiting, being sent, or waiting to be retried).
    pub pending: u64,
    /// Accepted by the server.
    pub sent: u64,
    /// Not sent: the person no longer wanted mail.
    pub dropped: u64,
    /// Given up.
    pub failed: u64,
}

/// The notification service.
#[derive(Clone)]
pub struct NotifyService {
    inner: Arc<Inner>,
}

struct Inner {
    pool: AnyPool,
    store: Arc<EventStore>,
    directory: Directory,
    notifier: Arc<dyn Notifier>,
    config: NotifyConfig,
    metrics: Arc<NotifyMetrics>,
    /// The host of the base URL, the right-hand side of every Message-ID.
    id_domain: String,
    /// Mail was queued: the send loop looks again.
    mail_queued: Notify,
}

impl NotifyService {
    /// Opens the service's tables in the database at `database_url` (migrating them) for the
    /// log behind `store`, and starts following `WASL_ACCOUNTS` on the same connection.
    pub async fn open(
        database_url: &str,
        store: Arc<EventStore>,
        notifier: Arc<dyn Notifier>,
        config: NotifyConfig,
    ) -> Result<Self, NotifyError> {
        if config.lease <= config.send_timeout {
            return Err(NotifyError::Config(
                "the lease must be longer than the send timeout".to_owned(),
            ));
        }
        let id_domain = host_of(&config.base_url)
            .ok_or_else(|| NotifyError::Config("the base URL must be http(s)://host[:port][/path]".to_owned()))?;
        let mail_from = if config.mail_history {
            1
        } else {
            let info = store
                .stream()
                .get_info()
                .await
                .map_err(|e| NotifyError::Log(e.to_string()))?;
            info.state.last_sequence + 1
        };
        let pool = db::open(database_url, mail_from).await?;
        let directory = Directory::follow(async_nats::jetstream::new(store.client().clone()));
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                store,
                directory,
                notifier,
                config,
                metrics: Arc::default(),
                id_domain,
                mail_queued: Notify::new(),
            }),
        })
    }

    /// Its counters.
    pub fn metrics(&self) -> Arc<NotifyMetrics> {
        self.inner.metrics.clone()
    }

    /// The people it may tell, as it knows them now.
    pub fn directory(&self) -> &Directory {
        &self.inner.directory
    }

    /// The mail it holds, by state.
    pub async fn mail(&self) -> Result<MailCounts, NotifyError> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM notify_mail GROUP BY state")
            .fetch_all(&self.inner.pool)
            .await?;
        let mut counts = MailCounts::default();
        for row in rows {
            let n = row.try_get::<i64, _>("n")? as u64;
            match row.try_get::<String, _>("state")?.as_str() {
                "pending" => counts.pending = n,
                "sent" => counts.sent = n,
                "dropped" => counts.dropped = n,
                "failed" => counts.failed = n,
                _ => {}
            }
        }
        Ok(counts)
    }

    /// The checkpoint in the database (every event up to it was taken into account) and why the
    /// service stopped, if it did.
    pub async fn checkpoint(&self) -> Result<(u64, Option<String>), NotifyError> {
        let row = sqlx::query("SELECT checkpoint, halted FROM notify_state WHERE name = $1")
            .bind(STATE)
            .fetch_one(&self.inner.pool)
            .await?;
        Ok((row.try_get::<i64, _>("checkpoint")? as u64, row.try_get("halted")?))
    }

    /// Runs until `shutdown` completes; a delivery under way is finished first. Errors of the
    /// log, the accounts, the database or the mail server are logged and retried.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<(), NotifyError> {
        // One token for the service's loops: cancelled once `shutdown` completes.
        let stopped = CancellationToken::new();
        let loops = async { tokio::join!(self.follow(stopped.clone()), self.send(stopped.clone())) };
        tokio::pin!(loops);
        tokio::select! {
            _ = &mut loops => {}
            () = shutdown => {
                stopped.cancel();
                loops.await;
            }
        }
        Ok(())
    }

    // --- follow ----------------------------------------------------------------------------

    async fn follow(&self, stopped: CancellationToken) {
        let follower = FollowLoop {
            reader: "notify",
            service: "the notification service",
            check_interval: self.inner.config.check_interval,
            retry_delay: self.inner.config.retry_delay,
        };
        let attempt = || async {
            self.follow_once().await.map_err(|error| match error {
                NotifyError::Diverged(reason) => Interruption::Diverged(reason),
                other => Interruption::Failed(other),
            })
        };
        follower
            .run(&stopped, attempt, |reason| {
                self.inner.metrics.set_diverged(Some(reason.to_owned()))
            })
            .await;
    }

    async fn mark(&self) -> Result<(Mark, u64), NotifyError> {
        let row = sqlx::query("SELECT checkpoint, checkpoint_event, mail_from FROM notify_state WHERE name = $1")
            .bind(STATE)
            .fetch_one(&self.inner.pool)
            .await?;
        let mark = Mark {
            sequence: row.try_get::<i64, _>("checkpoint")? as u64,
            event_id: row.try_get("checkpoint_event")?,
        };
        Ok((mark, row.try_get::<i64, _>("mail_from")? as u64))
    }

    /// Stops on a log that went backwards: records why, against the checkpoint judged.
    async fn halt(&self, mark: &Mark, reason: String) -> NotifyError {
        let recorded = sqlx::query(
            "UPDATE notify_state SET halted = $1 WHERE name = $2 AND checkpoint = $3 AND (halted IS NULL OR halted <> $1)",
        )
        .bind(reason.as_str())
        .bind(STATE)
        .bind(mark.sequence as i64)
        .execute(&self.inner.pool)
        .await;
        if let Err(error) = recorded {
            tracing::warn!(%error, "cannot record why the notification service stopped");
        }
        NotifyError::Diverged(reason)
    }

    /// One subscription from the checkpoint until an error (or until another instance moved
    /// the checkpoint: `Ok`, to reload).
    async fn follow_once(&self) -> Result<(), NotifyError> {
        let inner = &self.inner;
        let (mut mark, mail_from) = self.mark().await?;
        let follower = Follower::start(
            &inner.store,
            &mark,
            inner.config.batch_size,
            inner.config.check_interval,
        )
        .await?;
        let mut follower = match follower {
            Ok(follower) => follower,
            Err(divergence) => return Err(self.halt(&mark, divergence.to_string()).await),
        };
        sqlx::query("UPDATE notify_state SET halted = NULL WHERE name = $1 AND halted IS NOT NULL")
            .bind(STATE)
            .execute(&inner.pool)
            .await?;
        if inner.metrics.set_diverged(None) {
            tracing::warn!("the event log matches the notification service's checkpoint again; following it");
        }
        inner.metrics.position.store(mark.sequence, Ordering::Relaxed);
        loop {
            let entries = match follower.next(&mark).await? {
                Step::Batch(entries) => entries,
                Step::Diverged(divergence) => return Err(self.halt(&mark, divergence.to_string()).await),
            };
            let Some(last) = entries.last().map(Entry::mark) else {
                continue;
            };
            // Who is to be told is decided with everything the accounts log holds now.
            let mailing = entries.iter().any(|e| e.sequence() >= mail_from);
            if mailing {
                inner.directory.sync(inner.config.accounts_wait).await?;
            }
            let mut conn = inner.pool.acquire().await?;
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            let moved = sqlx::query(
                "UPDATE notify_state SET checkpoint = $1, checkpoint_event = $2, updated_at = $3 \
                 WHERE name = $4 AND checkpoint = $5",
            )
            .bind(last.sequence as i64)
            .bind(last.event_id.clone())
            .bind(now_millis())
            .bind(STATE)
            .bind(mark.sequence as i64)
            .execute(&mut *tx)
            .await?;
            if moved.rows_affected() != 1 {
                // Another instance applied it: reload from its checkpoint.
                tx.rollback().await?;
                return Ok(());
            }
            let mut queued = 0;
            for entry in &entries {
                queued += self.apply(&mut tx, entry, entry.sequence() >= mail_from).await?;
            }
            tx.commit().await?;
            mark = last;
            inner.metrics.position.store(mark.sequence, Ordering::Relaxed);
            if queued > 0 {
                inner.mail_queued.notify_one();
            }
        }
    }

    /// Applies one entry inside the batch's transaction; how many mails it queued.
    async fn apply(&self, tx: &mut AnyConnection, entry: &Entry, mailing: bool) -> Result<u64, NotifyError> {
        match entry {
            Entry::Skipped(_) => Ok(0),
            Entry::Unreadable {
                sequence,
                subject,
                reason,
            } => {
                sqlx::query(
                    "INSERT INTO notify_parked (seq, subject, error, parked_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (seq) DO NOTHING",
                )
                .bind(*sequence as i64)
                .bind(subject.as_str())
                .bind(reason.as_str())
                .bind(now_millis())
                .execute(&mut *tx)
                .await?;
                self.inner.metrics.parked.fetch_add(1, Ordering::Relaxed);
                wasl_telemetry::metrics::poison("notify", "unreadable");
                tracing::error!(sequence, %subject, %reason, "the notification service cannot read a message of the log; it goes on without it (wasl log show)");
                Ok(0)
            }
            Entry::Event(recorded) => match &recorded.event.event {
                DomainEvent::Referral(id, event) => {
                    let event_id = recorded.event.meta.event_id.to_string();
                    let at = recorded.event.meta.occurred_at;
                    self.referral_event(tx, *id, event, at, &event_id, mailing).await
                }
                _ => Ok(0),
            },
        }
    }

    async fn referral_event(
        &self,
        tx: &mut AnyConnection,
        id: ReferralId,
        event: &ReferralEvent,
        at: Timestamp,
        event_id: &str,
        mailing: bool,
    ) -> Result<u64, NotifyError> {
        use Audience::{Caseworker, Coordinator, FocalPoint};
        let referral = id.to_string();
        let (kind, detail, audiences): (Kind, Option<&str>, &[Audience]) = match event {
            ReferralEvent::Requested(request) => {
                sqlx::query(
                    "INSERT INTO notify_referrals (referral_id, from_user, to_org, category, priority) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (referral_id) DO NOTHING",
                )
                .bind(referral.as_str())
                .bind(request.from_user.to_string())
                .bind(request.to_org.to_string())
                .bind(request.category.code())
                .bind(request.priority.code())
                .execute(&mut *tx)
                .await?;
                (Kind::Requested, None, &[FocalPoint])
            }
            ReferralEvent::Accepted => (Kind::Accepted, None, &[Caseworker]),
            ReferralEvent::Rejected(decline) => (Kind::Rejected, Some(decline.reason.code.code()), &[Caseworker]),
            ReferralEvent::PutOnHold(reason) => (Kind::OnHold, Some(reason.code.code()), &[Caseworker]),
            ReferralEvent::Completed => (Kind::Completed, None, &[Caseworker]),
            ReferralEvent::Failed(reason) => (Kind::Failed, Some(reason.code.code()), &[Caseworker]),
            // Cancelled by Wasl because nobody answered; the caseworker's own cancellations
            // (and those consent withdrawal and case closure cause) are their own doing.
            ReferralEvent::Cancelled(reason) if reason.code == CancelCode::Expired => {
                (Kind::Expired, None, &[Caseworker])
            }
            ReferralEvent::ResponseOverdue { kind, .. } => {
                (Kind::ResponseOverdue, Some(kind.code()), &[FocalPoint, Caseworker])
            }
            ReferralEvent::FollowUpOverdue { .. } => (Kind::FollowUpOverdue, None, &[Caseworker]),
            ReferralEvent::Escalated { kind } => (Kind::Escalated, Some(kind.code()), &[Coordinator]),
            _ => return Ok(0),
        };
        if !mailing {
            return Ok(0);
        }
        let row =
            sqlx::query("SELECT from_user, to_org, category, priority FROM notify_referrals WHERE referral_id = $1")
                .bind(referral.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        let Some(row) = row else {
            // Its request is not in the log this service read (a log restored in part).
            tracing::warn!(referral = %referral, kind = kind.code(), "no request known for this referral; nobody is told");
            return Ok(0);
        };
        let from_user: String = row.try_get("from_user")?;
        let to_org: String = row.try_get("to_org")?;
        let category: String = row.try_get("category")?;
        let priority: String = row.try_get("priority")?;
        let directory = &self.inner.directory;
        let mut told: Vec<(String, Audience)> = Vec::new();
        for audience in audiences {
            let people = match audience {
                FocalPoint => directory.focal_points(&to_org),
                Caseworker => directory
                    .wants_mail(&from_user)
                    .then(|| from_user.clone())
                    .into_iter()
                    .collect(),
                Coordinator => directory.coordinators(),
            };
            for person in people {
                if !told.iter().any(|(p, _)| *p == person) {
                    told.push((person, *audience));
                }
            }
        }
        let mut queued = 0;
        for (person, audience) in told {
            let done = sqlx::query(
                "INSERT INTO notify_mail (event_id, recipient, audience, referral_id, kind, detail, category, priority, \
                 occurred_at, state, attempts, not_before, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', 0, 0, $10) \
                 ON CONFLICT (event_id, recipient) DO NOTHING",
            )
            .bind(event_id)
            .bind(person.as_str())
            .bind(audience.code())
            .bind(referral.as_str())
            .bind(kind.code())
            .bind(detail)
            .bind(category.as_str())
            .bind(priority.as_str())
            .bind(at.unix_millis())
            .bind(now_millis())
            .execute(&mut *tx)
            .await?;
            queued += done.rows_affected();
        }
        Ok(queued)
    }

    // --- send ------------------------------------------------------------------------------

    async fn send(&self, stopped: CancellationToken) {
        let inner = &self.inner;
        loop {
            if stopped.is_cancelled() {
                return;
            }
            let handled = match self.send_due(&stopped).await {
                Ok(handled) => handled,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the notification queue now; trying again");
                    0
                }
            };
            if handled > 0 {
                continue;
            }
            let next: Option<i64> =
                sqlx::query_scalar("SELECT MIN(not_before) FROM notify_mail WHERE state = 'pending'")
                    .fetch_one(&inner.pool)
                    .await
                    .unwrap_or_default();
            // A retry waits at most a second past its time; new mail wakes the loop at once.
            let wait = next.map_or(Duration::from_secs(1), |at| {
                Duration::from_millis(at.saturating_sub(now_millis()).clamp(0, 1_000) as u64)
            });
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = inner.mail_queued.notified() => {}
                () = stopped.cancelled() => return,
            }
        }
    }

    /// Sends the mail due now, one at a time; how many rows it handled.
    async fn send_due(&self, stopped: &CancellationToken) -> Result<u64, NotifyError> {
        let inner = &self.inner;
        let now = now_millis();
        let rows = sqlx::query(
            "SELECT event_id, recipient, audience, referral_id, kind, detail, category, priority, occurred_at, \
             attempts, not_before FROM notify_mail WHERE state = 'pending' AND not_before <= $1 \
             ORDER BY created_at, event_id, recipient LIMIT 50",
        )
        .bind(now)
        .fetch_all(&inner.pool)
        .await?;
        let mut handled = 0;
        for row in rows {
            if stopped.is_cancelled() {
                break;
            }
            let mail = Pending::of(&row)?;
            // The claim: only the instance that moves `not_before` sends.
            let claimed = sqlx::query(
                "UPDATE notify_mail SET not_before = $1 \
                 WHERE event_id = $2 AND recipient = $3 AND state = 'pending' AND not_before = $4",
            )
            .bind(now_millis().saturating_add(inner.config.lease.as_millis() as i64))
            .bind(mail.event_id.as_str())
            .bind(mail.recipient.as_str())
            .bind(mail.not_before)
            .execute(&inner.pool)
            .await?;
            if claimed.rows_affected() != 1 {
                continue;
            }
            handled += 1;
            self.send_one(mail).await?;
        }
        Ok(handled)
    }

    async fn send_one(&self, mail: Pending) -> Result<(), NotifyError> {
        let inner = &self.inner;
        let (Some(kind), Some(audience)) = (Kind::parse(&mail.kind), Audience::parse(&mail.audience)) else {
            wasl_telemetry::metrics::poison("notify", "mail_row");
            tracing::error!(event_id = %mail.event_id, "a queued mail cannot be read; given up");
            return self.settle(&mail, "failed", "unreadable").await;
        };
        // Asked again now: a person who opted out since the event is not mailed.
        let Some(to) = inner.directory.recipient(&mail.recipient) else {
            inner.metrics.dropped.fetch_add(1, Ordering::Relaxed);
            outcome("dropped");
            return self.settle(&mail, "dropped", "opted_out").await;
        };
        let notification = Notification {
            id: message_id(&mail.event_id, &mail.recipient, &inner.id_domain),
            to,
            audience,
            kind,
            detail: mail.detail.clone(),
            referral_id: mail.referral_id.clone(),
            category: mail.category.clone(),
            priority: mail.priority.clone(),
            at: Timestamp::from_unix_millis(mail.occurred_at),
            link: link(&inner.config.base_url, &mail.referral_id),
        };
        let delivered = tokio::time::timeout(inner.config.send_timeout, inner.notifier.deliver(&notification))
            .await
            .unwrap_or(Err(DeliveryError::Transient {
                kind: "timeout",
                code: None,
            }));
        match delivered {
            Ok(()) => {
                inner.metrics.sent.fetch_add(1, Ordering::Relaxed);
                outcome("sent");
                tracing::info!(referral = %mail.referral_id, kind = kind.code(), audience = audience.code(), user = %mail.recipient, "notification mailed");
                // Sent is sent: the record is tried a few times, since a row left pending is
                // mailed again once its lease ends (a duplicate, never a loss).
                let mut tries = 0;
                loop {
                    match self.settle(&mail, "sent", "sent").await {
                        Ok(()) => return Ok(()),
                        Err(error) if tries < 3 => {
                            tries += 1;
                            tracing::warn!(%error, "a mailed notification is not recorded yet; trying again");
                            tokio::time::sleep(inner.config.retry_delay).await;
                        }
                        Err(error) => {
                            tracing::error!(%error, referral = %mail.referral_id, user = %mail.recipient, "a mailed notification could not be recorded; it will be mailed again when its lease ends");
                            return Err(error);
                        }
                    }
                }
            }
            Err(error) => {
                let attempts = mail.attempts + 1;
                let give_up = !error.is_transient() && attempts >= i64::from(inner.config.give_up_after);
                if give_up {
                    inner.metrics.failed.fetch_add(1, Ordering::Relaxed);
                    outcome("failed");
                    tracing::error!(%error, attempts, referral = %mail.referral_id, user = %mail.recipient, "the mail server refused a notification for good; given up");
                    return self.settle(&mail, "failed", error.kind()).await;
                }
                inner.metrics.retried.fetch_add(1, Ordering::Relaxed);
                outcome("retried");
                let wait = backoff(&inner.config, attempts);
                tracing::warn!(%error, attempts, ?wait, referral = %mail.referral_id, user = %mail.recipient, "a notification was not delivered; trying again later");
                sqlx::query(
                    "UPDATE notify_mail SET attempts = $1, not_before = $2, outcome = $3 \
                     WHERE event_id = $4 AND recipient = $5 AND state = 'pending'",
                )
                .bind(attempts)
                .bind(now_millis().saturating_add(wait.as_millis() as i64))
                .bind(error.kind())
                .bind(mail.event_id.as_str())
                .bind(mail.recipient.as_str())
                .execute(&inner.pool)
                .await?;
                Ok(())
            }
        }
    }

    async fn settle(&self, mail: &Pending, state: &str, outcome: &str) -> Result<(), NotifyError> {
        sqlx::query(
            "UPDATE notify_mail SET state = $1, outcome = $2, attempts = $3, settled_at = $4 \
             WHERE event_id = $5 AND recipient = $6 AND state = 'pending'",
        )
        .bind(state)
        .bind(outcome)
        .bind(mail.attempts + 1)
        .bind(now_millis())
        .bind(mail.event_id.as_str())
        .bind(mail.recipient.as_str())
        .execute(&self.inner.pool)
        .await?;
        Ok(())
    }
}

/// A queued mail as read from `notify_mail`.
struct Pending {
    event_id: String,
    recipient: String,
    audience: String,
    referral_id: String,
    kind: String,
    detail: Option<String>,
    category: String,
    priority: String,
    occurred_at: i64,
    attempts: i64,
    not_before: i64,
}

impl Pending {
    fn of(row: &sqlx::any::AnyRow) -> Result<Self, NotifyError> {
        Ok(Self {
            event_id: row.try_get("event_id")?,
            recipient: row.try_get("recipient")?,
            audience: row.try_get("audience")?,
            referral_id: row.try_get("referral_id")?,
            kind: row.try_get("kind")?,
            detail: row.try_get("detail")?,
            category: row.try_get("category")?,
            priority: row.try_get("priority")?,
            occurred_at: row.try_get("occurred_at")?,
            attempts: row.try_get("attempts")?,
            not_before: row.try_get("not_before")?,
        })
    }
}

fn outcome(outcome: &'static str) {
    metrics::counter!("wasl_notify_mails_total", "outcome" => outcome).increment(1);
}

/// The wait before attempt `attempts + 1`: doubling from `first_retry`, at most `max_retry`.
fn backoff(config: &NotifyConfig, attempts: i64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    config
        .first_retry
        .saturating_mul(1u32 << doublings)
        .min(config.max_retry)
}

/// The Message-ID of the mail about `event_id` to `user`: the same on every attempt, so a
/// resend after a crash is the same message to the mail system (many clients then show it
/// once).
pub fn message_id(event_id: &str, user: &str, domain: &str) -> String {
    let digest = Sha256::digest(format!("wasl-notify\0{event_id}\0{user}").as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("<{hex}.notify@{domain}>")
}

/// The link to a referral.
pub fn link(base_url: &str, referral: &str) -> String {
    format!("{}{REFERRAL_PATH}{referral}", base_url.trim_end_matches('/'))
}

/// The host of `http(s)://host[:port][/path]`.
fn host_of(url: &str) -> Option<String> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.split(':').next()?
    };
    // Printable ASCII only: the link goes unencoded into the mail's body.
    if !url.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let ok = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b));
    ok.then(|| host.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_id_is_the_same_for_the_same_event_and_person_only() {
        let a = message_id("e1", "u1", "wasl.example.org");
        assert_eq!(a, message_id("e1", "u1", "wasl.example.org"));
        assert_ne!(a, message_id("e1", "u2", "wasl.example.org"));
        assert_ne!(a, message_id("e2", "u1", "wasl.example.org"));
        assert!(a.starts_with('<') && a.ends_with(".notify@wasl.example.org>"));
    }

    #[test]
    fn links_join_the_base_url_and_the_referral() {
        assert_eq!(
            link("https://wasl.example.org/", "r1"),
            "https://wasl.example.org/v1/referrals/r1"
        );
        assert_eq!(
            host_of("https://wasl.example.org:8443/x").as_deref(),
            Some("wasl.example.org")
        );
        assert_eq!(host_of("http://127.0.0.1:8080").as_deref(), Some("127.0.0.1"));
        assert_eq!(host_of("ftp://x"), None);
        assert_eq!(host_of("http://"), None);
        assert_eq!(host_of("http://wasl.example.org/a b"), None);
    }

    #[test]
    fn back_off_doubles_up_to_its_ceiling() {
        let config = NotifyConfig {
            first_retry: Duration::from_secs(2),
            max_retry: Duration::from_secs(60),
            ..NotifyConfig::default()
        };
        let waits: Vec<u64> = (1..=7).map(|a| backoff(&config, a).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 60, 60]);
    }
}
