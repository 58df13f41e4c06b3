//! `POST /v1/activations`: a device presents its deployment token; the answer comes from
//! the token alone (signature, time, revocation lists), with one audit line per decision.

use std::borrow::Cow;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{AuthorizationHeaders, BearerError, ClientAddr, bearer};
use super::body::JsonObject;
use super::error::{ApiError, ErrorBody};
use super::state::AppState;
use crate::keyring::rfc3339;
use crate::verify::{Reason, Rejection, Verified};

/// Longest `user` or `device`, in characters.
pub const MAX_LABEL_CHARS: usize = 256;

/// An activation request. The token may come here or as `Authorization: Bearer`, not both.
/// Strings borrow from the request body unless they hold escapes.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivationRequest<'a> {
    /// The deployment token from the install command.
    #[serde(default, borrow, deserialize_with = "borrowed")]
    #[schema(value_type = Option<String>)]
    pub token: Option<Cow<'a, str>>,
    /// The user logging on (for the audit log), at most 256 characters.
    #[serde(default, borrow, deserialize_with = "borrowed")]
    #[schema(value_type = Option<String>, max_length = 256, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub user: Option<Cow<'a, str>>,
    /// The device name (for the audit log), at most 256 characters.
    #[serde(default, borrow, deserialize_with = "borrowed")]
    #[schema(value_type = Option<String>, max_length = 256, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub device: Option<Cow<'a, str>>,
}

/// An optional string that borrows from the input unless it holds escapes. serde borrows
/// for a bare `Cow<str>` member only; inside an `Option` it would always copy.
fn borrowed<'de, 'a, D>(d: D) -> Result<Option<Cow<'a, str>>, D::Error>
where
    D: serde::Deserializer<'de>,
    'de: 'a,
{
    #[derive(Deserialize)]
    struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Borrowed<'a>>::deserialize(d)?.map(|b| b.0))
}

/// An accepted activation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivationResponse<'a> {
    /// Always true.
    pub activated: bool,
    /// The token's `jti`.
    pub token_id: &'a str,
    /// The key that signed it.
    pub key_id: &'a str,
    /// The token's label.
    pub name: Option<&'a str>,
    /// Its expiry (RFC 3339 UTC), or null if it never expires.
    pub expires_at: Option<String>,
}

fn check_label(what: &str, value: Option<&str>) -> Result<(), ApiError> {
    if let Some(v) = value
        && (v.chars().count() > MAX_LABEL_CHARS || v.chars().any(char::is_control))
    {
        return Err(ApiError::bad_request(format!(
            "{what} must be at most {MAX_LABEL_CHARS} characters without control characters"
        )));
    }
    Ok(())
}

/// Checks a device's deployment token.
#[utoipa::path(
    post,
    path = "/v1/activations",
    tag = "activation",
    request_body(content = ActivationRequest, description = "An empty body (no Content-Type) is `{}`: the token then comes as Authorization: Bearer"),
    security((), ("deployment_token" = [])),
    responses(
        (status = 200, description = "The token is authentic and current", body = ActivationResponse),
        (status = 400, description = "Malformed JSON, unknown member, over-long user/device, or a token in both body and header", body = ErrorBody),
        (status = 401, description = "The token is refused; `error` is the reason code", body = ErrorBody),
        (status = 408, description = "`request_timeout`: the body did not arrive within the request timeout", body = ErrorBody),
        (status = 413, description = "Body over 16 KiB, or a declared Content-Length over it", body = ErrorBody),
        (status = 415, description = "Body not sent as application/json (no charset, or charset=utf-8)", body = ErrorBody),
    )
)]
pub async fn activate(
    State(state): State<AppState>,
    client: ClientAddr,
    AuthorizationHeaders(headers): AuthorizationHeaders,
    body: JsonObject,
) -> Result<Response, ApiError> {
    let body: ActivationRequest<'_> = body.parse()?;
    check_label("user", body.user.as_deref())?;
    check_label("device", body.device.as_deref())?;
    let from_header = match bearer(&headers) {
        Ok(t) => t.map(Ok),
        Err(BearerError::OtherScheme) => None,
        Err(BearerError::Malformed) => Some(Err(())),
    };
    let token = match (body.token.as_deref(), from_header) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "send the token either in the body or as Authorization: Bearer, not both",
            ));
        }
        (Some(t), None) | (None, Some(Ok(t))) => Some(t),
        (None, Some(Err(()))) | (None, None) => None,
    };
    let now = state.now();
    let decision = match token {
        None => Decision::NoToken,
        Some(token) => {
            let ring = state.ring();
            match ring.verifier.verify_signed(token.as_bytes()) {
                Err(rejection) => Decision::Refused(rejection, None),
                Ok(verified) => match ring.verifier.check(&verified, now) {
                    Ok(()) => Decision::Accepted(verified),
                    // The signature held, so the claims are the issuer's and safe to log.
                    Err(rejection) => Decision::Refused(rejection, Some(verified)),
                },
            }
        }
    };
    let reason = decision.reason();
    state.metrics().activation(reason);
    state.activity().record(now, reason);
    let (kid, claims) = match &decision {
        Decision::Accepted(v) => (Some(v.kid.as_str()), Some(&v.claims)),
        Decision::Refused(r, v) => (r.kid.as_deref(), v.as_ref().map(|v| &v.claims)),
        Decision::NoToken => (None, None),
    };
    tracing::info!(
        target: "mdtoken::audit",
        event = "activation",
        outcome = if reason.is_none() { "accepted" } else { "rejected" },
        reason = reason.map(Reason::as_str),
        jti = claims.map(|c| c.jti.as_str()),
        kid,
        name = claims.and_then(|c| c.name.as_deref()),
        user = body.user.as_deref(),
        device = body.device.as_deref(),
        client = %client,
        "activation"
    );
    match decision {
        Decision::Accepted(v) => Ok(Json(ActivationResponse {
            activated: true,
            token_id: &v.claims.jti,
            key_id: &v.kid,
            name: v.claims.name.as_deref(),
            expires_at: v.claims.exp.map(rfc3339),
        })
        .into_response()),
        Decision::Refused(rejection, _) => Err(ApiError::rejected(&rejection)),
        Decision::NoToken => Err(ApiError::no_token()),
    }
}

enum Decision {
    Accepted(Arc<Verified>),
    Refused(Rejection, Option<Arc<Verified>>),
    NoToken,
}

impl Decision {
    fn reason(&self) -> Option<Reason> {
        match self {
            Decision::Accepted(..) => None,
            Decision::Refused(r, _) => Some(r.reason),
            Decision::NoToken => Some(Reason::Malformed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_strings_borrow_unless_escaped() {
        let body = br#"{"token":"abc.def.ghi","user":"caf\u00e9","device":null}"#;
        let r: ActivationRequest<'_> = serde_json::from_slice(body).unwrap();
        assert!(matches!(r.token, Some(Cow::Borrowed("abc.def.ghi"))));
        assert!(matches!(r.user.as_deref(), Some("caf\u{e9}")));
        assert!(matches!(r.user, Some(Cow::Owned(_))));
        assert!(r.device.is_none());
        let r: ActivationRequest<'_> = serde_json::from_slice(b"{}").unwrap();
        assert!(r.token.is_none() && r.user.is_none() && r.device.is_none());
        for bad in [
            &br#"{"token":"a","extra":1}"#[..],
            br#"{"token":"a","token":"b"}"#,
            br#"{"token":5}"#,
        ] {
            assert!(serde_json::from_slice::<ActivationRequest<'_>>(bad).is_err());
        }
    }
}
