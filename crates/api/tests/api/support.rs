//! A running Wasl API for tests: a real nats-server (per test, free port, temporary store), the
//! read models on SQLite or PostgreSQL with the projector running, and the API served on a free
//! loopback port. Users and tokens are made through the real account store; requests go over
//! real HTTP.

#![allow(dead_code)]

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use std::time::Duration;
use wasl_api::{AppSettings, AppState, Application, CancellationToken, Limits};
use wasl_domain::Role;
use wasl_domain::ids::{OrgId, UserId};
use wasl_domain::testing::fresh;
use wasl_projections::{Projection, Projector, ProjectorConfig, ReadModels};
use wasl_testkit::NatsServer;
pub use wasl_testkit::db::TestDb;
use wasl_vault::LocalMasterKey;

/// A running API with its servers.
pub struct Harness {
    pub nats: NatsServer,
    pub db: TestDb,
    pub base: String,
    pub state: AppState,
    pub models: ReadModels,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The hub's coordinator, who registers organisations.
    pub coordinator: Client,
    pub hub: OrgId,
    session_lifetime: Duration,
}

pub const MASTER_KEY: &str = "0101010101010101010101010101010101010101010101010101010101010101";

impl Harness {
    /// Starts everything on `db`.
    pub async fn start(db: TestDb) -> Self {
        Self::start_with(db, Limits::default()).await
    }

    pub async fn start_with(db: TestDb, limits: Limits) -> Self {
        Self::start_full(db, limits, Duration::from_secs(3600)).await
    }

    /// Starts everything on `db`, with sessions that last `session_lifetime`.
    pub async fn start_full(db: TestDb, limits: Limits, session_lifetime: Duration) -> Self {
        let nats = NatsServer::start().expect("a nats-server");
        let client = async_nats::connect(nats.url()).await.expect("connect to NATS");
        let master = LocalMasterKey::from_hex("test-master", MASTER_KEY).expect("master key");
        let settings = AppSettings {
            session_lifetime,
            limits,
            ..AppSettings::new(db.url.clone(), master)
        };
        let app = Application::build(client, settings, ([127, 0, 0, 1], 0).into())
            .await
            .expect("the API");
        let state = app.state().clone();
        let models = state.models().clone();
        let base = format!("http://{}", app.address());
        let projector = Projector::new(
            models.clone(),
            state.store().stream().clone(),
            Projection::ALL,
            ProjectorConfig::default(),
        );
        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();
        let stop = shutdown.clone().cancelled_owned();
        tasks.push(tokio::spawn(async move {
            projector.run(stop).await.expect("the projector runs");
        }));
        let stop = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            app.run(stop).await.expect("the API serves");
        }));
        let hub: OrgId = fresh();
        let coordinator = Client::bearer(&base, &token(&state, hub, Role::Coordinator).await);
        Self {
            nats,
            db,
            base,
            state,
            models,
            shutdown,
            tasks,
            coordinator,
            hub,
            session_lifetime,
        }
    }

    /// A second API instance on the same NATS and database, as behind a load balancer: its
    /// address and state. It stops with the harness.
    pub async fn another_instance(&mut self) -> (String, AppState) {
        let client = async_nats::connect(self.nats.url()).await.expect("connect to NATS");
        let master = LocalMasterKey::from_hex("test-master", MASTER_KEY).expect("master key");
        let settings = AppSettings {
            session_lifetime: self.session_lifetime,
            ..AppSettings::new(self.db.url.clone(), master)
        };
        let app = Application::build(client, settings, ([127, 0, 0, 1], 0).into())
            .await
            .expect("another API instance");
        let state = app.state().clone();
        let base = format!("http://{}", app.address());
        let stop = self.shutdown.clone();
        self.tasks.push(tokio::spawn(async move {
            app.run(stop).await.expect("the other instance serves");
        }));
        (base, state)
    }

    /// Registers an organisation with one service of `category` in Ninewa, in Arabic.
    pub async fn organisation(&self, name: &str, category: &str) -> (OrgId, String) {
        let r = self
            .coordinator
            .post("/v1/organisations", json!({"name": name, "kind": "national_ngo"}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let org = r.id();
        let r = self
            .coordinator
            .post(
                &format!("/v1/organisations/{org}/services"),
                json!({"name": format!("{name} service"), "category": category, "areas": ["IQ-NI"], "languages": ["ar"]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        (OrgId::parse(&org).expect("org id"), r.id())
    }

    /// A signed-in local user of `org` with `role` (session cookie and CSRF token).
    pub async fn user(&self, org: OrgId, role: Role) -> Client {
        let username = format!(
            "test-{}-{}",
            role.code().replace('_', "-"),
            uuid::Uuid::new_v4().simple()
        );
        let password = "test password 0001";
        self.state
            .accounts()
            .create_user(None, org, &username, &[role], password)
            .await
            .expect("create a user");
        Client::login(&self.base, &username, password).await
    }

    /// A client with a partner API token of `org` and `role`.
    pub async fn token(&self, org: OrgId, role: Role) -> Client {
        Client::bearer(&self.base, &token(&self.state, org, role).await)
    }

    /// A client without credentials.
    pub fn anonymous(&self) -> Client {
        Client::new(&self.base, None)
    }

    /// Stops the API and the projector.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        for task in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

async fn token(state: &AppState, org: OrgId, role: Role) -> String {
    let admin: UserId = fresh();
    let expires = wasl_domain::time::Timestamp::from_unix_millis(wasl_api::auth::accounts::now_millis()).plus_hours(24);
    state
        .accounts()
        .issue_token(admin, org, role, "test token", expires)
        .await
        .expect("issue a token")
        .1
}

/// An answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The `id` of a command answer.
    pub fn id(&self) -> String {
        self.body["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {}", self.body))
            .to_owned()
    }

    /// The `position` of a command answer.
    pub fn position(&self) -> u64 {
        self.body["position"]
            .as_u64()
            .unwrap_or_else(|| panic!("no position in {}", self.body))
    }

    /// The `ETag`, unquoted.
    pub fn etag(&self) -> String {
        self.headers
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .expect("an ETag")
            .trim_matches('"')
            .to_owned()
    }

    /// The problem `type` of an error answer.
    pub fn problem(&self) -> &str {
        self.body["type"].as_str().unwrap_or("")
    }
}

/// An HTTP client acting as one principal.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    bearer: Option<String>,
    csrf: Option<String>,
}

impl Client {
    fn new(base: &str, bearer: Option<String>) -> Self {
        Self {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .expect("an HTTP client"),
            base: base.to_owned(),
            bearer,
            csrf: None,
        }
    }

    pub fn bearer(base: &str, secret: &str) -> Self {
        Self::new(base, Some(secret.to_owned()))
    }

    /// Signs in with a local account.
    pub async fn login(base: &str, username: &str, password: &str) -> Self {
        let mut client = Self::new(base, None);
        let r = client
            .post("/v1/login", json!({"username": username, "password": password}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "sign-in: {}", r.body);
        client.csrf = r.body["csrf_token"].as_str().map(str::to_owned);
        client
    }

    /// The same principal (the same cookies, CSRF token and bearer) against the API at `base`,
    /// another instance on the same host: cookies are per host, not per port.
    pub fn at(&self, base: &str) -> Self {
        Self {
            base: base.to_owned(),
            ..self.clone()
        }
    }

    pub fn without_csrf(&self) -> Self {
        Self {
            csrf: None,
            ..self.clone()
        }
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>, headers: &[(&str, String)]) -> Answer {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(secret) = &self.bearer {
            request = request.bearer_auth(secret);
        }
        if let Some(csrf) = &self.csrf {
            request = request.header("x-csrf-token", csrf);
        }
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the API answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Answer { status, headers, body }
    }

    /// A GET whose answer is read as it comes (a server-sent event stream).
    pub async fn stream(&self, path: &str) -> reqwest::Response {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(secret) = &self.bearer {
            request = request.bearer_auth(secret);
        }
        request.send().await.expect("the API answers")
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None, &[]).await
    }

    /// A GET that waits for the read model to reach `position`.
    pub async fn get_at(&self, path: &str, position: u64) -> Answer {
        self.send(Method::GET, path, None, &[("wasl-min-position", position.to_string())])
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(Method::POST, path, Some(body), &[]).await
    }

    pub async fn post_with(&self, path: &str, body: Value, headers: &[(&str, String)]) -> Answer {
        self.send(Method::POST, path, Some(body), headers).await
    }
}

/// A case profile with obviously fake values.
pub fn profile(code: &str) -> Value {
    json!({
        "survivor_code": code,
        "sex": "female",
        "age_years": 29,
        "population_group": "idp",
        "nationality": "IQ",
        "governorate": "IQ-NI",
        "language": "ar",
        "vulnerabilities": []
    })
}
