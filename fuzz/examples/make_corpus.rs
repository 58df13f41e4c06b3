//! Writes the seed corpora under `fuzz/corpus/` (run from `fuzz/`:
//! `cargo run --example make_corpus`). Keys are generated here and thrown away; only
//! public keys and signed tokens are written. Placeholders (`@A`, `@T`, ...) stand for
//! the keys and tokens each target makes at run time.

use std::fs;
use std::path::Path;

use mdtoken::key::SecretKey;
use mdtoken::keyring::{KeyRing, Signed};
use mdtoken_fuzz::{AUD, DAY, ISS, LISTED_JTIS, NOW, REVOKED_JTI, b64, sign};
use serde_json::{Value, json};

const JTI: &str = "c2VlZC10b2tlbi0wMDAwMDE";

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("corpus").join(target);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(name), bytes).unwrap();
}

fn with_control(control: u8, rest: &[u8]) -> Vec<u8> {
    let mut v = vec![control];
    v.extend_from_slice(rest);
    v
}

fn claims(extra: &[(&str, Value)]) -> String {
    let mut c =
        json!({"iss": ISS, "aud": AUD, "iat": NOW, "nbf": NOW, "exp": NOW + DAY, "jti": JTI});
    for (k, v) in extra {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(*k);
        } else {
            c[*k] = v.clone();
        }
    }
    c.to_string()
}

fn header(kid: &str) -> String {
    format!(r#"{{"alg":"EdDSA","typ":"mdt+jwt","kid":"{kid}"}}"#)
}

fn verify_token() {
    let t = "verify_token";
    let throwaway = SecretKey::generate();
    let signed = |h: &str, c: &str| {
        String::from_utf8(sign(
            &throwaway,
            format!("{}.{}", b64(h), b64(c)).as_bytes(),
        ))
        .unwrap()
    };
    let good = signed(&header(throwaway.kid()), &claims(&[]));
    let (h, rest) = good.split_once('.').unwrap();
    let (p, s) = rest.split_once('.').unwrap();
    let raw: Vec<(&str, Vec<u8>)> = vec![
        ("valid-shape-unknown-kid", good.clone().into()),
        ("no-exp-named", signed(&header(throwaway.kid()), &claims(&[("exp", Value::Null), ("name", json!("Q1 rollout"))])).into()),
        ("alg-none-empty-sig", format!("{}.{p}.", b64(r#"{"alg":"none","typ":"mdt+jwt"}"#)).into()),
        ("hs256", format!("{}.{p}.{s}", b64(r#"{"alg":"HS256","typ":"mdt+jwt","kid":"k"}"#)).into()),
        ("rs256", format!("{}.{p}.{s}{s}", b64(r#"{"alg":"RS256","typ":"JWT"}"#)).into()),
        ("crit", signed(&format!(r#"{{"alg":"EdDSA","typ":"mdt+jwt","kid":"{}","crit":["x"],"x":"1"}}"#, throwaway.kid()), &claims(&[])).into()),
        ("jwk", signed(&format!(r#"{{"alg":"EdDSA","typ":"mdt+jwt","jwk":{{"kty":"OKP","crv":"Ed25519","x":"{}"}}}}"#, throwaway.public().x()), &claims(&[])).into()),
        ("jku", signed(r#"{"alg":"EdDSA","typ":"mdt+jwt","kid":"k","jku":"http://127.0.0.1:1/jwks"}"#, &claims(&[])).into()),
        ("dup-alg", format!("{}.{p}.{s}", b64(r#"{"alg":"HS256","alg":"EdDSA","typ":"mdt+jwt"}"#)).into()),
        ("typ-jwt", format!("{}.{p}.{s}", b64(r#"{"alg":"EdDSA","typ":"JWT"}"#)).into()),
        ("header-array", format!("{}.{p}.{s}", b64("[]")).into()),
        ("padded", format!("{h}=.{p}.{s}").into()),
        ("std-alphabet", format!("{h}.{p}.{}", s.replace('-', "+").replace('_', "/")).into()),
        ("quoted", format!("\"{good}\"").into()),
        ("trailing-newline", format!("{good}\n").into()),
        ("four-segments", format!("{good}.{s}").into()),
        ("two-segments", format!("{h}.{p}").into()),
        ("empty", Vec::new()),
        ("dot", b".".to_vec()),
        ("dots", b"..".to_vec()),
        ("nul", format!("{h}.\0{p}.{s}").into()),
        ("non-ascii", format!("{h}.{p}\u{e9}.{s}").into()),
        ("too-large", format!("{}.{p}.{s}", "A".repeat(1100)).into()),
        ("sig-short", format!("{h}.{p}.{}", &s[..84]).into()),
        ("sig-zero", format!("{h}.{p}.{}", b64([0u8; 64])).into()),
    ];
    for (name, bytes) in raw {
        write(t, &format!("raw-{name}"), &with_control(0, &bytes));
    }
    // Re-signed by the target's keys: control bit 2, signer in bits 3-5 (A=0, L=1, O=2,
    // X=3, Z=4); a leading placeholder becomes the canonical header naming that key.
    let listed = b64(claims(&[
        ("jti", json!(LISTED_JTIS[0])),
        ("iat", json!(NOW - 100 * DAY)),
        ("nbf", json!(NOW - 100 * DAY)),
    ]));
    let resigned: Vec<(&str, u8, String)> = vec![
        ("active", 0, format!("@A.{p}.x")),
        ("active-leeway0", 1, format!("@A.{p}.x")),
        ("retired-listed", 1 << 3, format!("@L.{listed}.x")),
        ("retired-unlisted", 1 << 3, format!("@L.{p}.x")),
        ("retired-open", 2 << 3, format!("@O.{p}.x")),
        ("revoked-key", 3 << 3, format!("@X.{p}.x")),
        ("outside-key", 4 << 3, format!("@Z.{p}.x")),
        ("signer-mismatch", 1 << 3, format!("@A.{p}.x")),
        (
            "payload-trailing-bits",
            0,
            format!("@A.{}B.x", &p[..p.len() - 1]),
        ),
        ("payload-padded", 0, format!("@A.{p}==.x")),
        ("no-dot", 0, format!("@A.{p}")),
        ("raw-header", 0, format!("{h}.{p}.x")),
    ];
    for (name, control, text) in resigned {
        write(
            t,
            &format!("resigned-{name}"),
            &with_control(control | 4, text.as_bytes()),
        );
    }
}

fn verify_claims() {
    let t = "verify_claims";
    let claims_only: Vec<(&str, u8, String)> = vec![
        ("good", 0, claims(&[])),
        (
            "good-named",
            0,
            claims(&[("name", json!("Q1 rollout \u{1F680}"))]),
        ),
        ("no-exp", 0, claims(&[("exp", Value::Null)])),
        (
            "exp-string",
            0,
            claims(&[("exp", json!((NOW + DAY).to_string()))]),
        ),
        ("exp-negative", 0, claims(&[("exp", json!(-1))])),
        ("exp-fraction", 0, claims(&[("exp", json!(1.5))])),
        (
            "exp-null",
            0,
            claims(&[]).replace(&format!("\"exp\":{}", NOW + DAY), "\"exp\":null"),
        ),
        (
            "exp-huge",
            0,
            claims(&[("exp", json!(99_999_999_999_999_u64))]),
        ),
        ("expired", 0, claims(&[("exp", json!(NOW - 61))])),
        ("expired-leeway0", 1, claims(&[("exp", json!(NOW))])),
        ("nbf-future", 0, claims(&[("nbf", json!(NOW + 3600))])),
        ("aud-missing", 0, claims(&[("aud", Value::Null)])),
        ("aud-array", 0, claims(&[("aud", json!([AUD]))])),
        ("aud-empty", 0, claims(&[("aud", json!(""))])),
        ("iss-slash", 0, claims(&[("iss", json!(format!("{ISS}/")))])),
        ("iss-case", 0, claims(&[("iss", json!(ISS.to_uppercase()))])),
        ("jti-short", 0, claims(&[("jti", json!("abc"))])),
        ("jti-missing", 0, claims(&[("jti", Value::Null)])),
        ("jti-revoked", 0, claims(&[("jti", json!(REVOKED_JTI))])),
        ("unknown-claim", 0, claims(&[("admin", json!(true))])),
        ("name-65", 0, claims(&[("name", json!("n".repeat(65)))])),
        ("dup-exp", 0, format!("{{\"exp\":1,{}", &claims(&[])[1..])),
        ("array", 0, r#"["i","a",1,1,2,"j"]"#.to_owned()),
        ("null", 0, "null".to_owned()),
        (
            "retired-listed",
            1 << 3,
            claims(&[
                ("jti", json!(LISTED_JTIS[1])),
                ("iat", json!(NOW - 20 * DAY)),
                ("nbf", json!(NOW - 20 * DAY)),
            ]),
        ),
        (
            "retired-late-iat",
            1 << 3,
            claims(&[("jti", json!(LISTED_JTIS[1]))]),
        ),
        (
            "retired-past-until",
            1 << 3,
            claims(&[
                ("jti", json!(LISTED_JTIS[1])),
                ("iat", json!(NOW - 20 * DAY)),
                ("nbf", json!(NOW - 20 * DAY)),
                ("exp", json!(NOW + 31 * DAY)),
            ]),
        ),
        (
            "retired-open",
            2 << 3,
            claims(&[
                ("iat", json!(NOW - 250 * DAY)),
                ("nbf", json!(NOW - 250 * DAY)),
                ("exp", Value::Null),
            ]),
        ),
        ("revoked-key", 3 << 3, claims(&[])),
        ("outside-key", 4 << 3, claims(&[])),
    ];
    for (name, control, c) in claims_only {
        write(
            t,
            &format!("claims-{name}"),
            &with_control(control, c.as_bytes()),
        );
    }
    let good = claims(&[]);
    let headed: Vec<(&str, u8, String)> = vec![
        ("canonical", 0, header("@A")),
        (
            "spaced-reordered",
            0,
            r#" { "kid" : "@A" ,"typ":"mdt+jwt", "alg" : "EdDSA" } "#.to_owned(),
        ),
        (
            "escaped-names",
            0,
            r#"{"al\u0067":"EdDSA","typ":"mdt\u002bjwt","kid":"@A"}"#.to_owned(),
        ),
        (
            "crit",
            0,
            r#"{"alg":"EdDSA","typ":"mdt+jwt","kid":"@A","crit":["x"],"x":"1"}"#.to_owned(),
        ),
        (
            "jwk",
            0,
            r#"{"alg":"EdDSA","typ":"mdt+jwt","kid":"@A","jwk":{"kty":"OKP"}}"#.to_owned(),
        ),
        (
            "x5u",
            0,
            r#"{"alg":"EdDSA","typ":"mdt+jwt","kid":"@A","x5u":"http://127.0.0.1:1/"}"#.to_owned(),
        ),
        (
            "dup-kid",
            0,
            r#"{"alg":"EdDSA","typ":"mdt+jwt","kid":"@A","kid":"@L"}"#.to_owned(),
        ),
        (
            "kid-number",
            0,
            r#"{"alg":"EdDSA","typ":"mdt+jwt","kid":1}"#.to_owned(),
        ),
        ("no-kid", 0, r#"{"alg":"EdDSA","typ":"mdt+jwt"}"#.to_owned()),
        (
            "kid-path",
            0,
            r#"{"alg":"EdDSA","typ":"mdt+jwt","kid":"../../etc/passwd"}"#.to_owned(),
        ),
        (
            "typ-at-jwt",
            0,
            r#"{"alg":"EdDSA","typ":"at+jwt","kid":"@A"}"#.to_owned(),
        ),
        (
            "alg-none",
            0,
            r#"{"alg":"none","typ":"mdt+jwt","kid":"@A"}"#.to_owned(),
        ),
        ("kid-retired-signed-by-active", 0, header("@L")),
        ("kid-active-signed-by-retired", 1 << 3, header("@A")),
        ("kid-revoked", 3 << 3, header("@X")),
        ("kid-outside", 4 << 3, header("@Z")),
        ("header-null", 0, "null".to_owned()),
    ];
    for (name, control, h) in headed {
        let mut bytes = with_control(control, h.as_bytes());
        bytes.push(0xff);
        bytes.extend_from_slice(good.as_bytes());
        write(t, &format!("header-{name}"), &bytes);
    }
}

fn keyring_parse() {
    let t = "keyring_parse";
    let (k1, k2, k3) = (
        SecretKey::generate(),
        SecretKey::generate(),
        SecretKey::generate(),
    );
    let single = KeyRing::new(ISS, AUD, k1.public(), NOW).unwrap();
    write(t, "single-key.json", single.to_json().as_bytes());
    let mut full = KeyRing::new(ISS, AUD, k1.public(), NOW - 300 * DAY).unwrap();
    full.rotate(k2.public(), NOW - 200 * DAY, Signed::default())
        .unwrap();
    full.rotate(
        k3.public(),
        NOW - 10 * DAY,
        Signed {
            verify_until: Some(NOW + 30 * DAY),
            jtis: Some(LISTED_JTIS.iter().map(|s| (*s).to_owned()).collect()),
        },
    )
    .unwrap();
    assert!(full.revoke_key(k1.kid(), NOW - 5 * DAY));
    full.revoke_token(REVOKED_JTI, Some(NOW + DAY));
    full.revoke_token("bm8tZXhwaXJ5LXJldm9rZWQ", None);
    let full_text = full.to_json();
    write(t, "keyring.json", full_text.as_bytes());
    let v: Value = serde_json::from_str(&single.to_json()).unwrap();
    let mutate = |name: &str, f: &dyn Fn(&mut Value)| {
        let mut v = v.clone();
        f(&mut v);
        write(
            t,
            name,
            serde_json::to_string_pretty(&v).unwrap().as_bytes(),
        );
    };
    let mut identity = [0u8; 32];
    identity[0] = 1;
    mutate("identity-key.json", &|v| {
        v["keys"][0]["x"] = b64(identity).into()
    });
    mutate("zero-key.json", &|v| {
        v["keys"][0]["x"] = b64([0u8; 32]).into()
    });
    mutate("short-key.json", &|v| {
        v["keys"][0]["x"] = b64([9u8; 31]).into()
    });
    mutate("kid-mismatch.json", &|v| {
        v["keys"][0]["kid"] = "other".into()
    });
    mutate("private-member.json", &|v| {
        v["keys"][0]["d"] = "c2VjcmV0".into()
    });
    mutate("no-keys.json", &|v| v["keys"] = json!([]));
    mutate("duplicate-kid.json", &|v| {
        let k = v["keys"][0].clone();
        v["keys"].as_array_mut().unwrap().push(k);
    });
    // Regression seeds: times whose UTC instant lies outside 1970-9999 loaded but did not
    // survive to_json (one came back as 1970, the other panicked).
    mutate("year-10000.json", &|v| {
        v["keys"][0]["created_at"] = "9999-12-31T23:59:59-01:00".into()
    });
    mutate("before-year-0.json", &|v| {
        v["keys"][0]["created_at"] = "0000-01-01T00:00:00+01:00".into()
    });
    // Regression seed: a revoked kid that is no thumbprint loaded, and a token naming a
    // long one was refused as too large instead of key_revoked.
    mutate("revoked-kid-not-a-thumbprint.json", &|v| {
        v["revoked_keys"] = json!([{"kid": "@".repeat(600), "revoked_at": "2027-01-10T08:00:00Z"}])
    });
    mutate("offset-times.json", &|v| {
        v["keys"][0]["created_at"] = "2027-01-15T09:00:00+01:00".into()
    });
    mutate("pem-in-x.json", &|v| {
        v["keys"][0]["x"] =
            "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----"
                .into()
    });
    write(t, "empty", b"");
    write(t, "garbage", b"garbage");
    let mut latin1 = full_text.into_bytes();
    latin1.extend_from_slice(b"\xff\xfe");
    write(t, "not-utf8", &latin1);
}

fn activation_body() {
    let t = "activation_body";
    // Control bits 0-2: content type (0 none, 1 application/json, 2 with charset, 3 mixed
    // case quoted, 4 text/plain, 5 latin1, 6 form, 7 first line); bits 3-4: Authorization
    // (0 none, 1 Bearer valid, 2 Bearer expired, 3 Basic).
    let bodies: Vec<(&str, u8, &[u8])> = vec![
        (
            "valid",
            1,
            br#"{"token":"@T","user":"ann","device":"pc-042"}"#,
        ),
        ("valid-charset", 2, br#"{"token":"@T"}"#),
        (
            "valid-quoted-charset",
            3,
            br#" {"device":"pc-042","token":"@T"}"#,
        ),
        ("expired", 1, br#"{"token":"@E"}"#),
        ("bearer-empty-body", 1 << 3, b""),
        ("bearer-expired-empty-body", 2 << 3, b""),
        ("basic-empty-body", 3 << 3, b""),
        ("bearer-and-body", 1 | 1 << 3, br#"{"token":"@T"}"#),
        (
            "bearer-null-token",
            1 | 1 << 3,
            br#"{"token":null,"user":null}"#,
        ),
        ("no-token", 1, br#"{"user":"ann"}"#),
        ("unknown-member", 1, br#"{"token":"@T","admin":true}"#),
        ("dup-token", 1, br#"{"token":"@E","token":"@T"}"#),
        ("array", 1, br#"["@T"]"#),
        ("token-number", 1, br#"{"token":1}"#),
        (
            "user-control",
            1,
            b"{\"token\":\"@T\",\"user\":\"a\\u0007b\"}",
        ),
        ("text-plain", 4, br#"{"token":"@T"}"#),
        ("latin1", 5, br#"{"token":"@T"}"#),
        ("form", 6, b"token=@T"),
        (
            "ct-line",
            7,
            b"APPLICATION/json ; Charset = \"utf-8\"\n{\"token\":\"@T\"}",
        ),
        (
            "ct-line-boundary",
            7,
            b"application/json; boundary=x\n{\"token\":\"@T\"}",
        ),
        ("not-utf8", 1, b"{\"token\":\"@T\",\"user\":\"\xff\xfe\"}"),
        ("lone-surrogate", 1, br#"{"token":"@T","user":"\ud800"}"#),
        ("trailing", 1, br#"{"token":"@T"} {}"#),
        (
            "nested",
            1,
            br#"{"token":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}"#,
        ),
        (
            "hostile-token",
            1,
            br#"{"token":"eyJhbGciOiJub25lIiwidHlwIjoibWR0K2p3dCJ9.e30."}"#,
        ),
    ];
    for (name, control, body) in bodies {
        write(t, name, &with_control(control, body));
    }
    let mut long_user = br#"{"token":"@T","user":""#.to_vec();
    long_user.extend(std::iter::repeat_n(b'u', 257));
    long_user.extend_from_slice(b"\"}");
    write(t, "user-257", &with_control(1, &long_user));
}

fn main() {
    verify_token();
    verify_claims();
    keyring_parse();
    activation_body();
}
