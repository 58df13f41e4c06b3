//! The keys directory: where the ring, the active private key, the ledger, the current
//! token and the admin key hashes live, and every operation that changes them. Writers
//! hold the directory lock; every file is replaced atomically.

use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::admin::AdminKeys;
use crate::fsutil::{self, Lock};
use crate::key::{PrivateKeyError, SecretKey};
use crate::keyring::{KeyRing, KeyStatus, RingError, Signed, datetime};
use crate::ledger::{self, LedgerEntry, LedgerError};
use crate::mint::{Expiry, MintError, Minted, Minter};
use crate::verify::Verifier;

/// File names inside the keys directory.
pub mod files {
    /// The public key ring.
    pub const RING: &str = "keyring.json";
    /// The private key directory.
    pub const PRIVATE: &str = "private";
    /// The mint ledger.
    pub const LEDGER: &str = "tokens.jsonl";
    /// The current deployment token.
    pub const CURRENT: &str = "current.json";
    /// Admin key hashes.
    pub const ADMIN_KEYS: &str = "admin-keys.json";
    /// The writers' lock.
    pub const LOCK: &str = ".lock";
}

/// A keys directory failure. Messages name the file involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Reading or writing a file failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The ring file exists but is refused.
    #[error("key ring {path} is invalid")]
    Ring {
        /// The ring file.
        path: PathBuf,
        /// Why.
        #[source]
        source: RingError,
    },
    /// There is no ring yet.
    #[error("no key ring at {path}; run `mdtoken keys init` first")]
    NotInitialised {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// `keys init` found a ring already.
    #[error("a key ring already exists at {path}; nothing was changed")]
    AlreadyInitialised {
        /// The existing ring.
        path: PathBuf,
    },
    /// The active key's private file is missing (a verify-only copy of the ring?).
    #[error(
        "the private key of active key {kid} is missing at {path}; this directory can verify but not sign"
    )]
    MissingPrivateKey {
        /// Active kid.
        kid: String,
        /// Expected path.
        path: PathBuf,
    },
    /// The private key file is not a key.
    #[error("private key {path} is unreadable")]
    PrivateKey {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: PrivateKeyError,
    },
    /// The private key does not match the ring's active key.
    #[error("private key {path} does not match the ring's active key {kid}")]
    KeyMismatch {
        /// The file.
        path: PathBuf,
        /// The ring's active kid.
        kid: String,
    },
    /// A JSON file other than the ring is unreadable.
    #[error("{path} is not valid")]
    Document {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The ledger has a bad line.
    #[error("ledger {path} is damaged")]
    Ledger {
        /// The file.
        path: PathBuf,
        /// Where.
        #[source]
        source: LedgerError,
    },
    /// An expiry or name was refused.
    #[error(transparent)]
    Mint(#[from] MintError),
    /// No key has this kid.
    #[error("no key {kid} in the ring; see `mdtoken keys list`")]
    UnknownKid {
        /// The kid asked for.
        kid: String,
    },
    /// No minted token has this jti.
    #[error("no token {jti} in the ledger; see `mdtoken tokens list`")]
    UnknownJti {
        /// The jti asked for.
        jti: String,
    },
}

impl StoreError {
    /// Whether the error is the caller's input (exit 2) rather than the directory's
    /// state (exit 3).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            StoreError::Mint(_) | StoreError::UnknownKid { .. } | StoreError::UnknownJti { .. }
        )
    }
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Loads and validates a key ring file anywhere (a verifier's copy, for instance): a
/// regular file, bounded in size, never waited on.
///
/// # Errors
/// [`StoreError::Ring`] if refused; [`StoreError::Io`] if unreadable or missing.
pub fn load_ring_file(path: &Path) -> Result<KeyRing> {
    let path = path.to_owned();
    let text = read_text(&path).map_err(io_err("reading key ring", &path))?;
    KeyRing::from_json(&text).map_err(|source| StoreError::Ring { path, source })
}

/// Reads a keys-directory file: regular files only, bounded in size, never blocking on
/// a FIFO put in its place.
fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    fsutil::read_regular(path, fsutil::MAX_DOCUMENT_BYTES)
}

fn read_text(path: &Path) -> io::Result<String> {
    String::from_utf8(read_file(path)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"))
}

/// Suffix of a private key written by a rotation that has not yet reached the ring.
const PENDING_SUFFIX: &str = ".pem.pending";

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_owned();
    move |source| StoreError::Io {
        action,
        path,
        source,
    }
}

/// The deployment token that install commands embed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Current {
    /// The token.
    pub token: String,
    /// Its id.
    pub jti: String,
    /// Its key.
    pub kid: String,
    /// Its label.
    #[serde(default)]
    pub name: Option<String>,
    /// Issued at.
    #[serde(with = "time::serde::rfc3339")]
    pub iat: OffsetDateTime,
    /// Expiry, or null.
    #[serde(with = "time::serde::rfc3339::option")]
    pub exp: Option<OffsetDateTime>,
}

impl From<&Minted> for Current {
    fn from(m: &Minted) -> Self {
        Self {
            token: m.token.clone(),
            jti: m.claims.jti.clone(),
            kid: m.kid.clone(),
            name: m.claims.name.clone(),
            iat: datetime(m.claims.iat),
            exp: m.claims.exp.map(datetime),
        }
    }
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The key retired.
    pub old_kid: String,
    /// The new active key.
    pub new_kid: String,
    /// The retired key's `verify_until`.
    pub verify_until: Option<i64>,
}

/// The keys directory.
#[derive(Debug, Clone)]
pub struct KeyStore {
    dir: PathBuf,
}

impl KeyStore {
    /// A handle on `dir`; nothing is read until asked.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of a file in the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Path of the ring.
    pub fn ring_path(&self) -> PathBuf {
        self.path(files::RING)
    }

    fn private_path(&self, kid: &str) -> PathBuf {
        self.dir.join(files::PRIVATE).join(format!("{kid}.pem"))
    }

    /// Whether a ring file exists (valid or not).
    pub fn is_initialised(&self) -> bool {
        self.ring_path().symlink_metadata().is_ok()
    }

    /// Takes the writers' lock.
    ///
    /// # Errors
    /// [`StoreError::Io`] if the lock file cannot be opened or locked.
    pub fn lock(&self) -> Result<Lock> {
        let path = self.path(files::LOCK);
        let lock = Lock::acquire(&path).map_err(io_err("locking", &path))?;
        // With the lock held no write is in flight, so any temp file is a leftover of a
        // writer that was killed mid-write.
        for dir in [self.dir.clone(), self.dir.join(files::PRIVATE)] {
            for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.') && name.ends_with(".tmp") {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        Ok(lock)
    }

    /// Creates the directory, a first signing key and the ring.
    ///
    /// # Errors
    /// [`StoreError::AlreadyInitialised`] if a ring exists; I/O errors.
    pub fn init(&self, issuer: &str, audience: &str, now: i64) -> Result<KeyRing> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&self.dir)
            .map_err(io_err("creating", &self.dir))?;
        let _lock = self.lock()?;
        if self.is_initialised() {
            return Err(StoreError::AlreadyInitialised {
                path: self.ring_path(),
            });
        }
        let key = SecretKey::generate();
        let ring = KeyRing::new(issuer, audience, key.public(), now).map_err(|source| {
            StoreError::Ring {
                path: self.ring_path(),
                source,
            }
        })?;
        self.write_private_key(&key)?;
        self.save_ring(&ring)?;
        self.commit_private_key(key.kid())?;
        Ok(ring)
    }

    /// Loads and validates the ring.
    ///
    /// # Errors
    /// [`StoreError::NotInitialised`], [`StoreError::Ring`] or I/O errors.
    pub fn load_ring(&self) -> Result<KeyRing> {
        match load_ring_file(&self.ring_path()) {
            Err(StoreError::Io { source, path, .. })
                if source.kind() == io::ErrorKind::NotFound =>
            {
                Err(StoreError::NotInitialised { path })
            }
            r => r,
        }
    }

    fn save_ring(&self, ring: &KeyRing) -> Result<()> {
        let path = self.ring_path();
        fsutil::write_atomic(&path, ring.to_json().as_bytes(), 0o644)
            .map_err(io_err("writing key ring", &path))
    }

    fn pending_path(&self, kid: &str) -> PathBuf {
        self.dir
            .join(files::PRIVATE)
            .join(format!("{kid}{PENDING_SUFFIX}"))
    }

    /// Writes a new key as `<kid>.pem.pending`: it becomes `<kid>.pem` only once the
    /// ring names it ([`KeyStore::commit_private_key`]), so a writer killed in between
    /// leaves a file that is recognisably not in use.
    fn write_private_key(&self, key: &SecretKey) -> Result<()> {
        let dir = self.dir.join(files::PRIVATE);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io_err("creating", &dir))?;
        let path = self.pending_path(key.kid());
        fsutil::write_atomic(&path, key.to_pem().as_bytes(), 0o600)
            .map_err(io_err("writing private key", &path))
    }

    /// Renames a pending key to its final name after the ring names it.
    fn commit_private_key(&self, kid: &str) -> Result<()> {
        let (from, to) = (self.pending_path(kid), self.private_path(kid));
        fs::rename(&from, &to).map_err(io_err("renaming private key", &from))?;
        let dir = self.dir.join(files::PRIVATE);
        fsutil::sync_dir(&dir).map_err(io_err("syncing", &dir))
    }

    /// Loads the active key's private half and checks it matches the ring.
    ///
    /// # Errors
    /// [`StoreError::MissingPrivateKey`], [`StoreError::PrivateKey`],
    /// [`StoreError::KeyMismatch`] or I/O errors.
    pub fn load_minter(&self, ring: &KeyRing) -> Result<Minter> {
        let kid = ring.active().kid();
        let path = self.private_path(kid);
        if !path.exists() && self.pending_path(kid).exists() {
            // A rotation saved the ring and was stopped before renaming its new key:
            // the ring names it, so it is the key in use.
            self.commit_private_key(kid)?;
        }
        let pem = match read_text(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::MissingPrivateKey {
                    kid: kid.to_owned(),
                    path,
                });
            }
            r => Zeroizing::new(r.map_err(io_err("reading private key", &path))?),
        };
        let key = SecretKey::from_pem(&pem).map_err(|source| StoreError::PrivateKey {
            path: path.clone(),
            source,
        })?;
        if key.public() != &ring.active().public {
            return Err(StoreError::KeyMismatch {
                path,
                kid: kid.to_owned(),
            });
        }
        Ok(Minter::new(key, &ring.issuer, &ring.audience))
    }

    /// Mints a token, records it in the ledger and makes it current.
    ///
    /// # Errors
    /// [`StoreError::Mint`] for a refused expiry or name; ring, key and I/O errors.
    pub fn mint(&self, name: Option<&str>, expiry: Expiry, now: i64) -> Result<Minted> {
        let _lock = self.lock()?;
        let ring = self.load_ring()?;
        self.mint_locked(&ring, name, expiry, now)
    }

    fn mint_locked(
        &self,
        ring: &KeyRing,
        name: Option<&str>,
        expiry: Expiry,
        now: i64,
    ) -> Result<Minted> {
        let minter = self.load_minter(ring)?;
        // A caller's clock read before it waited for the lock may predate the active
        // key; a token is never issued before the key that signs it was made.
        let now = now.max(ring.active().created_at);
        let minted = minter.mint(name, expiry, now)?;
        // The ledger line is durable before the token is shown anywhere, so rotation
        // always knows every exp its key signed.
        self.append_ledger(&LedgerEntry {
            jti: minted.claims.jti.clone(),
            kid: minted.kid.clone(),
            name: minted.claims.name.clone(),
            iat: datetime(minted.claims.iat),
            exp: minted.claims.exp.map(datetime),
        })?;
        self.write_current(&Current::from(&minted))?;
        self.remove_stale_private_keys(ring)?;
        Ok(minted)
    }

    fn append_ledger(&self, entry: &LedgerEntry) -> Result<()> {
        use std::io::Seek as _;
        let path = self.path(files::LEDGER);
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io_err("opening ledger", &path))?;
        let len = file
            .metadata()
            .and_then(|m| {
                if m.is_file() {
                    Ok(m.len())
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "not a regular file",
                    ))
                }
            })
            .map_err(io_err("opening ledger", &path))?;
        // Drop a torn tail left by a crash so the new line starts on a line boundary.
        // Only the tail is read: a mint costs the same with ten lines or a million.
        let whole = fsutil::whole_lines_len(&file, len).map_err(io_err("reading ledger", &path))?;
        if whole != len {
            file.set_len(whole)
                .map_err(io_err("repairing ledger", &path))?;
        }
        file.seek(io::SeekFrom::Start(whole))
            .and_then(|_| file.write_all(ledger::line(entry).as_bytes()))
            .and_then(|()| file.sync_all())
            .map_err(io_err("appending to ledger", &path))?;
        if len == 0 {
            fsutil::sync_dir(&self.dir).map_err(io_err("syncing", &self.dir))?;
        }
        Ok(())
    }

    /// Every ledger entry, oldest first (a torn last line is ignored).
    ///
    /// # Errors
    /// [`StoreError::Ledger`] for a damaged line; I/O errors.
    pub fn ledger(&self) -> Result<Vec<LedgerEntry>> {
        let path = self.path(files::LEDGER);
        let text = match fsutil::read_regular(&path, fsutil::MAX_LEDGER_BYTES) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            r => r.map_err(io_err("reading ledger", &path))?,
        };
        ledger::parse(&text)
            .map(|p| p.entries)
            .map_err(|source| StoreError::Ledger { path, source })
    }

    fn write_current(&self, current: &Current) -> Result<()> {
        let path = self.path(files::CURRENT);
        let mut json = serde_json::to_string_pretty(current).expect("current serialises");
        json.push('\n');
        fsutil::write_atomic(&path, json.as_bytes(), 0o600)
            .map_err(io_err("writing current token", &path))
    }

    /// The current deployment token, if one was minted.
    ///
    /// # Errors
    /// [`StoreError::Document`] if unreadable; I/O errors.
    pub fn current(&self) -> Result<Option<Current>> {
        let path = self.path(files::CURRENT);
        match read_text(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            r => {
                let text = r.map_err(io_err("reading current token", &path))?;
                serde_json::from_str(&text)
                    .map(Some)
                    .map_err(|source| StoreError::Document { path, source })
            }
        }
    }

    /// Returns the current token, first minting a new one valid `renew_days` if there is
    /// none or it no longer verifies at `now` (expired, revoked, or its key revoked).
    /// The second value is true when a new token was minted.
    ///
    /// # Errors
    /// Ring, key, ledger and I/O errors.
    pub fn current_or_renew(&self, renew_days: i64, now: i64) -> Result<(Current, bool)> {
        // An unreadable current.json is replaced like a lapsed token: it holds nothing
        // that cannot be minted again.
        let ring = self.load_ring()?;
        if let Ok(Some(current)) = self.current()
            && current_is_usable(&ring, &current, now)
        {
            return Ok((current, false));
        }
        let _lock = self.lock()?;
        // Another writer may have renewed while this one waited for the lock.
        let ring = self.load_ring()?;
        if let Ok(Some(current)) = self.current()
            && current_is_usable(&ring, &current, now)
        {
            return Ok((current, false));
        }
        let exp = crate::mint::expiry_in_days(renew_days, now)?;
        let minted = self.mint_locked(&ring, Some("auto-renewed"), Expiry::At(exp), now)?;
        Ok((Current::from(&minted), true))
    }

    /// Retires the active key and makes a new one.
    ///
    /// # Errors
    /// Ring, ledger and I/O errors.
    pub fn rotate(&self, now: i64) -> Result<Rotation> {
        let _lock = self.lock()?;
        let mut ring = self.load_ring()?;
        self.rotate_locked(&mut ring, now)
    }

    fn rotate_locked(&self, ring: &mut KeyRing, now: i64) -> Result<Rotation> {
        let old_kid = ring.active().kid().to_owned();
        // A present but foreign private key means this directory does not hold the
        // ring's signing key: refuse rather than retire a key on a guess. A missing one
        // is the recovery case (private/ lost): rotating is how minting resumes.
        match self.load_minter(ring) {
            Ok(_) | Err(StoreError::MissingPrivateKey { .. }) => {}
            Err(e) => return Err(e),
        }
        let (signed, latest_iat) = self.signed_by(&old_kid)?;
        // retired_at must cover every token the old key signed, even one minted by a
        // writer whose clock ran ahead of this caller's: otherwise that token would read
        // as signed after retirement.
        let now = now.max(latest_iat).max(ring.active().created_at);
        let signed = Signed {
            verify_until: signed.verify_until.map(|t| t.max(now)),
            ..signed
        };
        let key = SecretKey::generate();
        // Order matters for crash safety: the new private key exists before the ring
        // names it, and the old one is deleted only once the ring no longer does.
        self.write_private_key(&key)?;
        let verify_until = signed.verify_until;
        ring.rotate(key.public(), now, signed)
            .map_err(|source| StoreError::Ring {
                path: self.ring_path(),
                source,
            })?;
        self.save_ring(ring)?;
        self.commit_private_key(key.kid())?;
        self.remove_stale_private_keys(ring)?;
        Ok(Rotation {
            old_kid,
            new_kid: key.kid().to_owned(),
            verify_until,
        })
    }

    /// What `kid` signed according to the ledger, and the latest `iat` among it (0 if
    /// nothing).
    fn signed_by(&self, kid: &str) -> Result<(Signed, i64)> {
        let mut verify_until = Some(i64::MIN);
        let mut latest_iat = 0;
        let mut jtis = Vec::new();
        for e in self.ledger()?.into_iter().filter(|e| e.kid == kid) {
            verify_until = match (verify_until, e.exp) {
                (Some(v), Some(exp)) => Some(v.max(exp.unix_timestamp())),
                _ => None,
            };
            latest_iat = latest_iat.max(e.iat.unix_timestamp());
            jtis.push(e.jti);
        }
        let signed = Signed {
            verify_until,
            jtis: Some(jtis),
        };
        Ok((signed, latest_iat))
    }

    /// Deletes the private key files of keys the ring knows as retired or revoked (left
    /// by a rotation interrupted before its last step). Files of keys the ring does not
    /// know are left alone: they may belong to another ring put here by mistake.
    fn remove_stale_private_keys(&self, ring: &KeyRing) -> Result<()> {
        let dir = self.dir.join(files::PRIVATE);
        let stale: Vec<String> = ring
            .keys()
            .iter()
            .filter(|k| k.status == KeyStatus::Retired)
            .map(|k| k.kid().to_owned())
            .chain(ring.revoked_keys().iter().map(|r| r.kid.clone()))
            .collect();
        let mut removed = false;
        // Pending keys of rotations that never reached the ring.
        let active_pending = format!("{}{PENDING_SUFFIX}", ring.active().kid());
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(PENDING_SUFFIX) && name != active_pending {
                fs::remove_file(entry.path()).map_err(io_err("deleting", &entry.path()))?;
                removed = true;
            }
        }
        for kid in stale {
            let path = self.private_path(&kid);
            match fs::remove_file(&path) {
                Ok(()) => removed = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("deleting", &path)(e)),
            }
        }
        if removed {
            fsutil::sync_dir(&dir).map_err(io_err("syncing", &dir))?;
        }
        Ok(())
    }

    /// Revokes a key. Revoking the active key first rotates to a new one. Returns the
    /// rotation made, if any.
    ///
    /// # Errors
    /// [`StoreError::UnknownKid`]; ring, ledger and I/O errors.
    pub fn revoke_key(&self, kid: &str, now: i64) -> Result<Option<Rotation>> {
        let _lock = self.lock()?;
        let mut ring = self.load_ring()?;
        if ring.is_key_revoked(kid) {
            return Ok(None);
        }
        let key = ring.key(kid).ok_or_else(|| StoreError::UnknownKid {
            kid: kid.to_owned(),
        })?;
        let rotation = if key.status == KeyStatus::Active {
            Some(self.rotate_locked(&mut ring, now)?)
        } else {
            None
        };
        ring.revoke_key(kid, now);
        self.save_ring(&ring)?;
        self.remove_stale_private_keys(&ring)?;
        Ok(rotation)
    }

    /// Adds a minted token to the ring's revoked list. Returns false if it already was.
    ///
    /// # Errors
    /// [`StoreError::UnknownJti`]; ring, ledger and I/O errors.
    pub fn revoke_token(&self, jti: &str) -> Result<bool> {
        let _lock = self.lock()?;
        let mut ring = self.load_ring()?;
        let entry = self
            .ledger()?
            .into_iter()
            .find(|e| e.jti == jti)
            .ok_or_else(|| StoreError::UnknownJti {
                jti: jti.to_owned(),
            })?;
        let added = ring.revoke_token(jti, entry.exp.map(OffsetDateTime::unix_timestamp));
        if added {
            self.save_ring(&ring)?;
        }
        Ok(added)
    }

    /// Drops lapsed retired keys and revoked-token entries.
    ///
    /// # Errors
    /// Ring and I/O errors.
    pub fn prune(&self, now: i64, leeway: i64) -> Result<(Vec<String>, usize)> {
        let _lock = self.lock()?;
        let mut ring = self.load_ring()?;
        let dropped = ring.prune(now, leeway);
        if !dropped.0.is_empty() || dropped.1 > 0 {
            self.save_ring(&ring)?;
        }
        Ok(dropped)
    }

    /// The stored admin key hashes (empty if none yet).
    ///
    /// # Errors
    /// [`StoreError::Document`] if unreadable; I/O errors.
    pub fn admin_keys(&self) -> Result<AdminKeys> {
        let path = self.path(files::ADMIN_KEYS);
        match read_text(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(AdminKeys::default()),
            r => {
                let text = r.map_err(io_err("reading admin keys", &path))?;
                serde_json::from_str(&text).map_err(|source| StoreError::Document { path, source })
            }
        }
    }

    /// Makes a new admin key, stores its hash, and returns the key to show once.
    ///
    /// # Errors
    /// I/O errors, or a damaged admin key file.
    pub fn create_admin_key(&self, now: i64) -> Result<Zeroizing<String>> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&self.dir)
            .map_err(io_err("creating", &self.dir))?;
        let _lock = self.lock()?;
        let mut keys = self.admin_keys()?;
        let key = keys.generate(datetime(now));
        let path = self.path(files::ADMIN_KEYS);
        let mut json = serde_json::to_string_pretty(&keys).expect("admin keys serialise");
        json.push('\n');
        fsutil::write_atomic(&path, json.as_bytes(), 0o600)
            .map_err(io_err("writing admin keys", &path))?;
        Ok(key)
    }

    /// Reports files whose permissions are wider than they should be.
    pub fn permission_warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let private = self.dir.join(files::PRIVATE);
        let mut paths = vec![
            self.path(files::LEDGER),
            self.path(files::CURRENT),
            self.path(files::ADMIN_KEYS),
        ];
        if let Ok(entries) = fs::read_dir(&private) {
            paths.extend(entries.flatten().map(|e| e.path()));
        }
        for path in paths {
            if let Ok(meta) = fs::metadata(&path)
                && meta.permissions().mode() & 0o077 != 0
            {
                out.push(format!(
                    "{} is readable by others (mode {:o}); run chmod 600 on it",
                    path.display(),
                    meta.permissions().mode() & 0o777
                ));
            }
        }
        out
    }
}

/// Whether `current` still verifies at `now` with no leeway (an admin must never be shown
/// a command whose token is past its expiry).
fn current_is_usable(ring: &KeyRing, current: &Current, now: i64) -> bool {
    Verifier::new(ring, 0)
        .verify(current.token.as_bytes(), now)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_292_000;

    fn store() -> (tempfile::TempDir, KeyStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path().join("keys"));
        store.init("iss", "aud", NOW).unwrap();
        (dir, store)
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn init_writes_files_with_modes_and_refuses_twice() {
        let (_d, s) = store();
        let ring = s.load_ring().unwrap();
        assert_eq!(mode(&s.ring_path()), 0o644);
        assert_eq!(mode(&s.private_path(ring.active().kid())), 0o600);
        assert!(matches!(
            s.init("iss", "aud", NOW),
            Err(StoreError::AlreadyInitialised { .. })
        ));
        s.mint(None, Expiry::Never, NOW).unwrap();
        assert_eq!(mode(&s.path(files::LEDGER)), 0o600);
        assert_eq!(mode(&s.path(files::CURRENT)), 0o600);
        assert!(s.permission_warnings().is_empty());
    }

    #[test]
    fn rotation_sets_verify_until_and_deletes_old_key() {
        let (_d, s) = store();
        let a = s.mint(None, Expiry::At(NOW + 100), NOW).unwrap();
        s.mint(None, Expiry::At(NOW + 50), NOW).unwrap();
        let r = s.rotate(NOW + 1).unwrap();
        assert_eq!(r.old_kid, a.kid);
        assert_eq!(r.verify_until, Some(NOW + 100));
        assert!(!s.private_path(&r.old_kid).exists());
        let ring = s.load_ring().unwrap();
        let v = Verifier::new(&ring, 0);
        assert!(v.verify(a.token.as_bytes(), NOW + 2).is_ok());
        let b = s.mint(None, Expiry::Never, NOW + 2).unwrap();
        assert_eq!(b.kid, r.new_kid);
        let r2 = s.rotate(NOW + 3).unwrap();
        assert_eq!(r2.verify_until, None);
        let (dropped, _) = s.prune(NOW + 1000, 60).unwrap();
        assert_eq!(dropped, vec![r.old_kid]);
    }

    #[test]
    fn revoking_active_key_rotates_first() {
        let (_d, s) = store();
        let a = s.mint(None, Expiry::Never, NOW).unwrap();
        let rotation = s.revoke_key(&a.kid, NOW + 1).unwrap().unwrap();
        let ring = s.load_ring().unwrap();
        assert_eq!(ring.active().kid(), rotation.new_kid);
        let err = Verifier::new(&ring, 0)
            .verify(a.token.as_bytes(), NOW + 2)
            .unwrap_err();
        assert_eq!(err.reason, crate::verify::Reason::KeyRevoked);
        let (current, renewed) = s.current_or_renew(90, NOW + 2).unwrap();
        assert!(renewed);
        assert_eq!(current.kid, rotation.new_kid);
        assert!(matches!(
            s.revoke_key("nope", NOW),
            Err(StoreError::UnknownKid { .. })
        ));
    }

    #[test]
    fn a_garbage_current_token_file_is_replaced() {
        let (_d, s) = store();
        fs::write(s.path(files::CURRENT), b"{garbage").unwrap();
        assert!(s.current().is_err());
        let (current, renewed) = s.current_or_renew(90, NOW).unwrap();
        assert!(renewed);
        assert_eq!(s.current().unwrap(), Some(current));
    }

    #[test]
    fn a_fifo_in_place_of_a_file_is_refused_not_waited_on() {
        let (_d, s) = store();
        let ledger = s.path(files::LEDGER);
        let made = std::process::Command::new("mkfifo").arg(&ledger).status();
        if made.is_ok_and(|st| st.success()) {
            assert!(matches!(s.ledger(), Err(StoreError::Io { .. })));
            assert!(s.rotate(NOW).is_err());
            assert!(matches!(
                s.mint(None, Expiry::Never, NOW),
                Err(StoreError::Io { .. })
            ));
        }
    }

    #[test]
    fn torn_ledger_is_repaired_on_append() {
        let (_d, s) = store();
        s.mint(None, Expiry::Never, NOW).unwrap();
        let path = s.path(files::LEDGER);
        let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"jti\":\"torn").unwrap();
        assert_eq!(s.ledger().unwrap().len(), 1);
        s.mint(None, Expiry::Never, NOW).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert_eq!(s.ledger().unwrap().len(), 2);
    }

    #[test]
    fn a_ledger_past_the_document_cap_still_takes_mints_and_rotations() {
        let (_d, s) = store();
        let first = s.mint(None, Expiry::Never, NOW).unwrap();
        let path = s.path(files::LEDGER);
        let line = fs::read(&path).unwrap();
        let copies = (fsutil::MAX_DOCUMENT_BYTES as usize / line.len()) + 10;
        fs::write(&path, line.repeat(copies)).unwrap();
        s.mint(Some("after"), Expiry::Never, NOW).unwrap();
        let entries = s.ledger().unwrap();
        assert_eq!(entries.len(), copies + 1);
        assert_eq!(entries.last().unwrap().name.as_deref(), Some("after"));
        let rotation = s.rotate(NOW + 10).unwrap();
        assert_eq!(rotation.old_kid, first.kid);
    }

    #[test]
    fn mismatched_private_key_is_refused() {
        let (_d, s) = store();
        let ring = s.load_ring().unwrap();
        let path = s.private_path(ring.active().kid());
        fs::remove_file(&path).unwrap();
        fsutil::create_new(&path, SecretKey::generate().to_pem().as_bytes(), 0o600).unwrap();
        assert!(matches!(
            s.load_minter(&ring),
            Err(StoreError::KeyMismatch { .. })
        ));
    }
}
