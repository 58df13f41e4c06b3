//! External vectors: RFC 8037 Appendix A, Wycheproof Ed25519, the small-order and
//! non-canonical encodings of ed25519-speccheck, and interoperability with a standard JWT
//! library in both directions.

mod common;

use common::*;
use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::edwards::CompressedEdwardsY;
use mdtoken::key::{PublicKey, SecretKey, thumbprint};
use mdtoken::keyring::KeyRing;
use mdtoken::mint::{Expiry, Minter};
use mdtoken::verify::{Reason, Verifier};
use wycheproof::TestResult;

const RFC8037_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
const RFC8037_KID: &str = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";
const RFC8037_JWS: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

/// A ring document holding one active key with the given raw `x`, named by its
/// thumbprint, so only the key itself can make the loader refuse it.
fn ring_with_x(x: &[u8]) -> String {
    serde_json::json!({
        "issuer": ISS,
        "audience": AUD,
        "keys": [{
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
            "kid": thumbprint_of(x), "x": b64(x), "status": "active",
            "created_at": "2026-01-01T00:00:00Z", "retired_at": null, "verify_until": null,
        }],
        "revoked_keys": [],
        "revoked_tokens": [],
    })
    .to_string()
}

#[test]
fn rfc8037_a1_a3_keys_and_thumbprint() {
    let d: [u8; 32] = unb64(RFC8037_D).try_into().unwrap();
    let sk = TestKey::from_seed(d).expect("the RFC key is a valid key");
    assert_eq!(sk.x(), RFC8037_X, "A.2: the public key derived from A.1");
    let key = PublicKey::from_x(RFC8037_X).unwrap();
    assert_eq!(key.kid(), RFC8037_KID, "A.3 thumbprint");
    assert_eq!(thumbprint(key.as_bytes()), RFC8037_KID);
    assert_eq!(thumbprint_of(key.as_bytes()), RFC8037_KID);
    assert_eq!(key.x(), RFC8037_X);
    // The ring accepts it under its thumbprint, and round-trips it.
    let ring = KeyRing::from_json(&ring_with_x(key.as_bytes())).unwrap();
    assert_eq!(ring.active().kid(), RFC8037_KID);
    assert_eq!(
        KeyRing::from_json(&ring.to_json()).unwrap().to_json(),
        ring.to_json()
    );
}

#[test]
fn rfc8037_a4_signature() {
    let key = PublicKey::from_x(RFC8037_X).unwrap();
    let (input, sig) = RFC8037_JWS.rsplit_once('.').unwrap();
    assert_eq!(input.split('.').next().unwrap(), b64(r#"{"alg":"EdDSA"}"#));
    assert_eq!(
        unb64(input.split('.').nth(1).unwrap()),
        b"Example of Ed25519 signing"
    );
    let sig: [u8; 64] = unb64(sig).try_into().unwrap();
    assert!(key.verify(input.as_bytes(), &sig), "A.4 signature verifies");
    // Ed25519 is deterministic: the RFC's private key reproduces the signature exactly.
    let sk = TestKey::from_seed(unb64(RFC8037_D).try_into().unwrap()).unwrap();
    assert_eq!(sk.sign(input.as_bytes()), sig);
    // Any change to the input or the signature breaks it.
    assert!(!key.verify(format!("{input}x").as_bytes(), &sig));
    let mut bad = sig;
    bad[10] ^= 0x40;
    assert!(!key.verify(input.as_bytes(), &bad));
}

/// The RFC's JWS is a valid signature but not a valid mdtoken token: no `typ`.
#[test]
fn rfc8037_a4_is_not_a_token() {
    let key = PublicKey::from_x(RFC8037_X).unwrap();
    let ring = KeyRing::new(ISS, AUD, &key, NOW).unwrap();
    let verifier = Verifier::new(&ring, LEEWAY);
    let r = verifier.verify(RFC8037_JWS.as_bytes(), NOW).unwrap_err();
    assert_eq!(r.reason, Reason::BadHeader);
    let dir = KeysDir::new(&ring);
    assert_cli_verdict(
        "RFC 8037 A.4",
        &dir.verify(RFC8037_JWS.as_bytes()),
        Some(Reason::BadHeader),
    );
}

#[test]
fn wycheproof_ed25519() {
    let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).unwrap();
    let (mut valid, mut invalid, mut key_refused) = (0, 0, 0);
    let mut failures = Vec::new();
    for group in &set.test_groups {
        let pk: &[u8] = &group.key.pk;
        let key = PublicKey::from_bytes(pk);
        // The ring loader and the raw check agree on every key.
        assert_eq!(
            KeyRing::from_json(&ring_with_x(pk)).is_ok(),
            key.is_ok() && pk.len() == 32,
            "ring loader and PublicKey::from_bytes disagree on {}",
            hex::encode(pk)
        );
        for test in &group.tests {
            let accepted = match &key {
                Err(e) => {
                    key_refused += 1;
                    if test.result == TestResult::Valid {
                        failures.push(format!(
                            "tc {} ({}): VALID vector's key {} refused by the loader: {e}",
                            test.tc_id,
                            test.comment,
                            hex::encode(pk)
                        ));
                    }
                    false
                }
                Ok(key) => match <[u8; 64]>::try_from(&test.sig[..]) {
                    Ok(sig) => key.verify(&test.msg, &sig),
                    Err(_) => false,
                },
            };
            match test.result {
                TestResult::Valid => {
                    valid += 1;
                    if !accepted {
                        failures.push(format!(
                            "tc {} ({}): valid vector rejected",
                            test.tc_id, test.comment
                        ));
                    }
                }
                TestResult::Invalid => {
                    invalid += 1;
                    if accepted {
                        failures.push(format!(
                            "tc {} ({}): invalid vector accepted",
                            test.tc_id, test.comment
                        ));
                    }
                }
                TestResult::Acceptable => {}
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} Wycheproof failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        valid > 0 && invalid > 0,
        "vectors loaded: {valid} valid, {invalid} invalid"
    );
    eprintln!("wycheproof ed25519: {valid} valid, {invalid} invalid, {key_refused} key refused");
}

fn hex32(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

/// The eight points of small order, derived from curve25519-dalek's torsion subgroup.
fn small_order_encodings() -> Vec<[u8; 32]> {
    EIGHT_TORSION
        .iter()
        .map(|p| p.compress().to_bytes())
        .collect()
}

fn assert_refused(what: &str, bytes: &[u8; 32]) {
    assert!(
        PublicKey::from_bytes(bytes).is_err(),
        "{what} {} accepted by PublicKey::from_bytes",
        hex::encode(bytes)
    );
    assert!(
        PublicKey::from_x(&b64(bytes)).is_err(),
        "{what} {} accepted by PublicKey::from_x",
        hex::encode(bytes)
    );
    assert!(
        KeyRing::from_json(&ring_with_x(bytes)).is_err(),
        "{what} {} accepted by KeyRing::from_json",
        hex::encode(bytes)
    );
}

#[test]
fn speccheck_small_order_points_refused() {
    let points = small_order_encodings();
    let mut distinct = points.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 8);
    // The well-known members of the list.
    for known in [
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000080",
    ] {
        assert!(points.contains(&hex32(known)), "{known} is of small order");
    }
    for p in &points {
        let point = CompressedEdwardsY(*p).decompress().unwrap();
        assert!(point.is_small_order());
        assert_refused("small-order point", p);
    }
}

#[test]
fn speccheck_non_canonical_encodings_refused() {
    let mut cases: Vec<(String, [u8; 32])> = vec![
        (
            "y = p".into(),
            hex32("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
        ),
        (
            "y = p + 1".into(),
            hex32("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
        ),
        (
            "identity with the sign bit set (x = 0)".into(),
            hex32("0100000000000000000000000000000000000000000000000000000000000080"),
        ),
        (
            "y = -1 with the sign bit set (x = 0)".into(),
            hex32("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
        ),
    ];
    // Every y in [p, 2^255), with either sign bit.
    for k in 0..19u8 {
        let mut y = hex32("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
        y[0] += k;
        cases.push((format!("y = p + {k}"), y));
        let mut signed = y;
        signed[31] |= 0x80;
        cases.push((format!("y = p + {k}, sign bit set"), signed));
    }
    for (what, bytes) in &cases {
        assert_refused(what, bytes);
    }
}

#[test]
fn mixed_order_and_off_curve_keys_refused() {
    let good = TestKey::generate();
    let point = CompressedEdwardsY(good.raw_public()).decompress().unwrap();
    for t in EIGHT_TORSION.iter().skip(1) {
        let mixed = (point + t).compress().to_bytes();
        assert_refused("large-order point plus torsion", &mixed);
    }
    // Encodings that are not on the curve at all.
    let mut found = 0;
    while found < 8 {
        let bytes: [u8; 32] = random_bytes(32).try_into().unwrap();
        if CompressedEdwardsY(bytes).decompress().is_none() {
            assert_refused("off-curve encoding", &bytes);
            found += 1;
        }
    }
    // The control: the good key passes all three checks.
    assert!(PublicKey::from_bytes(&good.raw_public()).is_ok());
    assert!(KeyRing::from_json(&ring_with_x(&good.raw_public())).is_ok());
}

/// A token minted by mdtoken verifies with a standard JWT library fed only the ring's `x`.
#[test]
fn interop_minted_token_verifies_with_jsonwebtoken() {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let key = SecretKey::generate();
    let ring = KeyRing::new(ISS, AUD, key.public(), NOW).unwrap();
    let x = ring.active().public.x();
    let minter = Minter::new(key, ISS, AUD);
    let minted = minter
        .mint(Some("interop"), Expiry::At(NOW + 3600), NOW)
        .unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    // No wall clock: the time claims are mdtoken's to judge.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.required_spec_claims.clear();
    validation.set_issuer(&[ISS]);
    validation.set_audience(&[AUD]);
    let data = jsonwebtoken::decode::<serde_json::Value>(
        &minted.token,
        &DecodingKey::from_ed_components(&x).unwrap(),
        &validation,
    )
    .unwrap();
    assert_eq!(data.header.typ.as_deref(), Some("mdt+jwt"));
    assert_eq!(data.header.kid.as_deref(), Some(minted.kid.as_str()));
    assert_eq!(data.claims["jti"], minted.claims.jti);
    assert_eq!(data.claims["exp"], NOW + 3600);
}

/// A token signed by a standard JWT library with the explicit type and kid verifies.
#[test]
fn interop_jsonwebtoken_token_verifies_with_mdtoken() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let key = SecretKey::generate();
    let ring = KeyRing::new(ISS, AUD, key.public(), NOW).unwrap();
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("mdt+jwt".into());
    header.kid = Some(key.kid().to_owned());
    let der = {
        use ed25519_dalek::pkcs8::EncodePrivateKey as _;
        key.signing_key().to_pkcs8_der().unwrap()
    };
    let encoding_key = EncodingKey::from_ed_der(der.as_bytes());
    let claims = serde_json::json!({
        "iss": ISS, "aud": AUD, "iat": NOW, "nbf": NOW, "exp": NOW + 60,
        "jti": b64(random_bytes(16)),
    });
    let token = jsonwebtoken::encode(&header, &claims, &encoding_key).unwrap();
    let v = Verifier::new(&ring, LEEWAY)
        .verify(token.as_bytes(), NOW)
        .unwrap();
    assert_eq!(v.kid, key.kid());
    assert_eq!(v.claims.exp, Some(NOW + 60));
    // Its default header (typ "JWT") is refused.
    let plain =
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &encoding_key).unwrap();
    assert_eq!(
        Verifier::new(&ring, LEEWAY)
            .verify(plain.as_bytes(), NOW)
            .unwrap_err()
            .reason,
        Reason::BadHeader
    );
}
