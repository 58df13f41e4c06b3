//! The header and claims JSON behind a valid signature.
//!
//! Input: one control byte, then the header JSON, a 0xFF byte, and the claims JSON; with
//! no 0xFF byte, everything after the control byte is the claims and the header is the
//! canonical one naming the signing key. Placeholders `@A`, `@L`, `@O`, `@X`, `@Z` in
//! either are replaced with those keys' kids. Control bits 0-1 pick the leeway (60, 0,
//! 3600 s), bits 3-5 the signing key. Both parts are base64url-encoded and signed, then
//! checked as in `verify_token`: the reference verifier must agree, the cache must not
//! change the verdict, and no tampered variant may be accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mdtoken_fuzz::{b64, check_token, fixture, sign, verifiers};

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let f = fixture();
    let v = &verifiers()[usize::from(control & 3) % 3];
    let signer = &f.keys[usize::from(control >> 3 & 7) % f.keys.len()];
    let (header, claims) = match rest.iter().position(|&b| b == 0xff) {
        Some(i) => (f.expand(&rest[..i]), f.expand(&rest[i + 1..])),
        None => (
            format!(
                r#"{{"alg":"EdDSA","typ":"mdt+jwt","kid":"{}"}}"#,
                signer.kid()
            )
            .into_bytes(),
            f.expand(rest),
        ),
    };
    let input = format!("{}.{}", b64(header), b64(claims));
    let seed = data
        .len()
        .wrapping_mul(31)
        .wrapping_add(usize::from(control));
    check_token(v, &sign(&signer.secret, input.as_bytes()), seed);
});
