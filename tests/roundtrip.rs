//! Properties: mint → verify round trips at any time and with any label, encode → parse
//! of headers and claims, and that no mutation or arbitrary input is ever accepted or
//! panics the verifier.

mod common;

use common::{AUD, ISS, LEEWAY, b64};
use mdtoken::key::SecretKey;
use mdtoken::keyring::KeyRing;
use mdtoken::mint::{Expiry, MAX_LIFETIME_SECS, MintError, Minter};
use mdtoken::token::{self, Claims, MAX_NUMERIC_DATE};
use mdtoken::verify::{Reason, Verifier};
use proptest::prelude::*;

/// One key, ring and minter for the whole run (signing keys are not what is varied).
struct Setup {
    minter: Minter,
    verifier: Verifier,
}

fn setup() -> &'static Setup {
    static SETUP: std::sync::OnceLock<Setup> = std::sync::OnceLock::new();
    SETUP.get_or_init(|| {
        let key = SecretKey::generate();
        let ring = KeyRing::new(ISS, AUD, key.public(), 1_000_000_000).unwrap();
        Setup {
            verifier: Verifier::new(&ring, LEEWAY),
            minter: Minter::new(key, ISS, AUD),
        }
    })
}

/// Times whose ten-year expiries stay within the NumericDate range.
fn any_now() -> impl Strategy<Value = i64> {
    1_000_000_000i64..=MAX_NUMERIC_DATE - MAX_LIFETIME_SECS
}

fn any_expiry() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![
        1 => Just(None),
        4 => (1i64..=MAX_LIFETIME_SECS).prop_map(Some),
        2 => (1i64..=3 * 86_400).prop_map(Some),
    ]
}

/// Labels of up to 64 characters: ASCII, Latin, CJK, emoji, and JSON specials.
fn any_name() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        "[ -~]{0,64}",
        "[a-zA-Zé中😀\"\\\\/<>&'\u{2028}\u{202e}]{0,64}",
        "\\PC{0,64}",
    ])
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(96))]

    /// Valid from nbf − leeway until exp + leeway (exclusive), and not a second more.
    #[test]
    fn mint_verify_round_trip(
        now in any_now(),
        lifetime in any_expiry(),
        name in any_name(),
        offset in 0u64..=u64::MAX,
    ) {
        let s = setup();
        let expiry = lifetime.map_or(Expiry::Never, |l| Expiry::At(now + l));
        let minted = match s.minter.mint(name.as_deref(), expiry, now) {
            Ok(m) => m,
            Err(MintError::TooLong(n)) => {
                // Only a label longer in JSON than 64 ASCII letters (multi-byte characters,
                // escapes) can push a token that far.
                prop_assert!(n >= token::MINTED_TOKEN_LIMIT);
                prop_assert!(serde_json::to_string(&name).unwrap().len() > 66, "{:?}", name);
                return Ok(());
            }
            Err(e) => return Err(TestCaseError::fail(format!("mint refused: {e}"))),
        };
        prop_assert!(minted.token.len() < token::MINTED_TOKEN_LIMIT);
        prop_assert_eq!(minted.claims.iat, now);
        prop_assert_eq!(minted.claims.nbf, now);
        prop_assert_eq!(&minted.claims.name, &name);
        let t = minted.token.as_bytes();

        // Somewhere in the valid window.
        let last = minted.claims.exp.map_or(MAX_NUMERIC_DATE, |e| e + LEEWAY - 1);
        let span = (last - (now - LEEWAY)) as u64 + 1;
        let at = now - LEEWAY + (offset % span) as i64;
        for at in [now - LEEWAY, now, at, last] {
            let v = s.verifier.verify(t, at);
            prop_assert!(v.is_ok(), "rejected at now{:+}: {:?}", at - now, v);
            let v = v.unwrap();
            prop_assert_eq!(&v.claims, &minted.claims);
            prop_assert_eq!(&v.kid, &minted.kid);
        }
        prop_assert_eq!(
            s.verifier.verify(t, now - LEEWAY - 1).unwrap_err().reason,
            Reason::TokenNotYetValid
        );
        if let Some(exp) = minted.claims.exp {
            for at in [exp + LEEWAY, exp + LEEWAY + 1, MAX_NUMERIC_DATE] {
                prop_assert_eq!(
                    s.verifier.verify(t, at).unwrap_err().reason,
                    Reason::TokenExpired
                );
            }
        }
    }

    /// Any single byte changed, removed or inserted: never accepted, never a panic.
    #[test]
    fn single_byte_mutations_rejected(
        pos in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        kind in 0u8..3,
        name in any_name(),
    ) {
        let s = setup();
        let now = 1_800_000_000;
        let Ok(minted) = s.minter.mint(name.as_deref(), Expiry::At(now + 3600), now) else {
            return Ok(());
        };
        let mut t = minted.token.into_bytes();
        let i = pos.index(t.len());
        match kind {
            0 => {
                let b = if t[i] == byte { byte.wrapping_add(1) } else { byte };
                t[i] = b;
            }
            1 => {
                t.remove(i);
            }
            _ => t.insert(i, byte),
        }
        prop_assert!(s.verifier.verify(&t, now).is_err());
    }

    /// Claims survive serialisation and strict parsing unchanged.
    #[test]
    fn claims_encode_parse(
        iss in "\\PC{1,40}",
        aud in ".{1,40}",
        iat in 0..=MAX_NUMERIC_DATE,
        nbf in 0..=MAX_NUMERIC_DATE,
        exp in proptest::option::of(0..=MAX_NUMERIC_DATE),
        jti in "[A-Za-z0-9_-]{22,128}",
        name in proptest::option::of(".{0,64}"),
    ) {
        let claims = Claims { iss, aud, iat, nbf, exp, jti, name };
        let json = serde_json::to_vec(&claims).unwrap();
        prop_assert_eq!(token::parse_claims(&json).unwrap(), claims.clone());
        // Pretty-printed (whitespace between members) is the same claims.
        let pretty = serde_json::to_vec_pretty(&claims).unwrap();
        prop_assert_eq!(token::parse_claims(&pretty).unwrap(), claims);
    }

    /// Headers survive encoding and parsing, in any member order.
    #[test]
    fn header_encode_parse(kid in "\\PC{0,64}", order in 0usize..6) {
        let members = [
            format!("\"alg\":{}", serde_json::to_string(token::ALG).unwrap()),
            format!("\"typ\":{}", serde_json::to_string(token::TYP).unwrap()),
            format!("\"kid\":{}", serde_json::to_string(&kid).unwrap()),
        ];
        let perms = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
        let json: Vec<&str> = perms[order].iter().map(|&i| members[i].as_str()).collect();
        let json = format!("{{{}}}", json.join(","));
        let h = token::parse_header(json.as_bytes()).unwrap();
        prop_assert_eq!(h.kid, Some(kid));
        prop_assert!(!h.has_extra_members);
    }

    /// Minted tokens decode to exactly the claims the minter reports.
    #[test]
    fn minted_payload_parses_to_its_claims(now in any_now(), name in any_name()) {
        let s = setup();
        let Ok(minted) = s.minter.mint(name.as_deref(), Expiry::Never, now) else {
            return Ok(());
        };
        let parts = token::split(minted.token.as_bytes()).unwrap();
        let payload = mdtoken::b64::decode(parts.payload).unwrap();
        prop_assert_eq!(token::parse_claims(&payload).unwrap(), minted.claims);
        let header = mdtoken::b64::decode(parts.header).unwrap();
        let header = token::parse_header(&header).unwrap();
        prop_assert_eq!(header.kid.as_deref(), Some(minted.kid.as_str()));
        prop_assert_eq!(b64(mdtoken::b64::decode(parts.signature).unwrap()), parts.signature);
    }
}

proptest! {
    #![proptest_config(config(2048))]

    /// Arbitrary bytes never panic the verifier and are never accepted.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1400)) {
        prop_assert!(setup().verifier.verify(&bytes, 1_800_000_000).is_err());
        let _ = token::parse_claims(&bytes);
        let _ = token::parse_header(&bytes);
    }

    /// Token-shaped inputs: three base64url segments of arbitrary bytes or JSON-ish text.
    #[test]
    fn arbitrary_token_shapes_never_panic(
        h in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            "\\{[\"a-z:,0-9\\[\\]{} ]{0,120}\\}".prop_map(String::into_bytes),
        ],
        p in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            "\\{[\"a-z:,0-9\\[\\]{}. -]{0,200}\\}".prop_map(String::into_bytes),
        ],
        sig in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        let t = format!("{}.{}.{}", b64(&h), b64(&p), b64(&sig));
        prop_assert!(setup().verifier.verify(t.as_bytes(), 1_800_000_000).is_err());
    }

    /// A good header and key id with arbitrary payload text: never accepted.
    #[test]
    fn arbitrary_payload_under_a_good_header(p in "\\PC{1,300}") {
        let s = setup();
        let h = format!(
            r#"{{"alg":"EdDSA","typ":"mdt+jwt","kid":"{}"}}"#,
            s.minter.kid()
        );
        let t = format!("{}.{}.{}", b64(h), b64(p), b64([7u8; 64]));
        let r = s.verifier.verify(t.as_bytes(), 1_800_000_000).unwrap_err();
        prop_assert!(matches!(r.reason, Reason::BadSignature | Reason::TooLarge));
    }
}

/// Control characters in a label are refused at mint time, not smuggled into tokens.
#[test]
fn control_characters_in_names_refused() {
    let s = setup();
    for c in ['\0', '\n', '\r', '\t', '\u{7f}', '\u{85}', '\u{1b}'] {
        let name = format!("a{c}b");
        assert_eq!(
            s.minter.mint(Some(&name), Expiry::Never, 1_800_000_000),
            Err(MintError::BadName),
            "{name:?}"
        );
    }
    assert_eq!(
        s.minter
            .mint(Some(&"x".repeat(65)), Expiry::Never, 1_800_000_000),
        Err(MintError::BadName)
    );
}
