//! The OpenAPI description, generated from the handlers' annotations and completed with
//! what the middleware adds to every answer: the server-error statuses, the response
//! headers, and for each error status the `error` codes it can carry.

use std::sync::OnceLock;

use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::{activation, admin, console, error, public};
use crate::verify::Reason;

/// The API description served at `/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(title = "mdtoken", description = "Stateless signed mass deployment tokens: mint, verify, activate."),
    paths(
        activation::activate,
        admin::mint, admin::list_tokens, admin::revoke_token, admin::deployment,
        admin::list_keys, admin::rotate, admin::revoke_key, admin::activity,
        public::jwks, public::healthz, public::metrics, public::openapi,
        console::index, console::app_js, console::style_css,
    ),
    components(schemas(error::ErrorBody)),
    modifiers(&SecuritySchemes, &ServerErrors),
    tags(
        (name = "activation", description = "Devices presenting their deployment token"),
        (name = "admin", description = "Needs Authorization: Bearer <admin key>"),
        (name = "public", description = "Open to anyone"),
        (name = "console", description = "The web console's static files"),
    )
)]
pub struct ApiDoc;

/// The security scheme of the admin routes: an admin API key.
pub const ADMIN_SCHEME: &str = "bearer";
/// The security scheme of `POST /v1/activations`: the deployment token itself.
pub const TOKEN_SCHEME: &str = "deployment_token";

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme(
            ADMIN_SCHEME,
            bearer("An admin API key (`mdtoken admin-key create`); admin routes only"),
        );
        components.add_security_scheme(
            TOKEN_SCHEME,
            bearer(
                "The deployment token, as an alternative to the body's `token` on /v1/activations",
            ),
        );
    }
}

/// Adds the 5xx answers the middleware gives on every route: 500 `internal` (a panic,
/// a bug) everywhere, 503 `timeout` on the routes the request timeout may cut off (all
/// but the writing ones, see [`super::writes`]).
struct ServerErrors;

impl Modify for ServerErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let error_body = || {
            utoipa::openapi::ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    "ErrorBody",
                ))))
                .build()
        };
        let response = |description: &str| -> RefOr<Response> {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content("application/json", error_body())
                    .build(),
            )
        };
        for (path, item) in &mut openapi.paths.paths {
            let operations: [(Method, &mut Option<Operation>); 2] =
                [(Method::GET, &mut item.get), (Method::POST, &mut item.post)];
            for (method, operation) in operations {
                let Some(operation) = operation else {
                    continue;
                };
                let responses = &mut operation.responses.responses;
                if !super::writes(&method, path) {
                    responses.entry("503".into()).or_insert_with(|| {
                        response(
                            "`timeout`: the request took longer than `request_timeout_seconds`",
                        )
                    });
                }
                responses.entry("500".into()).or_insert_with(|| {
                    response("`internal`: a bug; the detail is in the server log only")
                });
            }
        }
    }
}

/// The `error` codes an answer of `status` on `path` can carry.
fn error_codes(path: &str, status: &str) -> Vec<&'static str> {
    match status {
        "400" => vec!["bad_request"],
        "401" if path == "/v1/activations" => Reason::ALL.iter().map(|r| r.as_str()).collect(),
        "401" => vec!["unauthorized"],
        // An id in the path that names nothing; every admin and console route answers
        // `verify_only` on a replica.
        "404" if path.contains('{') => vec!["not_found", "verify_only"],
        "404" => vec!["verify_only"],
        "405" => vec!["method_not_allowed"],
        "408" => vec!["request_timeout"],
        "409" => vec!["keys_dir_error"],
        "413" => vec!["payload_too_large"],
        "415" => vec!["unsupported_media_type"],
        "422" => vec!["unprocessable"],
        "500" => vec!["internal"],
        "503" => vec!["timeout"],
        _ => Vec::new(),
    }
}

/// A response header every answer described by it carries, with its one value.
fn header(description: &str, value: &str) -> Value {
    json!({
        "description": description,
        "required": true,
        "schema": {"type": "string", "enum": [value]},
    })
}

/// The headers the server adds to an answer of `status` on `path` (see `observe` in the
/// server module, [`error::ApiError`] and the console).
fn headers(path: &str, status: &str) -> Map<String, Value> {
    let mut h = Map::new();
    h.insert(
        "X-Content-Type-Options".into(),
        header("On every answer", "nosniff"),
    );
    if path.starts_with("/v1/") {
        h.insert(
            "Cache-Control".into(),
            header(
                "On every /v1/ answer: they hold tokens or their ids",
                "no-store",
            ),
        );
    } else if path == "/.well-known/jwks.json" && status == "200" {
        h.insert(
            "Cache-Control".into(),
            header("The key set may be cached for a minute", "max-age=60"),
        );
    }
    if StatusCode::from_bytes(status.as_bytes()).is_ok_and(error::closes_connection) {
        h.insert(
            "Connection".into(),
            header(
                "The request body was left unread: the connection is closed after this answer",
                "close",
            ),
        );
    }
    if status == "401" {
        let challenge = if path == "/v1/activations" {
            error::TOKEN_CHALLENGE
        } else {
            error::ADMIN_CHALLENGE
        };
        h.insert(
            "WWW-Authenticate".into(),
            header("The credential this route wants", challenge),
        );
    }
    if status == "200" && (path == "/" || path.starts_with("/console/")) {
        h.insert(
            "Content-Security-Policy".into(),
            header("The console's policy", console::CSP),
        );
        h.insert(
            "X-Frame-Options".into(),
            header("The console is never framed", "DENY"),
        );
        h.insert(
            "Referrer-Policy".into(),
            header("No referrer leaves the console", "no-referrer"),
        );
    }
    h
}

const ERROR_BODY_REF: &str = "#/components/schemas/ErrorBody";

/// Marks request bodies optional, and adds the response headers and, to every error
/// answer, the codes its `error` can hold.
fn complete(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for operation in item.values_mut() {
            // Every body is read by `JsonObject` (directly, or through `JsonBody`), which
            // takes an empty body sent without a Content-Type for `{}`: none is required.
            if let Some(body) = operation
                .get_mut("requestBody")
                .and_then(Value::as_object_mut)
            {
                body.insert("required".into(), Value::Bool(false));
            }
            let Some(responses) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            for (status, response) in responses {
                if let Some(response) = response.as_object_mut() {
                    response.insert("headers".into(), Value::Object(headers(path, status)));
                }
                let Some(schema) = response.pointer_mut("/content/application~1json/schema") else {
                    continue;
                };
                if schema.get("$ref").and_then(Value::as_str) == Some(ERROR_BODY_REF) {
                    let codes = error_codes(path, status);
                    assert!(!codes.is_empty(), "no error codes for {status} on {path}");
                    *schema = json!({
                        "allOf": [
                            {"$ref": ERROR_BODY_REF},
                            {"type": "object", "properties": {"error": {"enum": codes}}},
                        ]
                    });
                }
            }
        }
    }
}

/// The document as served.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serialises");
    complete(&mut doc);
    doc
}

/// The served document's bytes, built once.
pub fn json() -> &'static [u8] {
    static DOC: OnceLock<Vec<u8>> = OnceLock::new();
    DOC.get_or_init(|| serde_json::to_vec(&document()).expect("the document serialises"))
}
