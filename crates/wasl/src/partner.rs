//! `wasl router` (the hub's partner delivery: feeds and partner commands) and `wasl partner …`
//! (what a partner organisation's IT person runs first: listen to its feed, answer referrals).
//! The logic lives in `wasl_router`; this file parses options, connects and prints.

use futures_util::StreamExt;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use wasl_domain::ids::{OrgId, ReferralId};
use wasl_events::partner::{command_subject, inbox_prefix, out_stream};
use wasl_router::{
    CommandReply, CommandServiceConfig, FeedMessage, NotAPartnerMessage, PartnerMessage, RedactionNotice, RouterConfig,
    Verb,
};
use wasl_store::{EventStore, StoreConfig};

/// Options of `wasl router`.
#[derive(Debug, clap::Args)]
pub struct RouterArgs {
    /// Show or resolve the events the router could not deliver, instead of running it.
    #[command(subcommand)]
    pub command: Option<crate::log::RouterCommand>,
    /// The NATS server holding Wasl's event log.
    #[arg(long, env = "WASL_NATS_URL", required = true)]
    pub nats_url: Option<String>,
    /// NKey seed file of the router (router.nk from `wasl nats-config`), when the server
    /// requires one.
    #[arg(long, env = "WASL_NATS_NKEY")]
    pub nats_nkey: Option<PathBuf>,
    /// NKey seed file the partner command service connects with (store.nk from `wasl
    /// nats-config`): it appends the partners' answers to the event log, which the router's own
    /// user may not. Without it the command service uses the router's connection.
    #[arg(long, env = "WASL_COMMANDS_NKEY")]
    pub commands_nkey: Option<PathBuf>,
    /// Base URL of the HTTP API, from which partners fetch a referral's details (the claim
    /// check in every partner message).
    #[arg(long, env = "WASL_API_BASE_URL", default_value = "http://127.0.0.1:8080")]
    pub api_base_url: String,
    /// Replicas of the feeds and the checkpoint bucket created here: 1 for a single server, 3
    /// in a cluster.
    #[arg(long, env = "WASL_REPLICAS", default_value_t = 1)]
    pub replicas: usize,
    /// Read the whole log again from the start (the feeds still receive nothing twice).
    #[arg(long)]
    pub replay: bool,
    /// Serve partner commands (wasl.cmd.<org>.referral.<id>.<verb>) in this process too.
    #[arg(long, env = "WASL_PARTNER_COMMANDS", default_value_t = true, action = clap::ArgAction::Set)]
    pub commands: bool,
    /// Deliver the feeds of organisations with a webhook endpoint (`wasl webhooks set`) in
    /// this process too.
    #[arg(long, env = "WASL_WEBHOOKS", default_value_t = true, action = clap::ArgAction::Set)]
    pub webhooks: bool,
    /// The master key file (64 hex characters), needed to deliver webhooks: their signing
    /// secrets are stored sealed with a key derived from it.
    #[arg(long, env = "WASL_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// The master key's id.
    #[arg(long, env = "WASL_MASTER_KEY_ID", default_value = "local-1")]
    pub master_key_id: String,
    #[command(flatten)]
    pub webhook_allow: crate::webhooks::AllowNetArgs,
    #[command(flatten)]
    pub health: crate::health::HealthArgs,
}

/// Runs the router (and the partner command service) until Ctrl-C or SIGTERM.
pub fn router(args: RouterArgs) -> Result<String, Box<dyn Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let nats_url = args.nats_url.clone().ok_or("wasl router needs --nats-url")?;
        let client = crate::connect::patiently("the router", || {
            crate::connect::connect_with(&nats_url, args.nats_nkey.as_deref(), None)
        })
        .await?;
        let store_config = StoreConfig {
            replicas: args.replicas,
            ..StoreConfig::default()
        };
        let mut config = RouterConfig {
            events: store_config.clone(),
            api_base_url: args.api_base_url,
            ..RouterConfig::default()
        };
        config.out_streams.replicas = args.replicas;
        let router = crate::connect::patiently("the router", || {
            wasl_router::router::Router::open(client.clone(), config.clone())
        })
        .await?;
        if args.replay {
            router.reset_checkpoint().await?;
            eprintln!("wasl router: replaying the log from the start");
        }
        let metrics = router.metrics();
        let stop = crate::api::on_signal();
        if let Some(listen) = args.health.health_listen {
            let max = args.health.ready_max_lag;
            let (client, metrics) = (client.clone(), metrics.clone());
            let events = EventStore::open_existing(client.clone(), store_config.clone())
                .await?
                .ok_or("the NATS server holds no Wasl event log")?
                .stream()
                .clone();
            let check: crate::health::Check = Arc::new(move || {
                let (client, metrics, events) = (client.clone(), metrics.clone(), events.clone());
                Box::pin(async move {
                    if client.connection_state() != async_nats::connection::State::Connected {
                        return Err("NATS is not connected".to_owned());
                    }
                    if let Some(why) = metrics.diverged() {
                        return Err(why);
                    }
                    let end = crate::health::log_end(&events).await?;
                    let position = metrics.position.load(std::sync::atomic::Ordering::Relaxed);
                    let lag = end.saturating_sub(position);
                    if lag > max {
                        return Err(format!("the router is {lag} events behind the log"));
                    }
                    let parked = metrics.open_parked.load(std::sync::atomic::Ordering::Relaxed);
                    Ok(serde_json::json!({"log_position": end, "position": position, "lag": lag, "parked": parked}))
                })
            });
            let bound = crate::health::serve(listen, check, stop.clone().cancelled_owned()).await?;
            eprintln!("wasl router: /healthz and /readyz on http://{bound}");
        }
        let commands = if args.commands {
            let commands_client = match &args.commands_nkey {
                Some(seed) => {
                    crate::connect::patiently("the command service", || {
                        crate::connect::connect_with(&nats_url, Some(seed), None)
                    })
                    .await?
                }
                None => client.clone(),
            };
            let store = Arc::new(
                crate::connect::patiently("the command service", || {
                    EventStore::open(commands_client.clone(), store_config.clone())
                })
                .await?,
            );
            let service = wasl_router::CommandService::new(store, CommandServiceConfig::default());
            let stopped = stop.clone().cancelled_owned();
            Some(tokio::spawn(async move { service.run(stopped).await }))
        } else {
            None
        };
        let webhooks = if args.webhooks {
            let file = args.master_key_file.as_deref().ok_or(
                "wasl router delivers webhooks and needs the master key to open their signing secrets: \
                 --master-key-file (or WASL_MASTER_KEY_FILE); or --webhooks false",
            )?;
            let config = wasl_webhooks::WebhooksConfig {
                replicas: args.replicas,
                destinations: args.webhook_allow.destinations(),
                ..wasl_webhooks::WebhooksConfig::default()
            };
            let key = crate::webhooks::secrets_key(&args.master_key_id, file)?;
            let webhooks = crate::connect::patiently("webhook delivery", || {
                wasl_webhooks::Webhooks::connect(
                    async_nats::jetstream::new(client.clone()),
                    config.clone(),
                    key.clone(),
                )
            })
            .await?;
            let stopped = stop.clone().cancelled_owned();
            Some(tokio::spawn(async move { webhooks.run(stopped).await }))
        } else {
            None
        };
        eprintln!(
            "wasl router: delivering referral events to the organisations' feeds{}{}; Ctrl-C stops it",
            if args.commands {
                ", serving partner commands"
            } else {
                ""
            },
            if args.webhooks { ", delivering webhooks" } else { "" }
        );
        let result = router.run(stop.clone().cancelled_owned()).await;
        stop.cancel();
        if let Some(commands) = commands {
            commands.await??;
        }
        if let Some(webhooks) = webhooks {
            webhooks.await??;
        }
        result?;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        Ok(format!(
            "wasl router: stopped at sequence {} after routing {} partner messages ({} already delivered)\n",
            load(&metrics.position),
            load(&metrics.routed),
            load(&metrics.skipped)
        ))
    })
}

/// What a partner does.
#[derive(Debug, clap::Subcommand)]
pub enum PartnerCommand {
    /// Print the referrals addressed to your organisation as they come, and the redaction
    /// notices of erased cases, after those that came while you were away (a durable consumer
    /// remembers where you stopped).
    Listen(ListenArgs),
    /// Acknowledge receipt of a referral.
    Receive(AnswerArgs),
    /// Accept a referral.
    Accept(AnswerArgs),
    /// Decline a referral (--reason, and --suggested-org with `redirected`).
    Reject(AnswerArgs),
    /// Start the service.
    Start(AnswerArgs),
    /// Put the service on hold (--reason).
    Hold(AnswerArgs),
    /// Resume the service after a hold.
    Resume(AnswerArgs),
    /// Record that the service was delivered.
    Complete(AnswerArgs),
    /// Record that the service could not be delivered (--reason).
    Fail(AnswerArgs),
}

/// How a partner connects.
#[derive(Debug, clap::Args)]
pub struct PartnerConnection {
    /// The hub's NATS server (the URL in your README from `wasl nats-config`).
    #[arg(long, env = "WASL_NATS_URL")]
    pub nats_url: String,
    /// Your organisation's NKey seed file (`<org>.nk` from `wasl nats-config`).
    #[arg(long, env = "WASL_PARTNER_CREDS")]
    pub creds: PathBuf,
    /// Your organisation id; by default the seed file's name (`<org>.nk`).
    #[arg(long, env = "WASL_PARTNER_ORG")]
    pub org: Option<String>,
}

/// Options of `wasl partner listen`.
#[derive(Debug, clap::Args)]
pub struct ListenArgs {
    #[command(flatten)]
    pub connection: PartnerConnection,
    /// The durable consumer that remembers what you have seen: one the hub keeps on your feed
    /// (`referrals` or `wasl-partner-cli`; partners cannot create consumers).
    #[arg(long, default_value = "wasl-partner-cli")]
    pub consumer: String,
    /// Print each partner message as one line of JSON, as it arrived.
    #[arg(long)]
    pub json: bool,
    /// Stop once everything waiting has been printed, instead of listening on.
    #[arg(long)]
    pub until_idle: bool,
}

/// Options of the answering commands.
#[derive(Debug, clap::Args)]
pub struct AnswerArgs {
    /// The referral's id.
    pub referral: String,
    #[command(flatten)]
    pub connection: PartnerConnection,
    /// Reason code (reject, hold, fail), e.g. `no_capacity`, `not_eligible`, `redirected`.
    #[arg(long)]
    pub reason: Option<String>,
    /// With `reject --reason redirected`: the organisation that could help instead.
    #[arg(long)]
    pub suggested_org: Option<String>,
    /// The command's id (a UUID). Sending the same id again is safe: it answers the first
    /// outcome and changes nothing. By default a new one.
    #[arg(long)]
    pub command_id: Option<String>,
}

impl PartnerCommand {
    fn verb(&self) -> Option<(Verb, &AnswerArgs)> {
        Some(match self {
            Self::Listen(_) => return None,
            Self::Receive(a) => (Verb::Receive, a),
            Self::Accept(a) => (Verb::Accept, a),
            Self::Reject(a) => (Verb::Reject, a),
            Self::Start(a) => (Verb::Start, a),
            Self::Hold(a) => (Verb::Hold, a),
            Self::Resume(a) => (Verb::Resume, a),
            Self::Complete(a) => (Verb::Complete, a),
            Self::Fail(a) => (Verb::Fail, a),
        })
    }
}

/// Runs a partner command.
pub fn partner(command: PartnerCommand) -> Result<String, Box<dyn Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match (&command, command.verb()) {
        (PartnerCommand::Listen(args), _) => runtime.block_on(listen(args)),
        (_, Some((verb, args))) => runtime.block_on(answer(verb, args)),
        (_, None) => Err("unknown partner command".into()),
    }
}

/// The organisation of a partner connection: `--org`, or the seed file's name.
fn org_of(connection: &PartnerConnection) -> Result<OrgId, Box<dyn Error>> {
    let given = match &connection.org {
        Some(org) => org.clone(),
        None => connection
            .creds
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_owned)
            .ok_or("give --org: the seed file's name is not an organisation id")?,
    };
    OrgId::parse(&given).map_err(|_| format!("{given:?} is not an organisation id (give --org)").into())
}

async fn partner_client(connection: &PartnerConnection, org: OrgId) -> Result<async_nats::Client, Box<dyn Error>> {
    crate::connect::connect_with(
        &connection.nats_url,
        Some(Path::new(&connection.creds)),
        Some(inbox_prefix(org)),
    )
    .await
    .map_err(Into::into)
}

async fn listen(args: &ListenArgs) -> Result<String, Box<dyn Error>> {
    use async_nats::jetstream::consumer::pull;
    let org = org_of(&args.connection)?;
    let client = partner_client(&args.connection, org).await?;
    let js = async_nats::jetstream::new(client);
    let stream = js.get_stream(out_stream(org)).await.map_err(|e| {
        format!(
            "cannot open your feed {}: {e} (the router creates it when your organisation is registered)",
            out_stream(org)
        )
    })?;
    let consumer: async_nats::jetstream::consumer::Consumer<pull::Config> =
        stream.get_consumer(&args.consumer).await.map_err(|e| {
            format!(
                "cannot open the consumer {} of your feed: {e} (the hub keeps the consumers {} on every feed; partners cannot create their own)",
                args.consumer,
                wasl_events::partner::PARTNER_CONSUMERS.join(", ")
            )
        })?;
    if !args.json {
        eprintln!("wasl partner: listening to {}; Ctrl-C stops", out_stream(org));
    }
    let (mut printed, mut unreadable) = (0u64, 0u64);
    let mut stop = std::pin::pin!(crate::api::shutdown_signal());
    loop {
        let batch = consumer
            .fetch()
            .max_messages(100)
            .expires(Duration::from_secs(if args.until_idle { 1 } else { 5 }))
            .messages()
            .await?;
        let mut batch = std::pin::pin!(batch);
        let mut got = 0;
        loop {
            let next = tokio::select! {
                next = batch.next() => next,
                () = &mut stop => return Ok(summary(printed, unreadable)),
            };
            let Some(message) = next else { break };
            let message = message.map_err(|e| format!("reading your feed: {e}"))?;
            match line_for(&message.payload, args.json) {
                Ok(line) => {
                    println!("{line}");
                    printed += 1;
                }
                // Anyone allowed to publish on the feed's subjects can put anything there: said
                // on stderr by its sequence (never its contents), acknowledged like the others so
                // it is not shown again, and listening goes on.
                Err(reason) => {
                    let sequence = message
                        .info()
                        .map_or_else(|_| "?".to_owned(), |i| i.stream_sequence.to_string());
                    eprintln!(
                        "wasl partner: error: message {sequence} of {} is not a partner message this wasl can read ({reason}); skipped",
                        out_stream(org)
                    );
                    unreadable += 1;
                }
            }
            message
                .ack()
                .await
                .map_err(|e| format!("acknowledging a message: {e}"))?;
            got += 1;
        }
        if got == 0 && args.until_idle {
            return Ok(summary(printed, unreadable));
        }
    }
}

/// The line printed for a message of the feed, or why it is not a partner message: with
/// `json`, the message as it arrived when it is JSON of a partner schema — a referral message or
/// a redaction notice — (on one line); else one line for people.
fn line_for(payload: &[u8], json: bool) -> Result<String, String> {
    use wasl_router::message::{REDACTION_SCHEMA, SCHEMA};
    if json {
        let text = std::str::from_utf8(payload).map_err(|_| "not UTF-8".to_owned())?;
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            match e.classify() {
                serde_json::error::Category::Data => NotAPartnerMessage::WrongShape,
                _ => NotAPartnerMessage::NotJson,
            }
            .to_string()
        })?;
        if !matches!(
            value.get("schema").and_then(serde_json::Value::as_str),
            Some(SCHEMA | REDACTION_SCHEMA)
        ) {
            return Err(NotAPartnerMessage::UnknownSchema.to_string());
        }
        if text.contains(['\n', '\r']) {
            // One message, one line.
            return serde_json::to_string(&value).map_err(|_| NotAPartnerMessage::NotJson.to_string());
        }
        Ok(text.trim().to_owned())
    } else {
        match FeedMessage::parse(payload).map_err(|e| e.to_string())? {
            FeedMessage::Referral(message) => Ok(describe(&message)),
            FeedMessage::Redaction(notice) => Ok(describe_redaction(&notice)),
        }
    }
}

fn summary(printed: u64, unreadable: u64) -> String {
    if unreadable == 0 {
        format!("wasl partner: {printed} message(s) printed\n")
    } else {
        format!("wasl partner: {printed} message(s) printed, {unreadable} not partner messages skipped\n")
    }
}

/// One line a person can read: when, what, which referral, for what and where, and the link.
fn describe(m: &PartnerMessage) -> String {
    let place = match &m.client.district {
        Some(d) => format!("{}/{d}", m.client.governorate),
        None => m.client.governorate.clone(),
    };
    let overdue = if m.overdue.is_empty() {
        String::new()
    } else {
        let kinds: Vec<&str> = m.overdue.iter().map(|d| d.kind.as_str()).collect();
        format!("  overdue: {}", kinds.join(","))
    };
    format!(
        "{}  {:<12} referral {}  {} {}  {} {} {}  {}  {}{}",
        m.occurred_at,
        m.status,
        m.referral_id,
        m.category,
        m.priority,
        m.client.sex,
        m.client.age_group,
        m.client.language,
        place,
        m.details_url,
        overdue
    )
}

/// One line for a redaction notice: when, what to do, and about which referrals.
fn describe_redaction(notice: &RedactionNotice) -> String {
    format!(
        "{}  {:<12} referrals {}  personal data erased: delete what you hold about them",
        notice.occurred_at,
        "redact",
        notice.referral_ids.join(" ")
    )
}

async fn answer(verb: Verb, args: &AnswerArgs) -> Result<String, Box<dyn Error>> {
    let org = org_of(&args.connection)?;
    let referral =
        ReferralId::parse(&args.referral).map_err(|_| format!("{:?} is not a referral id", args.referral))?;
    let command_id = match &args.command_id {
        Some(id) => uuid::Uuid::parse_str(id).map_err(|_| format!("--command-id {id:?} is not a UUID"))?,
        None => uuid::Uuid::now_v7(),
    };
    let mut body = serde_json::json!({ "command_id": command_id.to_string() });
    if let Some(code) = &args.reason {
        body["reason"] = serde_json::json!({ "code": code });
    }
    if let Some(org) = &args.suggested_org {
        body["suggested_org"] = serde_json::json!(org);
    }
    let client = partner_client(&args.connection, org).await?;
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        client.request(command_subject(org, referral, verb.token()), body.to_string().into()),
    )
    .await
    .map_err(|_| "no answer from Wasl within 10 s (is `wasl router` running?)")?
    .map_err(|e| format!("the command was not delivered: {e}"))?;
    let reply: CommandReply =
        serde_json::from_slice(&reply.payload).map_err(|e| format!("an answer this wasl cannot read: {e}"))?;
    match (reply.ok, reply.error) {
        (true, _) => Ok(format!(
            "{} {referral}: done (version {}, position {}, command id {command_id})\n",
            verb.token(),
            reply.version.unwrap_or_default(),
            reply.position.unwrap_or_default()
        )),
        (false, Some(error)) => Err(format!(
            "{} {referral}: refused: {} ({})",
            verb.token(),
            error.code,
            error.message
        )
        .into()),
        (false, None) => Err(format!("{} {referral}: refused", verb.token()).into()),
    }
}
