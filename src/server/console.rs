//! The web console: three static files compiled into the binary and served with a strict
//! Content-Security-Policy. The page holds no data; its calls need the admin key.

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, ErrorBody};
use super::state::AppState;

const INDEX: &str = include_str!("console/index.html");
const APP_JS: &str = include_str!("console/app.js");
const STYLE: &str = include_str!("console/style.css");

/// The policy on every console response.
pub const CSP: &str = "default-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

fn asset(state: &AppState, content_type: &'static str, body: &'static str) -> Response {
    // A replica has no admin routes, so a console there could only fail.
    if state.verify_only() {
        return ApiError::verify_only().into_response();
    }
    let headers: [(HeaderName, HeaderValue); 4] = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
    ];
    (headers, body).into_response()
}

/// The console page.
#[utoipa::path(get, path = "/", tag = "console",
    responses(
        (status = 200, description = "The console HTML", content_type = "text/html"),
        (status = 404, description = "`verify_only`: a verify-only replica serves no console", body = ErrorBody),
    ))]
pub async fn index(State(state): State<AppState>) -> Response {
    asset(&state, "text/html; charset=utf-8", INDEX)
}

/// The console script.
#[utoipa::path(get, path = "/console/app.js", tag = "console",
    responses(
        (status = 200, description = "The console script", content_type = "text/javascript"),
        (status = 404, description = "`verify_only`: a verify-only replica serves no console", body = ErrorBody),
    ))]
pub async fn app_js(State(state): State<AppState>) -> Response {
    asset(&state, "text/javascript; charset=utf-8", APP_JS)
}

/// The console style sheet.
#[utoipa::path(get, path = "/console/style.css", tag = "console",
    responses(
        (status = 200, description = "The console style sheet", content_type = "text/css"),
        (status = 404, description = "`verify_only`: a verify-only replica serves no console", body = ErrorBody),
    ))]
pub async fn style_css(State(state): State<AppState>) -> Response {
    asset(&state, "text/css; charset=utf-8", STYLE)
}
