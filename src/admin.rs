//! Admin API keys: shown once, stored only as SHA-256 hashes, checked in constant time.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::b64;

/// The prefix of every admin key, so leaked keys are easy to recognise and grep for.
pub const PREFIX: &str = "mdt_admin_";

/// One stored admin key hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminKeyEntry {
    /// A short public id (the first characters of the hash), for listing and removal.
    pub id: String,
    /// base64url SHA-256 of the whole key.
    pub sha256: String,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The `admin-keys.json` document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminKeys {
    /// Stored hashes.
    pub keys: Vec<AdminKeyEntry>,
}

impl AdminKeys {
    /// Makes a new random key, records its hash, and returns the key (to show once).
    pub fn generate(&mut self, now: OffsetDateTime) -> Zeroizing<String> {
        let mut raw = Zeroizing::new([0u8; 32]);
        getrandom::fill(raw.as_mut()).expect("operating system random source failed");
        let key = Zeroizing::new(format!("{PREFIX}{}", b64::encode(raw.as_ref())));
        let sha256 = b64::encode(Sha256::digest(key.as_bytes()));
        self.keys.push(AdminKeyEntry {
            id: sha256[..8].to_owned(),
            sha256,
            created_at: now,
        });
        key
    }

    /// Whether `presented` is one of the stored keys. Every stored hash is compared in
    /// constant time, whatever matches, so timing says nothing about the keys.
    pub fn check(&self, presented: &str) -> bool {
        let digest = b64::encode(Sha256::digest(presented.as_bytes()));
        let mut found = subtle::Choice::from(0);
        for k in &self.keys {
            found |= digest.as_bytes().ct_eq(k.sha256.as_bytes());
        }
        bool::from(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_and_check() {
        let mut keys = AdminKeys::default();
        let a = keys.generate(OffsetDateTime::UNIX_EPOCH);
        let b = keys.generate(OffsetDateTime::UNIX_EPOCH);
        assert!(a.starts_with(PREFIX));
        assert!(keys.check(&a) && keys.check(&b));
        assert!(!keys.check("mdt_admin_nope"));
        assert!(!keys.check(""));
        let json = serde_json::to_string(&keys).unwrap();
        assert!(!json.contains(a.as_str()));
    }
}
