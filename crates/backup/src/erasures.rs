//! The key-bucket caveat, handled: a backup of the data keys may be older than an erasure the
//! log records, and would then hold a key the erasure destroyed. A restore therefore never
//! writes the key of a case the backed-up log says was erased, and afterwards destroys each such
//! case's key again with the vault's own erasure (which leaves the marker that makes the case
//! read "erased" rather than "key missing").
//!
//! A message on a case subject that is not a readable event (garbage anyone allowed to publish
//! could put there, or an event of a newer Wasl) does not stop the restore: it is reported in
//! [`crate::ErasureReport::unreadable`] and a warning naming its sequence. It is taken for an
//! erasure of the case its subject names when its `ce-type` says so
//! ([`UnreadableEvent::erased_case`]), so an erasure this Wasl cannot read never brings a key back.

use crate::error::BackupError;
use crate::format::{KEYS_BUCKET, Record};
use async_nats::jetstream::{self, stream::DirectGetErrorKind};
use futures_util::StreamExt;
use std::collections::BTreeSet;
use wasl_domain::case::CaseEvent;
use wasl_domain::ids::CaseId;
use wasl_events::DomainEvent;
use wasl_store::StoreError;
use wasl_vault::erase::{CASE_SUBJECT_PREFIX as CASE_SUBJECTS, UnreadableEvent};
use wasl_vault::{DataKey, MasterKey, Vault, VaultConfig, VaultError, keys::WrappedKey};

/// What a stored message says about erasures.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// Not a case event, or a case event other than an erasure.
    Nothing,
    /// A `CasePersonalDataErased` of this case.
    Erased(CaseId),
    /// A message on a case subject that is not a readable event.
    Unreadable(UnreadableEvent),
}

/// What the stored message `record` (with its decoded `payload`) says about erasures.
pub(crate) fn erased_by(record: &Record, payload: &[u8]) -> Found {
    if !record.subject.starts_with(CASE_SUBJECTS) {
        return Found::Nothing;
    }
    let mut headers = async_nats::HeaderMap::new();
    for (name, value) in &record.headers {
        headers.append(name.as_str(), value.as_str());
    }
    match wasl_store::load::decode_message(record.seq, &record.subject, Some(&headers), payload) {
        Ok(stored) => match stored.event {
            DomainEvent::Case(case, CaseEvent::PersonalDataErased { .. }) => Found::Erased(case),
            _ => Found::Nothing,
        },
        Err(_) => Found::Unreadable(UnreadableEvent::describe(record.seq, &record.subject, Some(&headers))),
    }
}

/// The case whose key a message of the key bucket stores, when it stores one (a put, not a
/// delete or purge marker).
pub(crate) fn key_put_of(record: &Record) -> Option<CaseId> {
    let case = record
        .subject
        .strip_prefix(&format!("$KV.{KEYS_BUCKET}.case."))
        .and_then(|id| CaseId::parse(id).ok())?;
    let marker = record
        .headers
        .iter()
        .any(|(name, value)| name.eq_ignore_ascii_case("KV-Operation") && value != "PUT");
    (!marker).then_some(case)
}

/// Reads the restored log for every `CasePersonalDataErased` (and every unreadable case
/// message taken for one, by the same rule as [`erased_by`]).
pub(crate) async fn erased_in_log(js: &jetstream::Context, events: &str) -> Result<BTreeSet<CaseId>, BackupError> {
    let fail = |e: &dyn std::fmt::Display| BackupError::Erasures(e.to_string());
    let stream = js.get_stream(events).await.map_err(|e| fail(&e))?;
    let mut erased = BTreeSet::new();
    // A subscription never ends: read up to the last case event there is.
    let last = match stream
        .direct_get_builder()
        .last_by_subject(format!("{CASE_SUBJECTS}>"))
        .send()
        .await
    {
        Ok(message) => message.sequence,
        Err(err) if err.kind() == DirectGetErrorKind::NotFound => return Ok(erased),
        Err(err) => return Err(fail(&err)),
    };
    let mut feed = wasl_store::subscribe::subscribe(&stream, 1, Some(&format!("{CASE_SUBJECTS}>")))
        .await
        .map_err(|e| fail(&e))?;
    while let Some(recorded) = feed.next().await {
        let sequence = match recorded {
            Ok(recorded) => {
                if let DomainEvent::Case(case, CaseEvent::PersonalDataErased { .. }) = &recorded.event.event {
                    erased.insert(*case);
                }
                recorded.sequence
            }
            // Reported already, when the backup was checked.
            Err(StoreError::Undecodable { sequence, .. }) => {
                let found = UnreadableEvent::read(&stream, sequence).await.map_err(|e| fail(&e))?;
                erased.extend(found.erased_case());
                sequence
            }
            Err(err) => return Err(fail(&err)),
        };
        if sequence >= last {
            return Ok(erased);
        }
    }
    Err(fail(&"the event log's feed ended early"))
}

/// Destroys the key of every case in `erased` with [`Vault::erase`]: idempotent, and it leaves
/// the purge marker that makes the case read "erased".
pub(crate) async fn erase_again(
    js: &jetstream::Context,
    erased: &BTreeSet<CaseId>,
    replicas: usize,
) -> Result<(), BackupError> {
    let config = VaultConfig {
        bucket: KEYS_BUCKET.to_owned(),
        replicas,
        ..VaultConfig::default()
    };
    let vault = Vault::connect(js, NoMasterKey, &config)
        .await
        .map_err(|e| BackupError::Erasures(e.to_string()))?;
    for case in erased {
        vault
            .erase(*case)
            .await
            .map_err(|e| BackupError::Erasures(format!("case {case}: {e}")))?;
    }
    Ok(())
}

/// Erasing a key needs no master key, and a restore should not hold one: this stands in for it
/// and refuses to wrap or unwrap anything.
struct NoMasterKey;

impl MasterKey for NoMasterKey {
    fn id(&self) -> &str {
        "none"
    }

    async fn wrap(&self, _case: CaseId, _key: &DataKey) -> Result<WrappedKey, VaultError> {
        Err(VaultError::MasterKey("a restore holds no master key".to_owned()))
    }

    async fn unwrap(&self, _case: CaseId, _wrapped: &WrappedKey) -> Result<DataKey, VaultError> {
        Err(VaultError::MasterKey("a restore holds no master key".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(subject: &str, headers: &[(&str, &str)]) -> Record {
        Record {
            seq: 1,
            subject: subject.to_owned(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            data: String::new(),
        }
    }

    #[test]
    fn a_stored_key_is_a_put_and_markers_are_not() {
        let case = "0190b2c4-0000-7000-8000-000000000001";
        let subject = format!("$KV.WASL_KEYS.case.{case}");
        assert_eq!(
            key_put_of(&record(&subject, &[])).map(|c| c.to_string()),
            Some(case.to_owned())
        );
        assert!(key_put_of(&record(&subject, &[("KV-Operation", "PURGE"), ("Nats-Rollup", "sub")])).is_none());
        assert!(key_put_of(&record(&subject, &[("KV-Operation", "DEL")])).is_none());
        assert!(key_put_of(&record("$KV.WASL_ROUTER.checkpoint", &[])).is_none());
    }

    #[test]
    fn only_case_events_are_decoded_and_unreadable_ones_described() {
        let case = "0190b2c4-0000-7000-8000-000000000001";
        let subject = format!("wasl.evt.case.{case}");
        assert_eq!(erased_by(&record("wasl.evt.referral.x", &[]), b"junk"), Found::Nothing);
        let Found::Unreadable(garbage) = erased_by(&record(&subject, &[]), b"junk") else {
            panic!("an unreadable case message");
        };
        assert_eq!(garbage.case.map(|c| c.to_string()).as_deref(), Some(case));
        assert_eq!(garbage.erased_case(), None);
        let typed = record(&subject, &[("ce-type", "wasl.case.personal_data_erased.v7")]);
        let Found::Unreadable(typed) = erased_by(&typed, b"junk") else {
            panic!("an unreadable case message");
        };
        assert_eq!(typed.erased_case(), typed.case);
        let Found::Unreadable(nameless) = erased_by(&record("wasl.evt.case.x", &[]), b"junk") else {
            panic!("an unreadable case message");
        };
        assert_eq!(nameless.case, None);
    }
}
