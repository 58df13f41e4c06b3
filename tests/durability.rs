//! Crash safety and concurrency of the keys directory, with real processes: writers
//! SIGKILLed at arbitrary moments, and writers racing each other.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use mdtoken::store::KeyStore;
use mdtoken::verify::Verifier;

const NOW: &str = "2026-12-03T10:00:00Z";
const NOW_UNIX: i64 = 1_796_292_000;

fn mdtoken(keys: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mdtoken"));
    c.arg("--keys-dir")
        .arg(keys)
        .env("MDTOKEN_NOW", NOW)
        .env_remove("MDTOKEN_CONFIG")
        .stdin(Stdio::null());
    c
}

fn init() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let out = mdtoken(&keys).args(["keys", "init"]).output().unwrap();
    assert!(out.status.success());
    (dir, keys)
}

/// A small deterministic generator, so a failing round can be replayed.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// Everything a verifier and a minter need must still be there and consistent.
fn check_invariants(keys: &Path, tokens: &[String], round: usize) {
    let store = KeyStore::new(keys);
    let ring = store
        .load_ring()
        .unwrap_or_else(|e| panic!("round {round}: ring does not load: {e:#}"));
    store
        .load_minter(&ring)
        .unwrap_or_else(|e| panic!("round {round}: active key unusable: {e:#}"));
    store
        .ledger()
        .unwrap_or_else(|e| panic!("round {round}: ledger does not parse: {e:#}"));
    let verifier = Verifier::new(&ring, 60);
    for t in tokens {
        if let Err(e) = verifier.verify(t.as_bytes(), NOW_UNIX) {
            panic!("round {round}: a token minted before the kill fails: {e}");
        }
    }
}

#[test]
fn sigkill_during_mint_and_rotate_never_loses_a_key_or_a_token() {
    let (_dir, keys) = init();
    let mut rng = Lcg(0x5eed);
    let mut tokens: Vec<String> = Vec::new();
    let rounds = 200;
    let mut killed = 0;
    // How long an uninterrupted write takes here; kills are spread over that window.
    let window = (0..3)
        .map(|_| {
            let start = std::time::Instant::now();
            assert!(
                mdtoken(&keys)
                    .arg("mint")
                    .output()
                    .unwrap()
                    .status
                    .success()
            );
            start.elapsed()
        })
        .max()
        .unwrap();
    let window_us = window.as_micros().max(1_000) as u64;
    for round in 0..rounds {
        let args: &[&str] = match rng.next() % 3 {
            0 => &["keys", "rotate"],
            _ => &["mint", "--no-expiry"],
        };
        let mut child = mdtoken(&keys)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Every fourth run completes; the others are killed at a random point of a
        // typical run's duration: early kills land in start-up, later ones mid-write.
        if round % 4 != 3 {
            std::thread::sleep(Duration::from_micros(rng.next() % window_us));
            let _ = child.kill();
        }
        let out = child.wait_with_output().unwrap();
        if out.status.success() && args[0] == "mint" {
            tokens.push(String::from_utf8(out.stdout).unwrap().trim().to_owned());
        } else if !out.status.success() {
            killed += 1;
        }
        check_invariants(&keys, &tokens, round);
    }
    // The directory is still fully usable, and leftovers were cleaned up.
    let out = mdtoken(&keys).args(["mint"]).output().unwrap();
    assert!(out.status.success());
    let leftovers: Vec<_> = std::fs::read_dir(&keys)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
    let private = std::fs::read_dir(keys.join("private")).unwrap().count();
    assert_eq!(private, 1, "only the active key's private file remains");
    assert!(
        killed > 0,
        "no run was interrupted; the test proved nothing"
    );
    assert!(
        !tokens.is_empty(),
        "no run completed; the test proved nothing"
    );
}

#[test]
fn racing_writers_lose_no_update() {
    let (_dir, keys) = init();
    let per_process: usize = 15;
    let children: Vec<_> = (0..4)
        .map(|i| {
            let keys = keys.clone();
            std::thread::spawn(move || {
                let mut tokens = Vec::new();
                for j in 0..per_process {
                    let args: &[&str] = if i == 3 && j % 3 == 0 {
                        &["keys", "rotate"]
                    } else {
                        &["mint", "--expires-in", "30d"]
                    };
                    let out = mdtoken(&keys).args(args).output().unwrap();
                    assert!(
                        out.status.success(),
                        "{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    if args[0] == "mint" {
                        tokens.push(String::from_utf8(out.stdout).unwrap().trim().to_owned());
                    }
                }
                tokens
            })
        })
        .collect();
    let tokens: Vec<String> = children
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    let store = KeyStore::new(&keys);
    let ring = store.load_ring().unwrap();
    let ledger = store.ledger().unwrap();
    assert_eq!(ledger.len(), tokens.len(), "every mint is in the ledger");
    assert_eq!(
        ring.keys().len(),
        1 + per_process.div_ceil(3),
        "every rotation is in the ring"
    );
    let verifier = Verifier::new(&ring, 60);
    let mut jtis = HashSet::new();
    for t in &tokens {
        let v = verifier.verify(t.as_bytes(), NOW_UNIX).unwrap();
        assert!(jtis.insert(v.claims.jti.clone()));
        let entry = ledger.iter().find(|e| e.jti == v.claims.jti).unwrap();
        assert_eq!(entry.kid, v.kid, "the ledger names the key that signed");
    }
    // Each retired key's verify_until covers every token it signed.
    for k in ring.keys().iter().filter(|k| k.retired_at.is_some()) {
        let latest = ledger
            .iter()
            .filter(|e| e.kid == k.kid())
            .filter_map(|e| e.exp.map(|t| t.unix_timestamp()))
            .max();
        if let Some(latest) = latest {
            assert_eq!(k.verify_until, Some(latest));
        }
    }
}
