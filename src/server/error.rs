//! The one HTTP error type: every failure leaves the server as JSON
//! `{"error": CODE, "message": TEXT}` with the status that fits.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::StoreError;
use crate::verify::Rejection;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable code: a token rejection reason (`token_expired`, ...) or one of
    /// `unauthorized`, `bad_request`, `not_found`, `method_not_allowed`,
    /// `payload_too_large`, `unsupported_media_type`, `unprocessable`, `verify_only`,
    /// `request_timeout`, `keys_dir_error`, `timeout`, `internal`.
    #[schema(example = "token_expired")]
    pub error: String,
    /// A short explanation; never holds token or key bytes.
    pub message: String,
}

/// The `WWW-Authenticate` challenge of a refused deployment token.
pub const TOKEN_CHALLENGE: &str = r#"Bearer error="invalid_token""#;

/// The `WWW-Authenticate` challenge of an admin route called without a valid admin key.
pub const ADMIN_CHALLENGE: &str = r#"Bearer realm="mdtoken""#;

/// Whether an error of this status leaves the request body unread (refused for its size
/// before it was read, or not arrived in time): the connection cannot carry another
/// request and is closed after the answer, which then says so, so a keep-alive client
/// does not send its next request into a closed connection.
pub fn closes_connection(status: StatusCode) -> bool {
    status == StatusCode::PAYLOAD_TOO_LARGE || status == StatusCode::REQUEST_TIMEOUT
}

/// An HTTP error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    challenge: Option<&'static str>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            challenge: None,
        }
    }

    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// A token that was refused: 401 with the reason code.
    pub fn rejected(rejection: &Rejection) -> Self {
        Self {
            challenge: Some(TOKEN_CHALLENGE),
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                rejection.reason.as_str(),
                rejection.to_string(),
            )
        }
    }

    /// No token at all in an activation request.
    pub fn no_token() -> Self {
        Self {
            challenge: Some(TOKEN_CHALLENGE),
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                crate::verify::Reason::Malformed.as_str(),
                "no token: send it as the \"token\" member of the JSON body or as Authorization: Bearer",
            )
        }
    }

    /// A missing or wrong admin key.
    pub fn unauthorized() -> Self {
        Self {
            challenge: Some(ADMIN_CHALLENGE),
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this route needs Authorization: Bearer <admin key>; create one with `mdtoken admin-key create`",
            )
        }
    }

    /// A request the server cannot read.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// Nothing here by that name.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// The route exists but not with this method.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not accept that method; see /openapi.json",
        )
    }

    /// The body is over the limit.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request bodies are limited to {limit} bytes"),
        )
    }

    /// The body is not declared as JSON.
    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as Content-Type: application/json",
        )
    }

    /// Well-formed but refused input (an expiry in the past, a bad name, ...).
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", message)
    }

    /// An admin or console route on a verify-only replica: not served here.
    pub fn verify_only() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "verify_only",
            "this is a verify-only replica; use the admin node",
        )
    }

    /// The request body did not arrive within the request timeout.
    pub fn request_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request body did not arrive in time; send it whole, with a Content-Length that matches",
        )
    }

    /// The keys directory is in a state the server cannot work with (a damaged file, a
    /// missing private key, a lock that cannot be taken): the operator must act, so the
    /// message names the file and what to do. Logged at error level.
    pub fn keys_dir(e: &StoreError) -> Self {
        tracing::error!(error = %redacted_chain(e), "keys directory error");
        Self::new(StatusCode::CONFLICT, "keys_dir_error", keys_dir_message(e))
    }

    /// The request took longer than the configured limit.
    pub fn timeout() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the request took too long and was abandoned",
        )
    }

    /// A fault of the server; the detail goes to the log, never to the client.
    pub fn internal(detail: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %ErrorChain(detail), "request failed");
        Self::internal_generic()
    }

    /// A fault whose detail was already logged.
    pub fn internal_generic() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server log has the detail",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::UnknownKid { .. } => Self::not_found("no key with that id in the ring"),
            StoreError::UnknownJti { .. } => Self::not_found("no token with that id in the ledger"),
            StoreError::Mint(m) => Self::unprocessable(m.to_string()),
            StoreError::Ledger { .. }
            | StoreError::Document { .. }
            | StoreError::Io { .. }
            | StoreError::PrivateKey { .. }
            | StoreError::KeyMismatch { .. }
            | StoreError::MissingPrivateKey { .. }
            | StoreError::Ring { .. }
            | StoreError::NotInitialised { .. } => Self::keys_dir(&e),
            _ => Self::internal(&e),
        }
    }
}

/// What is wrong with which file, and what to do; never file contents (a parse error's
/// text can quote a value, so only positions are kept).
fn keys_dir_message(e: &StoreError) -> String {
    match e {
        StoreError::Ledger { path, source } => format!(
            "ledger {} is damaged: {source}; repair that line from a backup rather than delete it (a key's rotation records the ids of the tokens it signed from the ledger, and a token missing there stops verifying once its key is retired)",
            path.display()
        ),
        StoreError::Document { path, source } => format!(
            "{} is not valid ({}); restore it from a backup, or move it aside so it can be made again",
            path.display(),
            json_position(source)
        ),
        StoreError::Io {
            action,
            path,
            source,
        } => format!(
            "{action} {} failed: {source}; check that it exists, is a regular file or directory as expected, and that the server's user may read and write it",
            path.display()
        ),
        StoreError::PrivateKey { path, .. } => format!(
            "private key {} is unreadable; restore it from a backup or run `mdtoken keys rotate`",
            path.display()
        ),
        StoreError::KeyMismatch { path, kid } => format!(
            "private key {} does not match the ring's active key {kid}; restore the right keyring.json or run `mdtoken keys rotate`",
            path.display()
        ),
        StoreError::MissingPrivateKey { kid, path } => format!(
            "the ring's active key has no private key here ({kid}, expected at {}); restore the right keyring.json or run `mdtoken keys rotate`",
            path.display()
        ),
        StoreError::Ring { path, source } => format!(
            "key ring {} is invalid: {}; restore it from a backup (the server keeps verifying with the last good ring)",
            path.display(),
            redacted_chain(source)
        ),
        other => other.to_string(),
    }
}

fn json_position(e: &serde_json::Error) -> String {
    format!(
        "{} at line {}, column {}",
        match e.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "unexpected content",
            serde_json::error::Category::Eof => "cut short",
        },
        e.line(),
        e.column()
    )
}

/// Like [`ErrorChain`], but a JSON parse error in the chain is shown by position only.
pub(crate) fn redacted_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    let mut next = Some(e);
    while let Some(err) = next {
        if !out.is_empty() {
            out.push_str(": ");
        }
        if let Some(json) = err.downcast_ref::<serde_json::Error>() {
            out.push_str(&json_position(json));
            break;
        }
        out.push_str(&err.to_string());
        next = err.source();
    }
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.to_owned(),
            message: self.message,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(challenge) = self.challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if closes_connection(self.status) {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// Displays an error with its sources, `a: b: c`.
pub(crate) struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}
