//! The OIDC bearer-JWT verifier against a real HTTP identity provider: an axum server on a free
//! loopback port serving a discovery document and a JWKS, with keys made inside each test.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use wasl_api::auth::oidc::{Oidc, OidcConfig, OidcError};
use wasl_domain::Role;
use wasl_domain::ids::OrgId;

const AUDIENCE: &str = "wasl-test-audience";
const SUBJECT: &str = "test-subject-1";
const ORG: &str = "01890a5d-ac96-774b-bcce-b302099a8057";

/// A fake identity provider. Every `/{tenant}` path is an issuer of its own, all sharing one
/// JWKS.
struct Idp {
    base: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

struct Shared {
    base: String,
    keys: Mutex<Vec<Value>>,
    jwks_fetches: AtomicUsize,
    discovery_fetches: AtomicUsize,
}

impl Idp {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            base: base.clone(),
            keys: Mutex::new(Vec::new()),
            jwks_fetches: AtomicUsize::new(0),
            discovery_fetches: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/{tenant}/.well-known/openid-configuration", get(discovery))
            .route("/{tenant}/jwks", get(jwks))
            .with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { base, shared, server }
    }

    fn issuer(&self) -> String {
        format!("{}/test-issuer", self.base)
    }

    fn other_issuer(&self) -> String {
        format!("{}/other-issuer", self.base)
    }

    fn publish(&self, keys: &[&TestKey]) {
        *self.shared.keys.lock().unwrap() = keys.iter().map(|k| k.jwk.clone()).collect();
    }

    fn jwks_fetches(&self) -> usize {
        self.shared.jwks_fetches.load(Ordering::SeqCst)
    }

    fn discovery_fetches(&self) -> usize {
        self.shared.discovery_fetches.load(Ordering::SeqCst)
    }

    fn verifier(&self) -> Oidc {
        self.verifier_for(self.issuer())
    }

    fn verifier_for(&self, issuer: String) -> Oidc {
        Oidc::new(OidcConfig {
            issuer,
            audience: AUDIENCE.to_owned(),
            ..OidcConfig::default()
        })
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn discovery(State(shared): State<Arc<Shared>>, Path(tenant): Path<String>) -> Json<Value> {
    shared.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    Json(json!({
        "issuer": format!("{}/{tenant}", shared.base),
        "jwks_uri": format!("{}/{tenant}/jwks", shared.base),
        "id_token_signing_alg_values_supported": ["EdDSA"],
    }))
}

async fn jwks(State(shared): State<Arc<Shared>>) -> Json<Value> {
    shared.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    Json(json!({ "keys": *shared.keys.lock().unwrap() }))
}

/// An Ed25519 signing key from fresh random bytes, and its public JWK.
struct TestKey {
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
}

impl TestKey {
    fn new(kid: &str) -> Self {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).unwrap();
        // PKCS#8 v1 wrapping of a raw Ed25519 seed (RFC 8410 §7): a fixed 16-byte prefix.
        let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
        der.extend_from_slice(&seed);
        let encoding = EncodingKey::from_ed_der(&der);
        let mut jwk = serde_json::to_value(Jwk::from_encoding_key(&encoding, Algorithm::EdDSA).unwrap()).unwrap();
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        Self {
            kid: kid.to_owned(),
            encoding,
            jwk,
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }

    /// The raw 32-byte public key, as an attacker would copy it from the JWKS.
    fn public_bytes(&self) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(self.jwk["x"].as_str().unwrap()).unwrap()
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn claims(issuer: &str) -> Value {
    json!({
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": SUBJECT,
        "iat": now(),
        "exp": now() + 600,
        "wasl_org": ORG,
        "wasl_roles": ["caseworker", "focal_point", "not-a-wasl-role"],
    })
}

fn unsigned(header: &Value, claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).unwrap());
    let claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
    format!("{header}.{claims}")
}

#[tokio::test]
async fn a_valid_token_gives_the_actor_it_names() {
    let idp = Idp::start().await;
    let key = TestKey::new("key-a");
    idp.publish(&[&key]);
    let oidc = idp.verifier();

    let actor = oidc.verify(&key.sign(&claims(&idp.issuer()))).await.unwrap();

    assert_eq!(actor.org, OrgId::parse(ORG).unwrap());
    assert_eq!(actor.roles, vec![Role::Caseworker, Role::FocalPoint]);
    assert_eq!(actor.user.as_uuid().get_version_num(), 7);
    assert_eq!(idp.discovery_fetches(), 1);
    assert_eq!(idp.jwks_fetches(), 1);
}

#[tokio::test]
async fn the_same_subject_gets_the_same_user_id_every_time() {
    let idp = Idp::start().await;
    let key = TestKey::new("key-a");
    idp.publish(&[&key]);
    let oidc = idp.verifier();

    let first = oidc.verify(&key.sign(&claims(&idp.issuer()))).await.unwrap();
    let mut later = claims(&idp.issuer());
    later["wasl_roles"] = json!("supervisor");
    let second = oidc.verify(&key.sign(&later)).await.unwrap();
    let elsewhere = idp.verifier().verify(&key.sign(&claims(&idp.issuer()))).await.unwrap();

    assert_eq!(first.user, second.user);
    assert_eq!(first.user, elsewhere.user);
    assert_eq!(second.roles, vec![Role::Supervisor]);
    assert_eq!(
        idp.jwks_fetches(),
        2,
        "the cache serves the second token; a new verifier has its own"
    );
}

#[tokio::test]
async fn the_same_subject_at_another_issuer_is_another_user() {
    let idp = Idp::start().await;
    let key = TestKey::new("key-a");
    idp.publish(&[&key]);

    let here = idp.verifier().verify(&key.sign(&claims(&idp.issuer()))).await.unwrap();
    let other = idp.verifier_for(idp.other_issuer());
    let there = other.verify(&key.sign(&claims(&idp.other_issuer()))).await.unwrap();

    assert_ne!(here.user, there.user);
}

#[tokio::test]
async fn constructing_a_verifier_fetches_nothing() {
    let idp = Idp::start().await;
    let _oidc = idp.verifier();
    assert_eq!(idp.discovery_fetches() + idp.jwks_fetches(), 0);
}

#[tokio::test]
async fn a_configured_jwks_url_skips_discovery() {
    let idp = Idp::start().await;
    let key = TestKey::new("key-a");
    idp.publish(&[&key]);
    let oidc = Oidc::new(OidcConfig {
        issuer: idp.issuer(),
        audience: AUDIENCE.to_owned(),
        jwks_url: Some(format!("{}/test-issuer/jwks", idp.base)),
        ..OidcConfig::default()
    });

    oidc.verify(&key.sign(&claims(&idp.issuer()))).await.unwrap();

    assert_eq!(idp.discovery_fetches(), 0);
    assert_eq!(idp.jwks_fetches(), 1);
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let idp = Idp::start().await;
    let key = TestKey::new("key-a");
    idp.publish(&[&key]);
    let mut expired = claims(&idp.issuer());
    expired["exp"] = json!(now() - 3600);

    let err = idp.verifier().verify(&key.sign(&expired)).await.unwrap_err();

    assert!(matches!(err, OidcError::Expired), "{err:?}");
}

#[tokio::test]
async fn a_token_without_expiry_is_refused() {
    let idp = Idp::start().await;
    let key = TestKey::new("key-a");
    idp.publish(&[&key]);
    let mut endless = claims(&idp.issuer());
    endless.as_object_mut().unwrap().remove("exp");

    let err = idp.verifier().verify(&key.sign(&endless)).await.unwrap_err();

    assert!(matches!(err, OidcError::MissingClaim("exp")), "{err:?}");
}

#[tokio::test]
async fn a_token_not_valid_before_a_future_time_is_refused() {
    let idp = Idp::start().await;
    let key = TestKey::new("key-a");
    idp.publish(&[&key]);
    let mut early = claims(&idp.issuer());
    early["nbf"] = json!(now() + 3600);

    let err = idp.verifier().verify(&key.sign(&early)).await.unwrap_err();

    assert!(matches!(err, OidcError::NotYetValid), "{err:?}");
}

#[tokio::test]
async fn a_token_from_another_issuer_is_refused() {
    let idp = Idp::start().await;
    let key = TestKey::new("key-a");
    idp.publish(&[&key]);

    let err = idp
        .verifier()
        .verify(&key.sign(&claims(&idp.other_issuer())))
        .await
        .unwrap_err();

    assert!(matches!(err, OidcError::WrongIssuer), "{err:?}");
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let idp = Idp::start().await;
    let key = TestKey::new("key-a");
    idp.publish(&[&key]);
    let mut elsewhere = claims(&idp.issuer());
    elsewhere["aud"] = json!(["some-other-api", "yet-another-api"]);

    let err = idp.verifier().verify(&key.sign(&elsewhere)).await.unwrap_err();

    assert!(matches!(err, OidcError::WrongAudience), "{err:?}");
}

#[tokio::test]
async fn an_audience_array_holding_ours_is_accepted() {
    let idp = Idp::start().await;
    let key = TestKey::new("key-a");
    idp.publish(&[&key]);
    let mut shared = claims(&idp.issuer());
    shared["aud"] = json!(["some-other-api", AUDIENCE]);

    idp.verifier().verify(&key.sign(&shared)).await.unwrap();
}

#[tokio::test]
async fn an_unsigned_token_is_refused_before_any_key_lookup() {
    let idp = Idp::start().await;
    let key = TestKey::new("key-a");
    idp.publish(&[&key]);
    let token = format!(
        "{}.",
        unsigned(
            &json!({"alg": "none", "typ": "JWT", "kid": "key-a"}),
            &claims(&idp.issuer())
        )
    );

    let err = idp.verifier().verify(&token).await.unwrap_err();

    assert!(matches!(err, OidcError::AlgorithmNotAllowed), "{err:?}");
    assert_eq!(idp.discovery_fetches() + idp.jwks_fetches(), 0);
}

#[tokio::test]
async fn an_hmac_token_keyed_with_the_public_key_is_refused() {
    let idp = Idp::start().await;
    let key = TestKey::new("key-a");
    idp.publish(&[&key]);
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key.kid.clone());
    let forged = jsonwebtoken::encode(
        &header,
        &claims(&idp.issuer()),
        &EncodingKey::from_secret(&key.public_bytes()),
    )
    .unwrap();

    let err = idp.verifier().verify(&forged).await.unwrap_err();

    assert!(matches!(err, OidcError::AlgorithmNotAllowed), "{err:?}");
    assert_eq!(idp.discovery_fetches() + idp.jwks_fetches(), 0);
}

#[tokio::test]
async fn a_token_signed_by_another_key_under_a_known_kid_is_refused() {
    let idp = Idp::start().await;
    let key = TestKey::new("key-a");
    let impostor = TestKey::new("key-a");
    idp.publish(&[&key]);

    let err = idp
        .verifier()
        .verify(&impostor.sign(&claims(&idp.issuer())))
        .await
        .unwrap_err();

    assert!(matches!(err, OidcError::BadSignature), "{err:?}");
}

#[tokio::test]
async fn garbage_is_malformed() {
    let idp = Idp::start().await;
    let oidc = idp.verifier();
    for token in ["", "not-a-jwt", "a.b", "a.b.c.d", "!!!.e30.sig"] {
        let err = oidc.verify(token).await.unwrap_err();
        assert!(matches!(err, OidcError::Malformed), "{err:?}");
    }
}

#[tokio::test]
async fn an_unknown_kid_refetches_once_and_finds_a_rotated_key() {
    let idp = Idp::start().await;
    let old = TestKey::new("key-old");
    let new = TestKey::new("key-new");
    idp.publish(&[&old]);
    let oidc = idp.verifier();
    oidc.verify(&old.sign(&claims(&idp.issuer()))).await.unwrap();
    assert_eq!(idp.jwks_fetches(), 1);

    idp.publish(&[&new]);
    let actor = oidc.verify(&new.sign(&claims(&idp.issuer()))).await.unwrap();

    assert_eq!(actor.org, OrgId::parse(ORG).unwrap());
    assert_eq!(idp.jwks_fetches(), 2);
    assert_eq!(idp.discovery_fetches(), 1, "the JWKS address is kept after discovery");
}

#[tokio::test]
async fn a_second_unknown_kid_within_the_back_off_does_not_refetch() {
    let idp = Idp::start().await;
    let known = TestKey::new("key-known");
    idp.publish(&[&known]);
    let oidc = idp.verifier();
    oidc.verify(&known.sign(&claims(&idp.issuer()))).await.unwrap();

    let first = oidc
        .verify(&TestKey::new("key-made-up-1").sign(&claims(&idp.issuer())))
        .await
        .unwrap_err();
    let second = oidc
        .verify(&TestKey::new("key-made-up-2").sign(&claims(&idp.issuer())))
        .await
        .unwrap_err();

    assert!(matches!(first, OidcError::UnknownKey), "{first:?}");
    assert!(matches!(second, OidcError::UnknownKey), "{second:?}");
    assert_eq!(
        idp.jwks_fetches(),
        2,
        "one refetch for the first unknown kid, none for the second"
    );
    oidc.verify(&known.sign(&claims(&idp.issuer()))).await.unwrap();
}

#[tokio::test]
async fn a_token_without_an_organisation_is_refused() {
    let idp = Idp::start().await;
    let key = TestKey::new("key-a");
    idp.publish(&[&key]);
    let mut orgless = claims(&idp.issuer());
    orgless.as_object_mut().unwrap().remove("wasl_org");

    let err = idp.verifier().verify(&key.sign(&orgless)).await.unwrap_err();

    assert!(matches!(err, OidcError::MissingClaim("organisation")), "{err:?}");
}

#[tokio::test]
async fn an_organisation_that_is_not_an_id_is_refused() {
    let idp = Idp::start().await;
    let key = TestKey::new("key-a");
    idp.publish(&[&key]);
    let mut bad = claims(&idp.issuer());
    bad["wasl_org"] = json!("Test Organisation");

    let err = idp.verifier().verify(&key.sign(&bad)).await.unwrap_err();

    assert!(matches!(err, OidcError::BadOrganisation), "{err:?}");
}

#[tokio::test]
async fn a_token_with_no_known_role_is_refused() {
    let idp = Idp::start().await;
    let key = TestKey::new("key-a");
    idp.publish(&[&key]);
    let mut roleless = claims(&idp.issuer());
    roleless["wasl_roles"] = json!(["not-a-wasl-role", "also-not-one"]);

    let err = idp.verifier().verify(&key.sign(&roleless)).await.unwrap_err();

    assert!(matches!(err, OidcError::NoRoles), "{err:?}");
}

#[tokio::test]
async fn an_unreachable_identity_provider_makes_keys_unavailable() {
    let idp = Idp::start().await;
    let key = TestKey::new("key-a");
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}/test-issuer", closed.local_addr().unwrap());
    drop(closed);

    let err = idp
        .verifier_for(issuer.clone())
        .verify(&key.sign(&claims(&issuer)))
        .await
        .unwrap_err();

    assert!(matches!(err, OidcError::JwksUnavailable(_)), "{err:?}");
}

#[tokio::test]
async fn refusals_never_repeat_the_token_or_its_claims() {
    let idp = Idp::start().await;
    let key = TestKey::new("key-a");
    idp.publish(&[&key]);
    let mut bad = claims(&idp.issuer());
    bad["wasl_org"] = json!("test-person@example.invalid");
    let token = key.sign(&bad);

    let err = idp.verifier().verify(&token).await.unwrap_err();

    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("example.invalid"));
    assert!(!shown.contains(SUBJECT));
    assert!(!shown.contains(&token));
}
