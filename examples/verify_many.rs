//! Verifies every token of a file on one thread, in a loop, with `Verifier::verify` (no
//! cache, so every call checks a signature) and with a bare `verify_strict` over the same
//! signing inputs, in alternating rounds; prints the rate of each and their ratio. The
//! per-core baseline of `benches/peers.sh` and `benches/http_load.sh`.
//!
//! ```text
//! cargo run --release --example verify_many -- KEYRING TOKENS_FILE [SECONDS]
//! ```

use std::hint::black_box;
use std::time::Instant;

use anyhow::{Context as _, Result, bail, ensure};
use ed25519_dalek::Signature;
use mdtoken::clock::{Clock as _, SystemClock};
use mdtoken::keyring::KeyRing;
use mdtoken::verify::{DEFAULT_LEEWAY, Verifier};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [ring_path, tokens_path, rest @ ..] = args.as_slice() else {
        bail!("usage: verify_many KEYRING TOKENS_FILE [SECONDS]");
    };
    let seconds: f64 = match rest.first() {
        Some(s) => s.parse().context("SECONDS")?,
        None => 5.0,
    };
    let ring = KeyRing::from_json(&std::fs::read_to_string(ring_path)?)
        .with_context(|| format!("loading {ring_path}"))?;
    let text = std::fs::read_to_string(tokens_path)?;
    let tokens: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    ensure!(!tokens.is_empty(), "no tokens in {tokens_path}");
    let verifier = Verifier::new(&ring, DEFAULT_LEEWAY);
    let now = SystemClock.now();
    let raw: Vec<(&[u8], Signature, _)> = tokens
        .iter()
        .map(|t| {
            let ok = verifier
                .verify(t.as_bytes(), now)
                .with_context(|| "a token does not verify".to_string())?;
            let key = *ring
                .keys()
                .iter()
                .find(|k| k.kid() == ok.kid)
                .context("signing key")?
                .public
                .verifying_key();
            let (input, sig) = t.rsplit_once('.').context("three parts")?;
            let sig: [u8; 64] = mdtoken::b64::decode_array(sig).context("signature")?;
            Ok((input.as_bytes(), Signature::from_bytes(&sig), key))
        })
        .collect::<Result<_>>()?;

    // Alternating rounds of one pass over (up to) 256 tokens a side, so drift and other
    // processes' load fall on both sides alike.
    let chunk = tokens.len().min(256);
    let (mut ours, mut bare, mut n, mut first) = (0f64, 0f64, 0usize, 0usize);
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < seconds {
        let idx = (first..first + chunk).map(|i| i % tokens.len());
        let t0 = Instant::now();
        for i in idx.clone() {
            assert!(
                verifier
                    .verify(black_box(tokens[i].as_bytes()), now)
                    .is_ok()
            );
        }
        let t1 = Instant::now();
        for i in idx {
            let (msg, sig, key) = &raw[i];
            assert!(key.verify_strict(black_box(msg), sig).is_ok());
        }
        let t2 = Instant::now();
        ours += (t1 - t0).as_secs_f64();
        bare += (t2 - t1).as_secs_f64();
        n += chunk;
        first = (first + chunk) % tokens.len();
    }
    println!(
        "mdtoken verify: {:.0} per second ({:.2} us); raw verify_strict: {:.0} per second ({:.2} us); ratio {:.3}",
        n as f64 / ours,
        ours / n as f64 * 1e6,
        n as f64 / bare,
        bare / n as f64 * 1e6,
        ours / bare
    );
    Ok(())
}
