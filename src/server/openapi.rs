//! The OpenAPI description, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{activation, admin, console, error, public};

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
    modifiers(&BearerScheme),
    tags(
        (name = "activation", description = "Devices presenting their deployment token"),
        (name = "admin", description = "Needs Authorization: Bearer <admin key>"),
        (name = "public", description = "Open to anyone"),
        (name = "console", description = "The web console's static files"),
    )
)]
pub struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An admin API key on admin routes; the deployment token on /v1/activations",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
