//! Shared server state: the keys directory, the configuration, the injected clock, the
//! verifier built from the last good key ring, the admin key hashes and the metrics.

use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};

use crate::admin::AdminKeys;
use crate::clock::Clock;
use crate::config::Config;
use crate::fsutil;
use crate::keyring::KeyRing;
use crate::store::{KeyStore, StoreError, files};
use crate::verify::Verifier;

use super::error::ErrorChain;
use super::metrics::{Activity, Metrics};

/// One key ring snapshot and the verifier built from it.
#[derive(Debug)]
pub struct RingSnapshot {
    /// The ring as loaded.
    pub ring: KeyRing,
    /// Its verifier, with the configured leeway.
    pub verifier: Verifier,
}

/// What a look at `keyring.json` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// The file is as last seen.
    Unchanged,
    /// A new valid ring was installed.
    Reloaded,
    /// The file changed but is refused; the last good ring stays.
    Refused,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Content([u8; 32]),
    Unreadable(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

impl FileStamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        }
    }
}

#[derive(Debug)]
struct AdminCache {
    stamp: Option<FileStamp>,
    keys: Arc<AdminKeys>,
}

struct Inner {
    store: KeyStore,
    config: Config,
    clock: Arc<dyn Clock>,
    verify_only: bool,
    ring: RwLock<Arc<RingSnapshot>>,
    seen: Mutex<Seen>,
    admin: RwLock<AdminCache>,
    metrics: Metrics,
    activity: Activity,
}

/// The state every handler shares; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("keys_dir", &self.0.store.dir())
            .field("verify_only", &self.0.verify_only)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Loads the key ring from `keys_dir` and builds the state.
    ///
    /// In full mode (`verify_only` false) it also checks the configured issuer and
    /// audience against the ring and that the active key's private file matches the
    /// ring; in verify-only mode only `keyring.json` is read.
    ///
    /// # Errors
    /// A missing or invalid ring, a configuration that disagrees with it, or a missing,
    /// unreadable or mismatched signing key: the server must not start on any of them.
    pub fn new(
        keys_dir: impl Into<PathBuf>,
        config: Config,
        clock: Arc<dyn Clock>,
        verify_only: bool,
    ) -> anyhow::Result<Self> {
        let store = KeyStore::new(keys_dir);
        let (text, ring) = read_ring_at_start(&store, verify_only)?;
        if !verify_only {
            check_full_mode(&store, &config, &ring)?;
        }
        let admin = if verify_only {
            AdminCache {
                stamp: None,
                keys: Arc::default(),
            }
        } else {
            let path = store.path(files::ADMIN_KEYS);
            let stamp = std::fs::metadata(&path).ok().map(|m| FileStamp::of(&m));
            let keys = store.admin_keys().context("reading admin keys")?;
            AdminCache {
                stamp,
                keys: Arc::new(keys),
            }
        };
        let verifier = Verifier::with_cache(
            &ring,
            config.leeway_seconds,
            config.cache_entries,
            config.cache_bytes(),
            None,
        );
        Ok(Self(Arc::new(Inner {
            seen: Mutex::new(Seen::Content(Sha256::digest(&text).into())),
            ring: RwLock::new(Arc::new(RingSnapshot { ring, verifier })),
            admin: RwLock::new(admin),
            store,
            config,
            clock,
            verify_only,
            metrics: Metrics::new(),
            activity: Activity::default(),
        })))
    }

    /// The keys directory.
    pub fn store(&self) -> &KeyStore {
        &self.0.store
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// The current Unix time from the injected clock.
    pub fn now(&self) -> i64 {
        self.0.clock.now()
    }

    /// Whether the server runs with `--verify-only`.
    pub fn verify_only(&self) -> bool {
        self.0.verify_only
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// The per-minute activation counters.
    pub fn activity(&self) -> &Activity {
        &self.0.activity
    }

    /// The last good ring and its verifier.
    pub fn ring(&self) -> Arc<RingSnapshot> {
        Arc::clone(&self.0.ring.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Reads `keyring.json` (following symlinks, so a `..data` swap is seen) and
    /// installs it if it changed and is valid. A refused file (invalid, not a regular
    /// file, over [`fsutil::MAX_DOCUMENT_BYTES`]) is logged once and counted; the last
    /// good ring stays in force. Never waits on the file: a FIFO is refused at once.
    /// Blocking: call from a blocking context.
    pub fn reload_ring(&self) -> Reload {
        let path = self.0.store.ring_path();
        // Held across the read so two reloads cannot install an older file last; the read
        // cannot block, so neither can the lock.
        let mut last = self.0.seen.lock().unwrap_or_else(|p| p.into_inner());
        let read = fsutil::read_regular(&path, fsutil::MAX_DOCUMENT_BYTES);
        let seen = match &read {
            Ok(text) => Seen::Content(Sha256::digest(text).into()),
            Err(e) => Seen::Unreadable(e.to_string()),
        };
        if *last == seen {
            return Reload::Unchanged;
        }
        *last = seen;
        let text = match read {
            Ok(text) => text,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "key ring unreadable; keeping the last good ring");
                self.0.metrics.reload_failure();
                return Reload::Refused;
            }
        };
        match parse_ring(&text) {
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %ErrorChain(&e), "key ring changed but is invalid; keeping the last good ring");
                self.0.metrics.reload_failure();
                Reload::Refused
            }
            Ok(ring) => {
                // Cached signatures of keys still in the ring stay valid; the rest go.
                let verifier = Verifier::with_cache(
                    &ring,
                    self.0.config.leeway_seconds,
                    self.0.config.cache_entries,
                    self.0.config.cache_bytes(),
                    Some(&self.ring().verifier),
                );
                let keys = ring.keys().len();
                let active = ring.active().kid().to_owned();
                *self.0.ring.write().unwrap_or_else(|p| p.into_inner()) =
                    Arc::new(RingSnapshot { ring, verifier });
                self.0.metrics.reload();
                tracing::info!(path = %path.display(), keys, active_kid = %active, "key ring reloaded");
                Reload::Reloaded
            }
        }
    }

    /// The admin key hashes, re-read when `admin-keys.json` changed on disk (so a key
    /// made with `mdtoken admin-key create` works without a restart).
    pub fn admin_keys(&self) -> Arc<AdminKeys> {
        let path = self.0.store.path(files::ADMIN_KEYS);
        let stamp = std::fs::metadata(&path).ok().map(|m| FileStamp::of(&m));
        {
            let cache = self.0.admin.read().unwrap_or_else(|p| p.into_inner());
            if cache.stamp == stamp {
                return Arc::clone(&cache.keys);
            }
        }
        let mut cache = self.0.admin.write().unwrap_or_else(|p| p.into_inner());
        match self.0.store.admin_keys() {
            Ok(keys) => {
                tracing::info!(keys = keys.keys.len(), "admin keys reloaded");
                cache.keys = Arc::new(keys);
                cache.stamp = stamp;
            }
            Err(e) => {
                // Keep the last good set rather than locking every admin out.
                tracing::warn!(error = %ErrorChain(&e), "admin keys unreadable; keeping the last good set");
                cache.stamp = stamp;
            }
        }
        Arc::clone(&cache.keys)
    }

    /// Renews the current token if it no longer verifies (full mode only). Returns
    /// whether a token was minted. Blocking: call from a blocking context.
    ///
    /// # Errors
    /// Keys directory errors.
    pub fn renew_if_needed(&self) -> Result<bool, StoreError> {
        if self.0.verify_only {
            return Ok(false);
        }
        let (current, renewed) = self
            .0
            .store
            .current_or_renew(self.0.config.renew_days, self.now())?;
        if renewed {
            self.0.metrics.mint();
            tracing::info!(target: "mdtoken::audit", event = "renewed", jti = %current.jti, kid = %current.kid, "current token renewed");
        }
        Ok(renewed)
    }
}

/// Reads and validates the ring for start-up, with a hint fit for the mode when it is
/// missing. Never waits on the file (a FIFO is refused) and never reads an oversized one.
fn read_ring_at_start(store: &KeyStore, verify_only: bool) -> anyhow::Result<(Vec<u8>, KeyRing)> {
    let ring_path = store.ring_path();
    let text = fsutil::read_regular(&ring_path, fsutil::MAX_DOCUMENT_BYTES).map_err(|e| {
        match e.kind() {
            std::io::ErrorKind::NotFound if verify_only => anyhow::anyhow!(
                "no key ring at {}; a verify-only replica needs keyring.json copied from the admin node (it holds no private key)",
                ring_path.display()
            ),
            std::io::ErrorKind::NotFound => anyhow::Error::new(StoreError::NotInitialised {
                path: ring_path.clone(),
            }),
            _ => anyhow::Error::new(e).context(format!(
                "reading key ring {}; refusing to start",
                ring_path.display()
            )),
        }
    })?;
    let ring = parse_ring(&text).with_context(|| {
        format!(
            "key ring {} is invalid; refusing to start",
            ring_path.display()
        )
    })?;
    Ok((text, ring))
}

/// The ring as start-up reads it; see [`AppState::new`].
pub(crate) fn load_ring_at_start(store: &KeyStore, verify_only: bool) -> anyhow::Result<KeyRing> {
    read_ring_at_start(store, verify_only).map(|(_, ring)| ring)
}

/// What a full (minting) server needs beyond a valid ring: a configuration that agrees
/// with it and the private key of its active key.
pub(crate) fn check_full_mode(
    store: &KeyStore,
    config: &Config,
    ring: &KeyRing,
) -> anyhow::Result<()> {
    config
        .check_ring_identity(ring)
        .context("the configuration disagrees with the key ring")?;
    store
        .load_minter(ring)
        .context("the signing key cannot be used; refusing to start")?;
    Ok(())
}

fn parse_ring(text: &[u8]) -> Result<KeyRing, crate::keyring::RingError> {
    let text = std::str::from_utf8(text).map_err(|_| {
        crate::keyring::RingError::Syntax(serde_json::Error::io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not UTF-8",
        )))
    })?;
    KeyRing::from_json(text)
}
