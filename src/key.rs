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

    /// Strict Ed25519 verification (RFC 8032 with canonical `S` and no small-order `R`).
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        CHECKS.with(|c| c.set(c.get() + 1));
        self.key
            .verify_strict(message, &Signature::from_bytes(signature))
            .is_ok()
    }

    /// The underlying dalek key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }
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
