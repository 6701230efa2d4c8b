//! `wasl audit verify|export`: an operator's check of the access audit's keyed chain, and the
//! records themselves. The logic lives in `wasl_api::audit`.

use crate::log::NatsArgs;
use std::error::Error;
use std::path::PathBuf;
use wasl_api::audit::{AuditKey, ChainHead, STREAM};

/// The access audit.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Walk the whole chain with the chain key (derived from the master key) and print its
    /// head. Fails, naming the record, when a record was forged, removed, changed or reordered,
    /// or when the chain no longer holds the head given with --since (it was deleted and
    /// started again).
    Verify {
        /// File holding the master key as 64 hex characters: the chain key is derived from it.
        #[arg(long, env = "WASL_MASTER_KEY_FILE")]
        master_key_file: PathBuf,
        /// The master key's id, as stored beside every key it wraps.
        #[arg(long, env = "WASL_MASTER_KEY_ID", default_value = "local-1")]
        master_key_id: String,
        /// A head printed by an earlier run (`<sequence>:<hash>`): the chain must still hold it.
        #[arg(long, value_name = "SEQ:HASH")]
        since: Option<ChainHead>,
        #[command(flatten)]
        nats: NatsArgs,
    },
    /// Print the records as JSON lines, oldest first: who read which record, when and why.
    /// Filters combine.
    Export {
        /// Only reads by this user id.
        #[arg(long)]
        user: Option<String>,
        /// Only reads by users of this organisation id.
        #[arg(long)]
        org: Option<String>,
        /// Only reads of records naming this id (a case, a referral).
        #[arg(long)]
        record: Option<String>,
        /// Only from this time on (Unix ms).
        #[arg(long)]
        from_ms: Option<i64>,
        /// Only before this time (Unix ms).
        #[arg(long)]
        to_ms: Option<i64>,
        #[command(flatten)]
        nats: NatsArgs,
    },
}

/// Runs an audit command and returns what to print.
pub fn run(command: AuditCommand) -> Result<String, Box<dyn Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        match command {
            AuditCommand::Verify {
                master_key_file,
                master_key_id,
                since,
                nats,
            } => {
                let master = wasl_vault::LocalMasterKey::from_file(&master_key_id, &master_key_file)?;
                let key = AuditKey::from_master(&master);
                let stream = stream(&nats).await?;
                let head = wasl_api::audit::verify(&stream, &key, since.as_ref()).await?;
                Ok(format!(
                    "the audit chain holds: {} record(s), keyed with master key {}\nhead {head}\n(keep the head: `wasl audit verify --since {head}` later checks that the chain still holds it)\n",
                    head.sequence,
                    key.id()
                ))
            }
            AuditCommand::Export {
                user,
                org,
                record,
                from_ms,
                to_ms,
                nats,
            } => {
                let stream = stream(&nats).await?;
                let filter = wasl_api::audit::RecordFilter {
                    user,
                    org,
                    record,
                    from_ms,
                    to_ms,
                };
                let mut out = String::new();
                for found in wasl_api::audit::records(&stream).await? {
                    if filter.matches(&found) {
                        out.push_str(&serde_json::to_string(&found)?);
                        out.push('\n');
                    }
                }
                Ok(out)
            }
        }
    })
}

async fn stream(nats: &NatsArgs) -> Result<async_nats::jetstream::stream::Stream, Box<dyn Error>> {
    let client = crate::connect::connect_with(&nats.nats_url, nats.nats_nkey.as_deref(), None).await?;
    let js = async_nats::jetstream::new(client);
    Ok(js
        .get_stream(STREAM)
        .await
        .map_err(|e| format!("cannot read the access audit ({STREAM}): {e}"))?)
}
