//! The master: the axum HTTP server (admin API, activations, JWKS, metrics, console).
//!
//! [`run`] is `mdtoken serve`: first-run set-up, then [`serve`] on the configured address
//! until SIGTERM or Ctrl-C. [`router`] builds the whole application for a given
//! [`AppState`], which is how the tests drive it with a fixed clock.

pub mod activation;
pub mod admin;
pub mod auth;
pub mod body;
mod conn;
pub mod console;
pub mod error;
pub mod metrics;
pub mod openapi;
pub mod public;
pub mod state;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Router;
use axum::body::HttpBody as _;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tower_http::catch_panic::CatchPanicLayer;
use zeroize::Zeroizing;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, DEFAULT_AUDIENCE, DEFAULT_ISSUER};
use crate::store::KeyStore;

pub use body::BODY_LIMIT;
use body::BodyDeadline;
pub use error::ApiError;
pub use state::{AppState, Reload};

/// How often the background task checks that the current token still verifies.
pub const RENEW_INTERVAL: Duration = Duration::from_secs(30);

/// What `mdtoken serve` was asked to do.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The keys directory.
    pub keys_dir: PathBuf,
    /// Settings, with command-line flags already applied.
    pub config: Config,
    /// Serve activations, JWKS, health and metrics from `keyring.json` alone.
    pub verify_only: bool,
}

/// Runs `mdtoken serve` until SIGTERM or Ctrl-C, then finishes requests in flight.
///
/// In full mode a fresh keys directory is set up first: a key ring, a signing key, a first
/// admin key (printed once to stderr, stored only as a hash) and a current token.
///
/// # Errors
/// A keys directory that cannot be set up or loaded, a configuration that disagrees with
/// the ring, a signing key that does not match it, or an address that cannot be bound.
pub async fn run(opts: ServeOptions) -> anyhow::Result<()> {
    let ServeOptions {
        keys_dir,
        config,
        verify_only,
    } = opts;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // Bound before anything is created, so a start refused for the address leaves the
    // keys directory as it was.
    let listener = TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    if !verify_only {
        let (dir, cfg, now) = (keys_dir.clone(), config.clone(), clock.now());
        let first_key = tokio::task::spawn_blocking(move || bootstrap(&dir, &cfg, now))
            .await
            .context("setting up the keys directory")??;
        if let Some(key) = first_key {
            print_first_admin_key(&keys_dir, &config, &key);
        }
    }
    let state = AppState::new(&keys_dir, config.clone(), clock, verify_only)?;
    if !verify_only {
        for warning in state.store().permission_warnings() {
            tracing::warn!("{warning}");
        }
        // A mint reads only the ledger's tail, so damage further up would otherwise show
        // first when a rotation needs the ledger and refuses.
        let store = state.store().clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || store.ledger()).await {
            // The error and its first cause name the file and line; deeper causes could
            // quote the line's contents.
            let cause = std::error::Error::source(&e).map(ToString::to_string);
            tracing::warn!(
                error = %e,
                cause = cause.as_deref().unwrap_or(""),
                "the token ledger cannot be read; rotations, and revoking the active key, will refuse until it is repaired from a backup"
            );
        }
        let st = state.clone();
        tokio::task::spawn_blocking(move || st.renew_if_needed())
            .await
            .context("checking the current token")?
            .context("making sure a current token exists")?;
    }
    let addr = listener
        .local_addr()
        .context("reading the listen address")?;
    if verify_only {
        eprintln!(
            "mdtoken listening on http://{addr} (verify-only: activations, JWKS, health, metrics)"
        );
    } else {
        eprintln!("mdtoken listening on http://{addr}; console at http://{addr}/");
    }
    tracing::info!(%addr, verify_only, keys_dir = %keys_dir.display(), "listening");
    serve(listener, state, shutdown_signal()).await
}

/// Sets up a keys directory on first run: creates the ring (with the configured or
/// default issuer and audience) if there is none, and a first admin key if there is
/// none. Returns that key, to be shown once; `None` when one existed already.
///
/// An existing ring is checked first, as the server's start-up checks it (valid, agreeing
/// with the configuration, its active key's private file present and matching), so a
/// directory the server would refuse gets no admin key and no file.
///
/// # Errors
/// Keys directory errors, and an existing ring or signing key the server would refuse.
pub fn bootstrap(
    keys_dir: &Path,
    config: &Config,
    now: i64,
) -> anyhow::Result<Option<Zeroizing<String>>> {
    let store = KeyStore::new(keys_dir);
    if store.is_initialised() {
        let ring = state::load_ring_at_start(&store, false)?;
        state::check_full_mode(&store, config, &ring)?;
    } else {
        let issuer = config.issuer.as_deref().unwrap_or(DEFAULT_ISSUER);
        let audience = config.audience.as_deref().unwrap_or(DEFAULT_AUDIENCE);
        let ring = store
            .init(issuer, audience, now)
            .with_context(|| format!("creating a key ring in {}", keys_dir.display()))?;
        tracing::info!(dir = %keys_dir.display(), kid = %ring.active().kid(), "created a key ring");
        eprintln!(
            "created a key ring in {} (signing key {})",
            keys_dir.display(),
            ring.active().kid()
        );
    }
    let admin = store.admin_keys().context("reading admin keys")?;
    if !admin.keys.is_empty() {
        return Ok(None);
    }
    let key = store
        .create_admin_key(now)
        .context("creating the first admin key")?;
    Ok(Some(key))
}

fn print_first_admin_key(keys_dir: &Path, config: &Config, key: &str) {
    let url = config.server_url();
    let hashes = keys_dir.join(crate::store::files::ADMIN_KEYS);
    eprintln!(
        "\n\
         ============================================================================\n\
         First admin API key (shown once; stored only as a hash in {}):\n\n\
         \x20   {key}\n\n\
         Keep it in a password manager. Try it:\n\
         \x20   export MDTOKEN_ADMIN_KEY='<the key above>'\n\
         \x20   curl -H \"Authorization: Bearer $MDTOKEN_ADMIN_KEY\" {url}/v1/deployment\n\
         Make more with `mdtoken admin-key create`.\n\
         ============================================================================\n",
        hashes.display()
    );
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops the server");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    tracing::info!("shutting down; finishing requests in flight");
}

/// The whole application: every route with its middleware (body limit, request timeout,
/// panic catcher, metrics and security headers).
pub fn router(state: AppState) -> Router {
    harden(routes(), state)
}

fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/activations", post(activation::activate))
        .route("/v1/tokens", post(admin::mint).get(admin::list_tokens))
        .route("/v1/tokens/{jti}/revoke", post(admin::revoke_token))
        .route("/v1/deployment", get(admin::deployment))
        .route("/v1/keys", get(admin::list_keys))
        .route("/v1/keys/rotate", post(admin::rotate))
        .route("/v1/keys/{kid}/revoke", post(admin::revoke_key))
        .route("/v1/activity", get(admin::activity))
        .route("/.well-known/jwks.json", get(public::jwks))
        .route("/healthz", get(public::healthz))
        .route("/metrics", get(public::metrics))
        .route("/openapi.json", get(public::openapi))
        .route("/", get(console::index))
        .route("/console/app.js", get(console::app_js))
        .route("/console/style.css", get(console::style_css))
}

fn harden(routes: Router<AppState>, state: AppState) -> Router {
    let timeout = Duration::from_secs(state.config().request_timeout_seconds);
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(from_fn(move |req: Request, next: Next| {
            request_timeout(timeout, req, next)
        }))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route; see /openapi.json")
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

/// Routes that write to the keys directory (`GET /v1/deployment` may renew). Their
/// handlers are never abandoned: an answer sent while the write carries on would tell the
/// client it failed when it did not, and a retry would mint twice. They wait for the
/// keys-directory lock as long as it takes; their body is still read under the timeout.
pub(crate) fn writes(method: &Method, route: &str) -> bool {
    matches!(
        (method.as_str(), route),
        ("POST", "/v1/tokens")
            | ("POST", "/v1/tokens/{jti}/revoke")
            | ("POST", "/v1/keys/rotate")
            | ("POST", "/v1/keys/{kid}/revoke")
            | ("GET", "/v1/deployment")
    )
}

/// The per-request time limit: the body must arrive within it (else 408), and every
/// route but the writing ones must answer within it (else 503).
async fn request_timeout(limit: Duration, mut req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("", MatchedPath::as_str);
    let covered = !writes(req.method(), route);
    let deadline = BodyDeadline {
        at: tokio::time::Instant::now() + limit,
        done: Arc::default(),
        covered,
    };
    let has_body = !req.body().is_end_stream();
    req.extensions_mut().insert(deadline.clone());
    if !covered {
        return next.run(req).await;
    }
    match tokio::time::timeout_at(deadline.at, next.run(req)).await {
        Ok(response) => response,
        Err(_) if has_body && !deadline.done.load(Ordering::Acquire) => {
            ApiError::request_timeout().into_response()
        }
        Err(_) => {
            tracing::warn!(seconds = limit.as_secs(), "request timed out");
            ApiError::timeout().into_response()
        }
    }
}

fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into());
    tracing::error!(panic = %detail, "a handler panicked; this is a bug");
    ApiError::internal_generic().into_response()
}

/// Records latency by matched route and adds the security headers.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = match *req.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        _ => "other",
    };
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if route.starts_with("/v1/") {
        // Admin answers and activation results hold tokens or their ids.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    state.metrics().request(
        &route,
        method,
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    response
}

/// Serves `state` on `listener` until `shutdown` completes, then stops accepting,
/// lets requests in flight finish (bounded by the request timeout) and returns.
///
/// Runs the background tasks too: the key ring reload poll every
/// `reload_interval_ms`, and in full mode the current-token renewal every
/// [`RENEW_INTERVAL`]. Each connection has a header-read timeout and a write-stall
/// timeout of `request_timeout_seconds`, so a client that trickles its headers or never
/// reads its answers is cut off; at most `max_connections` are open at once, and further
/// clients wait in the listen backlog until one closes.
///
/// # Errors
/// Only if the listener's address cannot be read; connection errors are logged.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let limit = Duration::from_secs(state.config().request_timeout_seconds);
    let max_connections = state.config().max_connections;
    let background = spawn_background(&state);
    let app = router(state);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            // At the cap, stop accepting: new clients wait in the kernel's backlog rather
            // than each costing a file descriptor here.
            accepted = listener.accept(), if connections.len() < max_connections => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                connections.spawn(conn::connection(stream, peer, app.clone(), limit, stop_rx.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limit + Duration::from_secs(5), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the grace period; closing them"
        );
        connections.shutdown().await;
    }
    for task in background {
        task.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

fn spawn_background(state: &AppState) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    let st = state.clone();
    let every = Duration::from_millis(st.config().reload_interval_ms);
    tasks.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let st = st.clone();
            let _ = tokio::task::spawn_blocking(move || st.reload_ring()).await;
        }
    }));
    if !state.verify_only() {
        let st = state.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(RENEW_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let st = st.clone();
                match tokio::task::spawn_blocking(move || st.renew_if_needed()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::error!(error = %error::ErrorChain(&e), "renewing the current token failed");
                    }
                    Err(e) => tracing::error!(error = %e, "the renewal task failed"),
                }
            }
        }));
    }
    tasks
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::StatusCode;
    use tower::ServiceExt as _;

    async fn boom() -> &'static str {
        panic!("a bug")
    }

    #[tokio::test]
    async fn panics_and_slow_handlers_answer_json() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            request_timeout_seconds: 1,
            ..Config::default()
        };
        bootstrap(dir.path(), &config, 1_800_000_000).unwrap();
        let clock = Arc::new(crate::clock::FixedClock::new(1_800_000_000));
        let state = AppState::new(dir.path(), config, clock, false).unwrap();
        let app = harden(
            Router::new().route("/boom", get(boom)).route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    "late"
                }),
            ),
            state.clone(),
        );
        for (path, status, code) in [
            ("/boom", StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            ("/slow", StatusCode::SERVICE_UNAVAILABLE, "timeout"),
        ] {
            let req = Request::get(path).body(Body::empty()).unwrap();
            let res = app.clone().oneshot(req).await.unwrap();
            assert_eq!(res.status(), status);
            let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["error"], code);
            assert!(!v["message"].as_str().unwrap().contains("a bug"));
        }
        assert!(state.metrics().encode().contains("status=\"500\""));
    }
}
