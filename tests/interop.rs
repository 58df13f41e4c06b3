//! Interop with jsonwebtoken 12 fed only `keyring.json`: mdtoken's tokens are accepted
//! under a strict `Validation`, revoked keys are absent to it, and the places where
//! jsonwebtoken is laxer than mdtoken's verifier are asserted both ways, so a change on
//! either side is noticed.
//!
//! Times are fixed. jsonwebtoken reads the system clock and cannot be given one, so the
//! accepted tokens are issued on 2026-01-01 with the longest lifetime mdtoken allows
//! (ten years), and the expired ones lapsed in 2020: both verdicts hold whatever day the
//! tests run, up to January 2036.

use std::collections::HashSet;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use mdtoken::b64;
use mdtoken::key::{KeyError, SecretKey};
use mdtoken::keyring::{KeyRing, RingError};
use mdtoken::mint::{Expiry, MAX_LIFETIME_SECS, Minted};
use mdtoken::store::KeyStore;
use mdtoken::verify::{Reason, Verifier};

const ISS: &str = "https://mdtoken.interop.example";
const AUD: &str = "mass-deployment";
/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600;
/// The longest expiry mdtoken accepts for a token issued at T0 (January 2036).
const FAR_EXP: i64 = T0 + MAX_LIFETIME_SECS;
/// 2020-09-13T12:26:40Z, long past on any clock these tests meet.
const PAST: i64 = 1_600_000_000;
const LEEWAY: i64 = 60;

/// A keys directory with two keys, the first retired, and tokens from each.
struct Fixture {
    dir: tempfile::TempDir,
    /// The first key's private half, kept back before rotation deleted it from disk (the
    /// "stolen retired key" case).
    old_key: SecretKey,
    /// The active key's private half.
    new_key: SecretKey,
    /// By the first key: with an expiry, and without.
    a_exp: Minted,
    a_never: Minted,
    /// By the second key.
    b_exp: Minted,
    b_never: Minted,
}

fn read_private(store: &KeyStore, kid: &str) -> SecretKey {
    let path = store.dir().join("private").join(format!("{kid}.pem"));
    SecretKey::from_pem(&std::fs::read_to_string(path).unwrap()).unwrap()
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path().join("keys"));
        let ring = store.init(ISS, AUD, T0).unwrap();
        let old_key = read_private(&store, ring.active().kid());
        let a_exp = store.mint(Some("a exp"), Expiry::At(FAR_EXP), T0).unwrap();
        let a_never = store.mint(None, Expiry::Never, T0).unwrap();
        let rotation = store.rotate(T0 + 100).unwrap();
        assert_eq!(rotation.old_kid, old_key.kid());
        let new_key = read_private(&store, &rotation.new_kid);
        let b_exp = store
            .mint(
                Some("b exp"),
                Expiry::At(T0 + 200 + MAX_LIFETIME_SECS),
                T0 + 200,
            )
            .unwrap();
        let b_never = store
            .mint(Some("b never"), Expiry::Never, T0 + 200)
            .unwrap();
        Self {
            dir,
            old_key,
            new_key,
            a_exp,
            a_never,
            b_exp,
            b_never,
        }
    }

    fn store(&self) -> KeyStore {
        KeyStore::new(self.dir.path().join("keys"))
    }

    /// The text of `keyring.json`: all the other side is given.
    fn ring_json(&self) -> String {
        std::fs::read_to_string(self.store().ring_path()).unwrap()
    }

    fn verifier(&self) -> Verifier {
        Verifier::new(&KeyRing::from_json(&self.ring_json()).unwrap(), LEEWAY)
    }
}

/// What a jsonwebtoken user needs from `keyring.json`: its JWK Set and the expected
/// issuer and audience.
struct Jwt {
    set: JwkSet,
    issuer: String,
    audience: String,
}

impl Jwt {
    fn from_ring(text: &str) -> Self {
        // Extra members (status, created_at, ... and the top-level issuer, audience,
        // revoked_keys, revoked_tokens) are ignored by JwkSet.
        let set: JwkSet = serde_json::from_str(text).expect("keyring.json parses as a JwkSet");
        let doc: Value = serde_json::from_str(text).unwrap();
        Self {
            set,
            issuer: doc["issuer"].as_str().unwrap().to_owned(),
            audience: doc["audience"].as_str().unwrap().to_owned(),
        }
    }

    /// As strict as jsonwebtoken allows: EdDSA only, iss and aud pinned, nbf checked,
    /// and exp required when the token carries one.
    fn validation(&self, with_exp: bool) -> Validation {
        let mut v = Validation::new(Algorithm::EdDSA);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        v.leeway = LEEWAY.unsigned_abs();
        v.validate_nbf = true;
        v.validate_exp = true;
        let mut required = vec!["iss", "aud", "nbf"];
        if with_exp {
            required.push("exp");
        }
        v.set_required_spec_claims(&required);
        v
    }

    /// Decodes `token` with the key its header's kid names.
    fn decode(&self, token: &str) -> jsonwebtoken::errors::Result<Value> {
        let header = jsonwebtoken::decode_header(token)?;
        let jwk = header
            .kid
            .as_deref()
            .and_then(|kid| self.set.find(kid))
            .ok_or(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat)?;
        let key = DecodingKey::from_jwk(jwk)?;
        let claims: Value = serde_json::from_str(&insecure_payload(token)).unwrap();
        let validation = self.validation(claims.get("exp").is_some());
        jsonwebtoken::decode::<Value>(token, &key, &validation).map(|d| d.claims)
    }
}

fn insecure_payload(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    String::from_utf8(b64::decode(payload).unwrap()).unwrap()
}

/// A compact JWS over exactly these header and payload bytes.
fn sign_raw(key: &SecretKey, header: &str, payload: &str) -> String {
    let input = format!("{}.{}", b64::encode(header), b64::encode(payload));
    let signature = key.sign(input.as_bytes());
    format!("{input}.{}", b64::encode(signature))
}

fn sign(key: &SecretKey, header: Value, claims: Value) -> String {
    sign_raw(key, &header.to_string(), &claims.to_string())
}

fn header(key: &SecretKey) -> Value {
    json!({"alg": "EdDSA", "typ": "mdt+jwt", "kid": key.kid()})
}

fn claims(iat: i64, exp: Option<i64>) -> Value {
    let mut c = json!({
        "iss": ISS, "aud": AUD, "iat": iat, "nbf": iat, "jti": "AAAAAAAAAAAAAAAAAAAAAA",
    });
    if let Some(exp) = exp {
        c["exp"] = json!(exp);
    }
    c
}

fn reason(verifier: &Verifier, token: &str, now: i64) -> Option<Reason> {
    verifier
        .verify(token.as_bytes(), now)
        .err()
        .map(|e| e.reason)
}

#[test]
fn jsonwebtoken_accepts_mdtoken_tokens_given_only_keyring_json() {
    let f = Fixture::new();
    let text = f.ring_json();
    let jwt = Jwt::from_ring(&text);
    assert_eq!(jwt.set.keys.len(), 2);
    let verifier = f.verifier();
    let now = T0 + 300;
    for m in [&f.a_exp, &f.a_never, &f.b_exp, &f.b_never] {
        let ours = verifier.verify(m.token.as_bytes(), now).unwrap();
        let theirs = jwt
            .decode(&m.token)
            .unwrap_or_else(|e| panic!("jsonwebtoken refused {:?}: {e}", m.claims.name));
        assert_eq!(theirs["jti"], json!(ours.claims.jti));
        assert_eq!(theirs["iss"], json!(ISS));
        assert_eq!(theirs["aud"], json!(AUD));
        assert_eq!(theirs["iat"], json!(ours.claims.iat));
        assert_eq!(theirs.get("exp").and_then(Value::as_i64), ours.claims.exp);
        assert_eq!(
            theirs.get("name").and_then(Value::as_str),
            ours.claims.name.as_deref()
        );
        assert_eq!(
            jsonwebtoken::decode_header(&m.token)
                .unwrap()
                .kid
                .as_deref(),
            Some(ours.kid.as_str())
        );
    }
}

#[test]
fn both_reject_tampering_expiry_and_foreign_identity() {
    let f = Fixture::new();
    let jwt = Jwt::from_ring(&f.ring_json());
    let verifier = f.verifier();
    let now = T0 + 300;

    // A changed claim under the original signature.
    let parts: Vec<&str> = f.b_exp.token.split('.').collect();
    let mut c: Value = serde_json::from_str(&insecure_payload(&f.b_exp.token)).unwrap();
    c["name"] = json!("b exp!");
    let tampered = format!("{}.{}.{}", parts[0], b64::encode(c.to_string()), parts[2]);
    assert_eq!(
        reason(&verifier, &tampered, now),
        Some(Reason::BadSignature)
    );
    assert_eq!(
        jwt.decode(&tampered).unwrap_err().into_kind(),
        jsonwebtoken::errors::ErrorKind::InvalidSignature
    );

    // Lapsed long ago: the same verdict from a fixed clock and from the system clock.
    let expired = sign(
        &f.new_key,
        header(&f.new_key),
        claims(PAST - 3600, Some(PAST)),
    );
    assert_eq!(reason(&verifier, &expired, now), Some(Reason::TokenExpired));
    assert_eq!(
        jwt.decode(&expired).unwrap_err().into_kind(),
        jsonwebtoken::errors::ErrorKind::ExpiredSignature
    );

    let mut wrong_iss = claims(T0, Some(FAR_EXP));
    wrong_iss["iss"] = json!("https://elsewhere.example");
    let wrong_iss = sign(&f.new_key, header(&f.new_key), wrong_iss);
    assert_eq!(
        reason(&verifier, &wrong_iss, now),
        Some(Reason::WrongIssuer)
    );
    assert!(jwt.decode(&wrong_iss).is_err());

    let mut wrong_aud = claims(T0, Some(FAR_EXP));
    wrong_aud["aud"] = json!("another-audience");
    let wrong_aud = sign(&f.new_key, header(&f.new_key), wrong_aud);
    assert_eq!(
        reason(&verifier, &wrong_aud, now),
        Some(Reason::WrongAudience)
    );
    assert!(jwt.decode(&wrong_aud).is_err());

    // alg confusion: a token claiming HS256 is refused before any key use.
    let hs = sign(
        &f.new_key,
        json!({"alg": "HS256", "typ": "mdt+jwt", "kid": f.new_key.kid()}),
        claims(T0, Some(FAR_EXP)),
    );
    assert_eq!(reason(&verifier, &hs, now), Some(Reason::BadHeader));
    assert_eq!(
        jwt.decode(&hs).unwrap_err().into_kind(),
        jsonwebtoken::errors::ErrorKind::InvalidAlgorithm
    );
}

#[test]
fn a_revoked_key_leaves_the_jwk_set() {
    let f = Fixture::new();
    let old_kid = f.old_key.kid().to_owned();
    assert!(f.store().revoke_key(&old_kid, T0 + 400).unwrap().is_none());
    let text = f.ring_json();
    let jwt = Jwt::from_ring(&text);
    assert!(
        jwt.set.find(&old_kid).is_none(),
        "a revoked key must not be a JWK"
    );
    assert_eq!(jwt.set.keys.len(), 1);
    let verifier = f.verifier();
    for m in [&f.a_exp, &f.a_never] {
        assert_eq!(
            reason(&verifier, &m.token, T0 + 500),
            Some(Reason::KeyRevoked)
        );
        assert!(jwt.decode(&m.token).is_err());
    }
    for m in [&f.b_exp, &f.b_never] {
        assert!(verifier.verify(m.token.as_bytes(), T0 + 500).is_ok());
        assert!(jwt.decode(&m.token).is_ok());
    }
}

// ---------------------------------------------------------------------------------------
// Where jsonwebtoken 12 accepts what mdtoken refuses. A verifier built on jsonwebtoken
// from keyring.json alone has these gaps; each test pins both verdicts.
// ---------------------------------------------------------------------------------------

/// `crit: ["b64"]` with `b64: true` is accepted (the only `crit` jsonwebtoken knows);
/// mdtoken accepts no header member beyond alg, typ and kid. Unknown `crit` extensions
/// are refused by both.
#[test]
fn pitfall_crit_header() {
    let f = Fixture::new();
    let jwt = Jwt::from_ring(&f.ring_json());
    let verifier = f.verifier();
    let mut h = header(&f.new_key);
    h["crit"] = json!(["b64"]);
    h["b64"] = json!(true);
    let token = sign(&f.new_key, h, claims(T0, Some(FAR_EXP)));
    assert!(
        jwt.decode(&token).is_ok(),
        "jsonwebtoken accepts crit [\"b64\"]"
    );
    assert_eq!(reason(&verifier, &token, T0 + 300), Some(Reason::BadHeader));

    let mut h = header(&f.new_key);
    h["crit"] = json!(["exp"]);
    h["exp"] = json!(FAR_EXP);
    let token = sign(&f.new_key, h, claims(T0, Some(FAR_EXP)));
    assert_eq!(
        jwt.decode(&token).unwrap_err().into_kind(),
        jsonwebtoken::errors::ErrorKind::InvalidToken
    );
    assert_eq!(reason(&verifier, &token, T0 + 300), Some(Reason::BadHeader));
}

/// Key-carrying header members (`jwk`, `jku`, `x5u`, `x5c`) are parsed and ignored by
/// jsonwebtoken; mdtoken refuses them so no one can come to rely on them.
#[test]
fn pitfall_key_carrying_header_members() {
    let f = Fixture::new();
    let jwt = Jwt::from_ring(&f.ring_json());
    let verifier = f.verifier();
    for (member, value) in [
        ("jku", json!("https://attacker.example/jwks.json")),
        ("x5u", json!("https://attacker.example/cert.pem")),
        (
            "jwk",
            json!({"kty": "OKP", "crv": "Ed25519", "x": f.old_key.public().x()}),
        ),
    ] {
        let mut h = header(&f.new_key);
        h[member] = value;
        let token = sign(&f.new_key, h, claims(T0, Some(FAR_EXP)));
        assert!(jwt.decode(&token).is_ok(), "jsonwebtoken ignores {member}");
        assert_eq!(
            reason(&verifier, &token, T0 + 300),
            Some(Reason::BadHeader),
            "{member}"
        );
    }
}

/// jsonwebtoken does not check `typ`, so any JWT the same key signed for another purpose
/// passes as a deployment token; mdtoken requires `typ: "mdt+jwt"` (RFC 8725 §3.11).
#[test]
fn pitfall_no_explicit_typing() {
    let f = Fixture::new();
    let jwt = Jwt::from_ring(&f.ring_json());
    let verifier = f.verifier();
    let kid = f.new_key.kid();
    for h in [
        json!({"alg": "EdDSA", "typ": "JWT", "kid": kid}),
        json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid}),
        json!({"alg": "EdDSA", "kid": kid}),
    ] {
        let token = sign(&f.new_key, h.clone(), claims(T0, Some(FAR_EXP)));
        assert!(jwt.decode(&token).is_ok(), "jsonwebtoken accepts {h}");
        assert_eq!(
            reason(&verifier, &token, T0 + 300),
            Some(Reason::BadHeader),
            "{h}"
        );
    }
}

/// `required_spec_claims` only knows exp, nbf, iss, aud and sub: asking for `jti` or
/// `iat` is silently ignored. mdtoken requires both.
#[test]
fn pitfall_required_jti_and_iat_are_ignored() {
    let f = Fixture::new();
    let jwt = Jwt::from_ring(&f.ring_json());
    let verifier = f.verifier();
    let mut c = claims(T0, Some(FAR_EXP));
    c.as_object_mut().unwrap().remove("jti");
    c.as_object_mut().unwrap().remove("iat");
    let token = sign(&f.new_key, header(&f.new_key), c);
    let key = DecodingKey::from_jwk(jwt.set.find(f.new_key.kid()).unwrap()).unwrap();
    let mut v = jwt.validation(true);
    v.set_required_spec_claims(&["exp", "iss", "aud", "nbf", "iat", "jti"]);
    assert!(jsonwebtoken::decode::<Value>(&token, &key, &v).is_ok());
    assert_eq!(
        reason(&verifier, &token, T0 + 300),
        Some(Reason::InvalidClaims)
    );
}

/// An array `aud` naming the audience among others passes jsonwebtoken's default
/// validation; mdtoken's `aud` is one string.
#[test]
fn pitfall_array_audience() {
    let f = Fixture::new();
    let jwt = Jwt::from_ring(&f.ring_json());
    let verifier = f.verifier();
    let mut c = claims(T0, Some(FAR_EXP));
    c["aud"] = json!([AUD, "someone-else"]);
    let token = sign(&f.new_key, header(&f.new_key), c);
    assert!(jwt.decode(&token).is_ok());
    assert_eq!(
        reason(&verifier, &token, T0 + 300),
        Some(Reason::WrongAudience)
    );
}

/// Duplicate claim members: jsonwebtoken refuses duplicates of the claims it validates,
/// but hands the caller the last of any other (here `jti`); mdtoken refuses every
/// duplicate.
#[test]
fn pitfall_duplicate_claim_members() {
    let f = Fixture::new();
    let jwt = Jwt::from_ring(&f.ring_json());
    let verifier = f.verifier();
    let h = header(&f.new_key).to_string();
    let dup_jti = format!(
        r#"{{"iss":"{ISS}","aud":"{AUD}","iat":{T0},"nbf":{T0},"exp":{FAR_EXP},"jti":"AAAAAAAAAAAAAAAAAAAAAA","jti":"BBBBBBBBBBBBBBBBBBBBBB"}}"#
    );
    let token = sign_raw(&f.new_key, &h, &dup_jti);
    assert_eq!(
        jwt.decode(&token).unwrap()["jti"],
        json!("BBBBBBBBBBBBBBBBBBBBBB")
    );
    assert_eq!(reason(&verifier, &token, T0 + 300), Some(Reason::Malformed));

    let dup_exp = format!(
        r#"{{"iss":"{ISS}","aud":"{AUD}","iat":{T0},"nbf":{T0},"exp":{PAST},"exp":{FAR_EXP},"jti":"AAAAAAAAAAAAAAAAAAAAAA"}}"#
    );
    let token = sign_raw(&f.new_key, &h, &dup_exp);
    assert!(jwt.decode(&token).is_err());
    assert_eq!(reason(&verifier, &token, T0 + 300), Some(Reason::Malformed));
}

/// A JWK Set carries no retirement record, so a retired key that leaks can mint tokens a
/// jsonwebtoken verifier accepts; mdtoken lets a retired key vouch only for the tokens it
/// signed before retirement, so forgeries fail whether dated after or before it.
#[test]
fn pitfall_retired_key_signing_after_retirement() {
    let f = Fixture::new();
    let jwt = Jwt::from_ring(&f.ring_json());
    let verifier = f.verifier();
    let late = sign(
        &f.old_key,
        header(&f.old_key),
        claims(T0 + 250, Some(FAR_EXP)),
    );
    assert!(jwt.decode(&late).is_ok());
    assert_eq!(reason(&verifier, &late, T0 + 300), Some(Reason::KeyRevoked));
    // Back-dated to before retirement (T0 + 100): jsonwebtoken accepts, mdtoken does not.
    let back_dated = sign(
        &f.old_key,
        header(&f.old_key),
        claims(T0 + 50, Some(FAR_EXP)),
    );
    assert!(jwt.decode(&back_dated).is_ok());
    assert_eq!(
        reason(&verifier, &back_dated, T0 + 300),
        Some(Reason::KeyRevoked)
    );
    // What the key genuinely signed still verifies with both.
    assert!(jwt.decode(&f.a_exp.token).is_ok());
    assert!(verifier.verify(f.a_exp.token.as_bytes(), T0 + 300).is_ok());
}

/// `revoked_tokens` is mdtoken's member, unknown to a JWK Set consumer.
#[test]
fn pitfall_revoked_tokens_are_invisible() {
    let f = Fixture::new();
    assert!(f.store().revoke_token(&f.b_exp.claims.jti).unwrap());
    let jwt = Jwt::from_ring(&f.ring_json());
    assert!(jwt.decode(&f.b_exp.token).is_ok());
    assert_eq!(
        reason(&f.verifier(), &f.b_exp.token, T0 + 300),
        Some(Reason::TokenRevoked)
    );
}

/// jsonwebtoken verifies Ed25519 with dalek's non-strict `verify` and takes any 32 bytes
/// as a key: with a small-order key (here the identity) one signature verifies for every
/// message. mdtoken refuses such a ring outright and verifies with `verify_strict`.
/// It also reads only the first 32 bytes of `x`, and panics on a shorter one.
#[test]
fn pitfall_weak_and_malformed_keys() {
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let x = b64::encode(identity);
    let kid = "weak";
    let text = json!({
        "issuer": ISS, "audience": AUD,
        "keys": [{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid,
                  "x": x, "status": "active", "created_at": "2026-01-01T00:00:00Z",
                  "retired_at": null, "verify_until": null}],
        "revoked_keys": [], "revoked_tokens": [],
    })
    .to_string();
    assert!(matches!(
        KeyRing::from_json(&text),
        Err(RingError::InvalidKey {
            source: KeyError::SmallOrder,
            ..
        })
    ));
    let jwt = Jwt::from_ring(&text);
    // R = the identity, S = 0: [S]B = R + [k]A holds for every message when A = identity.
    let mut forged_sig = [0u8; 64];
    forged_sig[0] = 1;
    let input = format!(
        "{}.{}",
        b64::encode(json!({"alg": "EdDSA", "typ": "mdt+jwt", "kid": kid}).to_string()),
        b64::encode(claims(T0, Some(FAR_EXP)).to_string())
    );
    let forged = format!("{input}.{}", b64::encode(forged_sig));
    assert!(
        jwt.decode(&forged).is_ok(),
        "jsonwebtoken accepts a forgery under a weak key"
    );

    // x longer than 32 bytes: truncated, not refused.
    let key = SecretKey::generate();
    let mut long_x = key.public().as_bytes().to_vec();
    long_x.push(0);
    let mut long = jwt.set.keys[0].clone();
    if let jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(p) = &mut long.algorithm {
        p.x = b64::encode(&long_x);
    }
    long.common.key_id = Some(key.kid().to_owned());
    let token = sign(&key, header(&key), claims(T0, Some(FAR_EXP)));
    let dk = DecodingKey::from_jwk(&long).unwrap();
    assert!(jsonwebtoken::decode::<Value>(&token, &dk, &jwt.validation(true)).is_ok());
    assert_eq!(
        mdtoken::key::PublicKey::from_bytes(&long_x).unwrap_err(),
        KeyError::Length
    );

    // x shorter than 32 bytes: accepted as a key, then a panic while decoding.
    let mut short = long.clone();
    if let jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(p) = &mut short.algorithm {
        p.x = b64::encode(&key.public().as_bytes()[..31]);
    }
    let dk = DecodingKey::from_jwk(&short).unwrap();
    let validation = jwt.validation(true);
    let outcome = std::panic::catch_unwind(|| {
        jsonwebtoken::decode::<Value>(&token, &dk, &validation).is_ok()
    });
    assert!(
        outcome.is_err(),
        "jsonwebtoken panics on a 31-byte Ed25519 key"
    );
}

/// Sanity of the fixture's assumptions: every kid in the file is a distinct thumbprint,
/// and the file on disk is what both sides read.
#[test]
fn keyring_json_is_a_plain_jwk_set_with_extras() {
    let f = Fixture::new();
    let text = f.ring_json();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let kids: HashSet<&str> = doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, HashSet::from([f.old_key.kid(), f.new_key.kid()]));
    for k in doc["keys"].as_array().unwrap() {
        assert!(k.get("status").is_some() && k.get("verify_until").is_some());
    }
    let jwt = Jwt::from_ring(&text);
    for jwk in &jwt.set.keys {
        assert!(jwk.is_supported());
        assert!(kids.contains(jwk.common.key_id.as_deref().unwrap()));
    }
    assert!(f.store().ring_path().is_file());
}
