//! `wasl notify`: the notification service against external NATS and a database (production;
//! `wasl up --smtp-url …` runs it too). It mails the people a referral's events concern — what
//! happened and a link, never who it is about; see docs/notifications.md.

use std::error::Error;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use wasl_notify::{NotifyConfig, NotifyMetrics, NotifyService, SmtpConfig, SmtpNotifier, SmtpUrl};
use wasl_store::{EventStore, StoreConfig};

/// How notifications are mailed; shared by `wasl notify` and `wasl up`.
#[derive(Debug, Clone, clap::Args)]
pub struct MailArgs {
    /// The SMTP server: `smtps://user:pass@host` (TLS, port 465), `smtp://user:pass@host:587`
    /// (STARTTLS required), `smtp://host:25?tls=none` (plain), `smtp://127.0.0.1:2525` (plain to
    /// loopback). `wasl up` mails nothing without it. The password is never printed.
    #[arg(long, env = "WASL_SMTP_URL")]
    pub smtp_url: Option<SmtpUrl>,
    /// The sender of the mail, `wasl@example.org` or `Wasl <wasl@example.org>`; use an address
    /// of your own domain that the SMTP server may send as.
    #[arg(long, env = "WASL_SMTP_FROM", default_value = "Wasl <wasl@localhost>")]
    pub smtp_from: String,
    /// Where people open Wasl: each mail links to `<base url>/v1/referrals/<id>`. `wasl up`
    /// defaults to its own API address.
    #[arg(long, env = "WASL_BASE_URL")]
    pub base_url: Option<String>,
}

/// Options of `wasl notify`.
#[derive(Debug, clap::Args)]
pub struct NotifyArgs {
    #[command(flatten)]
    pub mail: MailArgs,
    /// The database the service keeps its checkpoint and what it mailed in (the read models'
    /// database): `postgres://user@host/db` or `sqlite:path/to/file.db`.
    #[arg(long, env = "WASL_DATABASE_URL", default_value = "sqlite:./data/wasl.db")]
    pub database_url: String,
    /// The NATS server holding Wasl's event log and accounts (or a comma-separated list of a
    /// cluster's nodes).
    #[arg(long, env = "WASL_NATS_URL")]
    pub nats_url: String,
    /// NKey seed file of Wasl's own services (hub.nk from `wasl nats-config`), when the server
    /// requires one.
    #[arg(long, env = "WASL_NATS_NKEY")]
    pub nats_nkey: Option<PathBuf>,
    #[command(flatten)]
    pub health: crate::health::HealthArgs,
}

/// Most time for one message, connection to `QUIT`.
const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// The notifier `mail` describes, or `None` without `--smtp-url`.
fn notifier(mail: &MailArgs) -> Result<Option<SmtpNotifier>, Box<dyn Error>> {
    let Some(url) = mail.smtp_url.clone() else {
        return Ok(None);
    };
    Ok(Some(SmtpNotifier::new(&SmtpConfig {
        url,
        from: mail.smtp_from.clone(),
        timeout: SEND_TIMEOUT,
    })?))
}

/// Opens the service on `store` when `mail` names an SMTP server; links go to `default_base`
/// unless `--base-url` says otherwise.
async fn open(
    mail: &MailArgs,
    default_base: String,
    database_url: &str,
    store: Arc<EventStore>,
) -> Result<Option<NotifyService>, Box<dyn Error>> {
    let Some(notifier) = notifier(mail)? else {
        return Ok(None);
    };
    let config = NotifyConfig {
        base_url: mail.base_url.clone().unwrap_or(default_base),
        send_timeout: SEND_TIMEOUT,
        ..NotifyConfig::default()
    };
    Ok(Some(
        NotifyService::open(database_url, store, Arc::new(notifier), config).await?,
    ))
}

/// For `wasl up`: the service, or `None` (notifications off) without `--smtp-url`. Links go to
/// the API on `listen` unless `--base-url` is given.
pub async fn start(
    mail: &MailArgs,
    listen: SocketAddr,
    database_url: &str,
    store: Arc<EventStore>,
) -> Result<Option<NotifyService>, Box<dyn Error>> {
    open(mail, format!("http://{listen}"), database_url, store).await
}

/// For `wasl up`'s banner: where mail goes, or how to turn it on.
pub fn describe(mail: &MailArgs) -> String {
    match &mail.smtp_url {
        Some(url) => format!("  mail       notifications via {url} from {}\n", mail.smtp_from),
        None => "  mail       off (give --smtp-url to mail people about their referrals)\n".to_owned(),
    }
}

/// Runs `wasl notify`; returns what to print.
pub fn run(args: NotifyArgs) -> Result<String, Box<dyn Error>> {
    if args.mail.smtp_url.is_none() {
        return Err("wasl notify needs --smtp-url (or WASL_SMTP_URL)".into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let client = crate::connect::patiently("the notification service", || {
            crate::connect::connect_with(&args.nats_url, args.nats_nkey.as_deref(), None)
        })
        .await?;
        let store = crate::connect::patiently("the notification service", || {
            EventStore::open_existing(client.clone(), StoreConfig::default())
        })
        .await?
        .ok_or("the NATS server holds no Wasl event log (stream WASL_EVENTS)")?;
        let service = open(
            &args.mail,
            "http://127.0.0.1:8080".to_owned(),
            &args.database_url,
            Arc::new(store),
        )
        .await?
        .ok_or("wasl notify needs --smtp-url")?;
        let stop = crate::api::on_signal();
        if let Some(listen) = args.health.health_listen {
            let service = service.clone();
            let check: crate::health::Check = Arc::new(move || {
                let service = service.clone();
                Box::pin(async move { readiness(&service).await })
            });
            let bound = crate::health::serve(listen, check, stop.clone().cancelled_owned()).await?;
            eprintln!("wasl notify: /healthz and /readyz on http://{bound}");
        }
        eprintln!(
            "wasl notify: following the event log; mailing through {}; Ctrl-C stops it",
            args.mail.smtp_url.as_ref().map(ToString::to_string).unwrap_or_default()
        );
        let finished = service.run(stop.clone().cancelled_owned()).await;
        stop.cancel();
        finished?;
        let metrics = service.metrics();
        Ok(format!(
            "stopped at sequence {}; {} mail(s) sent in this run\n",
            metrics.position.load(Ordering::Relaxed),
            metrics.sent.load(Ordering::Relaxed)
        ))
    })
}

/// The service's readiness: where it is and what waits; not ready while it has stopped
/// because the log went backwards.
async fn readiness(service: &NotifyService) -> Result<serde_json::Value, String> {
    let metrics = service.metrics();
    if let Some(why) = metrics.diverged() {
        return Err(why);
    }
    let mail = service.mail().await.map_err(|e| e.to_string())?;
    Ok(serde_json::json!({
        "position": metrics.position.load(Ordering::Relaxed),
        "pending": mail.pending,
        "sent": mail.sent,
        "failed": mail.failed,
        "parked": metrics.parked.load(Ordering::Relaxed),
    }))
}

/// The service's part of `wasl up`'s `/readyz`: where it is, what it mailed and retried, and
/// not ready while the event log is behind its checkpoint.
pub fn check(metrics: Arc<NotifyMetrics>) -> wasl_api::ServiceCheck {
    Arc::new(move || {
        if let Some(why) = metrics.diverged() {
            return Err(why);
        }
        Ok(serde_json::json!({
            "position": metrics.position.load(Ordering::Relaxed),
            "sent": metrics.sent.load(Ordering::Relaxed),
            "retried": metrics.retried.load(Ordering::Relaxed),
            "failed": metrics.failed.load(Ordering::Relaxed),
            "parked": metrics.parked.load(Ordering::Relaxed),
        }))
    })
}
