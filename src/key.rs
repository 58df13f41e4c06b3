//! Ed25519 keys: validation of ring public keys, RFC 7638 thumbprint key ids, and the
//! signing key with its PKCS#8 PEM form.

use std::fmt;

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::b64;

thread_local! {
    static CHECKS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Signature checks made so far on the calling thread: what shows, without timing
/// anything, that a refusal came before any cryptography.
pub fn signature_checks_on_this_thread() -> u64 {
    CHECKS.with(std::cell::Cell::get)
}

/// Why a public key is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// `x` is not unpadded base64url of exactly 32 bytes.
    #[error("public key is not 32 bytes of base64url")]
    Length,
    /// The bytes do not decode to a curve point.
    #[error("public key is not a point on Ed25519")]
    NotOnCurve,
    /// The encoding is not the canonical one for its point (y ≥ p, or −0).
    #[error("public key has a non-canonical encoding")]
    NonCanonical,
    /// The point has small order (including the identity): it would accept forgeries.
    #[error("public key has small order")]
    SmallOrder,
    /// The point has a torsion component.
    #[error("public key is not torsion-free")]
    Torsion,
}

/// A validated Ed25519 public key and its RFC 7638 thumbprint.
#[derive(Clone)]
pub struct PublicKey {
    key: VerifyingKey,
    kid: String,
}

impl PublicKey {
    /// Validates 32 raw bytes: a canonical encoding of a torsion-free point of large order.
    ///
    /// # Errors
    /// The [`KeyError`] naming the first rule broken.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Length)?;
        let point = CompressedEdwardsY(bytes)
            .decompress()
            .ok_or(KeyError::NotOnCurve)?;
        if point.compress().to_bytes() != bytes {
            return Err(KeyError::NonCanonical);
        }
        if point.is_small_order() {
            return Err(KeyError::SmallOrder);
        }
        if !point.is_torsion_free() {
            return Err(KeyError::Torsion);
        }
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::NotOnCurve)?;
        Ok(Self {
            kid: thumbprint(&bytes),
            key,
        })
    }

    /// Validates the JWK `x` member (unpadded base64url of 32 bytes).
    ///
    /// # Errors
    /// [`KeyError::Length`] for bad base64url or length, else as [`PublicKey::from_bytes`].
    pub fn from_x(x: &str) -> Result<Self, KeyError> {
        let bytes = b64::decode_array::<32>(x).ok_or(KeyError::Length)?;
        Self::from_bytes(&bytes)
    }

    /// The RFC 7638 JWK thumbprint, used as `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWK `x` member.
    pub fn x(&self) -> String {
        b64::encode(self.key.as_bytes())
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.key.as_bytes()
    }

    /// Strict Ed25519 verification (RFC 8032 with canonical `S` and no small-order `R`):
    /// the verdict of `verify_strict`, without its decompression of `R`.
    ///
    /// `verify_strict` decompresses `R` only to refuse a small-order `R` (and a small-order
    /// key, which [`PublicKey::from_bytes`] already refused); the rest is the cofactorless
    /// check that the encoding of `[S]B - [k]A` equals the bytes of `R`, which plain
    /// `verify` makes too. Where that check passes, the bytes of `R` are the canonical
    /// encoding of a point, and that point has small order exactly when the bytes are one
    /// of the eight canonical encodings of the 8-torsion points. So refusing those eight
    /// byte strings first, then `verify`, gives `verify_strict`'s verdict on every input
    /// (`tests::same_verdict_as_verify_strict` and the fuzz targets compare the two) for
    /// about 11% less work. A non-canonical `S` (≥ L) is refused by both dalek functions
    /// alike, as long as ed25519-dalek's `legacy_compatibility` feature stays off:
    /// `scripts/supply_chain.sh` fails the build's checks if it is ever switched on, and the
    /// `S + L` case of the test would too.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        use ed25519_dalek::Verifier as _;
        CHECKS.with(|c| c.set(c.get() + 1));
        if small_order_encodings()
            .iter()
            .any(|e| e[..] == signature[..32])
        {
            return false;
        }
        self.key
            .verify(message, &Signature::from_bytes(signature))
            .is_ok()
    }

    /// The underlying dalek key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }
}

/// The canonical encodings of the eight points of order dividing 8.
fn small_order_encodings() -> &'static [[u8; 32]; 8] {
    static ENCODINGS: std::sync::OnceLock<[[u8; 32]; 8]> = std::sync::OnceLock::new();
    ENCODINGS
        .get_or_init(|| curve25519_dalek::constants::EIGHT_TORSION.map(|p| p.compress().to_bytes()))
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey").field("kid", &self.kid).finish()
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

/// The RFC 7638 thumbprint of an Ed25519 OKP key with raw public bytes `x`.
pub fn thumbprint(x: &[u8; 32]) -> String {
    // Members in lexicographic order, no whitespace (RFC 7638 §3, RFC 8037 §2).
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        b64::encode(x)
    );
    b64::encode(Sha256::digest(canonical.as_bytes()))
}

/// Why a private key file is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrivateKeyError {
    /// Not a PKCS#8 PEM Ed25519 private key.
    #[error("not a PKCS#8 PEM Ed25519 private key")]
    Pem,
    /// Its public half fails validation (cannot happen for honest keys).
    #[error("its public key is invalid")]
    Public(#[from] KeyError),
}

/// The active signing key. Zeroized on drop; `Debug` prints only the kid.
pub struct SecretKey {
    key: SigningKey,
    public: PublicKey,
}

impl SecretKey {
    /// Generates a key from the operating system's random source.
    ///
    /// # Panics
    /// Only if the OS random source fails, where no key could be made safely.
    pub fn generate() -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        loop {
            getrandom::fill(seed.as_mut()).expect("operating system random source failed");
            let key = SigningKey::from_bytes(&seed);
            // A random seed gives a valid public key with overwhelming probability; the
            // loop only exists so the invariant never rests on that.
            if let Ok(public) = PublicKey::from_bytes(key.verifying_key().as_bytes()) {
                return Self { key, public };
            }
        }
    }

    /// Parses a PKCS#8 PEM private key.
    ///
    /// # Errors
    /// [`PrivateKeyError`] when the text is not such a key.
    pub fn from_pem(pem: &str) -> Result<Self, PrivateKeyError> {
        let key = SigningKey::from_pkcs8_pem(pem).map_err(|_| PrivateKeyError::Pem)?;
        let public = PublicKey::from_bytes(key.verifying_key().as_bytes())?;
        Ok(Self { key, public })
    }

    /// The PKCS#8 v1 PEM text (RFC 8410 §7: the seed alone, no public key), which
    /// `openssl pkey` and every common library read.
    pub fn to_pem(&self) -> Zeroizing<String> {
        let bytes = ed25519_dalek::pkcs8::KeypairBytes {
            secret_key: self.key.to_bytes(),
            public_key: None,
        };
        let doc = bytes
            .to_pkcs8_pem(Default::default())
            .expect("PKCS#8 encoding of an Ed25519 key cannot fail");
        Zeroizing::new(doc.to_string())
    }

    /// The public half.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The key id of the public half.
    pub fn kid(&self) -> &str {
        self.public.kid()
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer as _;
        self.key.sign(message).to_bytes()
    }

    /// The dalek signing key, for benchmarks comparing against a raw sign.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey {{ kid: {}, secret: [redacted] }}", self.kid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
    use curve25519_dalek::{EdwardsPoint, Scalar};
    use ed25519_dalek::Verifier as _;
    use sha2::Sha512;

    /// `PublicKey::verify` against ed25519-dalek's own `verify_strict`.
    fn assert_same_verdict(key: &PublicKey, message: &[u8], sig: &[u8; 64], what: &str) {
        let strict = key
            .verifying_key()
            .verify_strict(message, &Signature::from_bytes(sig))
            .is_ok();
        assert_eq!(key.verify(message, sig), strict, "{what}");
    }

    fn with_r(sig: &[u8; 64], r: [u8; 32]) -> [u8; 64] {
        let mut out = *sig;
        out[..32].copy_from_slice(&r);
        out
    }

    fn with_s(sig: &[u8; 64], s: [u8; 32]) -> [u8; 64] {
        let mut out = *sig;
        out[32..].copy_from_slice(&s);
        out
    }

    /// A signature whose cofactorless equation holds with `R` of small order: only the
    /// key's owner can make one (`S = k·a` for `R` the identity), plain `verify` accepts
    /// it and `verify_strict` does not.
    fn identity_r_signature(sk: &SecretKey, message: &[u8]) -> [u8; 64] {
        let r = EdwardsPoint::default().compress().to_bytes();
        let mut h = Sha512::new();
        h.update(r);
        h.update(sk.public().as_bytes());
        h.update(message);
        let k = Scalar::from_hash(h);
        let s = k * sk.signing_key().to_scalar();
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&r);
        sig[32..].copy_from_slice(s.as_bytes());
        sig
    }

    #[test]
    fn same_verdict_as_verify_strict() {
        for round in 0..8u8 {
            let sk = SecretKey::generate();
            let key = sk.public();
            let message = format!("message {round}").into_bytes();
            let sig = sk.sign(&message);
            assert!(key.verify(&message, &sig));
            assert_same_verdict(key, &message, &sig, "an honest signature");
            assert_same_verdict(key, b"another message", &sig, "another message");

            let forged = identity_r_signature(&sk, &message);
            assert!(
                key.verifying_key()
                    .verify(&message, &Signature::from_bytes(&forged))
                    .is_ok(),
                "the cofactorless equation holds for an identity R"
            );
            assert_same_verdict(key, &message, &forged, "R the identity, S = k·a");
            assert!(!key.verify(&message, &forged));

            let honest_r = CompressedEdwardsY(sig[..32].try_into().unwrap())
                .decompress()
                .unwrap();
            for (i, t) in EIGHT_TORSION.iter().enumerate() {
                let enc = t.compress().to_bytes();
                assert!(small_order_encodings().contains(&enc));
                for s in [
                    [0u8; 32],
                    sig[32..].try_into().unwrap(),
                    *Scalar::ONE.as_bytes(),
                ] {
                    let what = format!("R = torsion point {i}, S = {s:02x?}");
                    assert_same_verdict(key, &message, &with_s(&with_r(&sig, enc), s), &what);
                }
                // The honest R plus a torsion point: a different point of large order.
                let mixed = (honest_r + t).compress().to_bytes();
                let what = format!("R + torsion point {i}");
                assert_same_verdict(key, &message, &with_r(&sig, mixed), &what);
                // The torsion point with the sign bit flipped (−0 where x = 0).
                let mut flipped = enc;
                flipped[31] ^= 0x80;
                let what = format!("torsion point {i}, sign bit flipped");
                assert_same_verdict(key, &message, &with_r(&sig, flipped), &what);
            }
            // Non-canonical spellings of the small-order points with y = 0 and y = 1
            // (y + p still fits in 255 bits), both signs.
            for y in [0u8, 1] {
                let mut enc = [0xffu8; 32];
                enc[0] = 0xed + y;
                enc[31] = 0x7f;
                for sign in [0u8, 0x80] {
                    let mut e = enc;
                    e[31] |= sign;
                    let what = format!("non-canonical y = p + {y}, sign {sign:#x}");
                    assert_same_verdict(key, &message, &with_r(&sig, e), &what);
                    assert_same_verdict(key, &message, &with_r(&forged, e), &what);
                }
            }
            // S + L: the same scalar, spelled non-canonically.
            let s_plus_l = add_l(sig[32..].try_into().unwrap());
            assert_same_verdict(key, &message, &with_s(&sig, s_plus_l), "S + L");
            assert!(!key.verify(&message, &with_s(&sig, s_plus_l)));
            // Random bytes, and R the basepoint.
            let mut junk = [0u8; 64];
            getrandom::fill(&mut junk).unwrap();
            assert_same_verdict(key, &message, &junk, "random bytes");
            let b = ED25519_BASEPOINT_POINT.compress().to_bytes();
            assert_same_verdict(key, &message, &with_r(&sig, b), "R = B");
        }
    }

    /// `s + L` as 32 little-endian bytes (fits: s < L < 2^253).
    fn add_l(s: [u8; 32]) -> [u8; 32] {
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut out = [0u8; 32];
        let mut carry = 0u16;
        for i in 0..32 {
            let v = u16::from(s[i]) + u16::from(L[i]) + carry;
            out[i] = v as u8;
            carry = v >> 8;
        }
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Any signature a byte or two away from an honest one, or any message change:
        /// the same verdict as `verify_strict`.
        #[test]
        fn mutated_signatures_get_the_strict_verdict(
            message in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            flips in proptest::collection::vec((0usize..64, 1u8..=255), 0..3),
            change_message in proptest::prelude::any::<bool>(),
        ) {
            let sk = fixed_key();
            let mut sig = sk.sign(&message);
            for (i, x) in flips {
                sig[i] ^= x;
            }
            let mut m = message.clone();
            if change_message {
                m.push(0);
            }
            assert_same_verdict(sk.public(), &m, &sig, "mutated");
        }
    }

    fn fixed_key() -> &'static SecretKey {
        static KEY: std::sync::OnceLock<SecretKey> = std::sync::OnceLock::new();
        KEY.get_or_init(SecretKey::generate)
    }

    fn hex32(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc8037_thumbprint() {
        // RFC 8037 Appendix A.2/A.3.
        let key = PublicKey::from_x("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo").unwrap();
        assert_eq!(key.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    #[test]
    fn weak_keys_refused() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(PublicKey::from_bytes(&identity), Err(KeyError::SmallOrder));
        assert_eq!(PublicKey::from_bytes(&[0u8; 32]), Err(KeyError::SmallOrder));
        // y = p, a non-canonical spelling of y = 0.
        let p = hex32("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
        assert!(PublicKey::from_bytes(&p).is_err());
        for len in [0, 31, 33, 64] {
            assert_eq!(
                PublicKey::from_bytes(&vec![9u8; len]),
                Err(KeyError::Length)
            );
        }
    }

    #[test]
    fn pem_round_trip_and_redacted_debug() {
        let key = SecretKey::generate();
        let pem = key.to_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let back = SecretKey::from_pem(&pem).unwrap();
        assert_eq!(back.public(), key.public());
        // RFC 8410 §10.3: a v1 PrivateKeyInfo of 48 bytes (no public key member).
        let der = crate::b64::decode(
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>()
                .replace('+', "-")
                .replace('/', "_")
                .trim_end_matches('='),
        )
        .unwrap();
        assert_eq!(der.len(), 48);
        let debug = format!("{key:?}");
        assert!(debug.contains("[redacted]") && debug.contains(key.kid()));
        let sig = key.sign(b"m");
        assert!(key.public().verify(b"m", &sig));
        assert!(!key.public().verify(b"n", &sig));
    }
}
