//! The hot path: strict verification of a token against an in-memory key ring, with the
//! time injected. Every rejection maps to exactly one stable [`Reason`].

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use crate::b64;
use crate::cache::TokenCache;
use crate::key::PublicKey;
use crate::keyring::{KeyRing, KeyStatus};
use crate::token::{self, Claims, ClaimsError, Header, HeaderError, ShapeError};

/// The stable rejection codes used by the CLI, HTTP bodies and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Reason {
    /// Not a well-formed compact JWS of JSON objects.
    Malformed,
    /// Longer than the size cap.
    TooLarge,
    /// Wrong `alg`/`typ`, or header members beyond `alg`, `typ`, `kid`.
    BadHeader,
    /// No `kid`, or a kid the ring does not hold.
    UnknownKey,
    /// The key was revoked, or a retired key signed after its retirement.
    KeyRevoked,
    /// The signature does not verify.
    BadSignature,
    /// A claim is missing, mistyped or unknown.
    InvalidClaims,
    /// Past `exp` (plus leeway).
    TokenExpired,
    /// Before `nbf` (minus leeway).
    TokenNotYetValid,
    /// `iss` is not the ring's issuer.
    WrongIssuer,
    /// `aud` is not the ring's audience.
    WrongAudience,
    /// The token id is on the ring's revoked list.
    TokenRevoked,
}

impl Reason {
    /// Every reason, in documentation order.
    pub const ALL: [Reason; 12] = [
        Reason::Malformed,
        Reason::TooLarge,
        Reason::BadHeader,
        Reason::UnknownKey,
        Reason::KeyRevoked,
        Reason::BadSignature,
        Reason::InvalidClaims,
        Reason::TokenExpired,
        Reason::TokenNotYetValid,
        Reason::WrongIssuer,
        Reason::WrongAudience,
        Reason::TokenRevoked,
    ];

    /// The stable code.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::Malformed => "malformed",
            Reason::TooLarge => "too_large",
            Reason::BadHeader => "bad_header",
            Reason::UnknownKey => "unknown_key",
            Reason::KeyRevoked => "key_revoked",
            Reason::BadSignature => "bad_signature",
            Reason::InvalidClaims => "invalid_claims",
            Reason::TokenExpired => "token_expired",
            Reason::TokenNotYetValid => "token_not_yet_valid",
            Reason::WrongIssuer => "wrong_issuer",
            Reason::WrongAudience => "wrong_audience",
            Reason::TokenRevoked => "token_revoked",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused token: the reason, the kid where known, and a short explanation that never
/// repeats token or key bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Rejection {
    /// The stable code.
    pub reason: Reason,
    /// The kid named by the header, once it is known to be a ring key or was looked up.
    pub kid: Option<String>,
    /// What was wrong.
    pub detail: String,
}

impl Rejection {
    fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            kid: None,
            detail: detail.into(),
        }
    }

    fn with_kid(reason: Reason, kid: &str, detail: impl Into<String>) -> Self {
        Self {
            reason,
            kid: Some(kid.to_owned()),
            detail: detail.into(),
        }
    }
}

/// A token that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The key that signed it.
    pub kid: String,
    /// Its claims.
    pub claims: Claims,
}

#[derive(Debug)]
struct VerifyKey {
    public: PublicKey,
    created_at: i64,
    retired_at: Option<i64>,
    verify_until: Option<i64>,
    signed_jtis: Option<FastSet<String>>,
}

/// Maps and sets of ring contents. Their members come from the ring, never from a
/// client, so a fast hash serves; lookups are by the token's kid or jti.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

/// Verifies tokens against one key ring snapshot. Cheap to share; build a new one when
/// the ring changes.
#[derive(Debug)]
pub struct Verifier {
    keys: FastMap<String, VerifyKey>,
    /// The encoded header each ring key's tokens carry, exactly as minted, to its kid: a
    /// token whose header segment is one of these needs no header decoding.
    headers: FastMap<Box<str>, Box<str>>,
    revoked_keys: FastSet<String>,
    revoked_tokens: FastSet<String>,
    issuer: String,
    audience: String,
    leeway: i64,
    cache: Option<TokenCache>,
}

/// The default leeway for `exp` and `nbf`, in seconds.
pub const DEFAULT_LEEWAY: i64 = 60;

impl Verifier {
    /// A verifier for `ring` with `leeway` seconds of tolerance on `exp` and `nbf`.
    pub fn new(ring: &KeyRing, leeway: i64) -> Self {
        let headers = ring
            .keys()
            .iter()
            .map(|k| (token::encoded_header(k.kid()).into(), k.kid().into()))
            .collect();
        Self {
            headers,
            keys: ring
                .keys()
                .iter()
                .map(|k| {
                    let (retired_at, verify_until, signed_jtis) = match k.status {
                        KeyStatus::Active => (None, None, None),
                        KeyStatus::Retired => (
                            k.retired_at,
                            k.verify_until,
                            k.signed_jtis.as_ref().map(|j| j.iter().cloned().collect()),
                        ),
                    };
                    (
                        k.kid().to_owned(),
                        VerifyKey {
                            public: k.public.clone(),
                            created_at: k.created_at,
                            retired_at,
                            verify_until,
                            signed_jtis,
                        },
                    )
                })
                .collect(),
            revoked_keys: ring.revoked_keys().iter().map(|r| r.kid.clone()).collect(),
            revoked_tokens: ring
                .revoked_tokens()
                .iter()
                .map(|r| r.jti.clone())
                .collect(),
            issuer: ring.issuer.clone(),
            audience: ring.audience.clone(),
            leeway: leeway.max(0),
            cache: None,
        }
    }

    /// As [`Verifier::new`], with a verified-token cache of at most `entries` entries and
    /// about `bytes` bytes (either 0 for none). Entries of `previous` whose key is still
    /// in `ring` are carried over, so a ring reload does not cost every client a
    /// signature check.
    pub fn with_cache(
        ring: &KeyRing,
        leeway: i64,
        entries: usize,
        bytes: usize,
        previous: Option<&Verifier>,
    ) -> Self {
        let mut v = Self::new(ring, leeway);
        if entries > 0 && bytes > 0 {
            let cache = TokenCache::new(entries, bytes);
            if let Some(old) = previous.and_then(|p| p.cache.as_ref()) {
                old.transfer_to(&cache, |kid| v.keys.contains_key(kid));
            }
            v.cache = Some(cache);
        }
        v
    }

    /// The cache, if enabled.
    pub fn cache(&self) -> Option<&TokenCache> {
        self.cache.as_ref()
    }

    /// The ring's issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The ring's audience.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The leeway in force.
    pub fn leeway(&self) -> i64 {
        self.leeway
    }

    /// Verifies `token` (the exact bytes, nothing trimmed) at Unix time `now`.
    ///
    /// Checks run cheapest first: size and alphabet, header, key lookup, signature, then
    /// claims. The signature is checked before the payload is decoded, so a tampered
    /// payload reads as `bad_signature`, and no claim of an unsigned payload is trusted.
    ///
    /// # Errors
    /// A [`Rejection`] with the first failing check's reason.
    pub fn verify(&self, token: &[u8], now: i64) -> Result<Verified, Rejection> {
        if self.cache.is_some() {
            return self.verify_shared(token, now).map(Arc::unwrap_or_clone);
        }
        let verified = self.check_signature(token)?;
        self.check(&verified, now)?;
        Ok(verified)
    }

    /// As [`Verifier::verify`], sharing the result with the cache instead of copying it.
    ///
    /// # Errors
    /// A [`Rejection`] with the first failing check's reason.
    pub fn verify_shared(&self, token: &[u8], now: i64) -> Result<Arc<Verified>, Rejection> {
        let verified = self.verify_signed(token)?;
        self.check(&verified, now)?;
        Ok(verified)
    }

    /// Everything up to and including the signature, and the claims decoded: the part
    /// that does not depend on the time or the revocation lists. With a cache, exactly
    /// these bytes, once verified under a key still in the ring, are answered from it.
    /// Follow with [`Verifier::check`].
    ///
    /// # Errors
    /// A [`Rejection`] for a token that is not a well-formed token signed by a ring key.
    pub fn verify_signed(&self, token: &[u8]) -> Result<Arc<Verified>, Rejection> {
        let Some(cache) = &self.cache else {
            return self.check_signature(token).map(Arc::new);
        };
        if let Some(hit) = cache.get(token) {
            // Same bytes, same signature: only the signature check is skipped; the
            // caller's check still sees the time and the revocation lists.
            return Ok(hit);
        }
        let verified = Arc::new(self.check_signature(token)?);
        // The signature verified: that fact holds for these bytes whatever the time,
        // so an expired token replayed later costs no signature check either.
        cache.insert(token, Arc::clone(&verified));
        Ok(verified)
    }

    /// The checks of [`Verifier::check_claims`] on a result of
    /// [`Verifier::verify_signed`].
    ///
    /// # Errors
    /// A [`Rejection`] for the first failing check.
    pub fn check(&self, verified: &Verified, now: i64) -> Result<(), Rejection> {
        self.check_claims(&verified.kid, &verified.claims, now)
    }

    fn check_signature(&self, token: &[u8]) -> Result<Verified, Rejection> {
        use Reason::*;
        let parts = token::split(token).map_err(|e| match e {
            ShapeError::TooLarge => Rejection::new(
                TooLarge,
                format!("token is over {} bytes", token::MAX_TOKEN_LEN),
            ),
            ShapeError::Malformed => {
                Rejection::new(Malformed, "not three base64url segments joined by dots")
            }
        })?;
        // Decoded segments are at most 3/4 of the capped token.
        let mut buf = [0u8; token::MAX_TOKEN_LEN / 4 * 3];
        let header = match self.headers.get(parts.header) {
            // Exactly the bytes a ring key's minter writes: alg, typ and this kid.
            Some(kid) => Header {
                kid: Some(String::from(&**kid)),
                has_extra_members: false,
            },
            None => {
                let header_json = b64::decode_into(parts.header, &mut buf)
                    .ok_or_else(|| Rejection::new(Malformed, "header is not base64url"))?;
                token::parse_header(header_json).map_err(|e| match e {
                    HeaderError::Malformed => {
                        Rejection::new(Malformed, "header is not a JSON object with unique members")
                    }
                    HeaderError::Bad => Rejection::new(
                        BadHeader,
                        "header must be alg \"EdDSA\", typ \"mdt+jwt\" and a string kid",
                    ),
                })?
            }
        };
        let kid = header
            .kid
            .ok_or_else(|| Rejection::new(UnknownKey, "header has no kid"))?;
        let key = match self.keys.get(&kid) {
            Some(key) => key,
            None if self.revoked_keys.contains(&kid) => {
                return Err(Rejection::with_kid(
                    KeyRevoked,
                    &kid,
                    format!("key {kid} was revoked"),
                ));
            }
            None => {
                return Err(Rejection::new(
                    UnknownKey,
                    "no key in the ring has the token's kid",
                ));
            }
        };
        if parts.signature.is_empty() {
            return Err(Rejection::with_kid(
                Malformed,
                &kid,
                "signature segment is empty",
            ));
        }
        let signature = b64::decode_into(parts.signature, &mut buf)
            .ok_or_else(|| Rejection::with_kid(Malformed, &kid, "signature is not base64url"))?;
        let signature: [u8; 64] = signature
            .try_into()
            .map_err(|_| Rejection::with_kid(BadSignature, &kid, "signature is not 64 bytes"))?;
        if !key
            .public
            .verify(parts.signing_input.as_bytes(), &signature)
        {
            return Err(Rejection::with_kid(
                BadSignature,
                &kid,
                format!("signature does not verify with key {kid}"),
            ));
        }
        // Members beyond alg/typ/kid (crit, jwk, jku, x5u, ...) are never used; they are
        // refused here, after the signature, so a forged header reads as a forgery.
        if header.has_extra_members {
            return Err(Rejection::with_kid(
                BadHeader,
                &kid,
                "header has members other than alg, typ and kid",
            ));
        }
        let payload = b64::decode_into(parts.payload, &mut buf)
            .ok_or_else(|| Rejection::with_kid(Malformed, &kid, "payload is not base64url"))?;
        let claims = token::parse_claims(payload).map_err(|e| match e {
            ClaimsError::Malformed => Rejection::with_kid(
                Malformed,
                &kid,
                "claims are not a JSON object with unique members",
            ),
            ClaimsError::Invalid(what) => Rejection::with_kid(
                InvalidClaims,
                &kid,
                format!("claim {what} is missing or invalid"),
            ),
            ClaimsError::Issuer => {
                Rejection::with_kid(WrongIssuer, &kid, "iss is missing or not a string")
            }
            ClaimsError::Audience => {
                Rejection::with_kid(WrongAudience, &kid, "aud is missing or not a single string")
            }
        })?;
        Ok(Verified { kid, claims })
    }

    /// The checks that depend on the time, the ring's identity and its revocation lists;
    /// run on every acceptance, cached or not.
    ///
    /// # Errors
    /// A [`Rejection`] for the first failing check.
    pub fn check_claims(&self, kid: &str, claims: &Claims, now: i64) -> Result<(), Rejection> {
        use Reason::*;
        let Some(key) = self.keys.get(kid) else {
            let reason = if self.revoked_keys.contains(kid) {
                KeyRevoked
            } else {
                UnknownKey
            };
            return Err(Rejection::with_kid(
                reason,
                kid,
                format!("key {kid} is no longer in the ring"),
            ));
        };
        if claims.iss != self.issuer {
            return Err(Rejection::with_kid(
                WrongIssuer,
                kid,
                "iss is not this ring's issuer",
            ));
        }
        if claims.aud != self.audience {
            return Err(Rejection::with_kid(
                WrongAudience,
                kid,
                "aud is not this ring's audience",
            ));
        }
        if let Some(exp) = claims.exp
            && now >= exp.saturating_add(self.leeway)
        {
            return Err(Rejection::with_kid(
                TokenExpired,
                kid,
                format!("token expired at {}", crate::keyring::rfc3339(exp)),
            ));
        }
        if now < claims.nbf.saturating_sub(self.leeway) {
            return Err(Rejection::with_kid(
                TokenNotYetValid,
                kid,
                format!(
                    "token is not valid before {}",
                    crate::keyring::rfc3339(claims.nbf)
                ),
            ));
        }
        if claims.iat < key.created_at {
            return Err(Rejection::with_kid(
                KeyRevoked,
                kid,
                format!(
                    "key {kid} was made at {} and cannot vouch for earlier tokens",
                    crate::keyring::rfc3339(key.created_at)
                ),
            ));
        }
        if let Some(retired_at) = key.retired_at
            && claims.iat > retired_at
        {
            return Err(Rejection::with_kid(
                KeyRevoked,
                kid,
                format!(
                    "key {kid} was retired at {} and cannot vouch for later tokens",
                    crate::keyring::rfc3339(retired_at)
                ),
            ));
        }
        // Everything a retired key genuinely signed expires by its verify_until, so a
        // token outliving it (or never expiring) was made with a stolen copy of the key,
        // back-dated to pass the iat check above.
        if let Some(until) = key.verify_until
            && claims.exp.is_none_or(|exp| exp > until)
        {
            return Err(Rejection::with_kid(
                KeyRevoked,
                kid,
                format!(
                    "key {kid} is retired and signed nothing valid after {}",
                    crate::keyring::rfc3339(until)
                ),
            ));
        }
        // A retired key's record lists every token it signed: anything else carrying its
        // signature was made with a stolen copy, whatever its dates say.
        if let Some(signed) = &key.signed_jtis
            && !signed.contains(&claims.jti)
        {
            return Err(Rejection::with_kid(
                KeyRevoked,
                kid,
                format!("key {kid} is retired and did not sign token {}", claims.jti),
            ));
        }
        if self.revoked_tokens.contains(&claims.jti) {
            return Err(Rejection::with_kid(
                TokenRevoked,
                kid,
                format!("token {} was revoked", claims.jti),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::SecretKey;
    use crate::keyring::Signed;
    use crate::mint::{Expiry, Minter};

    const NOW: i64 = 1_800_000_000;

    fn until(t: i64) -> Signed {
        Signed {
            verify_until: Some(t),
            jtis: None,
        }
    }

    fn setup() -> (KeyRing, Minter) {
        let key = SecretKey::generate();
        let ring = KeyRing::new("iss", "aud", key.public(), NOW).unwrap();
        let minter = Minter::new(key, "iss", "aud");
        (ring, minter)
    }

    #[test]
    fn reasons_have_unique_codes() {
        let codes: HashSet<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(codes.len(), Reason::ALL.len());
    }

    #[test]
    fn time_checks_use_leeway_on_both_sides() {
        let (ring, m) = setup();
        let v = Verifier::new(&ring, 60);
        let t = m.mint(None, Expiry::At(NOW + 100), NOW).unwrap().token;
        assert!(v.verify(t.as_bytes(), NOW + 159).is_ok());
        assert_eq!(
            v.verify(t.as_bytes(), NOW + 160).unwrap_err().reason,
            Reason::TokenExpired
        );
        assert!(v.verify(t.as_bytes(), NOW - 60).is_ok());
        assert_eq!(
            v.verify(t.as_bytes(), NOW - 61).unwrap_err().reason,
            Reason::TokenNotYetValid
        );
        let strict = Verifier::new(&ring, 0);
        assert_eq!(
            strict.verify(t.as_bytes(), NOW + 100).unwrap_err().reason,
            Reason::TokenExpired
        );
    }

    #[test]
    fn retired_key_only_vouches_for_earlier_tokens() {
        let (mut ring, m) = setup();
        let before = m.mint(None, Expiry::Never, NOW).unwrap().token;
        let k2 = SecretKey::generate();
        ring.rotate(k2.public(), NOW + 10, Signed::default())
            .unwrap();
        // A stolen retired key minting after retirement.
        let after = m.mint(None, Expiry::Never, NOW + 11).unwrap().token;
        let v = Verifier::new(&ring, 60);
        assert!(v.verify(before.as_bytes(), NOW + 20).is_ok());
        let err = v.verify(after.as_bytes(), NOW + 20).unwrap_err();
        assert_eq!(err.reason, Reason::KeyRevoked);
        assert_eq!(err.kid.as_deref(), Some(m.kid()));
    }

    #[test]
    fn retired_key_cannot_outlive_its_verify_until_even_back_dated() {
        let (mut ring, m) = setup();
        let genuine = m.mint(None, Expiry::At(NOW + 100), NOW).unwrap().token;
        let k2 = SecretKey::generate();
        ring.rotate(k2.public(), NOW + 10, until(NOW + 100))
            .unwrap();
        let v = Verifier::new(&ring, 0);
        assert!(v.verify(genuine.as_bytes(), NOW + 20).is_ok());
        // A thief signs with iat before retirement but a later or absent exp.
        for expiry in [
            Expiry::Never,
            Expiry::At(NOW + 101),
            Expiry::At(NOW + 10_000),
        ] {
            let forged = m.mint(None, expiry, NOW + 5).unwrap().token;
            let err = v.verify(forged.as_bytes(), NOW + 20).unwrap_err();
            assert_eq!(err.reason, Reason::KeyRevoked, "{expiry:?}");
        }
        let within = m.mint(None, Expiry::At(NOW + 100), NOW + 5).unwrap().token;
        assert!(v.verify(within.as_bytes(), NOW + 20).is_ok());
    }

    #[test]
    fn cache_hits_still_check_time_revocation_and_key_status() {
        let (mut ring, m) = setup();
        let t = m.mint(None, Expiry::At(NOW + 100), NOW).unwrap();
        let v = Verifier::with_cache(&ring, 0, 64, 1 << 20, None);
        assert!(v.verify(t.token.as_bytes(), NOW).is_ok());
        assert_eq!(v.cache().unwrap().len(), 1);
        assert!(v.verify(t.token.as_bytes(), NOW + 1).is_ok());
        assert_eq!(v.cache().unwrap().stats().0, 1, "second call was a hit");
        assert_eq!(
            v.verify(t.token.as_bytes(), NOW + 100).unwrap_err().reason,
            Reason::TokenExpired
        );
        ring.revoke_token(&t.claims.jti, t.claims.exp);
        let v2 = Verifier::with_cache(&ring, 0, 64, 1 << 20, Some(&v));
        assert_eq!(v2.cache().unwrap().len(), 1, "entries carried over");
        assert_eq!(
            v2.verify(t.token.as_bytes(), NOW).unwrap_err().reason,
            Reason::TokenRevoked
        );
        let k2 = SecretKey::generate();
        ring.rotate(k2.public(), NOW + 1, until(NOW + 100)).unwrap();
        assert!(ring.revoke_key(m.kid(), NOW + 2));
        let v3 = Verifier::with_cache(&ring, 0, 64, 1 << 20, Some(&v2));
        assert_eq!(
            v3.cache().unwrap().len(),
            0,
            "entries of a revoked key are dropped"
        );
        assert_eq!(
            v3.verify(t.token.as_bytes(), NOW).unwrap_err().reason,
            Reason::KeyRevoked
        );
        // A different spelling of the same token is not a hit.
        let mut other = t.token.clone().into_bytes();
        let last = other.len() - 1;
        other[last] ^= 1;
        assert!(v.verify(&other, NOW).is_err());
    }
}

#[cfg(test)]
mod retired_tests {
    use super::*;
    use crate::key::SecretKey;
    use crate::keyring::Signed;
    use crate::mint::{Expiry, Minter};

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_retired_key_vouches_only_for_the_tokens_it_signed() {
        let key = SecretKey::generate();
        let mut ring = KeyRing::new("iss", "aud", key.public(), NOW).unwrap();
        let m = Minter::new(key, "iss", "aud");
        let genuine = m.mint(None, Expiry::Never, NOW + 1).unwrap();
        let k2 = SecretKey::generate();
        let signed = Signed {
            verify_until: None,
            jtis: Some(vec![genuine.claims.jti.clone()]),
        };
        ring.rotate(k2.public(), NOW + 10, signed).unwrap();
        let v = Verifier::new(&ring, 0);
        assert!(v.verify(genuine.token.as_bytes(), NOW + 20).is_ok());
        // A thief back-dates a token to before retirement: iat, exp and nbf all pass the
        // time rules, but the key never signed this jti.
        let forged = m.mint(None, Expiry::Never, NOW + 2).unwrap();
        let err = v.verify(forged.token.as_bytes(), NOW + 20).unwrap_err();
        assert_eq!(err.reason, Reason::KeyRevoked);
        // Nor before the key existed.
        let ancient = m.mint(None, Expiry::Never, NOW - 100).unwrap();
        let err = v.verify(ancient.token.as_bytes(), NOW + 20).unwrap_err();
        assert_eq!(err.reason, Reason::KeyRevoked);
    }
}
