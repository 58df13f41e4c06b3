//! `keyring.json` as the loader reads it: arbitrary bytes (not necessarily UTF-8),
//! through `KeyRing::from_json` and (for a quarter of the inputs) from a file through
//! `store::load_ring_file`; both must agree.
//!
//! A ring that loads must be what the README promises: exactly one active key, every
//! kid the RFC 7638 thumbprint of its `x` (recomputed here), every key a canonical,
//! torsion-free point of large order (rechecked with curve25519-dalek), no kid twice. Its
//! verifier must refuse a token signed by a key outside the ring under each ring kid
//! (bad_signature) and under each revoked kid (key_revoked). Saving it (`to_json`) and
//! loading that again must give the same ring, field by field; and (again for a quarter
//! of the inputs) the ring after a rotation, a key revocation or a prune must still load.
#![no_main]

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::OnceLock;

use curve25519_dalek::edwards::CompressedEdwardsY;
use libfuzzer_sys::fuzz_target;
use mdtoken::keyring::{KeyRing, KeyStatus, RevokedKey, RevokedToken, Signed};
use mdtoken::verify::{Reason, Verifier};
use mdtoken_fuzz::{AUD, ISS, NOW, b64, fixture, sign};
use sha2::{Digest as _, Sha256};

/// Everything a ring holds, in a comparable form.
type Summary = (
    String,
    String,
    Vec<(
        String,
        KeyStatus,
        i64,
        Option<i64>,
        Option<i64>,
        Option<Vec<String>>,
    )>,
    Vec<RevokedKey>,
    Vec<RevokedToken>,
);

fn summary(r: &KeyRing) -> Summary {
    (
        r.issuer.clone(),
        r.audience.clone(),
        r.keys()
            .iter()
            .map(|k| {
                (
                    k.kid().to_owned(),
                    k.status,
                    k.created_at,
                    k.retired_at,
                    k.verify_until,
                    k.signed_jtis.clone(),
                )
            })
            .collect(),
        r.revoked_keys().to_vec(),
        r.revoked_tokens().to_vec(),
    )
}

fn ring_file() -> &'static PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
            .path()
            .join("keyring.json")
    })
}

/// Saving then loading gives the same ring, and saving that gives the same text.
fn assert_round_trip(ring: &KeyRing, what: &str) -> KeyRing {
    let text = ring.to_json();
    let back = KeyRing::from_json(&text)
        .unwrap_or_else(|e| panic!("{what}: the saved ring does not load: {e}\n{text}"));
    assert_eq!(
        summary(&back),
        summary(ring),
        "{what}: round trip changed the ring"
    );
    assert_eq!(back.to_json(), text, "{what}: saved text differs");
    back
}

fn forged(kid: &str) -> Vec<u8> {
    let header = format!(
        r#"{{"alg":"EdDSA","typ":"mdt+jwt","kid":{}}}"#,
        serde_json::json!(kid)
    );
    let claims = format!(
        r#"{{"iss":"{ISS}","aud":"{AUD}","iat":{NOW},"nbf":{NOW},"jti":"AAAAAAAAAAAAAAAAAAAAAA"}}"#
    );
    let outsider = &fixture().keys[4].secret;
    sign(
        outsider,
        format!("{}.{}", b64(header), b64(claims)).as_bytes(),
    )
}

fuzz_target!(|data: &[u8]| {
    // Every key of a loaded ring costs a torsion check per load, so the slower checks
    // (the file loader, the state changes) run on a quarter of the inputs, chosen by
    // length so that a replay does the same.
    let thorough = data.len().is_multiple_of(4);
    let from_file = thorough.then(|| {
        let path = ring_file();
        std::fs::write(path, data).expect("writing the ring file");
        mdtoken::store::load_ring_file(path)
    });
    let Ok(text) = std::str::from_utf8(data) else {
        assert!(
            from_file.is_none_or(|r| r.is_err()),
            "a ring that is not UTF-8 loaded"
        );
        return;
    };
    let ring = match (KeyRing::from_json(text), from_file) {
        (Err(_), None | Some(Err(_))) => return,
        (Ok(a), None) => a,
        (Ok(a), Some(Ok(b))) => {
            assert_eq!(summary(&a), summary(&b), "file and text loads differ");
            a
        }
        (a, Some(b)) => panic!(
            "from_json says {:?}, the file loader {:?}",
            a.err(),
            b.err()
        ),
    };

    assert!(!ring.issuer.is_empty() && !ring.audience.is_empty());
    let active = ring
        .keys()
        .iter()
        .filter(|k| k.status == KeyStatus::Active)
        .count();
    assert_eq!(active, 1, "a loaded ring must have exactly one active key");
    let mut kids = HashSet::new();
    for k in ring.keys() {
        let x = k.public.as_bytes();
        let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, b64(x));
        assert_eq!(
            k.kid(),
            b64(Sha256::digest(canonical)),
            "kid is not the thumbprint"
        );
        let point = CompressedEdwardsY(*x)
            .decompress()
            .expect("a ring key is on the curve");
        assert_eq!(point.compress().as_bytes(), x, "non-canonical key loaded");
        assert!(!point.is_small_order(), "small-order key loaded");
        assert!(point.is_torsion_free(), "key with torsion loaded");
        assert!(kids.insert(k.kid().to_owned()), "kid twice in keys");
        if k.status == KeyStatus::Active {
            assert!(k.retired_at.is_none() && k.signed_jtis.is_none());
        } else {
            assert!(k.retired_at.is_some());
        }
    }
    for r in ring.revoked_keys() {
        assert!(
            kids.insert(r.kid.clone()),
            "kid both in keys and revoked_keys"
        );
    }

    let verifier = Verifier::new(&ring, 60);
    for k in ring.keys().iter().take(4) {
        let reason = verifier.verify(&forged(k.kid()), NOW).unwrap_err().reason;
        assert_eq!(
            reason,
            Reason::BadSignature,
            "a foreign signature under a ring kid"
        );
    }
    for r in ring.revoked_keys().iter().take(4) {
        let reason = verifier.verify(&forged(&r.kid), NOW).unwrap_err().reason;
        assert_eq!(reason, Reason::KeyRevoked, "a revoked kid");
    }
    let _ = ring.jwks();

    let ring = assert_round_trip(&ring, "loaded ring");
    if !thorough {
        return;
    }
    let mut rotated = ring.clone();
    let old = rotated.active().kid().to_owned();
    let outsider = fixture().keys[4].secret.public();
    if let Err(e) = rotated.rotate(outsider, NOW, Signed::nothing(NOW)) {
        // The fuzzer learns the outsider's kid from the comparisons above and may list
        // it among the revoked keys; refusing it then is right.
        assert!(ring.is_key_revoked(outsider.kid()), "rotation refused: {e}");
        return;
    }
    let mut rotated = assert_round_trip(&rotated, "rotated ring");
    assert!(rotated.revoke_key(&old, NOW));
    let mut revoked = assert_round_trip(&rotated, "ring after revoking a key");
    revoked.prune(NOW, 60);
    assert_round_trip(&revoked, "pruned ring");
});
