//! Shared pieces of the fuzz targets: a key ring whose keys are generated when the
//! process starts (no key material is ever committed), and a reference verifier written
//! from the README's rules alone (its own base64url decoder, JSON objects read into
//! `serde_json::Value` with duplicate members refused, Ed25519 checked by calling
//! ed25519-dalek directly), against which the library's verdict is compared.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::OnceLock;

use ed25519_dalek::{Signature, VerifyingKey};
use mdtoken::key::SecretKey;
use mdtoken::keyring::{KeyRing, KeyStatus, Signed};
use mdtoken::verify::{Reason, Rejection, Verified, Verifier};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

/// The fixed "now" of every target: 2027-01-15T08:00:00Z.
pub const NOW: i64 = 1_800_000_000;
/// One day in seconds.
pub const DAY: i64 = 86_400;
/// The ring's issuer.
pub const ISS: &str = "https://mdm.example.test";
/// The ring's audience.
pub const AUD: &str = "mass-deployment";
/// A token id on the ring's revoked list.
pub const REVOKED_JTI: &str = "cmV2b2tlZC10b2tlbi0wMDE";
/// The token ids the retired key `L` is recorded as having signed.
pub const LISTED_JTIS: [&str; 2] = ["bGlzdGVkLXRva2VuLTAwMDE", "bGlzdGVkLXRva2VuLTAwMDI"];
/// When `L` retired; it vouches for nothing expiring after `L_UNTIL`.
pub const L_RETIRED: i64 = NOW - 10 * DAY;
/// `L`'s `verify_until`.
pub const L_UNTIL: i64 = NOW + 30 * DAY;
/// The leeways the targets pick from.
pub const LEEWAYS: [i64; 3] = [60, 0, 3600];
/// Token cap of the library, repeated here.
pub const MAX_TOKEN_LEN: usize = 1024;
/// Largest NumericDate (9999-12-31T23:59:59Z).
pub const MAX_NUMERIC_DATE: u64 = 253_402_300_799;

// ---------------------------------------------------------------------------------------
// base64url, written independently of the library (RFC 4648 §5, no padding, canonical).

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Unpadded base64url.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    let bytes = bytes.as_ref();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..=n {
            out.push(ALPHABET[(v >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Strict unpadded base64url: only the URL alphabet, no padding, zero trailing bits.
pub fn unb64(text: &[u8]) -> Option<Vec<u8>> {
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in text {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be zero, or a second spelling of the same bytes is accepted.
    (acc == 0).then_some(out)
}

// ---------------------------------------------------------------------------------------
// JSON objects with duplicate members refused.

/// A JSON object's members in document order. A member value that is valid JSON but
/// cannot be decoded (a string holding a lone UTF-16 surrogate escape such as `"\ud800"`)
/// is `None`: a value of the wrong type for every member, as the library reads it.
pub type Object = Vec<(String, Option<Value>)>;

struct Members(Object);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut out: Object = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    if out.iter().any(|(n, _)| *n == name) {
                        return Err(de::Error::custom("duplicate member"));
                    }
                    let raw: Box<RawValue> = map.next_value()?;
                    out.push((name, serde_json::from_str(raw.get()).ok()));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A JSON object (UTF-8, unique member names), or `None`.
pub fn object(json: &[u8]) -> Option<Object> {
    let text = std::str::from_utf8(json).ok()?;
    serde_json::from_str::<Members>(text).ok().map(|m| m.0)
}

// ---------------------------------------------------------------------------------------
// The ring: keys made at run time.

/// One key of the fixture.
pub struct FixtureKey {
    /// The placeholder the JSON targets replace with this key's kid.
    pub placeholder: &'static str,
    /// The signing key (generated when the process starts).
    pub secret: SecretKey,
}

impl FixtureKey {
    /// Its kid.
    pub fn kid(&self) -> &str {
        self.secret.kid()
    }
}

/// The ring every verify target uses: an active key `A`; a retired key `L` with a
/// `verify_until` and a list of signed token ids; a retired key `O` with neither (it
/// vouches for any token issued in its active life); a revoked key `X`; and a key `Z`
/// that is in no ring. One token id is revoked.
pub struct Fixture {
    /// A, L, O, X, Z in that order.
    pub keys: Vec<FixtureKey>,
    /// The ring.
    pub ring: KeyRing,
    /// The reference model of the ring.
    pub model: RingModel,
}

impl Fixture {
    fn build() -> Self {
        let key = |placeholder| FixtureKey {
            placeholder,
            secret: SecretKey::generate(),
        };
        let keys = vec![key("@A"), key("@L"), key("@O"), key("@X"), key("@Z")];
        let (a, l, o, x) = (&keys[0], &keys[1], &keys[2], &keys[3]);
        let mut ring = KeyRing::new(ISS, AUD, x.secret.public(), NOW - 400 * DAY).unwrap();
        ring.rotate(o.secret.public(), NOW - 300 * DAY, Signed::default())
            .unwrap();
        assert!(ring.revoke_key(x.kid(), NOW - 290 * DAY));
        ring.rotate(l.secret.public(), NOW - 200 * DAY, Signed::default())
            .unwrap();
        ring.rotate(
            a.secret.public(),
            L_RETIRED,
            Signed {
                verify_until: Some(L_UNTIL),
                jtis: Some(LISTED_JTIS.iter().map(|s| (*s).to_owned()).collect()),
            },
        )
        .unwrap();
        ring.revoke_token(REVOKED_JTI, None);
        // The file form must load back as the same ring.
        let ring = KeyRing::from_json(&ring.to_json()).unwrap();
        let model = RingModel::of(&ring);
        Self { keys, ring, model }
    }

    /// Replaces each placeholder (`@A`, `@L`, `@O`, `@X`, `@Z`) with that key's kid.
    pub fn expand(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len() + 64);
        let mut i = 0;
        'outer: while i < bytes.len() {
            if bytes[i] == b'@' {
                for k in &self.keys {
                    let p = k.placeholder.as_bytes();
                    if bytes[i..].starts_with(p) {
                        out.extend_from_slice(k.kid().as_bytes());
                        i += p.len();
                        continue 'outer;
                    }
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        out
    }
}

/// The process-wide fixture, made on first use.
pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(Fixture::build)
}

/// Signs `signing_input` (`header.payload`) and returns the compact token.
pub fn sign(key: &SecretKey, signing_input: &[u8]) -> Vec<u8> {
    let sig = key.sign(signing_input);
    let mut token = signing_input.to_vec();
    token.push(b'.');
    token.extend_from_slice(b64(sig).as_bytes());
    token
}

// ---------------------------------------------------------------------------------------
// The reference verifier.

/// What the reference knows of one ring key.
#[derive(Debug, Clone)]
pub struct KeyModel {
    x: [u8; 32],
    created_at: i64,
    retired_at: Option<i64>,
    verify_until: Option<i64>,
    signed_jtis: Option<HashSet<String>>,
}

/// What the reference knows of a ring.
#[derive(Debug, Clone)]
pub struct RingModel {
    keys: HashMap<String, KeyModel>,
    revoked_kids: HashSet<String>,
    revoked_jtis: HashSet<String>,
    iss: String,
    aud: String,
}

impl RingModel {
    /// Reads a ring through its public accessors.
    pub fn of(ring: &KeyRing) -> Self {
        let keys = ring
            .keys()
            .iter()
            .map(|k| {
                let retired = k.status == KeyStatus::Retired;
                (
                    k.kid().to_owned(),
                    KeyModel {
                        x: *k.public.as_bytes(),
                        created_at: k.created_at,
                        retired_at: if retired { k.retired_at } else { None },
                        verify_until: if retired { k.verify_until } else { None },
                        signed_jtis: if retired {
                            k.signed_jtis.as_ref().map(|v| v.iter().cloned().collect())
                        } else {
                            None
                        },
                    },
                )
            })
            .collect();
        Self {
            keys,
            revoked_kids: ring.revoked_keys().iter().map(|r| r.kid.clone()).collect(),
            revoked_jtis: ring
                .revoked_tokens()
                .iter()
                .map(|r| r.jti.clone())
                .collect(),
            iss: ring.issuer.clone(),
            aud: ring.audience.clone(),
        }
    }
}

/// The claims the reference read from an accepted token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefClaims {
    /// kid of the signing key.
    pub kid: String,
    /// iss.
    pub iss: String,
    /// aud.
    pub aud: String,
    /// iat.
    pub iat: i64,
    /// nbf.
    pub nbf: i64,
    /// exp.
    pub exp: Option<i64>,
    /// jti.
    pub jti: String,
    /// name.
    pub name: Option<String>,
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn numeric_date(v: &Value) -> Option<i64> {
    v.as_u64()
        .filter(|&n| n <= MAX_NUMERIC_DATE)
        .map(|n| n as i64)
}

/// The verdict the README's rules give for `token` at `now` with `leeway`, checks in the
/// documented order: size and alphabet; header JSON; alg/typ; key lookup by kid;
/// signature over the exact bytes; extra header members; claims.
pub fn reference(
    ring: &RingModel,
    token: &[u8],
    now: i64,
    leeway: i64,
) -> Result<RefClaims, Reason> {
    use Reason::*;
    // Size and alphabet. Within the first cap+1 bytes a non-alphabet byte or a third dot
    // proves the input malformed whatever its length.
    let window = &token[..token.len().min(MAX_TOKEN_LEN + 1)];
    let dots = window.iter().filter(|&&b| b == b'.').count();
    if window.iter().any(|&b| b != b'.' && !is_b64url(b)) || dots > 2 {
        return Err(Malformed);
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(TooLarge);
    }
    let segments: Vec<&[u8]> = token.split(|&b| b == b'.').collect();
    let [h, p, s] = segments[..] else {
        return Err(Malformed);
    };
    if h.is_empty() || p.is_empty() {
        return Err(Malformed);
    }
    let header = unb64(h).and_then(|j| object(&j)).ok_or(Malformed)?;
    let get = |o: &Object, name: &str| o.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let alg_ok = get(&header, "alg").is_some_and(|v| v == Some(Value::from("EdDSA")));
    let typ_ok = get(&header, "typ").is_some_and(|v| v == Some(Value::from("mdt+jwt")));
    let kid = match get(&header, "kid") {
        None => None,
        Some(Some(Value::String(k))) => Some(k),
        Some(_) => return Err(BadHeader),
    };
    if !(alg_ok && typ_ok) {
        return Err(BadHeader);
    }
    let kid = kid.ok_or(UnknownKey)?;
    let Some(key) = ring.keys.get(&kid) else {
        return Err(if ring.revoked_kids.contains(&kid) {
            KeyRevoked
        } else {
            UnknownKey
        });
    };
    if s.is_empty() {
        return Err(Malformed);
    }
    let sig = unb64(s).ok_or(Malformed)?;
    let sig: [u8; 64] = sig.try_into().map_err(|_| BadSignature)?;
    let vk = VerifyingKey::from_bytes(&key.x).expect("ring keys are valid points");
    let signing_input = &token[..h.len() + 1 + p.len()];
    if vk
        .verify_strict(signing_input, &Signature::from_bytes(&sig))
        .is_err()
    {
        return Err(BadSignature);
    }
    if header
        .iter()
        .any(|(n, _)| !matches!(n.as_str(), "alg" | "typ" | "kid"))
    {
        return Err(BadHeader);
    }
    let claims = unb64(p).and_then(|j| object(&j)).ok_or(Malformed)?;
    let (mut iss, mut aud, mut iat, mut nbf, mut exp, mut jti, mut name) =
        (None, None, None, None, None, None, None);
    for (member, value) in &claims {
        let text = value.as_ref().and_then(Value::as_str).map(str::to_owned);
        let value = value.as_ref().unwrap_or(&Value::Null);
        match member.as_str() {
            "iss" => iss = Some(text.ok_or(WrongIssuer)?),
            "aud" => aud = Some(text.ok_or(WrongAudience)?),
            "iat" => iat = Some(numeric_date(value).ok_or(InvalidClaims)?),
            "nbf" => nbf = Some(numeric_date(value).ok_or(InvalidClaims)?),
            "exp" => exp = Some(numeric_date(value).ok_or(InvalidClaims)?),
            "jti" => jti = Some(text.ok_or(InvalidClaims)?),
            "name" => name = Some(text.ok_or(InvalidClaims)?),
            _ => return Err(InvalidClaims),
        }
    }
    let jti = jti
        .filter(|j| (22..=128).contains(&j.len()) && j.bytes().all(is_b64url))
        .ok_or(InvalidClaims)?;
    if name.as_ref().is_some_and(|n| n.chars().count() > 64) {
        return Err(InvalidClaims);
    }
    let c = RefClaims {
        kid,
        iss: iss.ok_or(WrongIssuer)?,
        aud: aud.ok_or(WrongAudience)?,
        iat: iat.ok_or(InvalidClaims)?,
        nbf: nbf.ok_or(InvalidClaims)?,
        exp,
        jti,
        name,
    };
    if c.iss != ring.iss {
        return Err(WrongIssuer);
    }
    if c.aud != ring.aud {
        return Err(WrongAudience);
    }
    if c.exp.is_some_and(|e| now >= e + leeway) {
        return Err(TokenExpired);
    }
    if now < c.nbf - leeway {
        return Err(TokenNotYetValid);
    }
    if c.iat < key.created_at || key.retired_at.is_some_and(|r| c.iat > r) {
        return Err(KeyRevoked);
    }
    if let Some(until) = key.verify_until
        && c.exp.is_none_or(|e| e > until)
    {
        return Err(KeyRevoked);
    }
    if key
        .signed_jtis
        .as_ref()
        .is_some_and(|s| !s.contains(&c.jti))
    {
        return Err(KeyRevoked);
    }
    if ring.revoked_jtis.contains(&c.jti) {
        return Err(TokenRevoked);
    }
    Ok(c)
}

/// Asserts that the library's verdict is the reference's: the same acceptance with the
/// same claims, or the same rejection reason.
pub fn assert_same_verdict(
    lib: &Result<Verified, Rejection>,
    reference: &Result<RefClaims, Reason>,
    token: &[u8],
) {
    match (lib, reference) {
        (Ok(v), Ok(r)) => {
            let c = &v.claims;
            assert_eq!(v.kid, r.kid, "accepted under another kid");
            assert_eq!(
                (&c.iss, &c.aud, c.iat, c.nbf, c.exp, &c.jti, &c.name),
                (&r.iss, &r.aud, r.iat, r.nbf, r.exp, &r.jti, &r.name),
                "accepted with other claims than the reference read"
            );
        }
        (Err(e), Err(r)) => assert_eq!(
            e.reason,
            *r,
            "library says {e} where the reference says {r}; token {:?}",
            String::from_utf8_lossy(token)
        ),
        (Ok(v), Err(r)) => panic!(
            "ACCEPTED a token the reference refuses ({r}): {v:?}; token {:?}",
            String::from_utf8_lossy(token)
        ),
        (Err(e), Ok(r)) => panic!(
            "refused ({e}) a token the reference accepts: {r:?}; token {:?}",
            String::from_utf8_lossy(token)
        ),
    }
}

/// Asserts that a rejection message repeats no part of the token worth hiding: no
/// signature, no encoded segment of 16 characters or more.
///
/// Messages may name the kid, so it is taken out first; and only segments of base64url
/// characters count (the fuzzer learns the fixed message texts and feeds them back as
/// tokens, which the message then "repeats").
pub fn assert_no_echo(rejection: &Rejection, token: &[u8]) {
    let mut detail = rejection.detail.clone();
    if let Some(kid) = &rejection.kid
        && !kid.is_empty()
    {
        detail = detail.replace(kid.as_str(), "");
    }
    let detail = detail.as_bytes();
    for seg in token.split(|&b| b == b'.') {
        if seg.len() >= 16 && seg.iter().all(|&b| is_b64url(b)) {
            assert!(
                !detail.windows(seg.len()).any(|w| w == seg),
                "rejection message repeats a token segment: {}",
                rejection.detail
            );
        }
    }
}

/// The Ed25519 group order L, little-endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// Variants of a token whose signature verified: the signature segment changed (one bit
/// of the signature flipped, `S + L`, a character appended, the segment dropped), and the
/// signed part changed under the old signature (a payload or header character changed).
/// `seed` picks which bit and character. Each variant comes with whether only
/// `bad_signature` or `malformed` may be said of it (the signature segment changed), or
/// any rejection (the signed part changed: it may now name another kid or alg).
pub fn tampered(token: &[u8], seed: usize) -> Vec<(Vec<u8>, bool)> {
    let Some(last) = token.iter().rposition(|&b| b == b'.') else {
        return Vec::new();
    };
    let (signed, sig_text) = (&token[..last], &token[last + 1..]);
    let Some(sig) = unb64(sig_text).filter(|s| s.len() == 64) else {
        return Vec::new();
    };
    let with_sig = |s: &[u8]| {
        let mut t = signed.to_vec();
        t.push(b'.');
        t.extend_from_slice(s);
        t
    };
    let mut out = Vec::new();
    let mut flipped = sig.clone();
    flipped[seed % 64] ^= 1 << (seed / 64 % 8);
    out.push((with_sig(b64(&flipped).as_bytes()), true));
    // S + L: the same signature to a lax verifier, a second spelling to a strict one.
    let mut s_plus_l = sig.clone();
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(s_plus_l[32 + i]) + u16::from(L[i]) + carry;
        s_plus_l[32 + i] = v as u8;
        carry = v >> 8;
    }
    if carry == 0 {
        out.push((with_sig(b64(&s_plus_l).as_bytes()), true));
    }
    let mut longer = sig_text.to_vec();
    longer.push(b'A');
    out.push((with_sig(&longer), true));
    out.push((with_sig(b""), true));
    // One character of the signed part changed (a dot is left alone).
    let i = seed % signed.len().max(1);
    if let Some(&c) = signed.get(i)
        && c != b'.'
    {
        let mut t = token.to_vec();
        t[i] = if c == b'A' { b'B' } else { b'A' };
        out.push((t, false));
    }
    out
}

/// The verifiers a target checks side by side: without cache, and with a small cache
/// that lives as long as the process (so hits, misses and evictions all happen).
pub struct Verifiers {
    /// Leeway of both.
    pub leeway: i64,
    /// Without cache.
    pub plain: Verifier,
    /// With a 64-entry cache.
    pub cached: Verifier,
}

/// One pair of verifiers per leeway in [`LEEWAYS`], over the fixture ring.
pub fn verifiers() -> &'static [Verifiers] {
    static V: OnceLock<Vec<Verifiers>> = OnceLock::new();
    V.get_or_init(|| {
        let ring = &fixture().ring;
        LEEWAYS
            .iter()
            .map(|&leeway| Verifiers {
                leeway,
                plain: Verifier::new(ring, leeway),
                cached: Verifier::with_cache(ring, leeway, 64, 1 << 20, None),
            })
            .collect()
    })
}

/// Prints the line `f` makes when `MDTOKEN_FUZZ_TRACE` is set: for replaying a corpus or
/// a crash by hand (`MDTOKEN_FUZZ_TRACE=1 target -runs=0 corpus/target`).
pub fn trace(f: impl FnOnce() -> String) {
    static ON: OnceLock<bool> = OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("MDTOKEN_FUZZ_TRACE").is_some()) {
        eprintln!("{}", f());
    }
}

/// The whole check of one token: the library (with and without cache, the cached one
/// twice) agrees with the reference; rejections repeat no token bytes; and if the
/// signature verified, no tampered variant is accepted.
pub fn check_token(v: &Verifiers, token: &[u8], seed: usize) {
    let f = fixture();
    let expected = reference(&f.model, token, NOW, v.leeway);
    let plain = v.plain.verify(token, NOW);
    trace(|| {
        format!(
            "leeway {}: {} for {:?}",
            v.leeway,
            match &plain {
                Ok(ok) => format!("accepted (kid {}, jti {})", ok.kid, ok.claims.jti),
                Err(e) => format!("{e}"),
            },
            String::from_utf8_lossy(&token[..token.len().min(120)])
        )
    });
    assert_same_verdict(&plain, &expected, token);
    for _ in 0..2 {
        let cached = v.cached.verify(token, NOW);
        assert_eq!(cached, plain, "the cache changed the verdict");
    }
    if let Err(e) = &plain {
        assert_no_echo(e, token);
    }
    let signature_held = match &plain {
        Ok(_) => true,
        Err(e) => !matches!(
            e.reason,
            Reason::Malformed
                | Reason::TooLarge
                | Reason::BadHeader
                | Reason::UnknownKey
                | Reason::KeyRevoked
                | Reason::BadSignature
        ),
    };
    if signature_held {
        for (t, signature_changed) in tampered(token, seed) {
            for verifier in [&v.plain, &v.cached] {
                let r = verifier.verify(&t, NOW);
                let refused = match &r {
                    Ok(_) => false,
                    Err(_) if !signature_changed => true,
                    Err(e) => matches!(e.reason, Reason::BadSignature | Reason::Malformed),
                };
                assert!(
                    refused,
                    "a tampered token was not refused as it should be: {r:?}; {:?}",
                    String::from_utf8_lossy(&t)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b64_matches_the_library() {
        for n in 0..70 {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(b64(&bytes), mdtoken::b64::encode(&bytes));
            assert_eq!(unb64(b64(&bytes).as_bytes()), Some(bytes));
        }
        assert_eq!(unb64(b"-_9"), None);
        assert_eq!(unb64(b"-_8="), None);
        assert_eq!(unb64(b"A"), None);
    }

    #[test]
    fn minted_tokens_agree() {
        let f = fixture();
        let signed = |k: &FixtureKey, claims: &str| {
            let header = format!(r#"{{"alg":"EdDSA","typ":"mdt+jwt","kid":"{}"}}"#, k.kid());
            let input = format!("{}.{}", b64(header), b64(claims));
            sign(&k.secret, input.as_bytes())
        };
        let good = format!(
            r#"{{"iss":"{ISS}","aud":"{AUD}","iat":{NOW},"nbf":{NOW},"exp":{},"jti":"AAAAAAAAAAAAAAAAAAAAAA"}}"#,
            NOW + DAY
        );
        let v = &verifiers()[0];
        let t = signed(&f.keys[0], &good);
        assert!(v.plain.verify(&t, NOW).is_ok());
        check_token(v, &t, 3);
        for k in &f.keys[1..] {
            check_token(v, &signed(k, &good), 5);
        }
    }
}
