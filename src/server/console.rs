//! The web console: three static files compiled into the binary and served with a strict
//! Content-Security-Policy. The page holds no data; its calls need the admin key.

use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("console/index.html");
const APP_JS: &str = include_str!("console/app.js");
const STYLE: &str = include_str!("console/style.css");

/// The policy on every console response.
pub const CSP: &str = "default-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
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
    responses((status = 200, description = "The console HTML", content_type = "text/html")))]
pub async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

/// The console script.
#[utoipa::path(get, path = "/console/app.js", tag = "console",
    responses((status = 200, description = "The console script", content_type = "text/javascript")))]
pub async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

/// The console style sheet.
#[utoipa::path(get, path = "/console/style.css", tag = "console",
    responses((status = 200, description = "The console style sheet", content_type = "text/css")))]
pub async fn style_css() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}
