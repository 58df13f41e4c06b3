//! The hostile inputs of `hostile-inputs.md` (sections A–E), built for real and run
//! against the library `Verifier` at a fixed time and through `mdtoken verify` as a
//! process, which must give the same verdict for the same bytes.

mod common;

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::panic::AssertUnwindSafe;

use common::*;
use mdtoken::key::signature_checks_on_this_thread;
use mdtoken::keyring::KeyRing;
use mdtoken::verify::Reason::{self, *};
use mdtoken::verify::Verifier;

/// Which ring a case is verified against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RingSel {
    Main,
    /// The main ring after `k0` lapsed and was pruned.
    Pruned,
}

#[derive(Clone, Copy, Debug)]
enum Expect {
    Accept,
    Reject(Reason),
    /// The catalogue allows either code.
    OneOf(&'static [Reason]),
    /// Any rejection (mutations whose first failing check depends on the bytes).
    Rejected,
}

struct Case {
    id: String,
    token: Vec<u8>,
    expect: Expect,
    ring: RingSel,
    /// Also run through the CLI.
    cli: bool,
}

fn case(id: impl Into<String>, token: impl Into<Vec<u8>>, expect: Expect) -> Case {
    Case {
        id: id.into(),
        token: token.into(),
        expect,
        ring: RingSel::Main,
        cli: true,
    }
}

fn accept(id: impl Into<String>, token: impl Into<Vec<u8>>) -> Case {
    case(id, token, Expect::Accept)
}

fn reject(id: impl Into<String>, token: impl Into<Vec<u8>>, reason: Reason) -> Case {
    case(id, token, Expect::Reject(reason))
}

impl Case {
    fn lib_only(mut self) -> Self {
        self.cli = false;
        self
    }

    fn on(mut self, ring: RingSel) -> Self {
        self.ring = ring;
        self
    }
}

/// The base64url segments of a token long enough that echoing one would leak token bytes.
fn echo_probes(token: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(token)
        .split('.')
        .filter(|s| s.len() >= 16)
        .map(|s| s[..s.len().min(64)].to_owned())
        .collect()
}

/// Runs every case through the library; returns the verdicts (None = accepted).
fn run_library(fx: &Fixture, cases: &[Case]) -> Vec<Option<Reason>> {
    let main = Verifier::new(&fx.ring, LEEWAY);
    let pruned = Verifier::new(&fx.pruned, LEEWAY);
    let mut failures = Vec::new();
    let mut verdicts = Vec::new();
    for c in cases {
        let verifier = match c.ring {
            RingSel::Main => &main,
            RingSel::Pruned => &pruned,
        };
        let result = verifier.verify(&c.token, NOW);
        let got = result.as_ref().err().map(|r| r.reason);
        let ok = match c.expect {
            Expect::Accept => got.is_none(),
            Expect::Reject(r) => got == Some(r),
            Expect::OneOf(rs) => got.is_some_and(|g| rs.contains(&g)),
            Expect::Rejected => got.is_some(),
        };
        if !ok {
            failures.push(format!(
                "{}: expected {:?}, got {:?}",
                c.id,
                c.expect,
                result.as_ref().map(|v| &v.kid)
            ));
        }
        if let Err(r) = &result {
            let text = format!("{r} {:?}", r.kid);
            for probe in echo_probes(&c.token) {
                if text.contains(&probe) {
                    failures.push(format!("{}: message echoes token bytes: {text}", c.id));
                }
            }
        }
        verdicts.push(got);
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    verdicts
}

/// Runs the CLI cases (two at a time) and asserts each gives the library's verdict.
fn run_cli(fx: &Fixture, cases: &[Case], verdicts: &[Option<Reason>]) {
    let main = KeysDir::new(&fx.ring);
    let pruned = KeysDir::new(&fx.pruned);
    let selected: Vec<(&Case, Option<Reason>)> = cases
        .iter()
        .zip(verdicts.iter().copied())
        .filter(|(c, _)| c.cli)
        .collect();
    assert!(!selected.is_empty());
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for chunk in selected.chunks(selected.len().div_ceil(2)) {
            let (main, pruned, failures) = (&main, &pruned, &failures);
            s.spawn(move || {
                for (c, verdict) in chunk {
                    let dir = match c.ring {
                        RingSel::Main => main,
                        RingSel::Pruned => pruned,
                    };
                    let run = dir.verify(&c.token);
                    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                        assert_cli_verdict(&c.id, &run, *verdict);
                        let all = format!("{}{}", run.stdout, run.stderr);
                        for probe in echo_probes(&c.token) {
                            assert!(!all.contains(&probe), "{}: CLI echoes token bytes", c.id);
                        }
                    }));
                    if let Err(e) = outcome {
                        let msg = e
                            .downcast_ref::<String>()
                            .cloned()
                            .unwrap_or_else(|| format!("{:?}", c.id));
                        failures.lock().unwrap().push(msg);
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} CLI cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn run_cases(fx: &Fixture, cases: &[Case]) {
    let verdicts = run_library(fx, cases);
    run_cli(fx, cases, &verdicts);
}

fn header_with(fx: &Fixture, extra: &str) -> String {
    format!(
        r#"{{"alg":"EdDSA","typ":"mdt+jwt","kid":"{}",{extra}}}"#,
        fx.k1.kid()
    )
}

// ---------------------------------------------------------------------------------------
// A. Header
// ---------------------------------------------------------------------------------------

fn section_a(fx: &Fixture, listener_url: &str) -> Vec<Case> {
    let mut v = Vec::new();
    let p = Payload::good().json();
    let k1 = fx.k1.kid();

    // A1: alg none (any spelling), with an empty signature and with a real one.
    for alg in ["none", "None", "NONE", "nOnE", ""] {
        let h = format!(r#"{{"alg":{},"typ":"mdt+jwt","kid":"{k1}"}}"#, js(alg));
        v.push(reject(
            format!("A1 alg {alg:?}, empty signature"),
            format!("{}.{}.", b64(&h), b64(&p)),
            BadHeader,
        ));
        v.push(reject(
            format!("A1 alg {alg:?}, signed by k1"),
            jws(&h, &p, &fx.k1),
            BadHeader,
        ));
    }
    v.push(reject(
        "A1 bare {\"alg\":\"none\"}",
        format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(&p)),
        BadHeader,
    ));

    // A2: HS256 keyed with ring material in every form an attacker can get.
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("raw public key", fx.k1.raw_public().to_vec()),
        ("public PEM", fx.k1.public_pem().into_bytes()),
        ("x", fx.k1.x().into_bytes()),
        ("JWK", fx.k1.jwk().into_bytes()),
        ("kid", k1.as_bytes().to_vec()),
        ("ring file", fx.ring.to_json().into_bytes()),
    ];
    for (what, secret) in &secrets {
        for (alg, with_kid) in [("HS256", true), ("HS256", false), ("HS512", true)] {
            let h = if with_kid {
                format!(r#"{{"alg":"{alg}","typ":"mdt+jwt","kid":"{k1}"}}"#)
            } else {
                format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#)
            };
            let input = format!("{}.{}", b64(&h), b64(&p));
            let mac = hmac_sha256(secret, input.as_bytes());
            v.push(reject(
                format!("A2 {alg} keyed with {what}, kid {with_kid}"),
                format!("{input}.{}", b64(mac)),
                BadHeader,
            ));
        }
    }

    // A3: other asymmetric algorithms with random signatures, and EdDSA misspelt.
    for (alg, len) in [
        ("RS256", 256),
        ("PS256", 256),
        ("ES256", 64),
        ("ES384", 96),
        ("ES256K", 64),
        ("RS512", 256),
    ] {
        let h = format!(r#"{{"alg":"{alg}","typ":"mdt+jwt","kid":"{k1}"}}"#);
        v.push(reject(
            format!("A3 {alg} random signature"),
            assemble(h.as_bytes(), p.as_bytes(), &random_bytes(len)),
            BadHeader,
        ));
    }
    for alg in [
        "eddsa", "EDDSA", "Ed25519", "ED25519", "EdDSA ", " EdDSA", "Ed448",
    ] {
        let h = format!(r#"{{"alg":{},"typ":"mdt+jwt","kid":"{k1}"}}"#, js(alg));
        v.push(reject(
            format!("A3 alg {alg:?} signed by k1"),
            jws(&h, &p, &fx.k1),
            BadHeader,
        ));
    }
    for alg in ["1", "null", "[\"EdDSA\"]", "{}"] {
        let h = format!(r#"{{"alg":{alg},"typ":"mdt+jwt","kid":"{k1}"}}"#);
        v.push(reject(
            format!("A3 alg {alg} (not a string)"),
            jws(&h, &p, &fx.k1),
            BadHeader,
        ));
    }

    // A4: crit, signed by k1: refused as a header fault after the signature.
    for extra in [
        r#""crit":["x"],"x":"1""#,
        r#""crit":["exp"]"#,
        r#""crit":[]"#,
        r#""b64":false,"crit":["b64"]"#,
    ] {
        let h = header_with(fx, extra);
        v.push(reject(
            format!("A4 {extra} signed by k1"),
            jws(&h, &p, &fx.k1),
            BadHeader,
        ));
        v.push(reject(
            format!("A4 {extra} signed by katt, kid k1"),
            jws(&h, &p, &fx.katt),
            BadSignature,
        ));
    }

    // A5: the attacker's own key embedded in the header.
    let jwk = fx.katt.jwk();
    v.push(reject(
        "A5 jwk(katt) signed by katt, kid k1",
        jws(&header_with(fx, &format!(r#""jwk":{jwk}"#)), &p, &fx.katt),
        BadSignature,
    ));
    v.push(reject(
        "A5 jwk(katt) signed by katt, no kid",
        jws(
            &format!(r#"{{"alg":"EdDSA","typ":"mdt+jwt","jwk":{jwk}}}"#),
            &p,
            &fx.katt,
        ),
        UnknownKey,
    ));
    v.push(reject(
        "A5 jwk(katt) signed by katt, kid katt",
        jws(
            &format!(
                r#"{{"alg":"EdDSA","typ":"mdt+jwt","kid":"{}","jwk":{jwk}}}"#,
                fx.katt.kid()
            ),
            &p,
            &fx.katt,
        ),
        UnknownKey,
    ));
    v.push(reject(
        "A5 jwk(k1) signed by k1: still an extra member",
        jws(
            &header_with(fx, &format!(r#""jwk":{}"#, fx.k1.jwk())),
            &p,
            &fx.k1,
        ),
        BadHeader,
    ));

    // A6: key URLs pointing at a local listener (which must see no connection).
    let u = js(listener_url);
    for extra in [
        format!(r#""jku":{u}"#),
        format!(r#""x5u":{u}"#),
        format!(r#""x5c":["{}"]"#, b64(random_bytes(300))),
        format!(r#""x5t#S256":"{}""#, b64(random_bytes(32))),
    ] {
        v.push(reject(
            format!("A6 {extra:.40} signed by k1"),
            jws(&header_with(fx, &extra), &p, &fx.k1),
            BadHeader,
        ));
        v.push(reject(
            format!("A6 {extra:.40} signed by katt, kid k1"),
            jws(&header_with(fx, &extra), &p, &fx.katt),
            BadSignature,
        ));
        v.push(reject(
            format!("A6 {extra:.40} signed by katt, no kid"),
            jws(
                &format!(r#"{{"alg":"EdDSA","typ":"mdt+jwt",{extra}}}"#),
                &p,
                &fx.katt,
            ),
            UnknownKey,
        ));
    }

    // A7: duplicate header members, however spelt.
    let k0 = fx.k0.kid();
    for h in [
        format!(r#"{{"alg":"HS256","alg":"EdDSA","typ":"mdt+jwt","kid":"{k1}"}}"#),
        format!(r#"{{"alg":"EdDSA","alg":"HS256","typ":"mdt+jwt","kid":"{k1}"}}"#),
        format!(r#"{{"alg":"EdDSA","alg":"EdDSA","typ":"mdt+jwt","kid":"{k1}"}}"#),
        format!(r#"{{"alg":"EdDSA","typ":"mdt+jwt","kid":"{k1}","kid":"{k1}"}}"#),
        format!(r#"{{"alg":"EdDSA","typ":"mdt+jwt","kid":"{k0}","kid":"{k1}"}}"#),
        format!(r#"{{"alg":"EdDSA","typ":"JWT","typ":"mdt+jwt","kid":"{k1}"}}"#),
        format!(r#"{{"alg":"EdDSA","typ":"mdt+jwt","kid":"{k1}","\u006bid":"{k0}"}}"#),
        format!(r#"{{"alg":"EdDSA","\u0061lg":"none","typ":"mdt+jwt","kid":"{k1}"}}"#),
    ] {
        v.push(reject(
            format!("A7 duplicate member {h:.60}"),
            jws(&h, &p, &fx.k1),
            Malformed,
        ));
    }

    // A8: typ missing or not exactly mdt+jwt.
    v.push(reject(
        "A8 typ missing",
        jws(&format!(r#"{{"alg":"EdDSA","kid":"{k1}"}}"#), &p, &fx.k1),
        BadHeader,
    ));
    for typ in [
        "\"JWT\"",
        "\"at+jwt\"",
        "\"MDT+JWT\"",
        "\"application/mdt+jwt\"",
        "\"mdt+jwt \"",
        "\"\"",
        "null",
        "1",
        "[\"mdt+jwt\"]",
    ] {
        let h = format!(r#"{{"alg":"EdDSA","typ":{typ},"kid":"{k1}"}}"#);
        v.push(reject(
            format!("A8 typ {typ}"),
            jws(&h, &p, &fx.k1),
            BadHeader,
        ));
    }

    // A9: headers that are not a JSON object.
    for h in [
        &b"[]"[..],
        b"null",
        b"\"x\"",
        b"1",
        b"true",
        b"{",
        b"{}x",
        b"{\"alg\":\"EdDSA\"",
        b"\xef\xbb\xbf{}",
        b"\xff\xfe",
    ] {
        let input = format!("{}.{}", b64(h), b64(&p));
        let sig = fx.k1.sign(input.as_bytes());
        v.push(reject(
            format!("A9 header {:?}", String::from_utf8_lossy(h)),
            format!("{input}.{}", b64(sig)),
            Malformed,
        ));
    }
    v.push(reject(
        "A9 empty header",
        format!(".{}.{}", b64(&p), b64([0u8; 64])),
        Malformed,
    ));

    // A10: a 64 KiB header segment, refused on size alone.
    let pad = "a".repeat(64 * 1024);
    let big = header_with(fx, &format!(r#""pad":"{pad}""#));
    v.push(reject(
        "A10 64 KiB header signed by k1",
        jws(&big, &p, &fx.k1),
        TooLarge,
    ));
    v.push(reject(
        "A10 64 KiB header segment of one letter",
        format!("{}.{}.{}", "e".repeat(64 * 1024), b64(&p), b64([0u8; 64])),
        TooLarge,
    ));

    // A11: positive controls: the signature covers the exact header bytes, whatever
    // their whitespace and member order.
    for h in [
        format!(r#"{{ "kid" : "{k1}" , "typ" : "mdt+jwt" , "alg" : "EdDSA" }}"#),
        format!("{{\n\t\"typ\":\"mdt+jwt\",\r\n\"kid\":\"{k1}\",\n\"alg\":\"EdDSA\"\n}}\n"),
        format!(r#"  {{"kid":"{k1}","alg":"EdDSA","typ":"mdt+jwt"}}"#),
    ] {
        v.push(accept(
            format!("A11 header {:?}", &h[..h.len().min(30)]),
            jws(&h, &p, &fx.k1),
        ));
    }
    let spaced_payload = format!(
        "{{ \"jti\" : {},\n \"exp\" : {}, \"nbf\":{}, \"iat\":{}, \"aud\":{}, \"iss\":{} }}",
        js(&b64(random_bytes(16))),
        NOW + 60,
        NOW,
        NOW,
        js(AUD),
        js(ISS)
    );
    v.push(accept(
        "A11 payload with whitespace and reordered members",
        jws(&header(k1), &spaced_payload, &fx.k1),
    ));
    v
}

#[test]
fn a_header() {
    let fx = Fixture::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    let cases = section_a(&fx, &url);
    run_cases(&fx, &cases);
    // A6: nothing ever fetched a key from the URLs in the headers.
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the jku/x5u listener saw a connection: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// B. kid and the key ring (tokens)
// ---------------------------------------------------------------------------------------

fn section_b(fx: &Fixture) -> Vec<Case> {
    let mut v = Vec::new();
    let p = Payload::good().json();
    let k1 = fx.k1.kid();

    v.push(accept("B T0 signed by the active key", good_token(&fx.k1)));

    // B12: no kid is never "try every key".
    for signer in [&fx.k1, &fx.k0, &fx.katt] {
        v.push(reject(
            format!("B12 no kid, signed by {}", &signer.kid()[..8]),
            jws(r#"{"alg":"EdDSA","typ":"mdt+jwt"}"#, &p, signer),
            UnknownKey,
        ));
    }
    for kid in ["null", "1", "[]", "{}", "true"] {
        v.push(reject(
            format!("B12 kid {kid} (not a string)"),
            jws(
                &format!(r#"{{"alg":"EdDSA","typ":"mdt+jwt","kid":{kid}}}"#),
                &p,
                &fx.k1,
            ),
            BadHeader,
        ));
    }

    // B14: kids that look like paths or near-misses of a ring kid.
    for kid in [
        "../../etc/passwd".to_owned(),
        "/dev/null".to_owned(),
        String::new(),
        ".".to_owned(),
        "keyring.json".to_owned(),
        format!("private/{k1}.pem"),
        format!("../private/{k1}"),
        format!("{k1}.pem"),
        format!("{k1} "),
        format!(" {k1}"),
        format!("{k1}\u{0}"),
        k1.to_uppercase(),
        k1[..42].to_owned(),
        format!("{k1}="),
        "file:///etc/passwd".to_owned(),
        "*".to_owned(),
    ] {
        v.push(reject(
            format!("B14 kid {kid:?}"),
            jws(&header(&js(&kid)[1..js(&kid).len() - 1]), &p, &fx.k1),
            UnknownKey,
        ));
    }

    // B15: a ring kid with another key's signature.
    for (kid, signer, what) in [
        (fx.k0.kid(), &fx.k1, "kid k0 signed by k1"),
        (k1, &fx.k0, "kid k1 signed by k0"),
        (k1, &fx.katt, "kid k1 signed by katt"),
        (fx.k0.kid(), &fx.katt, "kid k0 signed by katt"),
    ] {
        v.push(reject(
            format!("B15 {what}"),
            jws(&header(kid), &p, signer),
            BadSignature,
        ));
    }

    // B16: removed, revoked and retired keys.
    let before_retirement = Payload::issued(K0_RETIRED_AT - DAY, Some(NOW + DAY)).json();
    let by_k0 = jws(&header(fx.k0.kid()), &before_retirement, &fx.k0);
    v.push(accept(
        "B16 control: k0 token issued before k0 retired",
        by_k0.clone(),
    ));
    v.push(reject("B16 k0 token, k0 pruned", by_k0, UnknownKey).on(RingSel::Pruned));
    v.push(
        accept(
            "B16 control: k1 token on the pruned ring",
            good_token(&fx.k1),
        )
        .on(RingSel::Pruned),
    );
    v.push(accept(
        "B16 k0 token issued exactly when k0 retired",
        jws(
            &header(fx.k0.kid()),
            &Payload::issued(K0_RETIRED_AT, Some(NOW + DAY)).json(),
            &fx.k0,
        ),
    ));
    for iat in [K0_RETIRED_AT + 1, NOW - 600, NOW] {
        v.push(reject(
            format!("B16 k0 token issued at retired_at{:+}", iat - K0_RETIRED_AT),
            jws(
                &header(fx.k0.kid()),
                &Payload::issued(iat, Some(NOW + DAY)).json(),
                &fx.k0,
            ),
            KeyRevoked,
        ));
    }
    let old = Payload::issued(KR_RETIRED_AT - DAY, Some(NOW + DAY)).json();
    v.push(reject(
        "B16 revoked key kr",
        jws(&header(fx.kr.kid()), &old, &fx.kr),
        KeyRevoked,
    ));
    v.push(reject(
        "B16 revoked key kr, never-expiring token",
        jws(
            &header(fx.kr.kid()),
            &Payload::issued(KR_RETIRED_AT - DAY, None).json(),
            &fx.kr,
        ),
        KeyRevoked,
    ));
    v.push(reject(
        "B16 kid kr signed by katt",
        jws(&header(fx.kr.kid()), &old, &fx.katt),
        KeyRevoked,
    ));
    v.push(reject(
        "B16 a key never in the ring",
        good_token(&fx.katt),
        UnknownKey,
    ));

    // B18: a signature of identity ‖ zero under a good ring key.
    let mut identity_zero = [0u8; 64];
    identity_zero[0] = 1;
    v.push(reject(
        "B18 signature identity || 0",
        assemble(header(k1).as_bytes(), p.as_bytes(), &identity_zero),
        BadSignature,
    ));
    v
}

#[test]
fn b_kid_and_ring_tokens() {
    let fx = Fixture::new();
    run_cases(&fx, &section_b(&fx));
}

/// B13: 10 000 distinct random kids are all unknown, and refusing one costs less than
/// verifying a good token (no signature work, no ring reload).
#[test]
fn b13_ten_thousand_random_kids() {
    let fx = Fixture::new();
    let verifier = fx.verifier();
    let p = b64(Payload::good().json());
    let mut kids = std::collections::HashSet::new();
    while kids.len() < 10_000 {
        let n = 1 + random_bytes(1)[0] as usize % 48;
        kids.insert(b64(random_bytes(n)));
    }
    let tokens: Vec<String> = kids
        .iter()
        .map(|kid| {
            let h = b64(header(kid));
            // A structurally valid signature; its key is not the point.
            format!("{h}.{p}.{}", b64(random_bytes(64)))
        })
        .collect();
    // Refused at the key lookup: no signature is ever checked for them.
    let before = signature_checks_on_this_thread();
    for t in &tokens {
        let r = verifier.verify(t.as_bytes(), NOW).unwrap_err();
        assert_eq!(r.reason, UnknownKey, "{t}");
        assert_eq!(r.kid, None, "an unknown kid is not repeated back");
    }
    assert_eq!(
        signature_checks_on_this_thread(),
        before,
        "an unknown kid cost a signature check"
    );
    let good = good_token(&fx.k1);
    verifier.verify(good.as_bytes(), NOW).unwrap();
    assert_eq!(signature_checks_on_this_thread(), before + 1);

    let dir = KeysDir::new(&fx.ring);
    for t in tokens.iter().take(5) {
        assert_cli_verdict("B13 (CLI)", &dir.verify(t.as_bytes()), Some(UnknownKey));
    }
}

// ---------------------------------------------------------------------------------------
// B17–20. Rings that must be refused as a whole
// ---------------------------------------------------------------------------------------

fn ring_value(ring: &KeyRing) -> serde_json::Value {
    serde_json::from_str(&ring.to_json()).unwrap()
}

/// The entry of `key` in the main ring's JSON.
fn entry(fx: &Fixture, key: &TestKey) -> serde_json::Value {
    ring_value(&fx.ring)["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == key.kid())
        .unwrap()
        .clone()
}

fn with_x(mut e: serde_json::Value, x: &str, kid: &str) -> serde_json::Value {
    e["x"] = x.into();
    e["kid"] = kid.into();
    e
}

fn bad_rings(fx: &Fixture) -> Vec<(String, Vec<u8>)> {
    let good = ring_value(&fx.ring);
    let k1e = entry(fx, &fx.k1);
    let k0e = entry(fx, &fx.k0);
    let mut v: Vec<(String, Vec<u8>)> = Vec::new();
    let mut keys_ring = |id: &str, keys: Vec<serde_json::Value>| {
        let mut r = good.clone();
        r["keys"] = keys.into();
        v.push((id.to_owned(), r.to_string().into_bytes()));
    };

    // B17: one kid twice, or a kid that is not the key's thumbprint.
    keys_ring(
        "B17 k1 listed twice",
        vec![k1e.clone(), k1e.clone(), k0e.clone()],
    );
    let mut k1_retired = k1e.clone();
    k1_retired["status"] = "retired".into();
    k1_retired["retired_at"] = k0e["retired_at"].clone();
    keys_ring("B17 k1 active and retired", vec![k1e.clone(), k1_retired]);
    let mut k0_as_k1 = k0e.clone();
    k0_as_k1["kid"] = fx.k1.kid().into();
    keys_ring("B17 k0's x under k1's kid", vec![k1e.clone(), k0_as_k1]);
    let mut k1_as_k0 = k1e.clone();
    k1_as_k0["kid"] = fx.k0.kid().into();
    keys_ring("B17 k1's x under k0's kid", vec![k1_as_k0, k0e.clone()]);
    for kid in [
        "k1".to_owned(),
        String::new(),
        fx.k1.kid().to_uppercase(),
        format!("{}=", fx.k1.kid()),
        // SHA-256 of the JWK with members out of RFC 7638 order.
        b64(<sha2::Sha256 as sha2::Digest>::digest(format!(
            r#"{{"kty":"OKP","crv":"Ed25519","x":"{}"}}"#,
            fx.k1.x()
        ))),
    ] {
        let mut e = k1e.clone();
        e["kid"] = kid.clone().into();
        keys_ring(&format!("B17 kid {kid:?} is not the thumbprint"), vec![e]);
    }
    {
        let mut r = good.clone();
        r["revoked_keys"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"kid": fx.k1.kid(), "revoked_at": "2026-01-01T00:00:00Z"}));
        v.push((
            "B17 the active kid also revoked".into(),
            r.to_string().into_bytes(),
        ));
    }

    // B18: weak keys, each named by its own thumbprint so only the point is wrong.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    for (what, x) in [("identity", identity), ("all-zero", [0u8; 32])] {
        let e = with_x(k1e.clone(), &b64(x), &thumbprint_of(&x));
        v.push((format!("B18 {what} key as the active key"), {
            let mut r = good.clone();
            r["keys"] = vec![e.clone()].into();
            r.to_string().into_bytes()
        }));
        let mut retired = with_x(k0e.clone(), &b64(x), &thumbprint_of(&x));
        retired["status"] = "retired".into();
        let mut r = good.clone();
        r["keys"] = vec![k1e.clone(), retired].into();
        v.push((
            format!("B18 {what} key as a retired key"),
            r.to_string().into_bytes(),
        ));
    }

    // B19: wrong lengths and wrong kinds of key material.
    let mut keys_x = |id: String, x: String, kid: String| {
        let mut r = good.clone();
        r["keys"] = vec![with_x(k1e.clone(), &x, &kid), k0e.clone()].into();
        v.push((id, r.to_string().into_bytes()));
    };
    for len in [0usize, 31, 33, 64] {
        let bytes = random_bytes(len);
        keys_x(
            format!("B19 {len}-byte key"),
            b64(&bytes),
            thumbprint_of(&bytes),
        );
    }
    let k1x = fx.k1.x();
    let k1kid = fx.k1.kid().to_owned();
    keys_x(
        "B19 private PEM as x".into(),
        fx.k1.private_pem(),
        k1kid.clone(),
    );
    keys_x(
        "B19 public PEM as x".into(),
        fx.k1.public_pem(),
        k1kid.clone(),
    );
    keys_x(
        "B19 x with = padding".into(),
        format!("{k1x}="),
        k1kid.clone(),
    );
    keys_x(
        "B19 x in standard base64".into(),
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            fx.k1.raw_public(),
        ),
        k1kid.clone(),
    );
    keys_x(
        "B19 x in hex".into(),
        hex::encode(fx.k1.raw_public()),
        k1kid.clone(),
    );
    keys_x(
        "B19 x with a space".into(),
        format!(" {k1x}"),
        k1kid.clone(),
    );
    {
        // x whose unused trailing bits are set: a second spelling of the same 32 bytes.
        let last = k1x.chars().last().unwrap();
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let idx = alphabet.find(last).unwrap();
        let mangled = alphabet.chars().nth(idx | 1).unwrap();
        if mangled != last {
            let mut x = k1x.clone();
            x.pop();
            x.push(mangled);
            keys_x("B19 x with non-zero trailing bits".into(), x, k1kid.clone());
        }
    }
    let mut member = |id: &str, name: &str, value: serde_json::Value| {
        let mut e = k1e.clone();
        e[name] = value;
        let mut r = good.clone();
        r["keys"] = vec![e, k0e.clone()].into();
        v.push((id.to_owned(), r.to_string().into_bytes()));
    };
    member(
        "B19 private JWK (d present)",
        "d",
        b64(random_bytes(32)).into(),
    );
    member("B19 kty EC", "kty", "EC".into());
    member("B19 kty oct", "kty", "oct".into());
    member("B19 crv X25519", "crv", "X25519".into());
    member("B19 crv Ed448", "crv", "Ed448".into());
    member("B19 alg HS256", "alg", "HS256".into());
    member("B19 alg none", "alg", "none".into());
    member("B19 use enc", "use", "enc".into());
    member("B19 x a number", "x", 1.into());
    member("B19 x null", "x", serde_json::Value::Null);
    member("B19 status unknown", "status", "compromised".into());
    member(
        "B19 active key with retired_at",
        "retired_at",
        "2026-01-01T00:00:00Z".into(),
    );

    // B20: nothing usable at all.
    for (id, text) in [
        ("B20 empty file", &b""[..]),
        ("B20 whitespace", b" \n"),
        ("B20 garbage", b"garbage"),
        ("B20 null", b"null"),
        ("B20 array", b"[]"),
        ("B20 empty object", b"{}"),
        ("B20 not UTF-8", b"\xff\xfe{\"keys\":[]}"),
        ("B20 a bare JWK set", br#"{"keys":[]}"#),
    ] {
        v.push((id.to_owned(), text.to_vec()));
    }
    let text = fx.ring.to_json();
    v.push((
        "B20 truncated".into(),
        text.as_bytes()[..text.len() / 2].to_vec(),
    ));
    v.push((
        "B20 byte-order mark".into(),
        format!("\u{feff}{text}").into_bytes(),
    ));
    v.push((
        "B20 duplicate top-level member".into(),
        text.replacen("\"issuer\"", "\"issuer\": \"x\", \"issuer\"", 1)
            .into_bytes(),
    ));
    keys_ring_plain(&mut v, &good, "B20 zero keys", vec![]);
    let mut k1_retired = k1e.clone();
    k1_retired["status"] = "retired".into();
    k1_retired["retired_at"] = k0e["retired_at"].clone();
    keys_ring_plain(
        &mut v,
        &good,
        "B20 no active key",
        vec![k1_retired, k0e.clone()],
    );
    let mut k0_active = k0e.clone();
    k0_active["status"] = "active".into();
    k0_active["retired_at"] = serde_json::Value::Null;
    keys_ring_plain(
        &mut v,
        &good,
        "B20 two active keys",
        vec![k1e.clone(), k0_active],
    );
    for member in ["issuer", "audience"] {
        let mut r = good.clone();
        r[member] = "".into();
        v.push((format!("B20 empty {member}"), r.to_string().into_bytes()));
        let mut r = good.clone();
        r.as_object_mut().unwrap().remove(member);
        v.push((format!("B20 no {member}"), r.to_string().into_bytes()));
    }
    v
}

fn keys_ring_plain(
    v: &mut Vec<(String, Vec<u8>)>,
    good: &serde_json::Value,
    id: &str,
    keys: Vec<serde_json::Value>,
) {
    let mut r = good.clone();
    r["keys"] = keys.into();
    v.push((id.to_owned(), r.to_string().into_bytes()));
}

/// B17–B20: every such ring is refused by the loader, and `verify` exits 3 naming the
/// file instead of judging a token that the good ring would accept.
#[test]
fn b17_b20_rings_refused() {
    let fx = Fixture::new();
    // The same edits applied to the good ring must be what breaks it: it loads.
    let good = fx.ring.to_json();
    assert!(KeyRing::from_json(&good).is_ok());
    let token = good_token(&fx.k1);
    let rings = bad_rings(&fx);
    let mut failures = Vec::new();
    for (id, bytes) in &rings {
        if let Ok(text) = std::str::from_utf8(bytes)
            && let Ok(ring) = KeyRing::from_json(text)
        {
            failures.push(format!("{id}: loaded with {} keys", ring.keys().len()));
        }
    }
    assert!(
        failures.is_empty(),
        "rings accepted:\n{}",
        failures.join("\n")
    );

    let work = tempfile::tempdir().unwrap();
    let empty = work.path().join("empty-keys");
    std::fs::create_dir(&empty).unwrap();
    let at = rfc3339(NOW);
    let check = |id: &str, run: &Run, file: &std::path::Path, failures: &mut Vec<String>| {
        let name = file.display().to_string();
        if run.code != 3 || !run.stderr.contains(&name) || run.stdout.contains("\"valid\"") {
            failures.push(format!("{id}: expected exit 3 naming {name}, got {run:?}"));
        }
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = rings
            .chunks(rings.len().div_ceil(2))
            .enumerate()
            .map(|(n, chunk)| {
                let (work, empty, at, token, check) = (&work, &empty, &at, &token, &check);
                s.spawn(move || {
                    let mut failures = Vec::new();
                    for (i, (id, bytes)) in chunk.iter().enumerate() {
                        // Through --keyring FILE.
                        let file = work.path().join(format!("ring-{n}-{i}.json"));
                        std::fs::write(&file, bytes).unwrap();
                        let out = run(
                            &[
                                "--keys-dir",
                                empty.to_str().unwrap(),
                                "verify",
                                "-",
                                "--keyring",
                                file.to_str().unwrap(),
                                "--json",
                                "--at",
                                at,
                            ],
                            token.as_bytes(),
                            &[],
                        );
                        check(&format!("{id} (--keyring)"), &out, &file, &mut failures);
                        // As the keys directory's keyring.json.
                        let dir = work.path().join(format!("keys-{n}-{i}"));
                        std::fs::create_dir(&dir).unwrap();
                        let file = dir.join("keyring.json");
                        std::fs::write(&file, bytes).unwrap();
                        let out = run(
                            &[
                                "--keys-dir",
                                dir.to_str().unwrap(),
                                "verify",
                                "-",
                                "--json",
                                "--at",
                                at,
                            ],
                            token.as_bytes(),
                            &[],
                        );
                        check(&format!("{id} (--keys-dir)"), &out, &file, &mut failures);
                    }
                    failures
                })
            })
            .collect();
        for h in handles {
            failures.extend(h.join().unwrap());
        }
    });

    // B20: a missing ring, and a directory where the ring file should be.
    let missing = work.path().join("no-such-ring.json");
    let r = run(
        &[
            "--keys-dir",
            empty.to_str().unwrap(),
            "verify",
            "-",
            "--keyring",
            missing.to_str().unwrap(),
            "--json",
            "--at",
            &at,
        ],
        token.as_bytes(),
        &[],
    );
    check("B20 --keyring missing", &r, &missing, &mut failures);
    let r = run(
        &[
            "--keys-dir",
            empty.to_str().unwrap(),
            "verify",
            "-",
            "--json",
            "--at",
            &at,
        ],
        token.as_bytes(),
        &[],
    );
    check(
        "B20 keys dir without keyring.json",
        &r,
        &empty.join("keyring.json"),
        &mut failures,
    );
    let as_dir = work.path().join("dir-ring");
    std::fs::create_dir_all(as_dir.join("keyring.json")).unwrap();
    let r = run(
        &[
            "--keys-dir",
            as_dir.to_str().unwrap(),
            "verify",
            "-",
            "--json",
            "--at",
            &at,
        ],
        token.as_bytes(),
        &[],
    );
    check(
        "B20 keyring.json is a directory",
        &r,
        &as_dir.join("keyring.json"),
        &mut failures,
    );
    // Unreadable: only meaningful where permissions bind this user.
    let locked = work.path().join("locked.json");
    std::fs::write(&locked, &good).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&locked).is_err() {
        let r = run(
            &[
                "--keys-dir",
                empty.to_str().unwrap(),
                "verify",
                "-",
                "--keyring",
                locked.to_str().unwrap(),
                "--json",
                "--at",
                &at,
            ],
            token.as_bytes(),
            &[],
        );
        check("B20 unreadable ring", &r, &locked, &mut failures);
    }
    // Control: the good ring through the same two routes accepts the token.
    let good_file = work.path().join("good.json");
    std::fs::write(&good_file, &good).unwrap();
    let r = run(
        &[
            "--keys-dir",
            empty.to_str().unwrap(),
            "verify",
            "-",
            "--keyring",
            good_file.to_str().unwrap(),
            "--json",
            "--at",
            &at,
        ],
        token.as_bytes(),
        &[],
    );
    assert_cli_verdict("B control --keyring good", &r, None);
    assert_cli_verdict(
        "B control --keys-dir good",
        &KeysDir::new(&fx.ring).verify(token.as_bytes()),
        None,
    );
    assert!(
        failures.is_empty(),
        "{} ring cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// B18: even a verifier handed the identity key directly (bypassing the loader) must not
/// accept identity ‖ zero; and the loader's key type refuses to be built from it.
#[test]
fn b18_identity_key_forced() {
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert!(mdtoken::key::PublicKey::from_bytes(&identity).is_err());
    assert!(mdtoken::key::PublicKey::from_bytes(&[0u8; 32]).is_err());
    let forced = ed25519_dalek::VerifyingKey::from_bytes(&identity).unwrap();
    let mut sig = [0u8; 64];
    sig[0] = 1;
    for msg in [&b""[..], b"any claims at all", b"x.y"] {
        assert!(
            forced
                .verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&sig))
                .is_err()
        );
    }
}

// ---------------------------------------------------------------------------------------
// C. Signature
// ---------------------------------------------------------------------------------------

/// The group order L, little-endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

fn add_le(a: &[u8], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        let s = *x as u16 + *y as u16 + carry;
        *o = s as u8;
        carry = s >> 8;
    }
    assert_eq!(carry, 0);
    out
}

fn split3(token: &str) -> (&str, &str, &str) {
    let mut it = token.split('.');
    (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
}

fn section_c(fx: &Fixture) -> Vec<Case> {
    let mut v = Vec::new();
    let t0 = good_token(&fx.k1);
    let (h, p, s) = split3(&t0);
    let sig = unb64(s);

    // C21: S + L and S + 2L: the same scalar, a non-canonical spelling.
    let mut l2 = [0u8; 32];
    l2.copy_from_slice(&add_le(&L, &L));
    for (what, add) in [("L", L), ("2L", l2)] {
        let mut forged = sig.clone();
        forged[32..].copy_from_slice(&add_le(&sig[32..], &add));
        v.push(reject(
            format!("C21 S + {what}"),
            format!("{h}.{p}.{}", b64(&forged)),
            BadSignature,
        ));
    }

    // C22: constant signatures, and R of small order with S = 0.
    for (what, forged) in [
        ("all-zero", [0u8; 64]),
        ("all-0xff", [0xffu8; 64]),
        ("R = k1's own key, S = 0", {
            let mut f = [0u8; 64];
            f[..32].copy_from_slice(&fx.k1.raw_public());
            f
        }),
    ] {
        v.push(reject(
            format!("C22 {what} signature"),
            format!("{h}.{p}.{}", b64(forged)),
            BadSignature,
        ));
    }

    // C23: signatures of the wrong length.
    const EITHER: &[Reason] = &[BadSignature, Malformed];
    for len in [0usize, 1, 32, 63, 65, 96, 128] {
        let body = if len <= 64 {
            sig[..len].to_vec()
        } else {
            let mut b = sig.clone();
            b.extend(random_bytes(len - 64));
            b
        };
        v.push(case(
            format!("C23 {len}-byte signature"),
            format!("{h}.{p}.{}", b64(body)),
            Expect::OneOf(EITHER),
        ));
    }

    // C25: the header or payload re-encoded with the old signature kept.
    let header_json = String::from_utf8(unb64(h)).unwrap();
    for re in [
        header_json.replace(',', ", "),
        format!(" {header_json}"),
        format!("{header_json}\n"),
        header_json.replace(":", " : "),
    ] {
        v.push(reject(
            format!("C25 header re-encoded {re:?}"),
            format!("{}.{p}.{s}", b64(&re)),
            BadSignature,
        ));
    }
    let payload_json = String::from_utf8(unb64(p)).unwrap();
    v.push(reject(
        "C25 payload re-encoded with a space",
        format!("{h}.{}.{s}", b64(payload_json.replace(',', ", "))),
        BadSignature,
    ));
    v.push(reject(
        "C25 signature from another token",
        format!("{h}.{p}.{}", split3(&good_token(&fx.k1)).2),
        BadSignature,
    ));
    v.push(accept("C control: T0", t0.clone()));
    v
}

#[test]
fn c_signature() {
    let fx = Fixture::new();
    run_cases(&fx, &section_c(&fx));
}

/// C24: each of the 512 signature bits flipped in turn, and every character of the header
/// and payload changed in turn: all rejected.
#[test]
fn c24_every_bit_and_character() {
    let fx = Fixture::new();
    let t0 = good_token(&fx.k1);
    let (h, p, s) = split3(&t0);
    let sig = unb64(s);
    let mut cases = Vec::new();
    let cli_bits = [0usize, 7, 100, 255, 256, 300, 507, 511];
    for bit in 0..512 {
        let mut forged = sig.clone();
        forged[bit / 8] ^= 1 << (bit % 8);
        let c = reject(
            format!("C24 signature bit {bit}"),
            format!("{h}.{p}.{}", b64(&forged)),
            BadSignature,
        );
        cases.push(if cli_bits.contains(&bit) {
            c
        } else {
            c.lib_only()
        });
    }
    let other = |c: u8| if c == b'A' { b'B' } else { b'A' };
    for i in 0..h.len() {
        let mut b = h.as_bytes().to_vec();
        b[i] = other(b[i]);
        let c = case(
            format!("C24 header char {i}"),
            format!("{}.{p}.{s}", String::from_utf8(b).unwrap()),
            Expect::Rejected,
        );
        cases.push(if i % 20 == 0 { c } else { c.lib_only() });
    }
    for i in 0..p.len() {
        let mut b = p.as_bytes().to_vec();
        b[i] = other(b[i]);
        let c = reject(
            format!("C24 payload char {i}"),
            format!("{h}.{}.{s}", String::from_utf8(b).unwrap()),
            BadSignature,
        );
        cases.push(if i % 40 == 0 { c } else { c.lib_only() });
    }
    run_cases(&fx, &cases);
}

// ---------------------------------------------------------------------------------------
// D. Encoding
// ---------------------------------------------------------------------------------------

const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The segment with its last character's unused low bits set, if it has any.
fn noncanonical(seg: &str) -> Option<String> {
    let spare_bits = match seg.len() % 4 {
        2 => 4,
        3 => 2,
        _ => return None,
    };
    let last = seg.chars().last()?;
    let idx = ALPHABET.find(last)?;
    let mangled = ALPHABET.chars().nth(idx | ((1 << spare_bits) - 1))?;
    let mut out = seg[..seg.len() - 1].to_owned();
    out.push(mangled);
    Some(out)
}

fn section_d(fx: &Fixture) -> Vec<Case> {
    let mut v = Vec::new();
    let t0 = good_token(&fx.k1);
    let (h, p, s) = split3(&t0);

    // D26: padding, and base64url with non-zero trailing bits.
    for (what, t) in [
        ("header", format!("{h}=.{p}.{s}")),
        ("payload", format!("{h}.{p}=.{s}")),
        ("signature", format!("{h}.{p}.{s}=")),
        ("signature ==", format!("{h}.{p}.{s}==")),
        ("every segment", format!("{h}=.{p}=.{s}=")),
    ] {
        v.push(reject(format!("D26 '=' on {what}"), t, Malformed));
    }
    // Make sure each segment has spare bits to abuse, whatever the random jti.
    let mut payload = Payload::good();
    let mut header_json = header(fx.k1.kid());
    while b64(&header_json).len().is_multiple_of(4) {
        header_json.insert(1, ' ');
    }
    while b64(payload.json()).len().is_multiple_of(4) {
        let name = format!("{}x", &payload.0.last().unwrap().1.trim_matches('"'));
        payload = payload.set("name", &js(&name));
    }
    let (hb, pb) = (b64(&header_json), b64(payload.json()));
    let signed = jws_encoded(&hb, &pb, &fx.k1);
    v.push(accept("D26 control: the padded-free token", signed.clone()));
    let nc_h = noncanonical(&hb).unwrap();
    v.push(reject(
        "D26 header with non-zero trailing bits, signed over them",
        jws_encoded(&nc_h, &pb, &fx.k1),
        Malformed,
    ));
    let nc_p = noncanonical(&pb).unwrap();
    v.push(reject(
        "D26 payload with non-zero trailing bits, signed over them",
        jws_encoded(&hb, &nc_p, &fx.k1),
        Malformed,
    ));
    let sig_seg = split3(&signed).2;
    v.push(reject(
        "D26 signature with non-zero trailing bits",
        format!("{hb}.{pb}.{}", noncanonical(sig_seg).unwrap()),
        Malformed,
    ));

    // D27: the standard alphabet in place of the URL-safe one.
    for (from, to) in [('-', '+'), ('_', '/')] {
        if let Some(i) = t0.find(from) {
            let mut t = t0.clone();
            t.replace_range(i..i + 1, &to.to_string());
            v.push(reject(format!("D27 {to} in place of {from}"), t, Malformed));
        }
        for (what, at) in [
            ("header", 3),
            ("payload", h.len() + 5),
            ("signature", t0.len() - 2),
        ] {
            let mut t = t0.clone();
            t.replace_range(at..at + 1, &to.to_string());
            v.push(reject(format!("D27 {to} in the {what}"), t, Malformed));
        }
    }

    // D28: whitespace and quoting around or inside the token.
    for (what, t) in [
        ("leading space", format!(" {t0}")),
        ("trailing space", format!("{t0} ")),
        ("space after a dot", format!("{h}. {p}.{s}")),
        (
            "space inside the payload",
            format!("{h}.{} {}.{s}", &p[..10], &p[10..]),
        ),
        ("tab", format!("{h}.{p}\t.{s}")),
        ("double quotes", format!("\"{t0}\"")),
        ("single quotes", format!("'{t0}'")),
        ("trailing CRLF", format!("{t0}\r\n")),
        ("two trailing newlines", format!("{t0}\n\n")),
        ("leading newline", format!("\n{t0}")),
        ("Bearer prefix", format!("Bearer {t0}")),
    ] {
        v.push(reject(format!("D28 {what}"), t, Malformed));
    }
    // The library takes the exact bytes; the CLI's one-newline rule is tested apart.
    v.push(
        reject(
            "D28 one trailing newline (library)",
            format!("{t0}\n"),
            Malformed,
        )
        .lib_only(),
    );

    // D29: wrong segment counts and empty segments.
    for (what, t, expect) in [
        (
            "two segments",
            format!("{h}.{p}"),
            Expect::Reject(Malformed),
        ),
        (
            "four segments",
            format!("{h}.{p}.{s}.{s}"),
            Expect::Reject(Malformed),
        ),
        (
            "five segments",
            format!("{h}.{p}.{s}.{h}.{p}"),
            Expect::Reject(Malformed),
        ),
        ("trailing dot", format!("{t0}."), Expect::Reject(Malformed)),
        ("leading dot", format!(".{t0}"), Expect::Reject(Malformed)),
        (
            "empty header",
            format!(".{p}.{s}"),
            Expect::Reject(Malformed),
        ),
        (
            "empty payload",
            format!("{h}..{s}"),
            Expect::Reject(Malformed),
        ),
        (
            "empty header and payload",
            format!("..{s}"),
            Expect::Reject(Malformed),
        ),
        (
            "empty signature",
            format!("{h}.{p}."),
            Expect::OneOf(&[BadSignature, Malformed]),
        ),
        ("only a signature", s.to_owned(), Expect::Reject(Malformed)),
    ] {
        v.push(case(format!("D29 {what}"), t, expect));
    }

    // D30: empty and dot-only inputs.
    for t in ["", ".", "..", "...", "....", ".a.", "a..", "..a"] {
        v.push(reject(format!("D30 {t:?}"), t, Malformed));
    }
    v.push(reject(
        "D30 a million dots",
        ".".repeat(1_000_000),
        Malformed,
    ));
    v.push(reject(
        "D30 a dot after the size cap",
        format!("{}.", "a".repeat(5000)),
        TooLarge,
    ));

    // D31: non-ASCII and NUL anywhere.
    let intruders: [&[u8]; 8] = [
        b"\0",
        b"\x80",
        b"\xff",
        "é".as_bytes(),
        "\u{200b}".as_bytes(),
        "\u{ff0e}".as_bytes(),
        "Ａ".as_bytes(),
        b"\x7f",
    ];
    let positions = [
        0,
        5,
        h.len(),
        h.len() + 1 + p.len() / 2,
        t0.len() - 1,
        t0.len(),
    ];
    for (n, bytes) in intruders.into_iter().enumerate() {
        for at in positions {
            let mut t = t0.as_bytes().to_vec();
            t.splice(at..at, bytes.iter().copied());
            let c = reject(format!("D31 {bytes:x?} at {at}"), t, Malformed);
            // The CLI sees each intruder once, at a different place each time.
            v.push(if at == positions[n % positions.len()] {
                c
            } else {
                c.lib_only()
            });
        }
    }
    for dot in ["\u{2024}", "\u{ff0e}", "\u{3002}"] {
        v.push(reject(
            format!("D31 {dot:?} as the separator"),
            format!("{h}{dot}{p}{dot}{s}"),
            Malformed,
        ));
    }

    // D32: huge inputs, refused on size; the cap's edge.
    let mib = 1024 * 1024;
    for (what, n) in [("1 MiB", mib), ("16 MiB", 16 * mib)] {
        let mut t = format!("{h}.").into_bytes();
        t.resize(n - s.len() - 1, b'A');
        t.extend_from_slice(format!(".{s}").as_bytes());
        assert_eq!(t.len(), n);
        v.push(reject(format!("D32 {what} token"), t, TooLarge));
        v.push(reject(
            format!("D32 {what} of letters"),
            vec![b'a'; n],
            TooLarge,
        ));
    }
    let (at_cap, over_cap) = cap_tokens(fx);
    v.push(reject(
        "D32 exactly the cap: judged, not sized out",
        at_cap,
        InvalidClaims,
    ));
    v.push(reject("D32 one byte over the cap", over_cap, TooLarge));
    v
}

/// A token of exactly `MAX_TOKEN_LEN` bytes signed by k1 (refused only for its padding
/// claim), and the same plus one byte.
fn cap_tokens(fx: &Fixture) -> (String, String) {
    let cap = mdtoken::token::MAX_TOKEN_LEN;
    // base64url never has a length of 1 mod 4, so the header's length is varied too.
    for spaces in 0..4 {
        let hdr = format!("{}{}", " ".repeat(spaces), header(fx.k1.kid()));
        let payload = Payload::good();
        for pad in 0..cap {
            let p = payload.clone().set("pad", &js(&"p".repeat(pad))).json();
            let t = jws(&hdr, &p, &fx.k1);
            if t.len() == cap {
                let over = format!("{t}A");
                return (t, over);
            }
            if t.len() > cap {
                break;
            }
        }
    }
    panic!("could not build a token of exactly the cap");
}

#[test]
fn d_encoding() {
    let fx = Fixture::new();
    run_cases(&fx, &section_d(&fx));
}

/// D28: the CLI strips exactly one trailing newline from stdin and nothing else.
#[test]
fn d28_cli_strips_one_newline() {
    let fx = Fixture::new();
    let dir = KeysDir::new(&fx.ring);
    let t0 = good_token(&fx.k1);
    assert_cli_verdict(
        "D28 one newline",
        &dir.verify(format!("{t0}\n").as_bytes()),
        None,
    );
    for (what, t) in [
        ("two newlines", format!("{t0}\n\n")),
        ("CRLF", format!("{t0}\r\n")),
        ("leading newline", format!("\n{t0}")),
        ("newline and space", format!("{t0}\n ")),
        ("space and newline", format!("{t0} \n")),
    ] {
        assert_cli_verdict(
            &format!("D28 {what}"),
            &dir.verify(t.as_bytes()),
            Some(Malformed),
        );
    }
    // The newline is not counted against the cap, but nothing else is forgiven.
    let (at_cap, over_cap) = cap_tokens(&fx);
    assert_cli_verdict(
        "D28 cap-sized token plus newline",
        &dir.verify(format!("{at_cap}\n").as_bytes()),
        Some(InvalidClaims),
    );
    assert_cli_verdict(
        "D28 over-cap token plus newline",
        &dir.verify(format!("{over_cap}\n").as_bytes()),
        Some(TooLarge),
    );
}

/// Rejection is fast: inputs refused before signature work cost less than verifying a
/// good token, whatever their size (measured against each other in the same run).
#[test]
fn d_rejection_before_crypto_is_cheap() {
    let fx = Fixture::new();
    let verifier = fx.verifier();
    let good = good_token(&fx.k1);
    // What a refusal cost, counted rather than timed: signature checks made.
    let checks = |t: &[u8]| {
        let before = signature_checks_on_this_thread();
        let _ = std::hint::black_box(verifier.verify(std::hint::black_box(t), NOW));
        signature_checks_on_this_thread() - before
    };
    assert_eq!(
        checks(good.as_bytes()),
        1,
        "the control verifies a signature"
    );
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        ("16 MiB", vec![b'a'; 16 * 1024 * 1024]),
        ("a million dots", vec![b'.'; 1_000_000]),
        ("NUL", b"\0".to_vec()),
        (
            "64 KiB header",
            format!("{}.a.a", "e".repeat(64 * 1024)).into_bytes(),
        ),
        ("alg none", {
            let h = format!(
                r#"{{"alg":"none","typ":"mdt+jwt","kid":"{}"}}"#,
                fx.k1.kid()
            );
            format!("{}.{}.", b64(h), split3(&good).1).into_bytes()
        }),
        ("unknown kid", good_token(&fx.katt).into_bytes()),
    ];
    for (what, t) in &hostile {
        assert!(verifier.verify(t, NOW).is_err(), "{what} accepted");
        assert_eq!(checks(t), 0, "refusing {what} cost a signature check");
    }
}

// ---------------------------------------------------------------------------------------
// E. Claims
// ---------------------------------------------------------------------------------------

fn section_e(fx: &Fixture) -> Vec<Case> {
    let mut v = Vec::new();
    let hdr = header(fx.k1.kid());
    let signed = |p: &str| jws(&hdr, p, &fx.k1);
    let good = Payload::good();

    v.push(accept("E control: good claims", signed(&good.json())));
    v.push(accept(
        "E control: no exp (never expires)",
        signed(&good.clone().remove("exp").json()),
    ));
    v.push(accept(
        "E control: no name",
        signed(&good.clone().remove("name").json()),
    ));

    // E33: payloads that are not an object.
    let mut e33: Vec<Vec<u8>> = [
        "[]", "null", "1", "\"x\"", "true", "{", "{}x", "{}{}", "[{}]",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    e33.push(
        format!(
            r#"[{},{},{},{},{},"jti"]"#,
            js(ISS),
            js(AUD),
            NOW - 10,
            NOW - 10,
            NOW + 3600
        )
        .into_bytes(),
    );
    e33.push(format!("\u{feff}{}", good.json()).into_bytes());
    e33.push(b"\xff\xfe\xfd".to_vec());
    let mut bad_utf8 = good.json().into_bytes();
    let at = bad_utf8.len() - 3;
    bad_utf8[at] = 0xff;
    e33.push(bad_utf8);
    for p in e33 {
        let input = format!("{}.{}", b64(&hdr), b64(&p));
        let t = format!("{input}.{}", b64(fx.k1.sign(input.as_bytes())));
        v.push(reject(
            format!("E33 payload {:?}", String::from_utf8_lossy(&p)),
            t,
            Malformed,
        ));
    }

    // E34: duplicate members, either order, however spelt.
    for (name, first, second) in [
        ("exp", "1".to_owned(), (NOW + 3600).to_string()),
        ("exp", (NOW + 3600).to_string(), "1".to_owned()),
        ("nbf", (NOW + 7200).to_string(), (NOW - 10).to_string()),
        ("iss", js("https://evil.example"), js(ISS)),
        ("aud", js(AUD), js("other")),
        ("jti", js(REVOKED_JTI), js("fresh-jti-0000000000")),
        ("name", js("a"), js("b")),
    ] {
        let p = good.clone().set(name, &first).push(name, &second).json();
        v.push(reject(
            format!("E34 duplicate {name} {first} then {second}"),
            signed(&p),
            Malformed,
        ));
    }
    let escaped = good.clone().push("\\u0065xp", "1").json();
    // `push` quotes the name, so write the escape into the raw JSON by hand.
    let escaped = escaped.replace("\"\\\\u0065xp\"", "\"\\u0065xp\"");
    v.push(reject(
        "E34 duplicate exp spelt with an escape",
        signed(&escaped),
        Malformed,
    ));

    // E35: wrongly typed or out-of-range time claims.
    for claim in ["exp", "nbf", "iat"] {
        for raw in [
            format!("\"{}\"", NOW + 3600),
            "\"x\"".to_owned(),
            "null".to_owned(),
            "true".to_owned(),
            "{}".to_owned(),
            "[]".to_owned(),
            "-1".to_owned(),
            "1.5".to_owned(),
            format!("{}.0", NOW + 3600),
            "1e10".to_owned(),
            "253402300800".to_owned(),
            "9223372036854775808".to_owned(),
            "18446744073709551616".to_owned(),
            "1e400".to_owned(),
        ] {
            let c = reject(
                format!("E35 {claim} {raw}"),
                signed(&good.clone().set(claim, &raw).json()),
                InvalidClaims,
            );
            v.push(if claim == "exp" { c } else { c.lib_only() });
        }
    }

    // E36: nbf in the future, at and past the leeway.
    for (nbf, expect) in [
        (NOW + 3600, Some(TokenNotYetValid)),
        (NOW + LEEWAY + 1, Some(TokenNotYetValid)),
        (NOW + LEEWAY, None),
        (NOW + 1, None),
    ] {
        let p = good
            .clone()
            .set("iat", &nbf.to_string())
            .set("nbf", &nbf.to_string())
            .json();
        let id = format!("E36 nbf now{:+}", nbf - NOW);
        v.push(match expect {
            Some(r) => reject(id, signed(&p), r),
            None => accept(id, signed(&p)),
        });
    }

    // E37: exp at the edge of the leeway.
    for (exp, expect) in [
        (NOW - LEEWAY - 1, Some(TokenExpired)),
        (NOW - LEEWAY, Some(TokenExpired)),
        (NOW - LEEWAY + 1, None),
        (NOW - 1, None),
        (NOW, None),
        (0, Some(TokenExpired)),
    ] {
        let p = good
            .clone()
            .set("iat", &(exp.min(NOW) - 3600).max(0).to_string())
            .set("nbf", &(exp.min(NOW) - 3600).max(0).to_string())
            .set("exp", &exp.to_string())
            .json();
        let id = format!("E37 exp now{:+}", exp - NOW);
        v.push(match expect {
            Some(r) => reject(id, signed(&p), r),
            None => accept(id, signed(&p)),
        });
    }

    // E38: audience.
    v.push(case(
        "E38 aud missing",
        signed(&good.clone().remove("aud").json()),
        Expect::OneOf(&[WrongAudience, InvalidClaims]),
    ));
    for raw in [
        js(""),
        "[]".to_owned(),
        format!("[{}]", js(AUD)),
        format!("[{},{}]", js(AUD), js("other")),
        js("other-service"),
        js(&AUD.to_uppercase()),
        js(&format!("{AUD} ")),
        js(&format!("{AUD}\u{0}")),
        "null".to_owned(),
        "1".to_owned(),
        format!("{{\"aud\":{}}}", js(AUD)),
    ] {
        v.push(reject(
            format!("E38 aud {raw}"),
            signed(&good.clone().set("aud", &raw).json()),
            WrongAudience,
        ));
    }

    // E39: issuer, compared byte for byte.
    v.push(reject(
        "E39 iss missing",
        signed(&good.clone().remove("iss").json()),
        WrongIssuer,
    ));
    for raw in [
        js(&format!("{ISS}/")),
        js(&ISS.to_uppercase()),
        js(&ISS.replace("https", "http")),
        js(&format!(" {ISS}")),
        js(""),
        "null".to_owned(),
        format!("[{}]", js(ISS)),
        "1".to_owned(),
    ] {
        v.push(reject(
            format!("E39 iss {raw}"),
            signed(&good.clone().set("iss", &raw).json()),
            WrongIssuer,
        ));
    }

    // E40: jti.
    v.push(reject(
        "E40 jti missing",
        signed(&good.clone().remove("jti").json()),
        InvalidClaims,
    ));
    for raw in [
        js(""),
        "null".to_owned(),
        "1".to_owned(),
        "[]".to_owned(),
        js(&"j".repeat(129)),
    ] {
        v.push(reject(
            format!("E40 jti {raw:.20}"),
            signed(&good.clone().set("jti", &raw).json()),
            InvalidClaims,
        ));
    }
    v.push(accept(
        "E40 control: jti of 128 bytes",
        signed(&good.clone().set("jti", &js(&"j".repeat(128))).json()),
    ));

    // E41: a revoked token id, however long it has left.
    v.push(reject(
        "E41 revoked jti",
        signed(&good.clone().set("jti", &js(REVOKED_JTI)).json()),
        TokenRevoked,
    ));
    v.push(reject(
        "E41 revoked jti, no exp",
        signed(
            &good
                .clone()
                .set("jti", &js(REVOKED_JTI))
                .remove("exp")
                .json(),
        ),
        TokenRevoked,
    ));
    v.push(accept(
        "E41 control: a jti differing in case",
        signed(
            &good
                .clone()
                .set("jti", &js(&REVOKED_JTI.to_lowercase()))
                .json(),
        ),
    ));

    // Other claims are strictly typed too.
    for (what, p) in [
        ("unknown claim", good.clone().set("admin", "true")),
        ("unknown claim sub", good.clone().set("sub", &js("root"))),
        (
            "name of 65 characters",
            good.clone().set("name", &js(&"n".repeat(65))),
        ),
        ("name a number", good.clone().set("name", "1")),
        ("name null", good.clone().set("name", "null")),
        ("iat missing", good.clone().remove("iat")),
        ("nbf missing", good.clone().remove("nbf")),
    ] {
        v.push(reject(
            format!("E {what}"),
            signed(&p.json()),
            InvalidClaims,
        ));
    }
    v.push(accept(
        "E control: name of 64 non-ASCII characters",
        signed(&good.clone().set("name", &js(&"é".repeat(64))).json()),
    ));
    v
}

#[test]
fn e_claims() {
    let fx = Fixture::new();
    run_cases(&fx, &section_e(&fx));
}

/// E37: the leeway in force is the configured one, in the library and the CLI.
#[test]
fn e37_configured_leeway() {
    let fx = Fixture::new();
    let hdr = header(fx.k1.kid());
    let dir = KeysDir::new(&fx.ring);
    for leeway in [0i64, 300] {
        let verifier = Verifier::new(&fx.ring, leeway);
        let env = leeway.to_string();
        let env = [("MDTOKEN_LEEWAY_SECONDS", env.as_str())];
        for (exp, expect) in [
            (NOW - leeway - 1, Some(TokenExpired)),
            (NOW - leeway, Some(TokenExpired)),
            (NOW - leeway + 1, None),
        ] {
            let p = Payload::issued(NOW - 7200, Some(exp)).json();
            let t = jws(&hdr, &p, &fx.k1);
            let id = format!("E37 leeway {leeway}, exp now{:+}", exp - NOW);
            assert_eq!(
                verifier.verify(t.as_bytes(), NOW).err().map(|r| r.reason),
                expect,
                "{id}"
            );
            assert_cli_verdict(&id, &dir.verify_at(t.as_bytes(), NOW, &env), expect);
        }
        let nbf = NOW + leeway + 1;
        let t = jws(&hdr, &Payload::issued(nbf, None).json(), &fx.k1);
        assert_eq!(
            verifier.verify(t.as_bytes(), NOW).unwrap_err().reason,
            TokenNotYetValid
        );
        assert_cli_verdict(
            &format!("E36 leeway {leeway}"),
            &dir.verify_at(t.as_bytes(), NOW, &env),
            Some(TokenNotYetValid),
        );
    }
}
