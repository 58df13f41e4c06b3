//! The `mdtoken` command: parses arguments, dispatches to the library, prints the error
//! chain and picks the exit code (0 ok, 1 token rejected, 2 usage, 3 key ring/config/IO).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod cmd;

/// Stateless signed mass deployment tokens.
///
/// Mint Ed25519-signed tokens for unattended client installs, verify them offline with
/// only the public key ring, and serve activations.
#[derive(Debug, Parser)]
#[command(
    name = "mdtoken",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(
    after_help = "Exit codes: 0 ok, 1 token rejected, 2 usage error, 3 key ring, config or I/O error."
)]
pub struct Cli {
    /// The keys directory (key ring, private key, ledger, current token, admin keys).
    #[arg(
        long,
        global = true,
        env = "MDTOKEN_KEYS_DIR",
        default_value = "keys",
        value_name = "DIR"
    )]
    pub keys_dir: PathBuf,
    /// A TOML configuration file; MDTOKEN_* environment variables override it, flags override both.
    #[arg(long, global = true, env = "MDTOKEN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage signing keys: init, list, rotate, revoke, prune.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Mint a new deployment token and make it the current one.
    Mint(MintArgs),
    /// List or revoke minted tokens.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Verify a token offline against the public key ring (exit 0 valid, 1 rejected).
    Verify(VerifyArgs),
    /// Decode a token's header and claims WITHOUT verifying anything.
    Inspect(InspectArgs),
    /// Print install commands that embed the current token (renewing it if it has lapsed).
    Command(CommandArgs),
    /// Manage admin API keys.
    #[command(subcommand, name = "admin-key")]
    AdminKey(AdminKeyCommand),
    /// Run the master: admin API, activations, JWKS, metrics and the web console.
    Serve(ServeArgs),
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create the keys directory with a first signing key.
    Init {
        /// The `iss` of every token (default: config `issuer`, else "mdtoken").
        #[arg(long, value_name = "ISS")]
        issuer: Option<String>,
        /// The `aud` of every token (default: config `audience`, else "mass-deployment").
        #[arg(long, value_name = "AUD")]
        audience: Option<String>,
    },
    /// List the ring's keys.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Retire the active key and make a new one; earlier tokens stay valid.
    Rotate {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: every token it signed is refused (the active key is rotated first).
    Revoke {
        /// The key id (see `mdtoken keys list`); ids may begin with `-`.
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
    /// Drop retired keys and revoked-token entries whose tokens have all lapsed.
    Prune {
        /// Show what would be dropped without changing anything.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Args)]
pub struct MintArgs {
    /// Expire at the end of DATE (YYYY-MM-DD, UTC) or at an RFC 3339 time.
    #[arg(long, value_name = "DATE|RFC3339", conflicts_with_all = ["expires_in", "no_expiry"])]
    pub expires: Option<String>,
    /// Expire after a duration: 90d, 12h, 30m, 45s, 2w.
    #[arg(long, value_name = "DURATION", conflicts_with = "no_expiry")]
    pub expires_in: Option<String>,
    /// Never expire (valid until the token or its key is revoked).
    #[arg(long)]
    pub no_expiry: bool,
    /// A label for the token (at most 64 characters).
    #[arg(long)]
    pub name: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// List minted tokens with their status.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke one token by its id (jti); its siblings stay valid.
    Revoke {
        /// The token id (see `mdtoken tokens list`); ids may begin with `-`.
        #[arg(allow_hyphen_values = true)]
        jti: String,
    },
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The token, `-` for standard input (the default), or a file holding it.
    #[arg(value_name = "TOKEN|-|FILE")]
    pub token: Option<std::ffi::OsString>,
    /// The public key ring to trust (default: DIR/keyring.json).
    #[arg(long, value_name = "FILE")]
    pub keyring: Option<PathBuf>,
    /// Verify as of this time (RFC 3339) instead of now.
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The token, `-` for standard input (the default), or a file holding it.
    #[arg(value_name = "TOKEN|-|FILE")]
    pub token: Option<std::ffi::OsString>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OsArg {
    Windows,
    Macos,
    Linux,
}

#[derive(Debug, Args)]
pub struct CommandArgs {
    /// Only this operating system's command.
    #[arg(long, value_enum)]
    pub os: Option<OsArg>,
    /// The server URL to embed (default: config `server_url`).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum AdminKeyCommand {
    /// Create an admin API key and print it once (only its hash is stored).
    Create,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen address (default: config `listen`, else 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Serve activations, JWKS, health and metrics from keyring.json alone.
    #[arg(long)]
    pub verify_only: bool,
}

/// Exit codes.
pub mod exit {
    pub const OK: u8 = 0;
    pub const REJECTED: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const STATE: u8 = 3;
}

/// An error carrying its exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        let error = e.into();
        let usage = error.chain().any(|c| {
            c.downcast_ref::<mdtoken::store::StoreError>()
                .is_some_and(|e| e.is_usage())
                || c.downcast_ref::<mdtoken::mint::MintError>().is_some()
        });
        Failure {
            code: if usage { exit::USAGE } else { exit::STATE },
            error,
        }
    }
}

/// A usage error (exit 2) with a message.
pub fn usage(msg: impl std::fmt::Display) -> Failure {
    Failure {
        code: exit::USAGE,
        error: anyhow::anyhow!("{msg}"),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cmd::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprint!("error: {}", f.error);
            for cause in f.error.chain().skip(1) {
                eprint!(": {cause}");
            }
            eprintln!();
            ExitCode::from(f.code)
        }
    }
}
