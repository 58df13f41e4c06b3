//! The CLI (`mdtoken verify`) and the server (`POST /v1/activations`) give the same
//! verdict for the same bytes: one battery of tokens through both.

use std::process::Command;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, header};
use mdtoken::clock::FixedClock;
use mdtoken::config::Config;
use mdtoken::key::SecretKey;
use mdtoken::keyring::rfc3339;
use mdtoken::mint::{Expiry, Minter};
use mdtoken::server::{AppState, bootstrap, router};
use mdtoken::store::KeyStore;
use serde_json::{Value, json};
use tower::ServiceExt as _;

const NOW: i64 = 1_796_292_000; // 2026-12-03T10:00:00Z

fn flip_last(token: &str) -> String {
    let mut b = token.as_bytes().to_vec();
    let i = b.len() - 2;
    b[i] = if b[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(b).unwrap()
}

fn cli_verdict(keys: &std::path::Path, token: &str, at: i64) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mdtoken"))
        .arg("--keys-dir")
        .arg(keys)
        .args(["verify", "--json", "--at", &rfc3339(at), "--", token])
        .env_remove("MDTOKEN_CONFIG")
        .output()
        .unwrap();
    let code = out.status.code().unwrap();
    assert!(
        code == 0 || code == 1,
        "exit {code}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    if v["valid"] == true {
        "accepted".into()
    } else {
        v["reason"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn cli_and_http_agree_on_every_token() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let config = Config::default();
    bootstrap(&keys, &config, NOW).unwrap();
    let store = KeyStore::new(&keys);
    let valid = store
        .mint(Some("ok"), Expiry::At(NOW + 3600), NOW)
        .unwrap()
        .token;
    let short = store.mint(None, Expiry::At(NOW + 10), NOW).unwrap().token;
    let never = store.mint(None, Expiry::Never, NOW).unwrap();
    store.revoke_token(&never.claims.jti).unwrap();
    let ring = store.load_ring().unwrap();
    // A key outside the ring, minting under the ring's identity.
    let stranger = Minter::new(SecretKey::generate(), &ring.issuer, &ring.audience)
        .mint(None, Expiry::Never, NOW)
        .unwrap()
        .token;
    let (h, rest) = valid.split_once('.').unwrap();
    let none_alg = format!(
        "{}.{}.",
        mdtoken::b64::encode(br#"{"alg":"none","typ":"mdt+jwt"}"#),
        rest.split_once('.').unwrap().0
    );
    let battery: Vec<String> = vec![
        valid.clone(),
        short.clone(),
        never.token.clone(),
        stranger,
        flip_last(&valid),
        format!("{h}.{}", flip_last(rest)),
        none_alg,
        format!("{valid}="),
        format!(" {valid}"),
        valid.replace('-', "+"),
        String::new(),
        ".".into(),
        "..".into(),
        "a.b.c.d".into(),
        "a".repeat(1500),
        ".".repeat(4000),
        format!("{valid}\u{e9}"),
    ];

    let clock = Arc::new(FixedClock::new(NOW));
    let state = AppState::new(&keys, config, clock.clone(), false).unwrap();
    let app = router(state);
    for at in [NOW + 60, NOW + 100_000] {
        clock.set(at);
        for token in &battery {
            let cli = cli_verdict(&keys, token, at);
            let req = Request::post("/v1/activations")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(json!({ "token": token }).to_string()))
                .unwrap();
            let res = app.clone().oneshot(req).await.unwrap();
            let status = res.status();
            let body = axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap();
            let v: Value = serde_json::from_slice(&body).unwrap();
            let http = if status == 200 {
                "accepted".to_owned()
            } else {
                assert_eq!(status, 401, "{v}");
                v["error"].as_str().unwrap().to_owned()
            };
            assert_eq!(cli, http, "token {:.40}… at {at}", token);
        }
    }
    // The battery exercised acceptance and several kinds of refusal.
    assert_eq!(cli_verdict(&keys, &valid, NOW + 60), "accepted");
    assert_eq!(cli_verdict(&keys, &short, NOW + 100_000), "token_expired");
}
