//! Shared helpers for the hostile-input, vector and round-trip suites: keys generated in
//! the test, a ring with active, retired and revoked keys, hand-built tokens, and the
//! CLI run as a real process at a fixed time.
#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use ed25519_dalek::{Signer as _, SigningKey};
use mdtoken::key::PublicKey;
use mdtoken::keyring::KeyRing;
use mdtoken::verify::{Reason, Verifier};
use sha2::{Digest as _, Sha256};

/// The fixed "now" of every test: 2027-01-15T08:00:00Z.
pub const NOW: i64 = 1_800_000_000;
/// The ring's issuer.
pub const ISS: &str = "https://mdm.example.test";
/// The ring's audience.
pub const AUD: &str = "mass-deployment";
/// The leeway the suites verify with (the configured default).
pub const LEEWAY: i64 = 60;
/// A token id on the ring's revoked list.
pub const REVOKED_JTI: &str = "cmV2b2tlZC10b2tlbi0wMDE";
pub const DAY: i64 = 86_400;

/// `t` as RFC 3339, for `--at`.
pub fn rfc3339(t: i64) -> String {
    mdtoken::keyring::rfc3339(t)
}

/// Unpadded base64url, computed independently of the library.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes unpadded base64url (test inputs only).
pub fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).expect("test base64url")
}

/// `n` random bytes from the operating system.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    getrandom::fill(&mut v).expect("random source");
    v
}

/// A JSON string literal.
pub fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// An Ed25519 key made in the test and signing through ed25519-dalek directly.
pub struct TestKey {
    sk: SigningKey,
    pub public: PublicKey,
}

impl TestKey {
    pub fn generate() -> Self {
        loop {
            let seed: [u8; 32] = random_bytes(32).try_into().unwrap();
            if let Some(k) = Self::from_seed(seed) {
                return k;
            }
        }
    }

    pub fn from_seed(seed: [u8; 32]) -> Option<Self> {
        let sk = SigningKey::from_bytes(&seed);
        let public = PublicKey::from_bytes(sk.verifying_key().as_bytes()).ok()?;
        Some(Self { sk, public })
    }

    pub fn kid(&self) -> &str {
        self.public.kid()
    }

    pub fn x(&self) -> String {
        b64(self.sk.verifying_key().as_bytes())
    }

    pub fn raw_public(&self) -> [u8; 32] {
        *self.sk.verifying_key().as_bytes()
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.sk.sign(message).to_bytes()
    }

    /// The PKCS#8 PEM private key.
    pub fn private_pem(&self) -> String {
        self.sk
            .to_pkcs8_pem(Default::default())
            .unwrap()
            .to_string()
    }

    /// The SubjectPublicKeyInfo PEM public key (RFC 8410).
    pub fn public_pem(&self) -> String {
        let mut der = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        der.extend_from_slice(&self.raw_public());
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        format!("-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n")
    }

    /// The public JWK as JSON text.
    pub fn jwk(&self) -> String {
        format!(
            r#"{{"kty":"OKP","crv":"Ed25519","kid":"{}","x":"{}"}}"#,
            self.kid(),
            self.x()
        )
    }
}

/// The RFC 7638 thumbprint of raw key bytes, computed independently of the library.
pub fn thumbprint_of(x: &[u8]) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, b64(x));
    b64(Sha256::digest(canonical.as_bytes()))
}

/// HMAC-SHA256 (RFC 2104), for forging HS256 tokens.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// The standard header for `kid`, as minted.
pub fn header(kid: &str) -> String {
    format!(r#"{{"alg":"EdDSA","typ":"mdt+jwt","kid":"{kid}"}}"#)
}

/// A payload built member by member, so tests control the exact bytes.
#[derive(Clone, Debug)]
pub struct Payload(pub Vec<(String, String)>);

impl Payload {
    /// A good payload: issued ten minutes ago, expiring in an hour.
    pub fn good() -> Self {
        Self::issued(NOW - 600, Some(NOW + 3600))
    }

    pub fn issued(iat: i64, exp: Option<i64>) -> Self {
        let mut p = Self(vec![
            ("iss".into(), js(ISS)),
            ("aud".into(), js(AUD)),
            ("iat".into(), iat.to_string()),
            ("nbf".into(), iat.to_string()),
        ]);
        if let Some(exp) = exp {
            p = p.set("exp", &exp.to_string());
        }
        p.set("jti", &js(&b64(random_bytes(16))))
            .set("name", &js("hostile suite"))
    }

    /// Replaces the first member called `name`, or appends it.
    pub fn set(mut self, name: &str, raw: &str) -> Self {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some(m) => m.1 = raw.to_owned(),
            None => self.0.push((name.to_owned(), raw.to_owned())),
        }
        self
    }

    /// Appends a member even if one of that name exists.
    pub fn push(mut self, name: &str, raw: &str) -> Self {
        self.0.push((name.to_owned(), raw.to_owned()));
        self
    }

    pub fn remove(mut self, name: &str) -> Self {
        self.0.retain(|(n, _)| n != name);
        self
    }

    pub fn json(&self) -> String {
        let members: Vec<String> = self
            .0
            .iter()
            .map(|(n, v)| format!("{}:{v}", js(n)))
            .collect();
        format!("{{{}}}", members.join(","))
    }
}

/// `b64(header).b64(payload).b64(signature)` with the given signature bytes.
pub fn assemble(header_json: &[u8], payload_json: &[u8], signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header_json),
        b64(payload_json),
        b64(signature)
    )
}

/// A compact JWS over the exact header and payload bytes, signed by `key`.
pub fn jws(header_json: &str, payload_json: &str, key: &TestKey) -> String {
    jws_encoded(&b64(header_json), &b64(payload_json), key)
}

/// A compact JWS over already-encoded segments (which may be non-canonical).
pub fn jws_encoded(header_b64: &str, payload_b64: &str, key: &TestKey) -> String {
    let input = format!("{header_b64}.{payload_b64}");
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", b64(sig))
}

/// A good token signed by `key` under its own kid.
pub fn good_token(key: &TestKey) -> String {
    jws(&header(key.kid()), &Payload::good().json(), key)
}

/// Keys and rings shared by the suites.
///
/// Timeline: `kr` made at NOW−90d, retired at NOW−60d and then revoked; `k0` made at
/// NOW−60d and retired at NOW−30d (verifying until NOW+30d); `k1` active since NOW−30d.
/// `katt` is the attacker's key, in no ring. `pruned` is the ring after `k0` lapsed and
/// was pruned.
pub struct Fixture {
    pub k1: TestKey,
    pub k0: TestKey,
    pub kr: TestKey,
    pub katt: TestKey,
    pub ring: KeyRing,
    pub pruned: KeyRing,
}

pub const KR_RETIRED_AT: i64 = NOW - 60 * DAY;
pub const K0_RETIRED_AT: i64 = NOW - 30 * DAY;

impl Fixture {
    pub fn new() -> Self {
        let (k1, k0, kr, katt) = (
            TestKey::generate(),
            TestKey::generate(),
            TestKey::generate(),
            TestKey::generate(),
        );
        let mut ring = KeyRing::new(ISS, AUD, &kr.public, NOW - 90 * DAY).unwrap();
        ring.rotate(&k0.public, KR_RETIRED_AT, signed_until(NOW - 61 * DAY))
            .unwrap();
        assert!(ring.revoke_key(kr.kid(), KR_RETIRED_AT + DAY));
        ring.rotate(&k1.public, K0_RETIRED_AT, signed_until(NOW + 30 * DAY))
            .unwrap();
        assert!(ring.revoke_token(REVOKED_JTI, Some(NOW + DAY)));
        let mut pruned = ring.clone();
        let (dropped, _) = pruned.prune(NOW + 31 * DAY, LEEWAY);
        assert_eq!(dropped, vec![k0.kid().to_owned()]);
        Self {
            k1,
            k0,
            kr,
            katt,
            ring,
            pruned,
        }
    }

    pub fn verifier(&self) -> Verifier {
        Verifier::new(&self.ring, LEEWAY)
    }
}

/// A retirement record bounded by `verify_until` alone (no list of signed token ids), so
/// tokens the tests sign with a retired key at will are judged by the time rules only.
fn signed_until(verify_until: i64) -> mdtoken::keyring::Signed {
    mdtoken::keyring::Signed {
        verify_until: Some(verify_until),
        jtis: None,
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

/// The mdtoken binary.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_mdtoken")
}

/// What a CLI run produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Self {
        let code = out.status.code().unwrap_or_else(|| {
            panic!(
                "mdtoken killed by a signal; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        assert_ne!(
            code,
            101,
            "mdtoken panicked; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self {
            code,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The stdout parsed as one JSON value.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim_end()).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {:?}; stderr: {:?}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Runs `mdtoken ARGS` with `stdin` piped in (written from a thread, so a process that
/// stops reading early cannot block the test).
pub fn run(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(bin());
    // A clean environment: no MDTOKEN_* setting from the caller leaks into a verdict.
    cmd.args(args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn mdtoken");
    let mut pipe = child.stdin.take().unwrap();
    let out = std::thread::scope(|s| {
        s.spawn(move || {
            // The process may refuse the input before reading it all.
            let _ = pipe.write_all(stdin);
        });
        child.wait_with_output().expect("wait for mdtoken")
    });
    Run::from(out)
}

/// A keys directory holding exactly the given ring (public material only).
pub struct KeysDir {
    pub dir: tempfile::TempDir,
}

impl KeysDir {
    pub fn new(ring: &KeyRing) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keyring.json"), ring.to_json()).unwrap();
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn ring_path(&self) -> PathBuf {
        self.dir.path().join("keyring.json")
    }

    /// `mdtoken --keys-dir DIR verify - --json --at NOW` with `token` on stdin.
    pub fn verify(&self, token: &[u8]) -> Run {
        self.verify_at(token, NOW, &[])
    }

    pub fn verify_at(&self, token: &[u8], at: i64, env: &[(&str, &str)]) -> Run {
        let dir = self.path().to_str().unwrap().to_owned();
        let at = rfc3339(at);
        run(
            &["--keys-dir", &dir, "verify", "-", "--json", "--at", &at],
            token,
            env,
        )
    }
}

/// Asserts a CLI verdict: exit 0 and `valid:true` for `None`, else exit 1 and
/// `{"valid":false,"reason":CODE}`.
pub fn assert_cli_verdict(id: &str, run: &Run, expected: Option<Reason>) {
    let v = run.json();
    match expected {
        None => {
            assert_eq!(run.code, 0, "{id}: expected acceptance, got {run:?}");
            assert_eq!(v["valid"], true, "{id}: {run:?}");
        }
        Some(reason) => {
            assert_eq!(run.code, 1, "{id}: expected exit 1, got {run:?}");
            assert_eq!(v["valid"], false, "{id}: {run:?}");
            assert_eq!(v["reason"], reason.as_str(), "{id}: {run:?}");
        }
    }
}
