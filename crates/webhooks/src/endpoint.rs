//! Endpoints: one per organisation, a URL and a signing secret, stored as JSON in the KV bucket
//! `WASL_WEBHOOKS` under the organisation id, with the last change (who, when, what kind) and
//! the secrets sealed ([`crate::seal`]). The bucket keeps no history: an old revision would
//! keep an old secret readable.

use crate::error::WebhookError;
use crate::seal::{SecretsKey, Slot, StoredSecret};
use crate::signature::Secret;
use reqwest::Url;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::SystemTime;
use wasl_domain::ids::OrgId;

/// The kind of change a revision of an endpoint records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// URL set (and a new secret issued).
    Set,
    /// A new secret issued, same URL.
    Rotate,
    /// Deliveries stopped (URL and secret kept).
    Disable,
    /// Deliveries resumed.
    Enable,
}

/// An endpoint as shown to administrators: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // plain data: the field names say what they hold
pub struct EndpointInfo {
    pub org: OrgId,
    /// Where messages are POSTed.
    pub url: String,
    /// Whether the worker delivers to it.
    pub enabled: bool,
    /// When this revision was written.
    pub updated_at: SystemTime,
    /// Who wrote it (as given by the caller: an admin's user id or name).
    pub updated_by: String,
    /// What this revision changed.
    pub change: Change,
    /// The KV revision (increases with every change of any endpoint).
    pub revision: u64,
    /// Until when the previous secret still signs too (after a rotation with an overlap).
    pub previous_secret_until: Option<SystemTime>,
}

/// What is stored per organisation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredEndpoint {
    pub url: String,
    /// Sealed (or `whsec_…` in a record written before secrets were sealed).
    pub secret: StoredSecret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret: Option<StoredSecret>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_until: Option<String>,
    pub enabled: bool,
    /// RFC 3339.
    pub updated_at: String,
    pub updated_by: String,
    pub change: Change,
}

impl StoredEndpoint {
    pub(crate) fn decode(bytes: &[u8], bucket: &str) -> Result<Self, WebhookError> {
        serde_json::from_slice(bytes).map_err(|_| WebhookError::Corrupt(bucket.to_owned()))
    }

    pub(crate) fn encode(&self) -> bytes::Bytes {
        serde_json::to_vec(self).expect("an endpoint serialises").into()
    }

    pub(crate) fn info(&self, org: OrgId, revision: u64) -> EndpointInfo {
        EndpointInfo {
            org,
            url: self.url.clone(),
            enabled: self.enabled,
            updated_at: parse_time(&self.updated_at).unwrap_or(SystemTime::UNIX_EPOCH),
            updated_by: self.updated_by.clone(),
            change: self.change,
            revision,
            previous_secret_until: self.previous_until.as_deref().and_then(parse_time),
        }
    }

    /// The endpoint ready to deliver to, its secrets opened with `key`.
    pub(crate) fn endpoint(&self, org: OrgId, key: &SecretsKey, bucket: &str) -> Result<Endpoint, WebhookError> {
        let corrupt = || WebhookError::Corrupt(bucket.to_owned());
        let url = validate_url(&self.url)?;
        let secret = key.open(org, Slot::Current, &self.secret, bucket)?;
        let previous = match (&self.previous_secret, &self.previous_until) {
            (Some(secret), Some(until)) => Some((
                key.open(org, Slot::Previous, secret, bucket)?,
                parse_time(until).ok_or_else(corrupt)?,
            )),
            _ => None,
        };
        Ok(Endpoint { url, secret, previous })
    }

    /// Whether a secret is still in plain text (a record from before secrets were sealed).
    pub(crate) fn has_plain_secret(&self) -> bool {
        self.secret.is_plain() || self.previous_secret.as_ref().is_some_and(StoredSecret::is_plain)
    }

    /// Seals any secret still in plain text.
    pub(crate) fn seal_plain(&mut self, org: OrgId, key: &SecretsKey, bucket: &str) -> Result<(), WebhookError> {
        if self.secret.is_plain() {
            let secret = key.open(org, Slot::Current, &self.secret, bucket)?;
            self.secret = StoredSecret::Sealed(key.seal(org, Slot::Current, &secret)?);
        }
        if let Some(previous) = self.previous_secret.as_mut().filter(|p| p.is_plain()) {
            let secret = key.open(org, Slot::Previous, previous, bucket)?;
            *previous = StoredSecret::Sealed(key.seal(org, Slot::Previous, &secret)?);
        }
        Ok(())
    }
}

/// An endpoint as the worker uses it.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub url: Url,
    pub secret: Secret,
    /// The secret before the last rotation and until when it still signs.
    pub previous: Option<(Secret, SystemTime)>,
}

impl Endpoint {
    /// The secrets to sign with at `now`: the current one, and the previous one during the
    /// rotation's overlap.
    pub(crate) fn signing_secrets(&self, now: SystemTime) -> Vec<&Secret> {
        let mut secrets = vec![&self.secret];
        if let Some((previous, until)) = &self.previous
            && now < *until
        {
            secrets.push(previous);
        }
        secrets
    }
}

/// Accepts `https://…`, and `http://…` only to a loopback host (`localhost`, 127.0.0.0/8, `::1`)
/// for tests and development: partner messages leave the hub only encrypted. This reads the
/// URL only; where its host points is checked by [`crate::Destinations`] (loopback is refused
/// there unless allowed).
pub fn validate_url(text: &str) -> Result<Url, WebhookError> {
    let invalid = |why: &str| WebhookError::InvalidUrl(why.to_owned());
    let url = Url::parse(text.trim()).map_err(|_| invalid("not a URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("credentials in the URL are not allowed"));
    }
    let host = url.host_str().ok_or_else(|| invalid("no host"))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(host) => Ok(url),
        "http" => Err(invalid("http is allowed only to loopback; use https")),
        _ => Err(invalid("the scheme must be https")),
    }
}

fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

pub(crate) fn format_time(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

pub(crate) fn parse_time(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_is_required_except_to_loopback() {
        assert!(validate_url("https://partner.example/hooks/wasl").is_ok());
        assert!(validate_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(validate_url("http://localhost:8080/hook").is_ok());
        assert!(validate_url("http://[::1]:8080/hook").is_ok());
        for refused in [
            "http://partner.example/hook",
            "http://10.0.0.1/hook",
            "ftp://partner.example/hook",
            "https://user:pass@partner.example/hook",
            "not a url",
        ] {
            assert!(
                matches!(validate_url(refused), Err(WebhookError::InvalidUrl(_))),
                "{refused} accepted"
            );
        }
    }

    #[test]
    fn the_previous_secret_signs_only_during_the_overlap() {
        let now = SystemTime::now();
        let endpoint = Endpoint {
            url: validate_url("https://partner.example/").unwrap(),
            secret: Secret::generate().unwrap(),
            previous: Some((Secret::generate().unwrap(), now + std::time::Duration::from_secs(60))),
        };
        assert_eq!(endpoint.signing_secrets(now).len(), 2);
        assert_eq!(
            endpoint.signing_secrets(now + std::time::Duration::from_secs(61)).len(),
            1
        );
    }
}
