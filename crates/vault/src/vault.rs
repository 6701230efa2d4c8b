//! The key bucket: create, fetch, cache, erase and rewrap data keys.

use crate::error::VaultError;
use crate::keys::{DataKey, MasterKey, WrappedKey};
use crate::seal::{self, PiiField, Revealed};
use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasl_domain::ids::{CaseId, EventId};
use wasl_domain::pii::EncryptedPii;

/// Settings of the vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultConfig {
    /// The KV bucket holding wrapped data keys.
    pub bucket: String,
    /// Replicas: the same as the event stream.
    pub replicas: usize,
    /// How long an opened data key stays in memory after it was fetched (reading it again does
    /// not extend it). An erasure anywhere evicts it at once, whatever is left of this.
    pub cache_ttl: Duration,
}

impl Default for VaultConfig {
    fn default() -> Self {
        Self {
            bucket: "WASL_KEYS".to_owned(),
            replicas: 1,
            cache_ttl: Duration::from_secs(60),
        }
    }
}

/// Whether a case has a key.
#[derive(Debug)]
pub enum KeyState {
    /// No key yet (nothing was ever sealed for the case).
    Missing,
    /// The key, opened.
    Active(Arc<DataKey>),
    /// The key was destroyed: the case's personal data is erased.
    Erased,
}

/// What a master-key rotation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RotationReport {
    /// Keys rewrapped under the new master key.
    pub rewrapped: usize,
    /// Keys already under the new master key.
    pub already_current: usize,
    /// Erased keys (purge markers), skipped.
    pub erased: usize,
}

/// Data keys per case, wrapped by a master key, in a JetStream KV bucket.
pub struct Vault<M: MasterKey> {
    kv: kv::Store,
    master: M,
    ttl: Duration,
    cache: Arc<KeyCache>,
    /// The survivor-code lookup key, once read or made (it is never erased).
    lookup: tokio::sync::OnceCell<Arc<DataKey>>,
    watcher: tokio::task::AbortHandle,
}

impl<M: MasterKey> Drop for Vault<M> {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

/// Opened keys in memory, trusted only while this process watches the bucket for erasures:
/// an erasure by any process (another API instance, `wasl retention --apply`) evicts the key
/// here at once, and a case seen erased is never cached again.
#[derive(Default)]
struct KeyCache {
    keys: Mutex<HashMap<CaseId, (Arc<DataKey>, Instant)>>,
    erased: Mutex<std::collections::HashSet<CaseId>>,
    /// Whether the watch runs: without it nothing is cached (an erasure could go unseen).
    watching: std::sync::atomic::AtomicBool,
}

impl KeyCache {
    fn evict(&self, case: CaseId) {
        self.erased
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(case);
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&case);
    }

    fn forget_all(&self) {
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    fn seen_erased(&self, case: CaseId) -> bool {
        self.erased
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&case)
    }
}

/// Follows the bucket's changes for as long as the vault lives: a deleted or purged key is
/// evicted from the cache. While the watch is down nothing is cached and the cache is emptied.
async fn watch_erasures(kv: kv::Store, cache: std::sync::Weak<KeyCache>) {
    use std::sync::atomic::Ordering;
    loop {
        let watch = kv.watch_all().await;
        let Some(strong) = cache.upgrade() else { return };
        let mut watch = match watch {
            Ok(watch) => {
                strong.watching.store(true, Ordering::SeqCst);
                watch
            }
            Err(error) => {
                tracing::warn!(%error, "cannot watch the key bucket for erasures; keys are not cached meanwhile");
                strong.watching.store(false, Ordering::SeqCst);
                strong.forget_all();
                drop(strong);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        drop(strong);
        while let Some(entry) = watch.next().await {
            let Some(strong) = cache.upgrade() else { return };
            match entry {
                Ok(entry) if entry.operation != kv::Operation::Put => {
                    if let Some(case) = entry.key.strip_prefix("case.").and_then(|id| CaseId::parse(id).ok()) {
                        strong.evict(case);
                    } else {
                        // A key we cannot name: evict everything rather than keep it.
                        strong.forget_all();
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "the watch of the key bucket failed; starting it again");
                    break;
                }
            }
        }
        let Some(strong) = cache.upgrade() else { return };
        strong.watching.store(false, Ordering::SeqCst);
        strong.forget_all();
        drop(strong);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn kv_key(case: CaseId) -> String {
    format!("case.{case}")
}

impl<M: MasterKey> Vault<M> {
    /// Opens the bucket, creating it when missing (history 1, file storage).
    pub async fn connect(js: &jetstream::Context, master: M, config: &VaultConfig) -> Result<Self, VaultError> {
        // The bucket's stream is made here with the KV conventions (as `create_key_value` would)
        // but with deletes allowed: erasure overwrites a key's message on disk (JetStream's secure
        // delete), which KV buckets deny by default and which cannot be allowed later.
        let stream_name = format!("KV_{}", config.bucket);
        if js.get_stream(&stream_name).await.is_err() {
            let stream = jetstream::stream::Config {
                name: stream_name.clone(),
                description: Some("Wasl data keys, one per case, wrapped by the master key".to_owned()),
                subjects: vec![format!("$KV.{}.>", config.bucket)],
                max_messages_per_subject: 1,
                max_bytes: -1,
                max_messages: -1,
                storage: jetstream::stream::StorageType::File,
                allow_rollup: true,
                deny_delete: false,
                deny_purge: false,
                allow_direct: true,
                num_replicas: config.replicas,
                discard: jetstream::stream::DiscardPolicy::New,
                ..Default::default()
            };
            if let Err(err) = js.create_stream(stream).await {
                // Created concurrently by another process is fine; anything else is not.
                if js.get_stream(&stream_name).await.is_err() {
                    return Err(VaultError::unavailable(err));
                }
            }
        }
        let kv = js
            .get_key_value(&config.bucket)
            .await
            .map_err(VaultError::unavailable)?;
        let info = kv.stream.get_info().await.map_err(VaultError::unavailable)?.config;
        if info.deny_delete
            || info.max_messages_per_subject != 1
            || info.storage != jetstream::stream::StorageType::File
        {
            return Err(VaultError::Unavailable(format!(
                "the key bucket {} exists with other settings (it must keep one revision in file storage and allow \
                 secure deletes)",
                config.bucket
            )));
        }
        let cache = Arc::new(KeyCache::default());
        let watcher = tokio::spawn(watch_erasures(kv.clone(), Arc::downgrade(&cache))).abort_handle();
        Ok(Self {
            kv,
            master,
            ttl: config.cache_ttl,
            cache,
            lookup: tokio::sync::OnceCell::new(),
            watcher,
        })
    }

    /// The master key in use.
    pub fn master(&self) -> &M {
        &self.master
    }

    fn cached(&self, case: CaseId) -> Option<Arc<DataKey>> {
        let mut cache = self
            .cache
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        // Expired keys leave memory (and are zeroized once no one holds them). The time counts
        // from the fetch: reading a key does not keep it.
        cache.retain(|_, (_, fetched)| now.duration_since(*fetched) < self.ttl);
        cache.get(&case).map(|(key, _)| key.clone())
    }

    fn remember(&self, case: CaseId, key: Arc<DataKey>) {
        // Only while erasures are watched, and never a key of a case seen erased (a fetch that
        // raced the erasure).
        if !self.cache.watching.load(std::sync::atomic::Ordering::SeqCst) || self.cache.seen_erased(case) {
            return;
        }
        let mut cache = self
            .cache
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.insert(case, (key, Instant::now()));
    }

    /// Drops every opened key from memory.
    pub fn forget_all(&self) {
        self.cache.forget_all();
    }

    /// The survivor-code lookup key, made on first use ([`crate::identifying`]).
    pub(crate) async fn lookup_key(&self) -> Result<Arc<DataKey>, VaultError> {
        use crate::identifying::{LOOKUP_KEY_NAME, lookup_key_owner};
        let owner = lookup_key_owner();
        let corrupt = |reason: String| VaultError::Corrupt {
            case: LOOKUP_KEY_NAME.to_owned(),
            reason,
        };
        self.lookup
            .get_or_try_init(|| async {
                loop {
                    match self.kv.entry(LOOKUP_KEY_NAME).await.map_err(VaultError::unavailable)? {
                        Some(entry) if entry.operation == kv::Operation::Put => {
                            let wrapped: WrappedKey =
                                serde_json::from_slice(&entry.value).map_err(|e| corrupt(e.to_string()))?;
                            return Ok(Arc::new(self.master.unwrap(owner, &wrapped).await?));
                        }
                        Some(_) => return Err(corrupt("the lookup key was deleted".to_owned())),
                        None => {
                            let key = DataKey::generate()?;
                            let wrapped = self.master.wrap(owner, &key).await?;
                            let value = serde_json::to_vec(&wrapped).map_err(|e| corrupt(e.to_string()))?;
                            match self.kv.create(LOOKUP_KEY_NAME, value.into()).await {
                                Ok(_) => return Ok(Arc::new(key)),
                                // Made concurrently by another process: read theirs.
                                Err(err) if err.kind() == kv::CreateErrorKind::AlreadyExists => continue,
                                Err(err) => return Err(VaultError::unavailable(err)),
                            }
                        }
                    }
                }
            })
            .await
            .cloned()
    }

    /// The case's key, as the bucket has it.
    pub async fn key(&self, case: CaseId) -> Result<KeyState, VaultError> {
        if self.cache.seen_erased(case) {
            return Ok(KeyState::Erased);
        }
        if let Some(key) = self.cached(case) {
            return Ok(KeyState::Active(key));
        }
        let entry = self.kv.entry(kv_key(case)).await.map_err(VaultError::unavailable)?;
        match entry {
            None => Ok(KeyState::Missing),
            Some(entry) if entry.operation != kv::Operation::Put => Ok(KeyState::Erased),
            Some(entry) => {
                let wrapped: WrappedKey = serde_json::from_slice(&entry.value).map_err(|e| VaultError::Corrupt {
                    case: case.to_string(),
                    reason: e.to_string(),
                })?;
                let key = Arc::new(self.master.unwrap(case, &wrapped).await?);
                self.remember(case, key.clone());
                Ok(KeyState::Active(key))
            }
        }
    }

    /// The case's key, creating it on first use. Refused once the case was erased.
    pub async fn key_for_sealing(&self, case: CaseId) -> Result<Arc<DataKey>, VaultError> {
        match self.key(case).await? {
            KeyState::Active(key) => Ok(key),
            KeyState::Erased => Err(VaultError::Erased(case.to_string())),
            KeyState::Missing => {
                let key = DataKey::generate()?;
                let wrapped = self.master.wrap(case, &key).await?;
                let value = serde_json::to_vec(&wrapped).map_err(|e| VaultError::Corrupt {
                    case: case.to_string(),
                    reason: e.to_string(),
                })?;
                match self.kv.create(kv_key(case), value.into()).await {
                    Ok(_) => {
                        let key = Arc::new(key);
                        self.remember(case, key.clone());
                        Ok(key)
                    }
                    // Someone else created it (or erased it) meanwhile: use what is there.
                    Err(err) if err.kind() == kv::CreateErrorKind::AlreadyExists => match self.key(case).await? {
                        KeyState::Active(key) => Ok(key),
                        _ => Err(VaultError::Erased(case.to_string())),
                    },
                    Err(err) => Err(VaultError::unavailable(err)),
                }
            }
        }
    }

    /// Seals `plaintext` as `field` of event `event` of `case`.
    pub async fn seal(
        &self,
        case: CaseId,
        event: EventId,
        field: PiiField,
        plaintext: &str,
    ) -> Result<EncryptedPii, VaultError> {
        let key = self.key_for_sealing(case).await?;
        seal::seal_with(&key, case, event, field, plaintext)
    }

    /// Opens a sealed value for an authorised reader: the plaintext, or "erased".
    pub async fn open(
        &self,
        case: CaseId,
        event: EventId,
        field: PiiField,
        sealed: &EncryptedPii,
    ) -> Result<Revealed, VaultError> {
        match self.key(case).await? {
            KeyState::Active(key) => seal::open_with(&key, case, event, field, sealed).map(Revealed::Plain),
            KeyState::Erased => Ok(Revealed::Erased),
            // Erasure leaves a marker, so a sealed value without any key means the key bucket
            // was lost or restored without it: report it, never pass it off as "erased".
            KeyState::Missing => Err(VaultError::KeyMissing(case.to_string())),
        }
    }

    /// Destroys the case's key: the stored message is overwritten (JetStream's secure erase),
    /// then a purge marker is left so the key can never be recreated. Idempotent.
    #[tracing::instrument(skip_all, fields(case = %case), err)]
    pub async fn erase(&self, case: CaseId) -> Result<(), VaultError> {
        self.cache
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&case);
        let entry = self.kv.entry(kv_key(case)).await.map_err(VaultError::unavailable)?;
        if let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) {
            // `delete_message` asks JetStream to overwrite the message on disk, not only to drop
            // it from the index (belt and braces: the purge below removes it as well).
            self.kv
                .stream
                .delete_message(entry.revision)
                .await
                .map_err(VaultError::unavailable)?;
        }
        self.kv.purge(kv_key(case)).await.map_err(VaultError::unavailable)?;
        self.cache.evict(case);
        Ok(())
    }

    /// Rewraps every data key under `new_master`, without touching any event. Afterwards open
    /// the vault with the new master key; the old one no longer opens any key.
    pub async fn rotate<N: MasterKey>(&self, new_master: &N) -> Result<RotationReport, VaultError> {
        let mut report = RotationReport::default();
        let mut keys = self.kv.keys().await.map_err(VaultError::unavailable)?;
        let mut names = Vec::new();
        while let Some(name) = keys.next().await {
            names.push(name.map_err(VaultError::unavailable)?);
        }
        for name in names {
            let Some(entry) = self.kv.entry(name.clone()).await.map_err(VaultError::unavailable)? else {
                continue;
            };
            if entry.operation != kv::Operation::Put {
                report.erased += 1;
                continue;
            }
            let case = if name == crate::identifying::LOOKUP_KEY_NAME {
                Some(crate::identifying::lookup_key_owner())
            } else {
                name.strip_prefix("case.").and_then(|id| CaseId::parse(id).ok())
            };
            let case = case.ok_or_else(|| VaultError::Corrupt {
                case: name.clone(),
                reason: "not a case key".into(),
            })?;
            let wrapped: WrappedKey = serde_json::from_slice(&entry.value).map_err(|e| VaultError::Corrupt {
                case: case.to_string(),
                reason: e.to_string(),
            })?;
            if wrapped.master_key_id == new_master.id() {
                report.already_current += 1;
                continue;
            }
            let key = self.master.unwrap(case, &wrapped).await?;
            let rewrapped = new_master.wrap(case, &key).await?;
            let value = serde_json::to_vec(&rewrapped).map_err(|e| VaultError::Corrupt {
                case: case.to_string(),
                reason: e.to_string(),
            })?;
            self.kv
                .update(&name, value.into(), entry.revision)
                .await
                .map_err(VaultError::unavailable)?;
            report.rewrapped += 1;
        }
        self.forget_all();
        Ok(report)
    }
}
