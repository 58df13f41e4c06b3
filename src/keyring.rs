//! The public key ring (`keyring.json`): a JWK Set with mdtoken's status members, its
//! validation on load, and the pure state changes of rotation, revocation and pruning.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::key::{KeyError, PublicKey};

/// Whether a ring key may still sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// The one key that signs new tokens.
    Active,
    /// No longer signs; verifies tokens issued up to its `retired_at`.
    Retired,
}

/// One key of the ring, validated.
#[derive(Debug, Clone)]
pub struct RingKey {
    /// The validated public key (its kid is its thumbprint).
    pub public: PublicKey,
    /// Active or retired.
    pub status: KeyStatus,
    /// When the key was made (Unix seconds).
    pub created_at: i64,
    /// When the key stopped signing.
    pub retired_at: Option<i64>,
    /// The latest `exp` the key signed once retired; `None` while active or when it
    /// signed a token that never expires.
    pub verify_until: Option<i64>,
    /// Once retired: the ids of every token the key signed. A retired key vouches for
    /// these tokens only, so a stolen copy of it cannot mint new ones, back-dated or not.
    /// `None` while active (or in a ring written without the list).
    pub signed_jtis: Option<Vec<String>>,
}

impl RingKey {
    /// The key id.
    pub fn kid(&self) -> &str {
        self.public.kid()
    }
}

/// A key taken out of service for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokedKey {
    /// Its key id.
    pub kid: String,
    /// When it was revoked.
    #[serde(with = "time::serde::rfc3339")]
    pub revoked_at: OffsetDateTime,
}

/// A token refused before its expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokedToken {
    /// The token id.
    pub jti: String,
    /// The token's own expiry, after which the entry can be pruned; null for never.
    #[serde(with = "time::serde::rfc3339::option")]
    pub exp: Option<OffsetDateTime>,
}

/// Why a ring is refused. A refused ring is never used, in whole or in part.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RingError {
    /// Not JSON of the expected shape (includes duplicate or unknown members).
    #[error("not a valid key ring document")]
    Syntax(#[source] serde_json::Error),
    /// A key member other than `x`, `kid` and the status fields is wrong.
    #[error("key {kid:?}: {what}")]
    BadMember {
        /// The key's kid as written.
        kid: String,
        /// What is wrong.
        what: &'static str,
    },
    /// A key fails public-key validation.
    #[error("key {kid:?} is invalid")]
    InvalidKey {
        /// The key's kid as written.
        kid: String,
        /// The rule it breaks.
        #[source]
        source: KeyError,
    },
    /// `kid` is not the RFC 7638 thumbprint of `x`.
    #[error("key {kid:?} is not named by its thumbprint")]
    KidMismatch {
        /// The key's kid as written.
        kid: String,
    },
    /// Two entries share a kid, or a kid is both in `keys` and `revoked_keys`.
    #[error("key {kid:?} appears more than once")]
    Duplicate {
        /// The repeated kid.
        kid: String,
    },
    /// The ring has no keys, or not exactly one active key.
    #[error("the ring must hold exactly one active key (found {active} active of {total})")]
    ActiveCount {
        /// Active keys found.
        active: usize,
        /// Keys found.
        total: usize,
    },
    /// `issuer` or `audience` is empty.
    #[error("issuer and audience must be non-empty")]
    EmptyIdentity,
}

/// The key ring in memory, always valid.
#[derive(Debug, Clone)]
pub struct KeyRing {
    /// The `iss` of this ring's tokens.
    pub issuer: String,
    /// The `aud` of this ring's tokens.
    pub audience: String,
    keys: Vec<RingKey>,
    revoked_keys: Vec<RevokedKey>,
    revoked_tokens: Vec<RevokedToken>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RingFile {
    issuer: String,
    audience: String,
    keys: Vec<JwkFile>,
    #[serde(default)]
    revoked_keys: Vec<RevokedKey>,
    #[serde(default)]
    revoked_tokens: Vec<RevokedToken>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JwkFile {
    kty: String,
    crv: String,
    alg: String,
    #[serde(rename = "use")]
    use_: String,
    kid: String,
    x: String,
    status: KeyStatus,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option", default)]
    retired_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    verify_until: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signed_jtis: Option<Vec<String>>,
}

/// What a key signed in its active life, recorded when it retires.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signed {
    /// The latest `exp` signed; `None` if a token without expiry was signed.
    pub verify_until: Option<i64>,
    /// Every token id signed; `None` when unknown (the key then vouches for any token
    /// within its `iat` and `verify_until` bounds).
    pub jtis: Option<Vec<String>>,
}

impl Signed {
    /// Signed nothing: verifies nothing after `now`.
    pub fn nothing(now: i64) -> Self {
        Self {
            verify_until: Some(now),
            jtis: Some(Vec::new()),
        }
    }
}

/// Converts Unix seconds to a date-time; out-of-range values clamp to the epoch bounds
/// the library supports (they cannot arise from valid input).
pub fn datetime(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Formats Unix seconds as RFC 3339 UTC.
pub fn rfc3339(unix: i64) -> String {
    datetime(unix)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl KeyRing {
    /// A new ring holding one active key.
    pub fn new(issuer: &str, audience: &str, key: &PublicKey, now: i64) -> Result<Self, RingError> {
        if issuer.is_empty() || audience.is_empty() {
            return Err(RingError::EmptyIdentity);
        }
        Ok(Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            keys: vec![RingKey {
                public: key.clone(),
                status: KeyStatus::Active,
                created_at: now,
                retired_at: None,
                verify_until: None,
                signed_jtis: None,
            }],
            revoked_keys: Vec::new(),
            revoked_tokens: Vec::new(),
        })
    }

    /// Parses and validates a ring document. Any fault refuses the whole ring.
    ///
    /// # Errors
    /// The [`RingError`] for the first fault found.
    pub fn from_json(text: &str) -> Result<Self, RingError> {
        let file: RingFile = serde_json::from_str(text).map_err(RingError::Syntax)?;
        if file.issuer.is_empty() || file.audience.is_empty() {
            return Err(RingError::EmptyIdentity);
        }
        let mut seen = HashSet::new();
        let mut keys = Vec::with_capacity(file.keys.len());
        for k in file.keys {
            let bad = |what| RingError::BadMember {
                kid: k.kid.clone(),
                what,
            };
            if k.kty != "OKP" {
                return Err(bad("kty must be \"OKP\""));
            }
            if k.crv != "Ed25519" {
                return Err(bad("crv must be \"Ed25519\""));
            }
            if k.alg != "EdDSA" {
                return Err(bad("alg must be \"EdDSA\""));
            }
            if k.use_ != "sig" {
                return Err(bad("use must be \"sig\""));
            }
            let public = PublicKey::from_x(&k.x).map_err(|source| RingError::InvalidKey {
                kid: k.kid.clone(),
                source,
            })?;
            if public.kid() != k.kid {
                return Err(RingError::KidMismatch { kid: k.kid });
            }
            if !seen.insert(k.kid.clone()) {
                return Err(RingError::Duplicate { kid: k.kid });
            }
            // A time outside 1970..=9999 (UTC) cannot be written back as it was read:
            // an offset can carry "9999-12-31T23:59:59-01:00" into the year 10000, and
            // "0000-01-01T00:00:00+01:00" before the year 0. Tokens' dates live in the
            // same range.
            let times = [Some(k.created_at), k.retired_at, k.verify_until];
            if times
                .iter()
                .flatten()
                .any(|t| !(0..=crate::token::MAX_NUMERIC_DATE).contains(&t.unix_timestamp()))
            {
                return Err(bad(
                    "created_at, retired_at and verify_until must lie in 1970-9999 (UTC)",
                ));
            }
            match (k.status, k.retired_at) {
                (KeyStatus::Active, Some(_)) => return Err(bad("an active key has no retired_at")),
                (KeyStatus::Retired, None) => return Err(bad("a retired key needs retired_at")),
                _ => {}
            }
            if k.status == KeyStatus::Active && k.signed_jtis.is_some() {
                return Err(bad("an active key has no signed_jtis"));
            }
            keys.push(RingKey {
                public,
                status: k.status,
                created_at: k.created_at.unix_timestamp(),
                retired_at: k.retired_at.map(OffsetDateTime::unix_timestamp),
                verify_until: k.verify_until.map(OffsetDateTime::unix_timestamp),
                signed_jtis: k.signed_jtis,
            });
        }
        for r in &file.revoked_keys {
            // A kid is a SHA-256 thumbprint; anything else names no key and could only
            // come from a damaged or hand-made ring.
            if crate::b64::decode_array::<32>(&r.kid).is_none() {
                return Err(RingError::BadMember {
                    kid: r.kid.clone(),
                    what: "a revoked key's kid must be an RFC 7638 thumbprint (43 base64url characters)",
                });
            }
            if !seen.insert(r.kid.clone()) {
                return Err(RingError::Duplicate { kid: r.kid.clone() });
            }
        }
        let active = keys
            .iter()
            .filter(|k| k.status == KeyStatus::Active)
            .count();
        if active != 1 {
            return Err(RingError::ActiveCount {
                active,
                total: keys.len(),
            });
        }
        Ok(Self {
            issuer: file.issuer,
            audience: file.audience,
            keys,
            revoked_keys: file.revoked_keys,
            revoked_tokens: file.revoked_tokens,
        })
    }

    /// The ring document, pretty-printed with a trailing newline.
    pub fn to_json(&self) -> String {
        let file = RingFile {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            keys: self
                .keys
                .iter()
                .map(|k| JwkFile {
                    kty: "OKP".into(),
                    crv: "Ed25519".into(),
                    alg: "EdDSA".into(),
                    use_: "sig".into(),
                    kid: k.kid().to_owned(),
                    x: k.public.x(),
                    status: k.status,
                    created_at: datetime(k.created_at),
                    retired_at: k.retired_at.map(datetime),
                    verify_until: k.verify_until.map(datetime),
                    signed_jtis: k.signed_jtis.clone(),
                })
                .collect(),
            revoked_keys: self.revoked_keys.clone(),
            revoked_tokens: self.revoked_tokens.clone(),
        };
        let mut s = serde_json::to_string_pretty(&file).expect("ring serialises");
        s.push('\n');
        s
    }

    /// The JWK Set served at `/.well-known/jwks.json`: active and retired keys only.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = self
            .keys
            .iter()
            .map(|k| {
                serde_json::json!({
                    "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                    "kid": k.kid(), "x": k.public.x(),
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// Every verifying key, active first.
    pub fn keys(&self) -> &[RingKey] {
        &self.keys
    }

    /// The one active key.
    pub fn active(&self) -> &RingKey {
        self.keys
            .iter()
            .find(|k| k.status == KeyStatus::Active)
            .expect("a valid ring has one active key")
    }

    /// A key by kid.
    pub fn key(&self, kid: &str) -> Option<&RingKey> {
        self.keys.iter().find(|k| k.kid() == kid)
    }

    /// Revoked keys.
    pub fn revoked_keys(&self) -> &[RevokedKey] {
        &self.revoked_keys
    }

    /// Revoked tokens.
    pub fn revoked_tokens(&self) -> &[RevokedToken] {
        &self.revoked_tokens
    }

    /// Makes `new` the active key and retires the old one at `now`. `signed` describes
    /// what the old key signed: its tokens' ids and the latest `exp` among them (`None`
    /// if one never expires).
    ///
    /// # Errors
    /// [`RingError::Duplicate`] if `new` is already known.
    pub fn rotate(&mut self, new: &PublicKey, now: i64, signed: Signed) -> Result<(), RingError> {
        if self.key(new.kid()).is_some() || self.revoked_keys.iter().any(|r| r.kid == new.kid()) {
            return Err(RingError::Duplicate {
                kid: new.kid().to_owned(),
            });
        }
        for k in &mut self.keys {
            if k.status == KeyStatus::Active {
                k.status = KeyStatus::Retired;
                k.retired_at = Some(now);
                k.verify_until = signed.verify_until;
                k.signed_jtis = signed.jtis.clone();
            }
        }
        self.keys.insert(
            0,
            RingKey {
                public: new.clone(),
                status: KeyStatus::Active,
                created_at: now,
                retired_at: None,
                verify_until: None,
                signed_jtis: None,
            },
        );
        Ok(())
    }

    /// Moves a retired key to `revoked_keys`. Returns false if no such key.
    ///
    /// # Panics
    /// Never; revoking the active key is refused by returning false — rotate first.
    pub fn revoke_key(&mut self, kid: &str, now: i64) -> bool {
        let Some(pos) = self
            .keys
            .iter()
            .position(|k| k.kid() == kid && k.status == KeyStatus::Retired)
        else {
            return false;
        };
        self.keys.remove(pos);
        self.revoked_keys.push(RevokedKey {
            kid: kid.to_owned(),
            revoked_at: datetime(now),
        });
        true
    }

    /// Whether `kid` was revoked.
    pub fn is_key_revoked(&self, kid: &str) -> bool {
        self.revoked_keys.iter().any(|r| r.kid == kid)
    }

    /// Adds a token to the revoked list. Returns false if it was already there.
    pub fn revoke_token(&mut self, jti: &str, exp: Option<i64>) -> bool {
        if self.revoked_tokens.iter().any(|r| r.jti == jti) {
            return false;
        }
        self.revoked_tokens.push(RevokedToken {
            jti: jti.to_owned(),
            exp: exp.map(datetime),
        });
        true
    }

    /// Drops retired keys whose `verify_until` is more than `leeway` seconds past, and
    /// revoked-token entries whose `exp` is likewise past. Returns the dropped kids and
    /// the number of token entries dropped.
    pub fn prune(&mut self, now: i64, leeway: i64) -> (Vec<String>, usize) {
        let lapsed = |t: Option<i64>| t.is_some_and(|t| t.saturating_add(leeway) < now);
        let mut dropped = Vec::new();
        self.keys.retain(|k| {
            let keep = k.status == KeyStatus::Active || !lapsed(k.verify_until);
            if !keep {
                dropped.push(k.kid().to_owned());
            }
            keep
        });
        let before = self.revoked_tokens.len();
        self.revoked_tokens
            .retain(|r| !lapsed(r.exp.map(OffsetDateTime::unix_timestamp)));
        (dropped, before - self.revoked_tokens.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::SecretKey;

    const NOW: i64 = 1_800_000_000;

    fn ring() -> (KeyRing, SecretKey) {
        let k = SecretKey::generate();
        (KeyRing::new("iss", "aud", k.public(), NOW).unwrap(), k)
    }

    #[test]
    fn json_round_trip() {
        let (mut r, _) = ring();
        let k2 = SecretKey::generate();
        r.rotate(
            k2.public(),
            NOW + 10,
            Signed {
                verify_until: Some(NOW + 100),
                jtis: Some(vec!["a".into()]),
            },
        )
        .unwrap();
        r.revoke_token("j", Some(NOW + 5));
        let back = KeyRing::from_json(&r.to_json()).unwrap();
        assert_eq!(back.to_json(), r.to_json());
        assert_eq!(back.active().kid(), k2.kid());
        assert_eq!(back.keys()[1].verify_until, Some(NOW + 100));
        assert_eq!(back.keys()[1].signed_jtis, Some(vec!["a".to_owned()]));
    }

    #[test]
    fn refuses_bad_rings() {
        let (r, _) = ring();
        let good = r.to_json();
        let v: serde_json::Value = serde_json::from_str(&good).unwrap();
        let mutate = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = v.clone();
            f(&mut v);
            KeyRing::from_json(&v.to_string())
        };
        assert!(matches!(
            mutate(&|v| v["keys"] = serde_json::json!([])),
            Err(RingError::ActiveCount { .. })
        ));
        assert!(matches!(
            mutate(&|v| {
                let k = v["keys"][0].clone();
                v["keys"].as_array_mut().unwrap().push(k);
            }),
            Err(RingError::Duplicate { .. })
        ));
        assert!(matches!(
            mutate(&|v| v["keys"][0]["kid"] = "other".into()),
            Err(RingError::KidMismatch { .. })
        ));
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(matches!(
            mutate(&|v| v["keys"][0]["x"] = crate::b64::encode(identity).into()),
            Err(RingError::InvalidKey { .. })
        ));
        assert!(matches!(
            mutate(&|v| v["keys"][0]["d"] = "secret".into()),
            Err(RingError::Syntax(_))
        ));
        // Times that would not survive being written back, caught by the keyring_parse
        // fuzz target's round-trip check: the first came back as 1970, the second made
        // to_json panic.
        for t in [
            "9999-12-31T23:59:59-01:00",
            "0000-01-01T00:00:00+01:00",
            "1969-12-31T23:59:59Z",
        ] {
            for member in ["created_at", "retired_at", "verify_until"] {
                let err = mutate(&|v| v["keys"][0][member] = t.into()).unwrap_err();
                assert!(
                    matches!(err, RingError::BadMember { what, .. } if what.contains("1970-9999")),
                    "{member} {t}: {err}"
                );
            }
        }
        // A revoked kid that is no thumbprint (the keyring_parse fuzz target found one of
        // 600 characters, which made every token naming it too large to be refused as
        // key_revoked).
        for kid in [
            "peJW@@}}",
            "",
            &"A".repeat(44),
            &"A".repeat(600),
            "Ul-meP3ykBuGbTVmOZLxypcUmhRSyjCxR50MbKnO57N",
        ] {
            let err = mutate(&|v| {
                v["revoked_keys"] =
                    serde_json::json!([{"kid": kid, "revoked_at": "2027-01-10T08:00:00Z"}]);
            })
            .unwrap_err();
            assert!(
                matches!(err, RingError::BadMember { what, .. } if what.contains("thumbprint")),
                "{kid}: {err}"
            );
        }
        let ok = mutate(&|v| {
            v["revoked_keys"] = serde_json::json!([{
                "kid": "Ul-meP3ykBuGbTVmOZLxypcUmhRSyjCxR50MbKnO57M",
                "revoked_at": "2027-01-10T08:00:00Z"
            }]);
        });
        assert!(ok.is_ok(), "{ok:?}");
        assert!(KeyRing::from_json("").is_err());
        assert!(KeyRing::from_json("garbage").is_err());
        let dup_member = good.replacen("\"issuer\"", "\"issuer\": \"x\", \"issuer\"", 1);
        assert!(KeyRing::from_json(&dup_member).is_err());
    }

    #[test]
    fn prune_keeps_unlapsed_and_never_expiring() {
        let (mut r, k1) = ring();
        let k2 = SecretKey::generate();
        r.rotate(k2.public(), NOW, Signed::default()).unwrap();
        let k3 = SecretKey::generate();
        r.rotate(k3.public(), NOW + 1, Signed::nothing(NOW + 50))
            .unwrap();
        r.revoke_token("a", Some(NOW + 10));
        r.revoke_token("b", None);
        let (dropped, tokens) = r.prune(NOW + 200, 60);
        assert_eq!(dropped, vec![k2.kid().to_owned()]);
        assert_eq!(tokens, 1);
        assert!(
            r.key(k1.kid()).is_some(),
            "a key that signed a never-expiring token stays"
        );
        assert!(r.revoke_key(k1.kid(), NOW));
        assert!(
            !r.revoke_key(k3.kid(), NOW),
            "the active key cannot be revoked"
        );
        assert!(r.is_key_revoked(k1.kid()));
    }
}
