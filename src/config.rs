//! Configuration: an optional TOML file, overridden by `MDTOKEN_*` environment variables,
//! overridden by command-line flags (applied by the caller).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::install::{self, Templates};

/// The issuer written into a new ring when none is configured.
pub const DEFAULT_ISSUER: &str = "mdtoken";
/// The audience written into a new ring when none is configured.
pub const DEFAULT_AUDIENCE: &str = "mass-deployment";

/// Every environment variable mdtoken reads (the configuration keys, plus the keys
/// directory, the config file, the log filter and the clock pin).
pub const ENV_VARS: &[&str] = &[
    "MDTOKEN_LISTEN",
    "MDTOKEN_ISSUER",
    "MDTOKEN_AUDIENCE",
    "MDTOKEN_LEEWAY_SECONDS",
    "MDTOKEN_RENEW_DAYS",
    "MDTOKEN_SERVER_URL",
    "MDTOKEN_CACHE_ENTRIES",
    "MDTOKEN_CACHE_MEMORY_MIB",
    "MDTOKEN_REQUEST_TIMEOUT_SECONDS",
    "MDTOKEN_RELOAD_INTERVAL_MS",
    "MDTOKEN_MAX_CONNECTIONS",
    "MDTOKEN_LOG_FORMAT",
    "MDTOKEN_INSTALL_WINDOWS",
    "MDTOKEN_INSTALL_MACOS",
    "MDTOKEN_INSTALL_LINUX",
    "MDTOKEN_KEYS_DIR",
    "MDTOKEN_CONFIG",
    "MDTOKEN_LOG",
    "MDTOKEN_NOW",
    "MDTOKEN_ADMIN_KEY",
];

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Settings of the CLI and the server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Listen address of `serve`.
    pub listen: String,
    /// Issuer for a new ring; when set, must agree with an existing ring.
    pub issuer: Option<String>,
    /// Audience for a new ring; when set, must agree with an existing ring.
    pub audience: Option<String>,
    /// Tolerance on `exp` and `nbf`, seconds.
    pub leeway_seconds: i64,
    /// Lifetime of an automatically renewed current token, days.
    pub renew_days: i64,
    /// The server URL put into install commands; defaults to `http://<listen>`.
    pub server_url: Option<String>,
    /// Install command templates.
    pub install: Templates,
    /// Entries in the verified-token cache (0 turns it off).
    pub cache_entries: usize,
    /// Memory the verified-token cache may hold, MiB (estimated; 0 turns it off).
    pub cache_memory_mib: usize,
    /// Log format of `serve`.
    pub log_format: LogFormat,
    /// Seconds a request may take before it is answered 408/503.
    pub request_timeout_seconds: u64,
    /// How often `serve` checks `keyring.json` for changes, milliseconds.
    pub reload_interval_ms: u64,
    /// Connections `serve` holds open at once; more wait in the listen backlog.
    pub max_connections: usize,
}

impl Config {
    /// The verified-token cache's memory bound, in bytes.
    pub fn cache_bytes(&self) -> usize {
        self.cache_memory_mib.saturating_mul(1 << 20)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            issuer: None,
            audience: None,
            leeway_seconds: crate::verify::DEFAULT_LEEWAY,
            renew_days: 90,
            server_url: None,
            install: Templates::default(),
            cache_entries: 100_000,
            cache_memory_mib: 16,
            log_format: LogFormat::Text,
            request_timeout_seconds: 10,
            reload_interval_ms: 1_000,
            max_connections: 4096,
        }
    }
}

/// A configuration fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("reading config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("config file {path} is invalid")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: toml::de::Error,
    },
    /// An environment variable does not parse.
    #[error("environment variable {name} is invalid: {why}")]
    Env {
        /// The variable.
        name: String,
        /// Why.
        why: String,
    },
    /// A value is out of range.
    #[error("{0}")]
    Invalid(String),
    /// A template or URL is unsafe.
    #[error(transparent)]
    Install(#[from] install::InstallError),
}

impl Config {
    /// Reads `path` (if given) then applies variables from `env` (a lookup such as
    /// `|k| std::env::var(k).ok()`), then validates.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file, variable or value at fault.
    pub fn load(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut config = match path {
            None => Config::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                toml::from_str(&text).map_err(|source| ConfigError::Parse {
                    path: path.to_owned(),
                    source,
                })?
            }
        };
        config.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn num<T: std::str::FromStr>(name: &str, v: String) -> Result<T, ConfigError> {
            v.trim().parse().map_err(|_| ConfigError::Env {
                name: name.into(),
                why: format!("{v:?} is not a number"),
            })
        }
        if let Some(v) = env("MDTOKEN_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = env("MDTOKEN_ISSUER") {
            self.issuer = Some(v);
        }
        if let Some(v) = env("MDTOKEN_AUDIENCE") {
            self.audience = Some(v);
        }
        if let Some(v) = env("MDTOKEN_LEEWAY_SECONDS") {
            self.leeway_seconds = num("MDTOKEN_LEEWAY_SECONDS", v)?;
        }
        if let Some(v) = env("MDTOKEN_RENEW_DAYS") {
            self.renew_days = num("MDTOKEN_RENEW_DAYS", v)?;
        }
        if let Some(v) = env("MDTOKEN_SERVER_URL") {
            self.server_url = Some(v);
        }
        if let Some(v) = env("MDTOKEN_CACHE_ENTRIES") {
            self.cache_entries = num("MDTOKEN_CACHE_ENTRIES", v)?;
        }
        if let Some(v) = env("MDTOKEN_CACHE_MEMORY_MIB") {
            self.cache_memory_mib = num("MDTOKEN_CACHE_MEMORY_MIB", v)?;
        }
        if let Some(v) = env("MDTOKEN_REQUEST_TIMEOUT_SECONDS") {
            self.request_timeout_seconds = num("MDTOKEN_REQUEST_TIMEOUT_SECONDS", v)?;
        }
        if let Some(v) = env("MDTOKEN_RELOAD_INTERVAL_MS") {
            self.reload_interval_ms = num("MDTOKEN_RELOAD_INTERVAL_MS", v)?;
        }
        if let Some(v) = env("MDTOKEN_MAX_CONNECTIONS") {
            self.max_connections = num("MDTOKEN_MAX_CONNECTIONS", v)?;
        }
        if let Some(v) = env("MDTOKEN_LOG_FORMAT") {
            self.log_format = match v.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(ConfigError::Env {
                        name: "MDTOKEN_LOG_FORMAT".into(),
                        why: format!("{v:?} is not text or json"),
                    });
                }
            };
        }
        for (name, slot) in [
            ("MDTOKEN_INSTALL_WINDOWS", &mut self.install.windows),
            ("MDTOKEN_INSTALL_MACOS", &mut self.install.macos),
            ("MDTOKEN_INSTALL_LINUX", &mut self.install.linux),
        ] {
            if let Some(v) = env(name) {
                *slot = v;
            }
        }
        Ok(())
    }

    /// Checks ranges, templates and the server URL.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] or [`ConfigError::Install`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(0..=3600).contains(&self.leeway_seconds) {
            return Err(ConfigError::Invalid(format!(
                "leeway_seconds must be 0 to 3600, not {}",
                self.leeway_seconds
            )));
        }
        if !(1..=3660).contains(&self.renew_days) {
            return Err(ConfigError::Invalid(format!(
                "renew_days must be 1 to 3660, not {}",
                self.renew_days
            )));
        }
        if !(1..=600).contains(&self.request_timeout_seconds) {
            return Err(ConfigError::Invalid(
                "request_timeout_seconds must be 1 to 600".into(),
            ));
        }
        if !(50..=3_600_000).contains(&self.reload_interval_ms) {
            return Err(ConfigError::Invalid(
                "reload_interval_ms must be 50 to 3600000".into(),
            ));
        }
        if self.cache_entries > 100_000_000 {
            return Err(ConfigError::Invalid(
                "cache_entries must be at most 100000000".into(),
            ));
        }
        if self.cache_memory_mib > 65_536 {
            return Err(ConfigError::Invalid(
                "cache_memory_mib must be at most 65536".into(),
            ));
        }
        if !(1..=1_000_000).contains(&self.max_connections) {
            return Err(ConfigError::Invalid(
                "max_connections must be 1 to 1000000".into(),
            ));
        }
        for (what, v) in [("issuer", &self.issuer), ("audience", &self.audience)] {
            if let Some(v) = v
                && (v.is_empty() || v.len() > 128 || v.chars().any(char::is_control))
            {
                return Err(ConfigError::Invalid(format!(
                    "{what} must be 1 to 128 bytes without control characters"
                )));
            }
        }
        self.install.check()?;
        install::check_server_url(&self.server_url())?;
        Ok(())
    }

    /// The server URL for install commands.
    pub fn server_url(&self) -> String {
        self.server_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
    }

    /// Checks a configured issuer and audience against a ring's: once a ring exists its
    /// values rule, and a disagreeing configuration is an error rather than a silent
    /// switch.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the value that disagrees.
    pub fn check_ring_identity(&self, ring: &crate::keyring::KeyRing) -> Result<(), ConfigError> {
        for (what, configured, actual) in [
            ("issuer", &self.issuer, &ring.issuer),
            ("audience", &self.audience, &ring.audience),
        ] {
            if let Some(c) = configured
                && c != actual
            {
                return Err(ConfigError::Invalid(format!(
                    "configured {what} {c:?} differs from the key ring's {actual:?}; the ring's value rules once it exists: remove the setting or use a different --keys-dir"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_file_then_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "leeway_seconds = 5\nrenew_days = 30\n[install]\nlinux = \"x {token}\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&path), |_| None).unwrap();
        assert_eq!((c.leeway_seconds, c.renew_days), (5, 30));
        assert_eq!(c.install.linux, "x {token}");
        let c = Config::load(Some(&path), |k| {
            (k == "MDTOKEN_LEEWAY_SECONDS").then(|| "7".to_owned())
        })
        .unwrap();
        assert_eq!(c.leeway_seconds, 7);
        assert!(
            Config::load(None, |k| (k == "MDTOKEN_LEEWAY_SECONDS")
                .then(|| "x".into()))
            .is_err()
        );
        std::fs::write(&path, "leeway = 5\n").unwrap();
        assert!(matches!(
            Config::load(Some(&path), |_| None),
            Err(ConfigError::Parse { .. })
        ));
        assert!(
            Config::load(None, |k| (k == "MDTOKEN_SERVER_URL")
                .then(|| "https://a\"b".into()))
            .is_err()
        );
    }
}
