//! The data the API fuzz (`scripts/fuzz-api`) starts from, made through the running API as its
//! users would: two organisations with a service each (as a coordinator), a case with consent
//! and a referral to the second organisation (as a caseworker), and the identities the fuzz
//! passes use: tokens from `wasl tokens issue`, admin accounts from `wasl users add`.
//!
//! ```sh
//! cargo run -p wasl-api --example fuzz_seed -- seed <api-base-url> <nats-url> <wasl-binary> <work-dir>
//! cargo run -p wasl-api --example fuzz_seed -- login <api-base-url> <username> <work-dir>
//! ```
//!
//! `seed` writes `<work-dir>/known.json` (the ids the fuzzer mixes into path parameters) and
//! prints the credentials as `name=value` lines on standard output, values of
//! `[A-Za-z0-9._-]` only: `coordinator`, `caseworker`, `focal` (token secrets), `session` and
//! `csrf` (the admin `fuzz-admin` signed in). `login` signs another admin in with the password
//! `seed` kept in the work directory and prints its `session` and `csrf`. Progress goes to
//! standard error. Every name and code is synthetic.

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use std::error::Error;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;
use uuid::Uuid;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const USAGE: &str = "usage: fuzz_seed seed <api-base-url> <nats-url> <wasl-binary> <work-dir>\n       fuzz_seed login <api-base-url> <username> <work-dir>";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("fuzz_seed: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match args.as_slice() {
            ["seed", base, nats_url, wasl, work] => {
                seed(&Api::new(base)?, nats_url, Path::new(wasl), Path::new(work)).await
            }
            ["login", base, username, work] => {
                let password = std::fs::read_to_string(Path::new(work).join("admin.password"))?;
                let (session, csrf) = Api::new(base)?.login(username, password.trim()).await?;
                print_credentials(&[("session", &session), ("csrf", &csrf)])
            }
            _ => Err(USAGE.into()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fuzz_seed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn seed(api: &Api, nats_url: &str, wasl: &Path, work: &Path) -> Result<()> {
    let wasl = Wasl {
        binary: wasl,
        nats_url,
        work,
    };
    let org_a = Uuid::now_v7().to_string(); // the referring organisation: caseworker, admin
    let org_b = Uuid::now_v7().to_string(); // the receiving partner: focal point
    let hub = Uuid::now_v7().to_string(); // the coordination hub (not in the directory)
    eprintln!("fuzz_seed: organisations {org_a} (referring) and {org_b} (partner), coordinator hub {hub}");

    let coordinator = wasl.token(&hub, "coordinator", "fuzz-coordinator")?.secret;
    let caseworker = wasl.token(&org_a, "caseworker", "fuzz-caseworker")?.secret;
    let focal = wasl.token(&org_b, "focal_point", "fuzz-focal-point")?.secret;
    // Not used to call: the token the fuzzer may revoke.
    let spare_token = wasl.token(&org_a, "partner_system", "fuzz-spare")?.id;

    let password = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    let password_file = work.join("admin.password");
    std::fs::write(&password_file, &password)?;
    wasl.user("fuzz-admin", &org_a, "admin", &password)?;
    // Not used to sign in: the user the fuzzer may change or disable instead of the admin.
    let spare_user = wasl.user("fuzz-spare", &org_a, "caseworker", &password)?;
    // The admin whose session the logout pass ends: in the hub, out of sight of the admin
    // pass, which may disable its organisation's users or lock their names.
    wasl.user("fuzz-logout", &hub, "admin", &password)?;

    for secret in [&coordinator, &caseworker, &focal] {
        api.wait_known(secret).await?;
    }
    let as_coordinator = Some(coordinator.as_str());
    let as_caseworker = Some(caseworker.as_str());
    for (id, name) in [(&org_a, "Test Fuzz NGO A"), (&org_b, "Test Fuzz NGO B")] {
        api.call(
            Method::POST,
            "/v1/organisations",
            json!({"id": id, "name": name, "kind": "national_ngo"}),
            as_coordinator,
        )
        .await?;
    }
    api.call(
        Method::POST,
        &format!("/v1/organisations/{org_a}/services"),
        json!({"name": "Test Fuzz psychosocial support", "category": "psychosocial", "areas": ["IQ-NI"], "languages": ["ar"]}),
        as_coordinator,
    )
    .await?;
    let service_b = api
        .call(
            Method::POST,
            &format!("/v1/organisations/{org_b}/services"),
            json!({"name": "Test Fuzz health service", "category": "health", "areas": ["IQ-NI"], "languages": ["ar"]}),
            as_coordinator,
        )
        .await?
        .text("id")?;
    let profile = json!({"survivor_code": "TEST-FUZZ-0001", "sex": "female", "age_years": 29,
        "population_group": "idp", "nationality": "IQ", "governorate": "IQ-NI", "language": "ar",
        "vulnerabilities": []});
    let case = api
        .call(Method::POST, "/v1/cases", json!({"profile": profile}), as_caseworker)
        .await?
        .text("id")?;
    let consent = api
        .call(
            Method::POST,
            &format!("/v1/cases/{case}/consents"),
            json!({}),
            as_caseworker,
        )
        .await?
        .text("id")?;
    let referral = api
        .call(
            Method::POST,
            "/v1/referrals",
            json!({"case_id": case, "to_org": org_b, "service_id": service_b, "priority": "routine", "notes": "Test fuzz note"}),
            as_caseworker,
        )
        .await?;
    let (referral, position) = (referral.text("id")?, referral.number("position")?);
    // Read-your-writes: the read models hold everything before the fuzzing starts.
    api.get_at(&format!("/v1/referrals/{referral}"), position, &caseworker)
        .await?;
    eprintln!("fuzz_seed: case {case}, consent {consent}, referral {referral} (stream position {position})");

    let (session, csrf) = api.login("fuzz-admin", &password).await?;
    let admin = api.me(&session).await?;
    let known = json!({
        "org_id": [org_a, org_b],
        "service_id": [service_b],
        "case_id": [case],
        "consent_id": [consent],
        "referral_id": [referral],
        "user_id": [spare_user],
        "token_id": [spare_token],
        "admin_user_id": admin,
    });
    std::fs::write(work.join("known.json"), serde_json::to_vec_pretty(&known)?)?;
    print_credentials(&[
        ("coordinator", &coordinator),
        ("caseworker", &caseworker),
        ("focal", &focal),
        ("session", &session),
        ("csrf", &csrf),
    ])
}

/// `name=value` lines for the script to read; refuses a value it could not read safely.
fn print_credentials(pairs: &[(&str, &str)]) -> Result<()> {
    for (name, value) in pairs {
        if value.is_empty() || !value.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
            return Err(format!("the {name} credential has characters the script does not expect").into());
        }
        println!("{name}={value}");
    }
    Ok(())
}

/// The `wasl` command against the fuzz run's NATS.
struct Wasl<'a> {
    binary: &'a Path,
    nats_url: &'a str,
    work: &'a Path,
}

/// A token `wasl tokens issue` made.
struct Token {
    id: String,
    secret: String,
}

impl Wasl<'_> {
    fn run(&self, args: &[&str], stdin: Option<&str>, what: &str) -> Result<(String, String)> {
        let mut child = Command::new(self.binary)
            .args(args)
            .args(["--nats-url", self.nats_url])
            .current_dir(self.work)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.binary.display()))?;
        if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
            use std::io::Write as _;
            writeln!(input, "{text}")?;
        }
        let output = child.wait_with_output()?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if !output.status.success() {
            return Err(format!("{what} failed ({}):\n{stderr}", output.status).into());
        }
        Ok((stdout, stderr))
    }

    /// `wasl tokens issue`: the secret is its standard output, the id in its message.
    fn token(&self, org: &str, role: &str, label: &str) -> Result<Token> {
        let args = ["tokens", "issue", "--org", org, "--role", role, "--label", label];
        let (stdout, stderr) = self.run(&args, None, "wasl tokens issue")?;
        let id = stderr
            .lines()
            .find_map(|line| line.split("issued token ").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .ok_or("wasl tokens issue did not name the token it issued")?;
        Ok(Token {
            id: id.to_owned(),
            secret: stdout.trim().to_owned(),
        })
    }

    /// `wasl users add` with the password on standard input; the new user's id.
    fn user(&self, username: &str, org: &str, role: &str, password: &str) -> Result<String> {
        let args = ["users", "add", "--username", username, "--org", org, "--role", role];
        let (stdout, _) = self.run(&args, Some(password), "wasl users add")?;
        // "created user <name> (<id>) …"
        stdout
            .lines()
            .find_map(|line| line.strip_prefix("created user "))
            .and_then(|rest| rest.split_once('(')?.1.split_once(')').map(|(id, _)| id.to_owned()))
            .ok_or_else(|| "wasl users add did not name the user it created".into())
    }
}

/// The running API.
struct Api {
    base: String,
    http: Client,
}

/// A 2xx answer's JSON body.
struct Answer(Value);

impl Answer {
    fn text(&self, field: &str) -> Result<String> {
        Ok(self.0[field]
            .as_str()
            .ok_or_else(|| format!("the answer has no text {field}: {}", self.0))?
            .to_owned())
    }

    fn number(&self, field: &str) -> Result<u64> {
        Ok(self.0[field]
            .as_u64()
            .ok_or_else(|| format!("the answer has no number {field}: {}", self.0))?)
    }
}

impl Api {
    fn new(base: &str) -> Result<Self> {
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            http: Client::builder().timeout(Duration::from_secs(30)).build()?,
        })
    }

    /// Sends `body` as `bearer`; anything but 2xx is an error naming the route and status.
    async fn call(&self, method: Method, path: &str, body: Value, bearer: Option<&str>) -> Result<Answer> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .json(&body);
        if let Some(secret) = bearer {
            request = request.bearer_auth(secret);
        }
        let response = request.send().await?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(format!("{method} {path} answered {status} (expected 2xx): {answer}").into());
        }
        Ok(Answer(answer))
    }

    /// `GET path` once the read models reach `position`.
    async fn get_at(&self, path: &str, position: u64, bearer: &str) -> Result<()> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(bearer)
            .header("Wasl-Min-Position", position.to_string())
            .send()
            .await?;
        match response.status() {
            StatusCode::OK => Ok(()),
            status => Err(format!("GET {path} answered {status}").into()),
        }
    }

    /// Waits until the API (which follows the accounts stream) knows a newly issued token.
    async fn wait_known(&self, secret: &str) -> Result<()> {
        for _ in 0..100 {
            let answer = self
                .http
                .get(format!("{}/v1/me", self.base))
                .bearer_auth(secret)
                .send()
                .await;
            if answer.is_ok_and(|a| a.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err("the API did not accept a newly issued token within 10 s".into())
    }

    /// Signs in: the session cookie's value and its CSRF token.
    async fn login(&self, username: &str, password: &str) -> Result<(String, String)> {
        let response = self
            .http
            .post(format!("{}/v1/login", self.base))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await?;
        let status = response.status();
        let session = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|cookie| cookie.strip_prefix("wasl_session="))
            .and_then(|rest| rest.split(';').next())
            .map(str::to_owned);
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        match (status.is_success(), session, answer["csrf_token"].as_str()) {
            (true, Some(session), Some(csrf)) => Ok((session, csrf.to_owned())),
            _ => Err(format!("POST /v1/login as {username} answered {status} without a session and CSRF token").into()),
        }
    }

    /// The signed-in user's id.
    async fn me(&self, session: &str) -> Result<String> {
        let response = self
            .http
            .get(format!("{}/v1/me", self.base))
            .header("Cookie", format!("wasl_session={session}"))
            .send()
            .await?;
        let answer: Value = response.json().await?;
        Ok(answer["user_id"].as_str().ok_or("GET /v1/me named no user")?.to_owned())
    }
}
