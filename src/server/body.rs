//! The JSON body extractor: size-limited, time-limited, content-type checked, strict,
//! and failing with our JSON errors (413, 408, 415, 400) instead of axum's plain-text ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::{Bytes, HttpBody as _};
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// The largest request body accepted, in bytes.
pub const BODY_LIMIT: usize = 16 * 1024;

/// When the body of a request must have arrived by, put in the request's extensions by
/// the server's middleware. Without it (a bare router in a test) the body read is
/// untimed.
#[derive(Debug, Clone)]
pub struct BodyDeadline {
    /// The instant.
    pub at: tokio::time::Instant,
    /// Set once the body was read (or refused), so a later timeout is the handler's.
    pub done: Arc<AtomicBool>,
    /// The whole request runs under a timer for the same instant, so the body read needs
    /// none of its own.
    pub covered: bool,
}

/// A JSON request body. An empty body with no `Content-Type` reads as `T::default()`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        JsonObject::from_request(req, state)
            .await?
            .parse()
            .map(Self)
    }
}

/// A JSON request body that passed every check but the parse, for a handler that parses
/// it into borrowed strings ([`JsonObject::parse`]); `None` for an empty body sent without
/// a `Content-Type`.
#[derive(Debug)]
pub struct JsonObject(pub Option<Bytes>);

impl JsonObject {
    /// The body as a `T`: `T::default()` for an empty body without a `Content-Type`.
    ///
    /// # Errors
    /// 400 for anything but a JSON object that serde reads as a `T`.
    pub fn parse<'a, T: Deserialize<'a> + Default>(&'a self) -> Result<T, ApiError> {
        let Some(bytes) = &self.0 else {
            return Ok(T::default());
        };
        // serde would read a struct from an array too; only an object is accepted.
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(describe(&e)))
    }
}

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = req.headers().get(CONTENT_TYPE).cloned();
        let deadline = req.extensions().get::<BodyDeadline>().cloned();
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        // A declared length over the limit is refused before waiting for any of it.
        if declared.is_some_and(|n| n > BODY_LIMIT as u64)
            || req.body().size_hint().lower() > BODY_LIMIT as u64
        {
            return Err(ApiError::payload_too_large(BODY_LIMIT));
        }
        let read = Bytes::from_request(req, state);
        // Where the request as a whole runs under the deadline, that timer covers the
        // body too (and answers 408 while the body is unread); only the routes that may
        // outlive it need one of their own.
        let read = match deadline.as_ref().filter(|d| !d.covered) {
            Some(d) => tokio::time::timeout_at(d.at, read).await,
            None => Ok(read.await),
        };
        if let Some(d) = &deadline {
            d.done.store(true, Ordering::Release);
        }
        let bytes = read
            .map_err(|_| ApiError::request_timeout())?
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::payload_too_large(BODY_LIMIT)
                } else {
                    ApiError::bad_request("the request body could not be read")
                }
            })?;
        match content_type {
            None if bytes.is_empty() => Ok(Self(None)),
            Some(ct) if is_json(ct.as_bytes()) => Ok(Self(Some(bytes))),
            _ => Err(ApiError::unsupported_media_type()),
        }
    }
}

/// `application/json`, with no parameter or only `charset=utf-8` (any case, quoted or
/// not): JSON is UTF-8 (RFC 8259 §8.1), and a body declared in another charset is not
/// what it says it is.
fn is_json(content_type: &[u8]) -> bool {
    if content_type == b"application/json" {
        return true;
    }
    let Ok(ct) = std::str::from_utf8(content_type) else {
        return false;
    };
    let mut parts = ct.split(';');
    let essence = parts.next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return false;
    }
    parts.all(|param| {
        let Some((name, value)) = param.split_once('=') else {
            return false;
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        name.trim().eq_ignore_ascii_case("charset") && value.eq_ignore_ascii_case("utf-8")
    })
}

/// A description of a JSON error that never repeats values from the body.
fn describe(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let at = format!("line {}, column {}", e.line(), e.column());
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            format!("the request body is not valid JSON ({at})")
        }
        Category::Data => {
            let text = e.to_string();
            // serde names unknown and missing members; keep that, drop any value.
            if let Some(rest) = text.strip_prefix("unknown field `")
                && let Some((field, _)) = rest.split_once('`')
                && field.len() <= 64
            {
                format!("unknown member \"{}\" ({at})", field.escape_default())
            } else if text.starts_with("duplicate field") {
                format!("a member appears twice ({at})")
            } else {
                format!("a member has the wrong type or value ({at})")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert!(is_json(b"application/json"));
        assert!(is_json(b"Application/JSON; charset=utf-8"));
        assert!(is_json(b"application/json;charset=\"UTF-8\""));
        assert!(!is_json(b"application/json; charset=latin1"));
        assert!(!is_json(b"application/json; charset=utf-16"));
        assert!(!is_json(b"application/json; charset="));
        assert!(!is_json(b"application/json; boundary=x"));
        assert!(!is_json(b"application/json;"));
        assert!(!is_json(b"application/merge-patch+json"));
        assert!(!is_json(b"text/plain"));
        assert!(!is_json(b"application/jsonx"));
        assert!(!is_json(b"application/x-www-form-urlencoded"));
    }
}
