//! The master: the axum HTTP server (admin API, activations, JWKS, metrics, console).

/// Options of `mdtoken serve`.
#[derive(Debug)]
pub struct ServeOptions {
    /// The keys directory.
    pub keys_dir: std::path::PathBuf,
    /// Configuration with flags applied.
    pub config: crate::config::Config,
    /// Serve from `keyring.json` alone.
    pub verify_only: bool,
}

/// Runs the server until SIGTERM or Ctrl-C.
///
/// # Errors
/// Start-up failures.
pub async fn run(_opts: ServeOptions) -> anyhow::Result<()> {
    anyhow::bail!("the server is not built yet")
}
