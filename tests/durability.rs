//! Crash safety and concurrency of the keys directory, with real processes: writers
//! SIGKILLed at arbitrary moments, and writers racing each other.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use mdtoken::store::KeyStore;
use mdtoken::verify::{Reason, Verifier};

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

/// What is known of a minted token's revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Revocation {
    /// Never asked for: the token must verify.
    None,
    /// A revoke run completed: the token must be refused as revoked.
    Done,
    /// A revoke run was killed: either answer is right, nothing else.
    Unknown,
}

/// Everything a verifier and a minter need must still be there and consistent.
fn check_invariants(keys: &Path, tokens: &[(String, Revocation)], round: usize) {
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
    for (t, revocation) in tokens {
        let verdict = verifier
            .verify(t.as_bytes(), NOW_UNIX)
            .map_err(|e| e.reason);
        match (revocation, verdict) {
            (Revocation::None, Ok(_))
            | (Revocation::Done, Err(Reason::TokenRevoked))
            | (Revocation::Unknown, Ok(_) | Err(Reason::TokenRevoked)) => {}
            (r, v) => panic!("round {round}: a token minted before the kill ({r:?}) reads {v:?}"),
        }
    }
}

#[test]
fn sigkill_during_mint_rotate_and_revoke_never_loses_a_key_or_a_token() {
    let (_dir, keys) = init();
    let mut rng = Lcg(0x5eed);
    let mut tokens: Vec<(String, Revocation)> = Vec::new();
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
        // Mostly mints; a third rotations; a sixth revocations of an earlier token.
        let live: Vec<usize> = (0..tokens.len())
            .filter(|&i| tokens[i].1 == Revocation::None)
            .collect();
        let revoking = match rng.next() % 6 {
            0 if !live.is_empty() => Some(live[rng.next() as usize % live.len()]),
            _ => None,
        };
        let args: Vec<String> = match (revoking, rng.next() % 3) {
            (Some(i), _) => {
                let jti = Verifier::new(&KeyStore::new(&keys).load_ring().unwrap(), 60)
                    .verify(tokens[i].0.as_bytes(), NOW_UNIX)
                    .unwrap()
                    .claims
                    .jti;
                vec!["tokens".into(), "revoke".into(), jti]
            }
            (None, 0) => vec!["keys".into(), "rotate".into()],
            (None, _) => vec!["mint".into(), "--no-expiry".into()],
        };
        let mut child = mdtoken(&keys)
            .args(&args)
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
        match (revoking, out.status.success()) {
            (Some(i), true) => tokens[i].1 = Revocation::Done,
            (Some(i), false) => tokens[i].1 = Revocation::Unknown,
            (None, true) if args[0] == "mint" => tokens.push((
                String::from_utf8(out.stdout).unwrap().trim().to_owned(),
                Revocation::None,
            )),
            _ => {}
        }
        if !out.status.success() {
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
    assert!(
        tokens.iter().any(|t| t.1 == Revocation::Done),
        "no revocation completed; the test proved nothing"
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
