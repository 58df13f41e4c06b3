//! Routes anyone may call: the JWK Set, liveness, Prometheus metrics and the OpenAPI
//! description.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::state::AppState;

/// A JWK Set (RFC 7517) of Ed25519 keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct JwksDoc {
    /// Active and retired keys; revoked keys are never listed.
    pub keys: Vec<JwkDoc>,
}

/// One public key.
#[derive(Debug, Serialize, ToSchema)]
pub struct JwkDoc {
    /// `OKP`.
    pub kty: String,
    /// `Ed25519`.
    pub crv: String,
    /// `EdDSA`.
    pub alg: String,
    /// `sig`.
    #[serde(rename = "use")]
    pub use_: String,
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// The public key, base64url.
    pub x: String,
}

/// The verifying keys in force, for standard JWT libraries and other verifiers.
#[utoipa::path(
    get, path = "/.well-known/jwks.json", tag = "public",
    responses((status = 200, description = "Active and retired public keys", body = JwksDoc))
)]
pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut response = Json(state.ring().ring.jwks()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=60"),
    );
    response
}

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// `full` or `verify-only`.
    pub mode: String,
    /// The active key of the ring in force.
    pub active_kid: String,
}

/// Liveness and the ring in force.
#[utoipa::path(
    get, path = "/healthz", tag = "public",
    responses((status = 200, body = Health))
)]
pub async fn healthz(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        mode: if state.verify_only() {
            "verify-only"
        } else {
            "full"
        }
        .into(),
        active_kid: state.ring().ring.active().kid().to_owned(),
    })
}

/// Prometheus metrics.
#[utoipa::path(
    get, path = "/metrics", tag = "public",
    responses((status = 200, description = "OpenMetrics text", body = String, content_type = "application/openmetrics-text"))
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics().encode(),
    )
        .into_response()
}

/// This API's description.
#[utoipa::path(
    get, path = "/openapi.json", tag = "public",
    responses((status = 200, description = "OpenAPI 3.1 document", body = Object))
)]
pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        super::openapi::json(),
    )
        .into_response()
}
