//! Verifies OIDC bearer JWTs from an organisation's identity provider and turns them into an
//! [`Actor`].
//!
//! Partners that run their own identity provider (Keycloak, Entra ID, …) let their staff call
//! Wasl with the access tokens it issues, so Wasl keeps no passwords for them. A token is
//! accepted only when all of these hold:
//!
//! - its header `alg` is in the configured allowlist ([`OidcConfig::algorithms`]). This is
//!   checked before any key is looked up, so `alg: none` and HMAC tokens "signed" with a public
//!   key are refused outright; HMAC algorithms are dropped from the allowlist even if configured.
//! - it is signed by a key in the issuer's JWKS whose type, curve and (if published) `alg` fit
//!   the token's `alg`. The JWKS is found through OIDC discovery
//!   (`{issuer}/.well-known/openid-configuration` → `jwks_uri`) unless
//!   [`OidcConfig::jwks_url`] names it, fetched on first use and cached. A token whose `kid` is
//!   not cached triggers one refetch (key rotation), at most once per 30 seconds across all
//!   requests, so a stream of made-up `kid`s cannot turn Wasl into a load generator against the
//!   identity provider. Keys are refetched when 15 minutes old, so a key the provider withdrew
//!   stops being trusted (the old keys stay in use while the provider is unreachable); after a
//!   failed fetch, none is tried for 5 seconds.
//! - `exp` is present and not past, `nbf` (if present) is not in the future, both within
//!   [`OidcConfig::leeway`].
//! - `iss` equals [`OidcConfig::issuer`] exactly; `aud` is that audience or an array holding it.
//!
//! The claims read are `sub` (who), [`OidcConfig::org_claim`] (the organisation id, a UUIDv7)
//! and [`OidcConfig::roles_claim`] (role codes, as an array or a space-separated string). Unknown
//! role codes are ignored; a token with no known role is refused. The `system` role is reserved
//! for Wasl's own services and is never taken from a token.
//!
//! The user id is derived, not looked up: see [`Oidc::verify`]. Claim values and tokens are
//! never logged nor put in an [`OidcError`]; they may carry staff names and e-mail addresses.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};
use wasl_domain::ids::{OrgId, UserId, uuid_v7_from_parts};
use wasl_domain::{Actor, Role};

/// The shortest time between two JWKS refetches for an unknown `kid`.
const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// How long after a failed fetch no fetch is tried, so an unreachable identity provider is not
/// asked again on every request.
const FAILED_LOAD_BACK_OFF: Duration = Duration::from_secs(5);
/// How long fetched keys are trusted before they are fetched again, so a key the identity
/// provider withdrew (rotated out or compromised) stops being accepted.
const MAX_KEY_AGE: Duration = Duration::from_secs(15 * 60);
/// The largest discovery or JWKS document read; real ones are a few KiB.
const MAX_DOCUMENT_BYTES: usize = 512 * 1024;
/// The longest a discovery or JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest token looked at; real ones are a few KiB.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// RSA keys shorter than this (in bytes of modulus, 2048 bits) are ignored.
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// Which identity provider to trust and how to read its tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcConfig {
    /// The expected `iss`, compared exactly (including any trailing slash).
    pub issuer: String,
    /// The expected audience: `aud` must be this string or an array containing it.
    pub audience: String,
    /// Where the JWKS is published; `None` looks it up through OIDC discovery at
    /// `{issuer}/.well-known/openid-configuration`.
    pub jwks_url: Option<String>,
    /// The claim holding the organisation id (UUIDv7 text). Default `wasl_org`.
    pub org_claim: String,
    /// The claim holding role codes, as an array or a space-separated string.
    /// Default `wasl_roles`.
    pub roles_claim: String,
    /// The signing algorithms accepted. Default RS256, ES256 and EdDSA. HMAC algorithms
    /// (HS256/384/512) are always dropped: they would let anyone holding the public key sign.
    pub algorithms: Vec<Algorithm>,
    /// The clock skew allowed for `exp` and `nbf`, in whole seconds. Default 60 s.
    pub leeway: Duration,
}

impl Default for OidcConfig {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            audience: String::new(),
            jwks_url: None,
            org_claim: "wasl_org".to_owned(),
            roles_claim: "wasl_roles".to_owned(),
            algorithms: vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
            leeway: Duration::from_secs(60),
        }
    }
}

/// Why a bearer token was refused. The messages name the reason only, never a claim value or
/// any part of the token, so they are safe to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    /// The token is not a well-formed JWS compact JWT with a JSON object as claims.
    #[error("the token is not a well-formed JWT")]
    Malformed,
    /// The header's `alg` is not in the allowlist (or is `none`, or unknown).
    #[error("the token's signing algorithm is not allowed")]
    AlgorithmNotAllowed,
    /// No published key fits the token's `kid` and `alg`, even after a refetch.
    #[error("no published signing key fits the token")]
    UnknownKey,
    /// The signature does not verify with the key the token names.
    #[error("the token's signature does not verify")]
    BadSignature,
    /// `exp` is past.
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("the token is from another issuer")]
    WrongIssuer,
    /// `aud` does not hold the configured audience.
    #[error("the token is meant for another audience")]
    WrongAudience,
    /// A required claim is absent; the field names its kind (`exp`, `iss`, `aud`, `sub`,
    /// `organisation`, `roles`), never its value.
    #[error("the token lacks the {0} claim")]
    MissingClaim(&'static str),
    /// The token grants no role Wasl knows.
    #[error("the token grants no known role")]
    NoRoles,
    /// The organisation claim is not a UUIDv7.
    #[error("the token's organisation claim is not an organisation id")]
    BadOrganisation,
    /// The discovery document or the JWKS could not be fetched or read.
    #[error("the issuer's signing keys are unavailable: {0}")]
    JwksUnavailable(String),
}

/// Verifies bearer JWTs against one issuer. Cheap to clone: clones share the key cache.
#[derive(Clone)]
pub struct Oidc {
    inner: Arc<Inner>,
}

struct Inner {
    config: OidcConfig,
    /// The keys in use; replaced whole on each successful fetch, never held across an await.
    keys: RwLock<Arc<KeySet>>,
    /// Serialises fetches, so concurrent requests with a new `kid` cause one fetch.
    fetcher: tokio::sync::Mutex<Fetcher>,
}

impl fmt::Debug for Oidc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.inner.config.issuer)
            .field("audience", &self.inner.config.audience)
            .finish_non_exhaustive()
    }
}

impl Oidc {
    /// A verifier for `config`. Makes no network call: the keys are fetched on first use.
    pub fn new(mut config: OidcConfig) -> Self {
        let mut algorithms = Vec::with_capacity(config.algorithms.len());
        for alg in config.algorithms {
            if alg.family() != AlgorithmFamily::Hmac && !algorithms.contains(&alg) {
                algorithms.push(alg);
            }
        }
        config.algorithms = algorithms;
        let fetcher = Fetcher {
            client: None,
            jwks_url: config.jwks_url.clone(),
            last_refetch: None,
            last_failure: None,
        };
        Self {
            inner: Arc::new(Inner {
                config,
                keys: RwLock::new(Arc::new(KeySet::default())),
                fetcher: tokio::sync::Mutex::new(fetcher),
            }),
        }
    }

    /// Verifies `token` (the bearer value, without `Bearer `) and returns who is calling.
    ///
    /// The user id is derived from the token, so the same person always gets the same id
    /// without Wasl storing a mapping: SHA-256 over `issuer`, a zero byte and `sub`; the first
    /// 47 bits of the hash are the UUIDv7 "timestamp" and the next 10 bytes its random part
    /// (74 bits of them survive the version and variant bits). The zero byte keeps issuer and
    /// subject apart, so two issuers never map a subject to the same id by concatenation. The
    /// timestamp part is not a time: these ids do not sort by creation.
    pub async fn verify(&self, token: &str) -> Result<Actor, OidcError> {
        let config = &self.inner.config;
        let (alg, kid) = read_header(token)?;
        if !config.algorithms.contains(&alg) {
            return Err(OidcError::AlgorithmNotAllowed);
        }
        let key = self.key_for(alg, kid.as_deref()).await?;
        let mut validation = Validation::new(alg);
        validation.leeway = config.leeway.as_secs();
        validation.set_required_spec_claims(&["exp"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // `iss` and `aud` are checked below, with our own stricter rules and error variants.
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|err| from_jwt_error(err.kind()))?
            .claims;
        actor_from_claims(config, &claims)
    }

    /// The key to check a token with `alg` and `kid` against, refetching the JWKS once if the
    /// cache has none.
    async fn key_for(&self, alg: Algorithm, kid: Option<&str>) -> Result<DecodingKey, OidcError> {
        let mut cached = self.snapshot();
        if !cached.loaded {
            cached = self.refresh(cached.generation, Why::FirstLoad).await?;
        } else if cached.fetched_at.is_some_and(|at| at.elapsed() >= MAX_KEY_AGE) {
            // Keep serving the old keys if the identity provider is briefly unreachable.
            cached = self.refresh(cached.generation, Why::Stale).await.unwrap_or(cached);
        }
        if let Some(key) = cached.find(alg, kid) {
            return Ok(key.clone());
        }
        let fresh = self.refresh(cached.generation, Why::UnknownKey).await?;
        fresh.find(alg, kid).cloned().ok_or(OidcError::UnknownKey)
    }

    fn snapshot(&self) -> Arc<KeySet> {
        Arc::clone(&self.inner.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Fetches the JWKS and returns the keys now in use. Does not fetch, and returns the keys
    /// as they are, when another request fetched since generation `seen`, when a refetch for an
    /// unknown `kid` happened less than [`MIN_REFETCH_INTERVAL`] ago, or when a fetch failed
    /// less than [`FAILED_LOAD_BACK_OFF`] ago (an error if no keys were ever loaded).
    async fn refresh(&self, seen: u64, why: Why) -> Result<Arc<KeySet>, OidcError> {
        let mut fetcher = self.inner.fetcher.lock().await;
        let current = self.snapshot();
        if current.generation != seen {
            return Ok(current);
        }
        let now = Instant::now();
        if fetcher.last_failure.is_some_and(|at| now - at < FAILED_LOAD_BACK_OFF) {
            return if current.loaded {
                Ok(current)
            } else {
                Err(OidcError::JwksUnavailable(
                    "not loaded yet; the next attempt waits for the back-off".to_owned(),
                ))
            };
        }
        if why == Why::UnknownKey {
            if fetcher.last_refetch.is_some_and(|at| now - at < MIN_REFETCH_INTERVAL) {
                return Ok(current);
            }
            fetcher.last_refetch = Some(now);
        }
        let keys = match fetcher.fetch(&self.inner.config).await {
            Ok(keys) => keys,
            Err(err) => {
                fetcher.last_failure = Some(Instant::now());
                return Err(err);
            }
        };
        let fresh = Arc::new(KeySet {
            generation: current.generation + 1,
            loaded: true,
            fetched_at: Some(Instant::now()),
            keys,
        });
        *self.inner.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&fresh);
        Ok(fresh)
    }
}

/// Why the keys are being fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    /// None were ever loaded.
    FirstLoad,
    /// They are older than [`MAX_KEY_AGE`].
    Stale,
    /// A token names a key the cache lacks; rate-limited.
    UnknownKey,
}

/// The keys from one JWKS fetch.
#[derive(Default)]
struct KeySet {
    /// Bumped on every successful fetch.
    generation: u64,
    /// Whether any fetch has succeeded.
    loaded: bool,
    /// When the keys were fetched.
    fetched_at: Option<Instant>,
    keys: Vec<Key>,
}

impl KeySet {
    /// The key for `kid`, or without a `kid` the only key that fits `alg`.
    fn find(&self, alg: Algorithm, kid: Option<&str>) -> Option<&DecodingKey> {
        let mut fitting = self.keys.iter().filter(|k| k.fits(alg));
        let key = match kid {
            Some(kid) => fitting.find(|k| k.kid.as_deref() == Some(kid))?,
            None => {
                let only = fitting.next()?;
                if fitting.next().is_some() {
                    return None;
                }
                only
            }
        };
        Some(&key.decoding)
    }
}

/// What a key can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyKind {
    fn verifies(self, alg: Algorithm) -> bool {
        match self {
            Self::Rsa => alg.family() == AlgorithmFamily::Rsa,
            Self::P256 => alg == Algorithm::ES256,
            Self::P384 => alg == Algorithm::ES384,
            Self::Ed25519 => alg == Algorithm::EdDSA,
        }
    }
}

/// One usable public key from the JWKS.
struct Key {
    kid: Option<String>,
    /// The key's own `alg`, when it publishes one.
    alg: Option<Algorithm>,
    kind: KeyKind,
    decoding: DecodingKey,
}

impl Key {
    fn fits(&self, alg: Algorithm) -> bool {
        self.kind.verifies(alg) && self.alg.is_none_or(|own| own == alg)
    }

    /// The key, if it is a signature key Wasl can use with an allowed algorithm.
    fn from_jwk(jwk: &Jwk, allowed: &[Algorithm]) -> Option<Self> {
        let common = &jwk.common;
        if common
            .public_key_use
            .as_ref()
            .is_some_and(|u| *u != PublicKeyUse::Signature)
        {
            return None;
        }
        if common
            .key_operations
            .as_ref()
            .is_some_and(|ops| !ops.contains(&KeyOperations::Verify))
        {
            return None;
        }
        let (kind, decoding) = match &jwk.algorithm {
            AlgorithmParameters::RSA(rsa) => {
                let n = URL_SAFE_NO_PAD.decode(&rsa.n).ok()?;
                let e = URL_SAFE_NO_PAD.decode(&rsa.e).ok()?;
                let significant = n.iter().skip_while(|b| **b == 0).count();
                if significant < MIN_RSA_MODULUS_BYTES || e.is_empty() {
                    return None;
                }
                (KeyKind::Rsa, DecodingKey::from_rsa_raw_components(&n, &e))
            }
            AlgorithmParameters::EllipticCurve(ec) => {
                let (kind, len) = match ec.curve {
                    EllipticCurve::P256 => (KeyKind::P256, 32),
                    EllipticCurve::P384 => (KeyKind::P384, 48),
                    _ => return None,
                };
                let x = URL_SAFE_NO_PAD.decode(&ec.x).ok()?;
                let y = URL_SAFE_NO_PAD.decode(&ec.y).ok()?;
                if x.len() != len || y.len() != len {
                    return None;
                }
                (kind, DecodingKey::from_ec_components(&ec.x, &ec.y).ok()?)
            }
            AlgorithmParameters::OctetKeyPair(okp) => {
                if okp.curve != EllipticCurve::Ed25519 {
                    return None;
                }
                // The verifier slices the first 32 bytes, so a short key must not get that far.
                let x = URL_SAFE_NO_PAD.decode(&okp.x).ok()?;
                if x.len() != 32 {
                    return None;
                }
                (KeyKind::Ed25519, DecodingKey::from_ed_components(&okp.x).ok()?)
            }
            // Symmetric keys have no place in a public JWKS; anything else is unsupported.
            _ => return None,
        };
        let alg = match common.key_algorithm {
            Some(published) => {
                let alg = Algorithm::try_from(published).ok()?;
                if !allowed.contains(&alg) || !kind.verifies(alg) {
                    return None;
                }
                Some(alg)
            }
            None => None,
        };
        if !allowed.iter().any(|a| kind.verifies(*a)) {
            return None;
        }
        Some(Self {
            kid: common.key_id.clone(),
            alg,
            kind,
            decoding,
        })
    }
}

/// Fetch state, behind the fetch lock.
struct Fetcher {
    /// Built on first fetch, so construction never fails and makes no network call.
    client: Option<reqwest::Client>,
    /// Configured, or found through discovery and then kept.
    jwks_url: Option<String>,
    /// When keys already loaded were last refetched for an unknown `kid`.
    last_refetch: Option<Instant>,
    /// When a fetch last failed.
    last_failure: Option<Instant>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<Value>,
}

impl Fetcher {
    #[tracing::instrument(skip_all, err)]
    async fn fetch(&mut self, config: &OidcConfig) -> Result<Vec<Key>, OidcError> {
        let client = match &self.client {
            Some(client) => client.clone(),
            None => {
                let client = reqwest::Client::builder()
                    .timeout(FETCH_TIMEOUT)
                    .build()
                    .map_err(|err| unavailable("building the HTTP client", &err))?;
                self.client = Some(client.clone());
                client
            }
        };
        let url = match &self.jwks_url {
            Some(url) => url.clone(),
            None => {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    config.issuer.trim_end_matches('/')
                );
                let discovery: Discovery = get_json(&client, &url, "discovery document").await?;
                // OIDC Discovery 1.0 §4.3: the document must name the issuer it was fetched for.
                if discovery.issuer != config.issuer {
                    return Err(OidcError::JwksUnavailable(
                        "the discovery document names another issuer".to_owned(),
                    ));
                }
                self.jwks_url = Some(discovery.jwks_uri.clone());
                discovery.jwks_uri
            }
        };
        let document: JwksDocument = get_json(&client, &url, "JWKS").await?;
        let published = document.keys.len();
        let keys: Vec<Key> = document
            .keys
            .into_iter()
            .filter_map(|value| serde_json::from_value::<Jwk>(value).ok())
            .filter_map(|jwk| Key::from_jwk(&jwk, &config.algorithms))
            .collect();
        if keys.len() < published {
            tracing::info!(
                ignored = published - keys.len(),
                usable = keys.len(),
                "JWKS keys ignored: unsupported, not for signing, or not allowlisted"
            );
        }
        Ok(keys)
    }
}

fn unavailable(what: &str, err: &reqwest::Error) -> OidcError {
    OidcError::JwksUnavailable(format!("{what}: {err}"))
}

/// GETs `url` and parses it as JSON, reading at most [`MAX_DOCUMENT_BYTES`].
async fn get_json<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
    what: &str,
) -> Result<T, OidcError> {
    let mut response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|err| unavailable(&format!("fetching the {what}"), &err))?;
    let too_large = || OidcError::JwksUnavailable(format!("the {what} is too large"));
    if response
        .content_length()
        .is_some_and(|len| len > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| unavailable(&format!("reading the {what}"), &err))?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body)
        .map_err(|_| OidcError::JwksUnavailable(format!("the {what} is not valid JSON of the expected shape")))
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    kid: Option<String>,
    crit: Option<Value>,
}

/// The header's algorithm and key id, read without trusting anything else in the token.
/// Parsed here rather than by `jsonwebtoken` so that `alg: none` and other unknown names come
/// out as [`OidcError::AlgorithmNotAllowed`], not as a parse failure.
fn read_header(token: &str) -> Result<(Algorithm, Option<String>), OidcError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(OidcError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(OidcError::Malformed);
    };
    let bytes = URL_SAFE_NO_PAD.decode(header).map_err(|_| OidcError::Malformed)?;
    let raw: RawHeader = serde_json::from_slice(&bytes).map_err(|_| OidcError::Malformed)?;
    // RFC 7515 §4.1.11: a token with critical extensions we do not implement must be refused.
    if raw.crit.is_some() {
        return Err(OidcError::Malformed);
    }
    let alg = Algorithm::from_str(&raw.alg).map_err(|_| OidcError::AlgorithmNotAllowed)?;
    Ok((alg, raw.kid))
}

fn from_jwt_error(kind: &ErrorKind) -> OidcError {
    match kind {
        ErrorKind::InvalidSignature => OidcError::BadSignature,
        ErrorKind::ExpiredSignature => OidcError::Expired,
        ErrorKind::ImmatureSignature => OidcError::NotYetValid,
        ErrorKind::MissingRequiredClaim(_) => OidcError::MissingClaim("exp"),
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => OidcError::AlgorithmNotAllowed,
        ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat => OidcError::UnknownKey,
        _ => OidcError::Malformed,
    }
}

/// Checks `iss` and `aud` and reads the caller out of verified claims.
fn actor_from_claims(config: &OidcConfig, claims: &Map<String, Value>) -> Result<Actor, OidcError> {
    match claims.get("iss") {
        None | Some(Value::Null) => return Err(OidcError::MissingClaim("iss")),
        Some(Value::String(iss)) if *iss == config.issuer => {}
        Some(_) => return Err(OidcError::WrongIssuer),
    }
    let audience_ok = match claims.get("aud") {
        None | Some(Value::Null) => return Err(OidcError::MissingClaim("aud")),
        Some(Value::String(aud)) => *aud == config.audience,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(config.audience.as_str())),
        Some(_) => false,
    };
    if !audience_ok {
        return Err(OidcError::WrongAudience);
    }
    let subject = match claims.get("sub") {
        Some(Value::String(sub)) if !sub.is_empty() => sub,
        _ => return Err(OidcError::MissingClaim("sub")),
    };
    let org = match claims.get(&config.org_claim) {
        None | Some(Value::Null) => return Err(OidcError::MissingClaim("organisation")),
        Some(Value::String(org)) => OrgId::parse(org).map_err(|_| OidcError::BadOrganisation)?,
        Some(_) => return Err(OidcError::BadOrganisation),
    };
    let roles = match claims.get(&config.roles_claim) {
        None | Some(Value::Null) => return Err(OidcError::MissingClaim("roles")),
        Some(value) => roles_from(value)?,
    };
    Ok(Actor {
        user: user_id(&config.issuer, subject),
        org,
        roles,
    })
}

/// The known roles in a roles claim, in order, without repeats.
fn roles_from(value: &Value) -> Result<Vec<Role>, OidcError> {
    let codes: Vec<Option<&str>> = match value {
        Value::String(text) => text.split_whitespace().map(Some).collect(),
        Value::Array(items) => items.iter().map(Value::as_str).collect(),
        _ => return Err(OidcError::NoRoles),
    };
    let mut roles = Vec::new();
    let mut ignored = 0usize;
    for code in codes {
        match code.map(Role::parse) {
            // Wasl's own services act as `system`; an identity provider never grants it.
            Some(Ok(Role::System)) | Some(Err(_)) | None => ignored += 1,
            Some(Ok(role)) => {
                if !roles.contains(&role) {
                    roles.push(role);
                }
            }
        }
    }
    if ignored > 0 {
        tracing::info!(ignored, "unknown role codes in an OIDC token ignored");
    }
    if roles.is_empty() {
        return Err(OidcError::NoRoles);
    }
    Ok(roles)
}

/// The user id for `subject` at `issuer`; see [`Oidc::verify`] for the derivation.
fn user_id(issuer: &str, subject: &str) -> UserId {
    let hash = Sha256::new()
        .chain_update(issuer.as_bytes())
        .chain_update([0u8])
        .chain_update(subject.as_bytes())
        .finalize();
    let mut millis = [0u8; 8];
    millis[2..].copy_from_slice(&hash[..6]);
    let millis = u64::from_be_bytes(millis) >> 1;
    let mut random = [0u8; 10];
    random.copy_from_slice(&hash[6..16]);
    UserId::from_uuid(uuid_v7_from_parts(millis, random)).expect("uuid_v7_from_parts always sets version 7")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ISSUER: &str = "http://127.0.0.1:1/test-issuer";

    fn config() -> OidcConfig {
        OidcConfig {
            issuer: ISSUER.to_owned(),
            audience: "wasl-test".to_owned(),
            ..OidcConfig::default()
        }
    }

    fn claims(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("test claims are an object"),
        }
    }

    fn valid() -> Value {
        json!({
            "iss": ISSUER,
            "aud": ["other", "wasl-test"],
            "sub": "test-subject-1",
            "wasl_org": "01890a5d-ac96-774b-bcce-b302099a8057",
            "wasl_roles": "caseworker supervisor caseworker",
        })
    }

    #[test]
    fn the_verifier_can_be_shared_across_tasks() {
        fn shared<T: Send + Sync + Clone>() {}
        fn sendable<T: Send>(_: T) {}
        shared::<Oidc>();
        // Handlers run on a multi-threaded runtime, so the extractor's future must be `Send`.
        sendable(Oidc::new(config()).verify(""));
    }

    #[test]
    fn the_user_id_is_a_stable_uuid_v7_per_issuer_and_subject() {
        let a = user_id(ISSUER, "test-subject-1");
        assert_eq!(a, user_id(ISSUER, "test-subject-1"));
        assert_eq!(a.as_uuid().get_version_num(), 7);
        assert_ne!(a, user_id("http://127.0.0.1:1/other-issuer", "test-subject-1"));
        assert_ne!(a, user_id(ISSUER, "test-subject-2"));
    }

    #[test]
    fn issuer_and_subject_do_not_run_together() {
        assert_ne!(user_id("ab", "c"), user_id("a", "bc"));
    }

    #[test]
    fn space_separated_roles_are_read_once_each() {
        let actor = actor_from_claims(&config(), &claims(valid())).unwrap();
        assert_eq!(actor.roles, vec![Role::Caseworker, Role::Supervisor]);
    }

    #[test]
    fn the_system_role_is_never_taken_from_a_token() {
        let mut value = valid();
        value["wasl_roles"] = json!(["system"]);
        let err = actor_from_claims(&config(), &claims(value)).unwrap_err();
        assert!(matches!(err, OidcError::NoRoles));
    }

    #[test]
    fn an_issuer_array_is_refused() {
        let mut value = valid();
        value["iss"] = json!([ISSUER]);
        let err = actor_from_claims(&config(), &claims(value)).unwrap_err();
        assert!(matches!(err, OidcError::WrongIssuer));
    }

    #[test]
    fn a_missing_subject_is_refused() {
        let mut value = valid();
        value.as_object_mut().unwrap().remove("sub");
        let err = actor_from_claims(&config(), &claims(value)).unwrap_err();
        assert!(matches!(err, OidcError::MissingClaim("sub")));
    }

    #[test]
    fn a_v4_organisation_id_is_refused_without_echoing_it() {
        let mut value = valid();
        value["wasl_org"] = json!("3b241101-e2bb-4255-8caf-4136c566a962");
        let err = actor_from_claims(&config(), &claims(value)).unwrap_err();
        assert!(matches!(err, OidcError::BadOrganisation));
        assert!(!err.to_string().contains("3b241101"));
    }

    #[test]
    fn hmac_algorithms_are_dropped_from_the_allowlist() {
        let oidc = Oidc::new(OidcConfig {
            algorithms: vec![Algorithm::HS256, Algorithm::EdDSA, Algorithm::EdDSA],
            ..config()
        });
        assert_eq!(oidc.inner.config.algorithms, vec![Algorithm::EdDSA]);
    }

    #[test]
    fn a_header_with_alg_none_is_not_allowed_rather_than_malformed() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
        let err = read_header(&format!("{header}.e30.")).unwrap_err();
        assert!(matches!(err, OidcError::AlgorithmNotAllowed));
    }

    #[test]
    fn a_header_with_critical_extensions_is_refused() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA","crit":["exp"]}"#);
        let err = read_header(&format!("{header}.e30.sig")).unwrap_err();
        assert!(matches!(err, OidcError::Malformed));
    }

    #[test]
    fn keys_not_for_signing_or_for_another_algorithm_are_ignored() {
        let x = URL_SAFE_NO_PAD.encode([9u8; 32]);
        let okp = |extra: Value| {
            let mut jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k"});
            jwk.as_object_mut().unwrap().extend(claims(extra));
            serde_json::from_value::<Jwk>(jwk).unwrap()
        };
        let allowed = [Algorithm::EdDSA];
        assert!(Key::from_jwk(&okp(json!({})), &allowed).is_some());
        assert!(Key::from_jwk(&okp(json!({"alg": "EdDSA", "use": "sig"})), &allowed).is_some());
        assert!(Key::from_jwk(&okp(json!({"use": "enc"})), &allowed).is_none());
        assert!(Key::from_jwk(&okp(json!({"alg": "ES256"})), &allowed).is_none());
        assert!(Key::from_jwk(&okp(json!({})), &[Algorithm::RS256]).is_none());
        let short = json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode([9u8; 31])});
        let short = serde_json::from_value::<Jwk>(short).unwrap();
        assert!(Key::from_jwk(&short, &allowed).is_none());
    }
}
