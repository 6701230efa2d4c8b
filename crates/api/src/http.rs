//! The HTTP conventions every route shares: JSON bodies that refuse unknown fields,
//! `Idempotency-Key` as the command id, `If-Match`/`ETag` as the aggregate version,
//! `Wasl-Min-Position` for read-your-writes, and the command answer.

use crate::error::{ApiError, FieldProblem};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use wasl_domain::ids::{CommandId, UserId, uuid_v7_from_parts};
use wasl_store::CommandOutcome;

/// The header naming the stream position a query must see.
pub const MIN_POSITION: &str = "wasl-min-position";
/// The header carrying a command's stream position in its answer.
pub const POSITION: &str = "wasl-position";
/// The header carrying the client's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// A JSON body. Unknown fields are refused by the request types (`deny_unknown_fields`), and
/// any rejection is a problem document naming what was wrong, never the value.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // JSON first (content type, syntax), then the request type, with the path of what did
        // not fit kept as a path rather than as text that could quote the client's keys.
        let axum::Json(value) = axum::Json::<serde_json::Value>::from_request(req, state)
            .await
            .map_err(|rejection| json_rejection(&rejection))?;
        serde_path_to_error::deserialize(value)
            .map(Self)
            .map_err(|error| ApiError::BadRequest {
                detail: "the body does not match the request schema".to_owned(),
                errors: vec![data_error(&error)],
            })
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::bad_request("the body must be JSON with Content-Type: application/json")
        }
        JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        JsonRejection::BytesRejection(_) => ApiError::bad_request("the body could not be read"),
        JsonRejection::JsonSyntaxError(_) => ApiError::bad_request("the body is not valid JSON"),
        // Only when reading into a type other than a JSON value, which `Json` never asks for.
        JsonRejection::JsonDataError(_) => ApiError::bad_request("the body does not match the request schema"),
        _ => ApiError::bad_request("the body could not be read"),
    }
}

/// What did not fit the request type, as a field problem: the JSON pointer (RFC 6901) of the
/// field (`/profile/vulnerabilities/2`), for a missing field the field itself (`/profile/sex`,
/// our field name, never the client's), and for an unknown field the object holding it — its
/// name is the client's text and is not echoed back. Values are never quoted.
fn data_error(error: &serde_path_to_error::Error<serde_json::Error>) -> FieldProblem {
    use serde_path_to_error::Segment;
    let text = error.inner().to_string();
    let kind = data_error_kind(&text);
    let mut segments: Vec<&Segment> = error.path().iter().collect();
    if kind == "unknown field" {
        // The path ends at the unknown key itself.
        segments.pop();
    }
    let mut pointer = String::new();
    for segment in segments {
        match segment {
            Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                pointer.push('/');
                pointer.push_str(&escape_pointer(key));
            }
            Segment::Unknown => break,
        }
    }
    if let Some(missing) = text
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name)
    {
        pointer.push('/');
        pointer.push_str(&escape_pointer(missing));
    }
    FieldProblem {
        field: pointer,
        problem: kind.to_owned(),
    }
}

/// A member name as a JSON pointer segment: `~` → `~0`, `/` → `~1`.
fn escape_pointer(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

fn data_error_kind(text: &str) -> &'static str {
    if text.contains("unknown field") {
        "unknown field"
    } else if text.contains("missing field") {
        "a required field is missing"
    } else if text.contains("unknown variant") {
        "not one of the allowed values"
    } else if text.contains("invalid type") {
        "has the wrong type"
    } else {
        "does not match the schema"
    }
}

/// The body of an action that takes none: empty, or an empty JSON object (`{}`, which some
/// clients always send). Anything else is refused as an unknown field would be in a request
/// that has a body, never silently ignored.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBody;

impl<S: Send + Sync> FromRequest<S> for NoBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = match axum::body::Bytes::from_request(req, state).await {
            Ok(bytes) => bytes,
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError::PayloadTooLarge);
            }
            Err(_) => return Err(ApiError::bad_request("the body could not be read")),
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self);
        }
        match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes) {
            Ok(object) if object.is_empty() => Ok(Self),
            Ok(_) => Err(ApiError::BadRequest {
                detail: "this action takes no body".to_owned(),
                errors: vec![FieldProblem {
                    // The pointer of the whole body.
                    field: String::new(),
                    problem: "unknown field".to_owned(),
                }],
            }),
            Err(_) => Err(ApiError::bad_request("this action takes no body")),
        }
    }
}

/// Query parameters, with rejections as problem documents.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(err)) => {
                let text = err.body_text();
                Err(ApiError::BadRequest {
                    detail: "the query string does not match the parameters".to_owned(),
                    errors: vec![FieldProblem {
                        field: "query".to_owned(),
                        problem: data_error_kind(&text).to_owned(),
                    }],
                })
            }
            Err(_) => Err(ApiError::bad_request("the query string could not be read")),
        }
    }
}

/// Path parameters. A path that cannot be read (bad percent-encoding, say) names nothing that
/// exists: 404 as a problem document, like an id that does not parse.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Self(value))
            .map_err(|_| ApiError::NotFound)
    }
}

/// The optional `Idempotency-Key` header.
#[derive(Debug, Clone, Default)]
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(IDEMPOTENCY_KEY) else {
            return Ok(Self(None));
        };
        let text = value.as_bytes();
        if !text.iter().all(u8::is_ascii_graphic) {
            return Err(ApiError::invalid(
                "Idempotency-Key",
                "must be visible ASCII characters (no spaces or tabs)",
            ));
        }
        if text.is_empty() || text.len() > 255 {
            return Err(ApiError::invalid("Idempotency-Key", "must be 1 to 255 characters"));
        }
        let text = String::from_utf8_lossy(text);
        Ok(Self(Some(text.into_owned())))
    }
}

impl IdempotencyKey {
    /// The command id: the key itself when it is a UUIDv7, else derived from the key and the
    /// user (so two users' keys never collide), and a fresh id when there is no key.
    ///
    /// `target` is the method and path: the same key on another resource or action is another
    /// command. The same key sent again with another body on the same target is the same
    /// command and gets the first answer, so a retry can never do something twice.
    pub fn command_id(&self, user: UserId, target: &[u8]) -> CommandId {
        match &self.0 {
            None => fresh_command_id(),
            Some(key) => {
                let mut hash = Sha256::new();
                hash.update(b"wasl idempotency v1\0");
                hash.update(user.as_uuid().as_bytes());
                hash.update(key.as_bytes());
                hash.update([0]);
                hash.update(target);
                let digest = hash.finalize();
                // A deterministic UUIDv7: 48 bits of "time" and 74 random bits from the hash.
                // The time part lies in the past, which only matters for ordering ids.
                let millis =
                    u64::from_be_bytes([0, 0, 0, digest[0] & 0x7f, digest[1], digest[2], digest[3], digest[4]]);
                let mut random = [0u8; 10];
                random.copy_from_slice(&digest[5..15]);
                CommandId::from_uuid(uuid_v7_from_parts(millis, random)).unwrap_or_else(|_| fresh_command_id())
            }
        }
    }
}

/// A new command id.
pub fn fresh_command_id() -> CommandId {
    loop {
        if let Ok(id) = CommandId::from_uuid(uuid::Uuid::now_v7()) {
            return id;
        }
    }
}

/// The optional `If-Match` header: the version the client last saw (`"3"` or `W/"3"`). `*`
/// matches any current version (RFC 9110), as if the header were absent: the command still needs
/// the resource to exist.
#[derive(Debug, Clone, Copy, Default)]
pub struct IfMatch(pub Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(Self(None));
        };
        let text = value.to_str().unwrap_or("").trim();
        if text == "*" {
            return Ok(Self(None));
        }
        let bare = text.strip_prefix("W/").unwrap_or(text);
        let bare = bare.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(bare);
        bare.parse::<u64>()
            .map(|v| Self(Some(v)))
            .map_err(|_| ApiError::invalid("If-Match", "must be an ETag this API gave out, like \"3\""))
    }
}

/// The optional `Wasl-Min-Position` header: the stream position a query must reflect.
#[derive(Debug, Clone, Copy, Default)]
pub struct MinPosition(pub Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for MinPosition {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(MIN_POSITION) else {
            return Ok(Self(None));
        };
        value
            .to_str()
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
            .map(|v| Self(Some(v)))
            .ok_or_else(|| ApiError::invalid("Wasl-Min-Position", "must be a stream position (a whole number)"))
    }
}

/// What every command answers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CommandAnswer {
    /// The aggregate's id.
    pub id: String,
    /// Its version after the command (also the `ETag`).
    pub version: u64,
    /// The stream position of the command's last event; send it as `Wasl-Min-Position` to
    /// read your write.
    pub position: u64,
    /// The command had been carried out before (a retry); this is the original answer.
    pub replayed: bool,
}

/// A command's answer as a response: 201 for a new resource, else 200, with `ETag`,
/// `Wasl-Position` and, for a new resource, `Location`.
pub fn answered(id: String, outcome: CommandOutcome, created_at: Option<String>) -> Response {
    let status = if created_at.is_some() && !outcome.replayed {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut headers = HeaderMap::new();
    put_version(&mut headers, outcome.version);
    if let Ok(value) = HeaderValue::from_str(&outcome.position.to_string()) {
        headers.insert(POSITION, value);
    }
    if let Some(location) = created_at
        && let Ok(value) = HeaderValue::from_str(&location)
    {
        headers.insert(header::LOCATION, value);
    }
    let body = CommandAnswer {
        id,
        version: outcome.version,
        position: outcome.position,
        replayed: outcome.replayed,
    };
    (status, headers, axum::Json(body)).into_response()
}

/// Sets `ETag` to the version.
pub fn put_version(headers: &mut HeaderMap, version: u64) {
    if let Ok(value) = HeaderValue::from_str(&format!("\"{version}\"")) {
        headers.insert(header::ETAG, value);
    }
}

/// A JSON response with an `ETag`.
pub fn with_etag<T: Serialize>(version: u64, body: T) -> Response {
    let mut headers = HeaderMap::new();
    put_version(&mut headers, version);
    (headers, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> UserId {
        UserId::from_uuid(uuid::Uuid::now_v7()).expect("v7")
    }

    #[test]
    fn the_same_key_user_and_request_give_the_same_command_id() {
        let u = user();
        let key = IdempotencyKey(Some("retry-me".to_owned()));
        assert_eq!(key.command_id(u, b"a"), key.command_id(u, b"a"));
        assert_ne!(key.command_id(u, b"a"), key.command_id(u, b"b"));
        assert_ne!(key.command_id(u, b"a"), key.command_id(user(), b"a"));
    }

    /// A client retrying across an upgrade must get the same answer, so the derivation of a
    /// command id from a key and a target may never change. The expected ids were computed
    /// outside Rust (Python's hashlib and uuid, following the doc comment of `command_id`).
    #[test]
    fn the_command_id_of_a_known_key_and_target_is_pinned() {
        let user = UserId::parse("0190b2c4-0000-7000-8000-00000000c0de").expect("v7");
        let key = IdempotencyKey(Some("retry-me-1".to_owned()));
        assert_eq!(
            key.command_id(user, b"POST /v1/cases").to_string(),
            "00244377-eb07-7008-b396-18e425cd025b"
        );
        assert_eq!(
            key.command_id(user, b"POST /v1/referrals/0190b2c4-0000-7000-8000-0000000000a1/accept")
                .to_string(),
            "0057ceb3-6699-79ae-9067-4c6a0b8da10c"
        );
    }

    #[test]
    fn without_a_key_every_command_is_new() {
        let u = user();
        let none = IdempotencyKey(None);
        assert_ne!(none.command_id(u, b"a"), none.command_id(u, b"a"));
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        reason: Reason,
        profile: Option<Profile>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Reason {
        code: String,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Profile {
        sex: String,
        vulnerabilities: Vec<String>,
    }

    /// The field problem a body gives, read as the `Json` extractor reads it.
    fn problem(body: serde_json::Value) -> FieldProblem {
        let error = serde_path_to_error::deserialize::<_, Body>(body).expect_err("does not fit");
        data_error(&error)
    }

    #[test]
    fn what_does_not_fit_is_named_by_its_json_pointer_without_values() {
        let wrong_type = problem(serde_json::json!({"reason": {"code": "a"},
            "profile": {"sex": "female", "vulnerabilities": ["a", "b", 7]}}));
        assert_eq!(wrong_type.field, "/profile/vulnerabilities/2");
        assert_eq!(wrong_type.problem, "has the wrong type");
        let missing = problem(serde_json::json!({}));
        assert_eq!(missing.field, "/reason");
        assert_eq!(missing.problem, "a required field is missing");
        let nested = problem(serde_json::json!({"reason": {"code": "a"}, "profile": {"vulnerabilities": []}}));
        assert_eq!(nested.field, "/profile/sex");
    }

    #[test]
    fn an_unknown_field_is_named_by_the_object_holding_it_and_never_echoed() {
        for key in ["Fatima", "Test Name: missing field `x`", "a.b[1]", "x/y~z"] {
            let nested = problem(serde_json::json!({"reason": {"code": "a", key: 1}}));
            assert_eq!(nested.field, "/reason", "{key}");
            assert_eq!(nested.problem, "unknown field");
            let top = problem(serde_json::json!({"reason": {"code": "a"}, key: 1}));
            assert_eq!(top.field, "", "{key}");
        }
    }
}
