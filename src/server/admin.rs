//! The admin API: minting, the ledger, revocation, the current deployment token and key
//! ring management. Every handler takes [`Admin`] first, so the key is checked before the
//! body is read, and does its file work on the blocking pool.

use std::collections::HashSet;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::auth::Admin;
use super::body::JsonBody;
use super::error::{ApiError, ErrorBody};
use super::state::AppState;
use crate::install::Os;
use crate::keyring::{KeyStatus, rfc3339};
use crate::mint::{Expiry, check_name, expiry_in_days, parse_expiry_at};

/// Runs keys-directory work on the blocking pool.
async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "admin task failed");
        Err(ApiError::internal_generic())
    })
}

fn when(t: OffsetDateTime) -> String {
    rfc3339(t.unix_timestamp())
}

fn path_param(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    match p {
        Ok(Path(v)) if !v.is_empty() && v.len() <= 256 => Ok(v),
        _ => Err(ApiError::not_found("no such id")),
    }
}

/// The install commands for a token.
#[derive(Debug, Serialize, ToSchema)]
pub struct Commands {
    /// msiexec command line.
    pub windows: String,
    /// macOS installer command line.
    pub macos: String,
    /// Linux package install command line.
    pub linux: String,
}

impl Commands {
    fn new(state: &AppState, token: &str) -> Self {
        let config = state.config();
        let server = config.server_url();
        let render = |os| config.install.render(os, token, &server);
        Self {
            windows: render(Os::Windows),
            macos: render(Os::Macos),
            linux: render(Os::Linux),
        }
    }
}

/// A mint request. `expires_at` and `expires_in_days` are exclusive; with neither the
/// token never expires.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintRequest {
    /// A label, at most 64 characters, no control characters; blank means none.
    #[serde(default)]
    #[schema(max_length = 64, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub name: Option<String>,
    /// `YYYY-MM-DD` (valid through the end of that day, UTC) or an RFC 3339 time.
    #[serde(default)]
    #[schema(example = "2027-01-31")]
    pub expires_at: Option<String>,
    /// Days from now, 1 to 3660.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 3660)]
    pub expires_in_days: Option<i64>,
}

/// A freshly minted token, now the current one.
#[derive(Debug, Serialize, ToSchema)]
pub struct MintResponse {
    /// The token (compact JWS).
    pub token: String,
    /// Its `jti`.
    pub token_id: String,
    /// The key that signed it.
    pub key_id: String,
    /// Its label.
    pub name: Option<String>,
    /// Issue time, RFC 3339 UTC.
    pub issued_at: String,
    /// Expiry, RFC 3339 UTC, or null.
    pub expires_at: Option<String>,
    /// Install commands carrying it.
    pub commands: Commands,
}

/// Mints a token and makes it current.
#[utoipa::path(
    post, path = "/v1/tokens", tag = "admin", security(("bearer" = [])),
    request_body(content = MintRequest, description = "An empty body (no Content-Type) is `{}`: a token that never expires"),
    responses(
        (status = 201, description = "Minted; it is now the current token", body = MintResponse),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "No or wrong admin key", body = ErrorBody),
        (status = 408, description = "`request_timeout`: the body did not arrive within the request timeout", body = ErrorBody),
        (status = 413, description = "Body over 16 KiB, or a declared Content-Length over it", body = ErrorBody),
        (status = 415, description = "Not application/json (no charset, or charset=utf-8)", body = ErrorBody),
        (status = 422, description = "Expiry in the past, too far, unreadable, or both forms given; bad name", body = ErrorBody),
        (status = 404, description = "`verify_only`: this is a verify-only replica; use the admin node", body = ErrorBody),
        (status = 409, description = "`keys_dir_error`: a file in the keys directory is damaged or unusable; the message says which and what to do", body = ErrorBody),
    )
)]
pub async fn mint(
    _: Admin,
    State(state): State<AppState>,
    JsonBody(req): JsonBody<MintRequest>,
) -> Result<(StatusCode, Json<MintResponse>), ApiError> {
    let now = state.now();
    let expiry = match (req.expires_at.as_deref(), req.expires_in_days) {
        (Some(_), Some(_)) => {
            return Err(ApiError::unprocessable(
                "give expires_at or expires_in_days, not both",
            ));
        }
        (Some(at), None) => Expiry::At(
            parse_expiry_at(at, now).map_err(|e| ApiError::unprocessable(e.to_string()))?,
        ),
        (None, Some(days)) => Expiry::At(
            expiry_in_days(days, now).map_err(|e| ApiError::unprocessable(e.to_string()))?,
        ),
        (None, None) => Expiry::Never,
    };
    // Checked before a blank name is dropped, so over-long or control-character names
    // are refused however blank they look.
    if let Some(name) = &req.name {
        check_name(name).map_err(|e| ApiError::unprocessable(e.to_string()))?;
    }
    let name = req.name.filter(|n| !n.trim().is_empty());
    let st = state.clone();
    let minted = blocking(move || Ok(st.store().mint(name.as_deref(), expiry, now)?)).await?;
    state.metrics().mint();
    tracing::info!(target: "mdtoken::audit", event = "minted", jti = %minted.claims.jti, kid = %minted.kid, name = minted.claims.name.as_deref(), exp = minted.claims.exp, "token minted");
    let commands = Commands::new(&state, &minted.token);
    Ok((
        StatusCode::CREATED,
        Json(MintResponse {
            token_id: minted.claims.jti,
            key_id: minted.kid,
            name: minted.claims.name,
            issued_at: rfc3339(minted.claims.iat),
            expires_at: minted.claims.exp.map(rfc3339),
            commands,
            token: minted.token,
        }),
    ))
}

/// A token's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenStatus {
    /// Verifies now.
    Active,
    /// Past its expiry.
    Expired,
    /// Revoked, or its key was.
    Revoked,
}

/// One ledger entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenEntry {
    /// The `jti`.
    pub token_id: String,
    /// Signing key.
    pub key_id: String,
    /// Label.
    pub name: Option<String>,
    /// Issue time, RFC 3339 UTC.
    pub issued_at: String,
    /// Expiry, RFC 3339 UTC, or null.
    pub expires_at: Option<String>,
    /// Standing now.
    pub status: TokenStatus,
}

/// The ledger.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    /// Newest first.
    pub tokens: Vec<TokenEntry>,
}

/// Lists every minted token, newest first.
#[utoipa::path(
    get, path = "/v1/tokens", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, body = TokenList),
        (status = 401, description = "No or wrong admin key", body = ErrorBody),
        (status = 404, description = "`verify_only`: this is a verify-only replica; use the admin node", body = ErrorBody),
        (status = 409, description = "`keys_dir_error`: a file in the keys directory is damaged or unusable; the message says which and what to do", body = ErrorBody),
    )
)]
pub async fn list_tokens(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<TokenList>, ApiError> {
    let now = state.now();
    let st = state.clone();
    let (ring, ledger) = blocking(move || {
        let store = st.store();
        Ok((store.load_ring()?, store.ledger()?))
    })
    .await?;
    let revoked_tokens: HashSet<&str> = ring
        .revoked_tokens()
        .iter()
        .map(|r| r.jti.as_str())
        .collect();
    let revoked_keys: HashSet<&str> = ring.revoked_keys().iter().map(|r| r.kid.as_str()).collect();
    let tokens = ledger
        .iter()
        .rev()
        .map(|e| {
            let exp = e.exp.map(OffsetDateTime::unix_timestamp);
            let status = if revoked_tokens.contains(e.jti.as_str())
                || revoked_keys.contains(e.kid.as_str())
            {
                TokenStatus::Revoked
            } else if exp.is_some_and(|exp| exp <= now) || ring.key(&e.kid).is_none() {
                // A key leaves the ring unrevoked only once all its tokens have lapsed.
                TokenStatus::Expired
            } else {
                TokenStatus::Active
            };
            TokenEntry {
                token_id: e.jti.clone(),
                key_id: e.kid.clone(),
                name: e.name.clone(),
                issued_at: when(e.iat),
                expires_at: e.exp.map(when),
                status,
            }
        })
        .collect();
    Ok(Json(TokenList { tokens }))
}

/// A revoked token.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevokeTokenResponse {
    /// The `jti`.
    pub token_id: String,
    /// Always true.
    pub revoked: bool,
}

/// Revokes a token: it is refused from now on, whatever its expiry.
#[utoipa::path(
    post, path = "/v1/tokens/{jti}/revoke", tag = "admin", security(("bearer" = [])),
    params(("jti" = String, Path, description = "The token id", max_length = 256)),
    responses(
        (status = 200, body = RevokeTokenResponse),
        (status = 401, description = "No or wrong admin key", body = ErrorBody),
        (status = 404, description = "`not_found`: no such token in the ledger; `verify_only`: this is a verify-only replica, use the admin node", body = ErrorBody),
        (status = 409, description = "`keys_dir_error`: a file in the keys directory is damaged or unusable; the message says which and what to do", body = ErrorBody),
    )
)]
pub async fn revoke_token(
    _: Admin,
    State(state): State<AppState>,
    jti: Result<Path<String>, PathRejection>,
) -> Result<Json<RevokeTokenResponse>, ApiError> {
    let jti = path_param(jti)?;
    let st = state.clone();
    let id = jti.clone();
    blocking(move || {
        st.store().revoke_token(&id)?;
        st.reload_ring();
        Ok(())
    })
    .await?;
    tracing::info!(target: "mdtoken::audit", event = "token_revoked", jti = %jti, "token revoked");
    Ok(Json(RevokeTokenResponse {
        token_id: jti,
        revoked: true,
    }))
}

/// The current deployment token and its install commands.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeploymentResponse {
    /// The token.
    pub token: String,
    /// Its `jti`.
    pub token_id: String,
    /// Signing key.
    pub key_id: String,
    /// Label.
    pub name: Option<String>,
    /// Issue time, RFC 3339 UTC.
    pub issued_at: String,
    /// Expiry, RFC 3339 UTC, or null.
    pub expires_at: Option<String>,
    /// When it will be replaced automatically (its expiry), or null.
    pub renews_at: Option<String>,
    /// Whether this request minted it because the previous one no longer verified.
    pub renewed: bool,
    /// The server URL in the commands.
    pub server_url: String,
    /// Install commands carrying it.
    pub commands: Commands,
}

/// The current token, renewed first if it no longer verifies.
#[utoipa::path(
    get, path = "/v1/deployment", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, body = DeploymentResponse),
        (status = 401, description = "No or wrong admin key", body = ErrorBody),
        (status = 404, description = "`verify_only`: this is a verify-only replica; use the admin node", body = ErrorBody),
        (status = 409, description = "`keys_dir_error`: a file in the keys directory is damaged or unusable; the message says which and what to do", body = ErrorBody),
    )
)]
pub async fn deployment(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<DeploymentResponse>, ApiError> {
    let now = state.now();
    let st = state.clone();
    let renew_days = state.config().renew_days;
    let (current, renewed) =
        blocking(move || Ok(st.store().current_or_renew(renew_days, now)?)).await?;
    if renewed {
        state.metrics().mint();
        tracing::info!(target: "mdtoken::audit", event = "renewed", jti = %current.jti, kid = %current.kid, "current token renewed");
    }
    let commands = Commands::new(&state, &current.token);
    Ok(Json(DeploymentResponse {
        token_id: current.jti,
        key_id: current.kid,
        name: current.name,
        issued_at: when(current.iat),
        expires_at: current.exp.map(when),
        renews_at: current.exp.map(when),
        renewed,
        server_url: state.config().server_url(),
        commands,
        token: current.token,
    }))
}

/// One ring key.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyEntry {
    /// Key id (RFC 7638 thumbprint).
    pub kid: String,
    /// `active` or `retired`.
    #[schema(example = "active")]
    pub status: String,
    /// Creation time.
    pub created_at: String,
    /// Retirement time, or null.
    pub retired_at: Option<String>,
    /// Latest expiry it signed (retired keys), or null.
    pub verify_until: Option<String>,
}

/// A revoked key.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedKeyEntry {
    /// Key id.
    pub kid: String,
    /// When it was revoked.
    pub revoked_at: String,
}

/// The key ring.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeysResponse {
    /// The ring's `iss`.
    pub issuer: String,
    /// The ring's `aud`.
    pub audience: String,
    /// Verifying keys, active first.
    pub keys: Vec<KeyEntry>,
    /// Keys taken out of service.
    pub revoked_keys: Vec<RevokedKeyEntry>,
}

/// Lists the key ring.
#[utoipa::path(
    get, path = "/v1/keys", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, body = KeysResponse),
        (status = 401, description = "No or wrong admin key", body = ErrorBody),
        (status = 404, description = "`verify_only`: this is a verify-only replica; use the admin node", body = ErrorBody),
        (status = 409, description = "`keys_dir_error`: a file in the keys directory is damaged or unusable; the message says which and what to do", body = ErrorBody),
    )
)]
pub async fn list_keys(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<KeysResponse>, ApiError> {
    let st = state.clone();
    let ring = blocking(move || Ok(st.store().load_ring()?)).await?;
    Ok(Json(KeysResponse {
        issuer: ring.issuer.clone(),
        audience: ring.audience.clone(),
        keys: ring
            .keys()
            .iter()
            .map(|k| KeyEntry {
                kid: k.kid().to_owned(),
                status: match k.status {
                    KeyStatus::Active => "active",
                    KeyStatus::Retired => "retired",
                }
                .to_owned(),
                created_at: rfc3339(k.created_at),
                retired_at: k.retired_at.map(rfc3339),
                verify_until: k.verify_until.map(rfc3339),
            })
            .collect(),
        revoked_keys: ring
            .revoked_keys()
            .iter()
            .map(|r| RevokedKeyEntry {
                kid: r.kid.clone(),
                revoked_at: when(r.revoked_at),
            })
            .collect(),
    }))
}

/// What a rotation did.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotateResponse {
    /// The key retired.
    pub old_key_id: String,
    /// The new active key.
    pub new_key_id: String,
    /// Until when the retired key verifies (null: it signed a token that never expires).
    pub verify_until: Option<String>,
}

/// Retires the active key and makes a new one; tokens already issued stay valid.
#[utoipa::path(
    post, path = "/v1/keys/rotate", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, body = RotateResponse),
        (status = 401, description = "No or wrong admin key", body = ErrorBody),
        (status = 404, description = "`verify_only`: this is a verify-only replica; use the admin node", body = ErrorBody),
        (status = 409, description = "`keys_dir_error`: a file in the keys directory is damaged or unusable; the message says which and what to do", body = ErrorBody),
    )
)]
pub async fn rotate(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<RotateResponse>, ApiError> {
    let now = state.now();
    let st = state.clone();
    let r = blocking(move || {
        let r = st.store().rotate(now)?;
        st.reload_ring();
        Ok(r)
    })
    .await?;
    tracing::info!(target: "mdtoken::audit", event = "key_rotated", old_kid = %r.old_kid, new_kid = %r.new_kid, "key rotated");
    Ok(Json(RotateResponse {
        old_key_id: r.old_kid,
        new_key_id: r.new_kid,
        verify_until: r.verify_until.map(rfc3339),
    }))
}

/// A revoked key.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevokeKeyResponse {
    /// The key.
    pub key_id: String,
    /// Always true.
    pub revoked: bool,
    /// The new active key, when the revoked one was active.
    pub rotated_to: Option<String>,
}

/// Revokes a key: every token it signed is refused. Revoking the active key rotates first.
#[utoipa::path(
    post, path = "/v1/keys/{kid}/revoke", tag = "admin", security(("bearer" = [])),
    params(("kid" = String, Path, description = "The key id", max_length = 256)),
    responses(
        (status = 200, body = RevokeKeyResponse),
        (status = 401, description = "No or wrong admin key", body = ErrorBody),
        (status = 404, description = "`not_found`: no such key in the ring; `verify_only`: this is a verify-only replica, use the admin node", body = ErrorBody),
        (status = 409, description = "`keys_dir_error`: a file in the keys directory is damaged or unusable; the message says which and what to do", body = ErrorBody),
    )
)]
pub async fn revoke_key(
    _: Admin,
    State(state): State<AppState>,
    kid: Result<Path<String>, PathRejection>,
) -> Result<Json<RevokeKeyResponse>, ApiError> {
    let kid = path_param(kid)?;
    let now = state.now();
    let st = state.clone();
    let id = kid.clone();
    let rotation = blocking(move || {
        let r = st.store().revoke_key(&id, now)?;
        st.reload_ring();
        Ok(r)
    })
    .await?;
    tracing::info!(target: "mdtoken::audit", event = "key_revoked", kid = %kid, rotated_to = rotation.as_ref().map(|r| r.new_kid.as_str()), "key revoked");
    Ok(Json(RevokeKeyResponse {
        key_id: kid,
        revoked: true,
        rotated_to: rotation.map(|r| r.new_kid),
    }))
}

/// One minute of activations.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityMinute {
    /// Start of the minute, RFC 3339 UTC.
    pub minute: String,
    /// Accepted.
    pub accepted: u64,
    /// Refused as `token_expired`.
    pub expired: u64,
    /// Refused for any other reason.
    pub rejected: u64,
}

/// The last hour of activations.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityResponse {
    /// 60 entries, oldest first.
    pub minutes: Vec<ActivityMinute>,
}

/// Activations per minute over the last hour, by outcome (this process only).
#[utoipa::path(
    get, path = "/v1/activity", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, body = ActivityResponse),
        (status = 401, description = "No or wrong admin key", body = ErrorBody),
        (status = 404, description = "`verify_only`: this is a verify-only replica; use the admin node", body = ErrorBody),
    )
)]
pub async fn activity(_: Admin, State(state): State<AppState>) -> Json<ActivityResponse> {
    let minutes = state
        .activity()
        .last_hour(state.now())
        .into_iter()
        .map(|m| ActivityMinute {
            minute: rfc3339(m.minute),
            accepted: m.accepted,
            expired: m.expired,
            rejected: m.rejected,
        })
        .collect();
    Json(ActivityResponse { minutes })
}
