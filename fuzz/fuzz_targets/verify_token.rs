//! The verifier on arbitrary bytes.
//!
//! Input: one control byte, then the token. Control bits 0-1 pick the leeway (60, 0,
//! 3600 s); bit 2 asks for the token to be re-signed; bits 3-5 pick the signing key
//! (A, L, O, X or Z, see `mdtoken_fuzz::Fixture`).
//!
//! Re-signed, everything up to the last dot is signed with the chosen key and the old
//! signature replaced, so the fuzzer reaches the payload's base64url and JSON behind a
//! valid signature; a first segment that is a placeholder (`@A`, `@L`, ...) becomes the
//! canonical header naming that key.
//!
//! Every token is checked against the reference verifier (same acceptance, same
//! reason), with and without the cache, and if its signature held, every tampered
//! variant must be refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mdtoken_fuzz::{b64, check_token, fixture, sign, verifiers};

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let v = &verifiers()[usize::from(control & 3) % 3];
    let seed = data
        .len()
        .wrapping_mul(31)
        .wrapping_add(usize::from(control));
    if control & 4 == 0 {
        check_token(v, rest, seed);
        return;
    }
    let f = fixture();
    let signer = &f.keys[usize::from(control >> 3 & 7) % f.keys.len()];
    let mut input = rest.to_vec();
    for k in &f.keys {
        let p = k.placeholder.as_bytes();
        if input.starts_with(p) && input.get(p.len()) == Some(&b'.') {
            let header = format!(r#"{{"alg":"EdDSA","typ":"mdt+jwt","kid":"{}"}}"#, k.kid());
            input.splice(..p.len(), b64(header).into_bytes());
            break;
        }
    }
    let signed = match input.iter().rposition(|&b| b == b'.') {
        Some(last) => &input[..last],
        None => &input[..],
    };
    check_token(v, &sign(&signer.secret, signed), seed);
});
