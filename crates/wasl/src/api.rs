//! `wasl api` (the HTTP API as a service), `wasl users add` (the first admin of a new Wasl) and
//! `wasl users decide-roles` (the operator's break-glass for a role request no second admin can
//! decide).

use std::error::Error;
use std::io::BufRead;
use wasl_api::ApiConfig;
use wasl_api::auth::accounts::Accounts;
use wasl_domain::Role;
use wasl_domain::ids::OrgId;

/// Serves the API until Ctrl-C or SIGTERM, then finishes the requests in flight.
pub fn serve(config: ApiConfig) -> Result<String, Box<dyn Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let app = crate::connect::patiently("the API", || config.build()).await?;
        tracing::info!(address = %app.address(), "the API is listening");
        eprintln!("wasl api: listening on http://{}", app.address());
        if let Some(metrics) = app.metrics_address() {
            tracing::info!(address = %metrics, "metrics are served");
            eprintln!("wasl api: metrics on http://{metrics}/metrics");
        }
        app.run(on_signal()).await?;
        Ok("wasl api: stopped\n".to_owned())
    })
}

/// A token cancelled on Ctrl-C or SIGTERM.
pub(crate) fn on_signal() -> wasl_api::CancellationToken {
    let token = wasl_api::CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        cancel.cancel();
    });
    token
}

/// Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// Options of `wasl users add`.
#[derive(Debug, clap::Args)]
pub struct AddUserArgs {
    /// NATS server holding Wasl's accounts.
    #[arg(long, env = "WASL_NATS_URL")]
    nats_url: String,
    /// NKey seed file to authenticate to NATS with (the hub's `hub.nk`), when the server
    /// requires one.
    #[arg(long, env = "WASL_NATS_NKEY")]
    nats_nkey: Option<std::path::PathBuf>,
    /// Login name.
    #[arg(long)]
    username: String,
    /// The user's organisation id (UUIDv7).
    #[arg(long)]
    org: String,
    /// A role (repeat for several): caseworker, supervisor, focal_point, partner_system,
    /// coordinator, admin.
    #[arg(long = "role", required = true)]
    roles: Vec<String>,
    /// Replicas of the accounts stream when it is created here.
    #[arg(long, env = "WASL_REPLICAS", default_value_t = 1)]
    replicas: usize,
}

/// Creates a local account; the password is read from the first line of standard input, so it
/// never appears in the shell history or the process list.
pub fn add_user(args: AddUserArgs) -> Result<String, Box<dyn Error>> {
    let org = OrgId::parse(&args.org)?;
    let roles = args
        .roles
        .iter()
        .map(|r| Role::parse(r))
        .collect::<Result<Vec<_>, _>>()?;
    let mut password = String::new();
    std::io::stdin().lock().read_line(&mut password)?;
    let password = password.trim_end_matches(['\r', '\n']);
    if password.chars().count() < wasl_api::auth::password::MIN_LENGTH {
        return Err("the password (read from standard input) must be at least 12 characters".into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let client = crate::connect::connect_with(&args.nats_url, args.nats_nkey.as_deref(), None).await?;
        let accounts = Accounts::open(async_nats::jetstream::new(client), args.replicas).await?;
        let user = accounts
            .create_user(None, org, &args.username, &roles, password)
            .await?;
        Ok(format!(
            "created user {} ({}) in organisation {}\n",
            user.username, user.id, user.org
        ))
    })
}

/// Options of `wasl users decide-roles`.
#[derive(Debug, clap::Args)]
pub struct DecideRolesArgs {
    /// NATS server holding Wasl's accounts.
    #[arg(long, env = "WASL_NATS_URL")]
    nats_url: String,
    /// NKey seed file to authenticate to NATS with (the hub's `hub.nk`), when the server
    /// requires one.
    #[arg(long, env = "WASL_NATS_NKEY")]
    nats_nkey: Option<std::path::PathBuf>,
    /// The user whose roles were asked for (id).
    #[arg(long)]
    user: String,
    /// The pending request (the `id` of the 202 answer to `PUT /v1/users/{id}/roles`).
    #[arg(long)]
    request: String,
    /// Reject it instead of approving it.
    #[arg(long)]
    reject: bool,
    /// Replicas of the accounts stream when it is created here.
    #[arg(long, env = "WASL_REPLICAS", default_value_t = 1)]
    replicas: usize,
}

/// Approves or rejects a pending role request as the operator: the break-glass for an
/// organisation with a single admin, where no second admin can. The record names no admin and
/// says the operator decided (`by_operator`), so the accounts log shows the break-glass was
/// used.
pub fn decide_roles(args: DecideRolesArgs) -> Result<String, Box<dyn Error>> {
    let user = wasl_domain::ids::UserId::parse(&args.user)?;
    let request = wasl_domain::ids::UserId::parse(&args.request)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let client = crate::connect::connect_with(&args.nats_url, args.nats_nkey.as_deref(), None).await?;
        let accounts = Accounts::open(async_nats::jetstream::new(client), args.replicas).await?;
        if accounts.role_request(request).is_none_or(|r| r.user != user) {
            return Err(format!("no pending role request {request} for user {user}").into());
        }
        let decided = accounts.decide_role_request(None, request, !args.reject).await?;
        let roles: Vec<&str> = decided.roles.iter().map(|r| r.code()).collect();
        tracing::warn!(%request, %user, approved = !args.reject, "a role request was decided by the operator (break-glass)");
        Ok(format!(
            "{} role request {request} for user {user} as the operator (recorded); roles now: {}\n",
            if args.reject { "rejected" } else { "approved" },
            roles.join(", ")
        ))
    })
}

/// Options of `wasl tokens issue`.
#[derive(Debug, clap::Args)]
pub struct IssueTokenArgs {
    /// NATS server holding Wasl's accounts.
    #[arg(long, env = "WASL_NATS_URL")]
    nats_url: String,
    /// NKey seed file to authenticate to NATS with (the hub's `hub.nk`), when the server
    /// requires one.
    #[arg(long, env = "WASL_NATS_NKEY")]
    nats_nkey: Option<std::path::PathBuf>,
    /// The organisation the token acts for (UUIDv7).
    #[arg(long)]
    org: String,
    /// The role it acts under: partner_system, focal_point, caseworker, supervisor or
    /// coordinator.
    #[arg(long, default_value = "partner_system")]
    role: String,
    /// What it is for.
    #[arg(long)]
    label: String,
    /// Days until it expires (1–730).
    #[arg(long, default_value_t = 90)]
    days: u32,
    /// Replicas of the accounts stream when it is created here.
    #[arg(long, env = "WASL_REPLICAS", default_value_t = 1)]
    replicas: usize,
}

/// Issues a token and prints its secret (once) on standard output, for scripts and the first
/// partner system of a new Wasl.
pub fn issue_token(args: IssueTokenArgs) -> Result<String, Box<dyn Error>> {
    let org = OrgId::parse(&args.org)?;
    let role = Role::parse(&args.role)?;
    if matches!(role, Role::Admin | Role::System) {
        return Err("a token cannot administer; use an account".into());
    }
    if !(1..=730).contains(&args.days) {
        return Err("--days must be 1 to 730".into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let client = crate::connect::connect_with(&args.nats_url, args.nats_nkey.as_deref(), None).await?;
        let accounts = Accounts::open(async_nats::jetstream::new(client), args.replicas).await?;
        let now = wasl_domain::time::Timestamp::from_unix_millis(wasl_api::auth::accounts::now_millis());
        let by = wasl_domain::ids::UserId::from_uuid(uuid::Uuid::now_v7())?;
        let expires = now.plus_hours(24 * i64::from(args.days));
        let (token, secret) = accounts.issue_token(by, org, role, &args.label, expires).await?;
        eprintln!(
            "issued token {} for organisation {}; the secret below is shown once",
            token.id, token.org
        );
        Ok(format!("{secret}\n"))
    })
}
