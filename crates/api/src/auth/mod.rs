//! Who is calling: a partner API token, an OIDC bearer JWT, or a local account's session.
//!
//! Every route that needs a caller takes a [`Principal`]; extracting it is authentication, and
//! nothing else in the API looks at credentials.

pub mod accounts;
pub mod oidc;
pub mod password;
pub mod session;

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, header};
use wasl_domain::Actor;
use wasl_domain::time::Timestamp;

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A local account's session cookie.
    Session {
        /// The cookie's secret, to end the session on logout.
        secret: String,
    },
    /// A partner API token.
    Token,
    /// An OIDC bearer JWT.
    Oidc,
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Who, in which organisation, with which roles.
    pub actor: Actor,
    /// How they authenticated.
    pub via: Via,
}

/// The value of cookie `name`, if sent.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            let text = value.to_str().map_err(|_| ApiError::Unauthenticated)?;
            let bearer = text
                .strip_prefix("Bearer ")
                .or_else(|| text.strip_prefix("bearer "))
                .ok_or(ApiError::Unauthenticated)?
                .trim();
            if bearer.starts_with(accounts::TOKEN_PREFIX) {
                let now = Timestamp::from_unix_millis(accounts::now_millis());
                let token = state
                    .accounts()
                    .token_for_secret(bearer, now)
                    .ok_or(ApiError::Unauthenticated)?;
                return Ok(Self {
                    actor: token.actor(),
                    via: Via::Token,
                });
            }
            let oidc = state.oidc().ok_or(ApiError::Unauthenticated)?;
            let actor = oidc.verify(bearer).await.map_err(|err| {
                tracing::info!(reason = %err, "bearer token refused");
                ApiError::Unauthenticated
            })?;
            return Ok(Self { actor, via: Via::Oidc });
        }
        let secret = cookie(parts, session::COOKIE).ok_or(ApiError::Unauthenticated)?;
        let session = state
            .sessions()
            .get(secret)
            .await
            .map_err(|err| ApiError::Unavailable(err.to_string()))?
            .ok_or(ApiError::Unauthenticated)?;
        let user = state
            .accounts()
            .user(session.user)
            .filter(|u| !u.disabled)
            .ok_or(ApiError::Unauthenticated)?;
        if !is_safe(&parts.method) {
            let sent = parts.headers.get(session::CSRF_HEADER).and_then(|v| v.to_str().ok());
            if !sent.is_some_and(|s| constant_time_eq(s.as_bytes(), session.csrf.as_bytes())) {
                return Err(ApiError::Forbidden);
            }
        }
        Ok(Self {
            actor: user.actor(),
            via: Via::Session {
                secret: secret.to_owned(),
            },
        })
    }
}

/// Compares two secrets without leaking where they differ through timing.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
