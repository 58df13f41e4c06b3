//! Request extractors for who is calling: the admin key check (constant time, against
//! hashes re-read when they change), the Bearer credential parser and the client address.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::error::ApiError;
use super::state::AppState;

/// Proof that the request carried a valid admin key. Put it first in an admin handler's
/// arguments so it is checked before the body is read.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if state.verify_only() {
            return Err(ApiError::verify_only());
        }
        let Ok(Some(presented)) = bearer(&parts.headers) else {
            return Err(ApiError::unauthorized());
        };
        if state.admin_keys().check(presented) {
            Ok(Admin)
        } else {
            Err(ApiError::unauthorized())
        }
    }
}

/// Why an `Authorization` header could not be read as a Bearer credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    /// The header is not visible ASCII, or `Bearer` with nothing after it.
    Malformed,
    /// Another scheme (`Basic`, ...).
    OtherScheme,
}

/// The Bearer credential of `Authorization`, if any. The scheme is matched without
/// regard to case (RFC 9110 §11.1); the credential is taken exactly as sent.
///
/// # Errors
/// [`BearerError`] for a header that is present but not a usable Bearer credential.
pub fn bearer(headers: &HeaderMap) -> Result<Option<&str>, BearerError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(BearerError::Malformed);
    }
    let value = value.to_str().map_err(|_| BearerError::Malformed)?;
    let (scheme, credential) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::OtherScheme);
    }
    let credential = credential.trim_matches(' ');
    if credential.is_empty() || credential.contains(' ') {
        return Err(BearerError::Malformed);
    }
    Ok(Some(credential))
}

/// The request's `Authorization` headers alone, for [`bearer`] in a handler that also
/// reads the body (which takes the request, header map and all).
pub struct AuthorizationHeaders(pub HeaderMap);

impl<S: Send + Sync> FromRequestParts<S> for AuthorizationHeaders {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let mut only = HeaderMap::new();
        for value in parts.headers.get_all(AUTHORIZATION) {
            only.append(AUTHORIZATION, value.clone());
        }
        Ok(Self(only))
    }
}

/// The peer address when the server was reached over a socket (absent in `oneshot`
/// tests).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

impl std::fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(addr) => write!(f, "{addr}"),
            None => f.write_str("unknown"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer(&HeaderMap::new()), Ok(None));
        assert_eq!(bearer(&with("Bearer abc")), Ok(Some("abc")));
        assert_eq!(bearer(&with("bEaReR abc")), Ok(Some("abc")));
        assert_eq!(bearer(&with("Basic YTpi")), Err(BearerError::OtherScheme));
        assert_eq!(bearer(&with("Bearer")), Err(BearerError::Malformed));
        assert_eq!(bearer(&with("Bearer a b")), Err(BearerError::Malformed));
        assert_eq!(bearer(&with("Bearerabc")), Err(BearerError::OtherScheme));
    }
}
