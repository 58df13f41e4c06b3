//! The JSON body extractor: size-limited, content-type checked, strict, and failing with
//! our JSON errors (413, 415, 400) instead of axum's plain-text ones.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// The largest request body accepted, in bytes.
pub const BODY_LIMIT: usize = 16 * 1024;

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
        let content_type = req.headers().get(CONTENT_TYPE).cloned();
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::payload_too_large(BODY_LIMIT)
            } else {
                ApiError::bad_request("the request body could not be read")
            }
        })?;
        match content_type {
            None if bytes.is_empty() => return Ok(Self(T::default())),
            Some(ct) if is_json(ct.as_bytes()) => {}
            _ => return Err(ApiError::unsupported_media_type()),
        }
        // serde would read a struct from an array too; only an object is accepted.
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        serde_json::from_slice(&bytes)
            .map(Self)
            .map_err(|e| ApiError::bad_request(describe(&e)))
    }
}

/// `application/json` or `application/<something>+json`, parameters allowed.
fn is_json(content_type: &[u8]) -> bool {
    let Ok(ct) = std::str::from_utf8(content_type) else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
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
        assert!(is_json(b"application/merge-patch+json"));
        assert!(!is_json(b"text/plain"));
        assert!(!is_json(b"application/jsonx"));
        assert!(!is_json(b"application/x-www-form-urlencoded"));
    }
}
