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
    /// `timeout`, `internal`.
    #[schema(example = "token_expired")]
    pub error: String,
    /// A short explanation; never holds token or key bytes.
    pub message: String,
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
            challenge: Some(r#"Bearer error="invalid_token""#),
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
            challenge: Some(r#"Bearer error="invalid_token""#),
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
            challenge: Some(r#"Bearer realm="mdtoken""#),
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

    /// An admin route on a verify-only replica.
    pub fn verify_only() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "verify_only",
            "this server runs with --verify-only and holds no signing key; use the admin node for this route",
        )
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
            _ => Self::internal(&e),
        }
    }
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
