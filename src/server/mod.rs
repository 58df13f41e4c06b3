//! The master: the axum HTTP server (admin API, activations, JWKS, metrics, console).
