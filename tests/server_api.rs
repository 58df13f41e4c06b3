//! The HTTP API through `router(state).oneshot(..)` with a fixed clock: every route and
//! error status, admin auth on every admin route, auto-renewal, rotation under load, and
//! the mint and admin API cases of the hostile inputs (F42–F46).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use base64::Engine as _;
use mdtoken::clock::{Clock, FixedClock};
use mdtoken::config::Config;
use mdtoken::server::{AppState, BODY_LIMIT, bootstrap, router};
use mdtoken::store::KeyStore;
use mdtoken::verify::Verifier;
use serde_json::{Value, json};
use tower::ServiceExt as _;

const NOW: i64 = 1_796_292_000; // 2026-12-03T10:00:00Z

struct Env {
    _dir: tempfile::TempDir,
    keys: PathBuf,
    clock: Arc<FixedClock>,
    state: AppState,
    app: Router,
    admin: String,
}

fn env_with(config: Config) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let admin = bootstrap(&keys, &config, NOW)
        .unwrap()
        .expect("first run makes an admin key");
    assert!(
        bootstrap(&keys, &config, NOW).unwrap().is_none(),
        "second run makes no key"
    );
    let clock = Arc::new(FixedClock::new(NOW));
    let state = AppState::new(&keys, config, clock.clone(), false).unwrap();
    state.renew_if_needed().unwrap();
    Env {
        _dir: dir,
        keys,
        clock,
        app: router(state.clone()),
        state,
        admin: admin.to_string(),
    }
}

fn env() -> Env {
    env_with(Config::default())
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    fn error(&self) -> String {
        self.json()["error"].as_str().unwrap().to_owned()
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn send(app: &Router, req: Request<Body>) -> Reply {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

fn request(method: Method, uri: &str, auth: Option<&str>, json: Option<&Value>) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(a) = auth {
        b = b.header(header::AUTHORIZATION, a);
    }
    match json {
        Some(v) => b
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(v.to_string()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    }
}

impl Env {
    fn bearer(&self) -> String {
        format!("Bearer {}", self.admin)
    }
    async fn admin(&self, method: Method, uri: &str, json: Option<Value>) -> Reply {
        send(
            &self.app,
            request(method, uri, Some(&self.bearer()), json.as_ref()),
        )
        .await
    }
    async fn mint(&self, body: Value) -> Reply {
        self.admin(Method::POST, "/v1/tokens", Some(body)).await
    }
    async fn activate(&self, token: &str) -> Reply {
        send(
            &self.app,
            request(
                Method::POST,
                "/v1/activations",
                None,
                Some(&json!({"token": token, "user": "ann", "device": "pc-1"})),
            ),
        )
        .await
    }
    async fn raw_activation(&self, content_type: Option<&str>, body: impl Into<Body>) -> Reply {
        let mut b = Request::builder()
            .method(Method::POST)
            .uri("/v1/activations");
        if let Some(ct) = content_type {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        send(&self.app, b.body(body.into()).unwrap()).await
    }
    async fn metrics(&self) -> String {
        send(&self.app, request(Method::GET, "/metrics", None, None))
            .await
            .text()
    }
}

fn header_kid(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    v["kid"].as_str().unwrap().to_owned()
}

const ADMIN_ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/tokens"),
    ("GET", "/v1/tokens"),
    ("POST", "/v1/tokens/some-jti/revoke"),
    ("GET", "/v1/deployment"),
    ("GET", "/v1/keys"),
    ("POST", "/v1/keys/rotate"),
    ("POST", "/v1/keys/some-kid/revoke"),
    ("GET", "/v1/activity"),
];

#[tokio::test]
async fn admin_routes_refuse_missing_wrong_and_basic_keys() {
    let e = env();
    let wrong = format!("Bearer {}x", e.admin);
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{}", e.admin))
    );
    for (method, path) in ADMIN_ROUTES {
        for auth in [
            None,
            Some(wrong.as_str()),
            Some(basic.as_str()),
            Some("Bearer"),
            Some("Bearer mdt_admin_"),
        ] {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            // A body that would be valid, so only the key can be the reason.
            let body = (method == Method::POST).then(|| json!({}));
            let r = send(&e.app, request(method, path, auth, body.as_ref())).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path} with {auth:?}");
            assert_eq!(r.error(), "unauthorized");
            assert_eq!(
                r.headers[header::WWW_AUTHENTICATE],
                r#"Bearer realm="mdtoken""#
            );
            assert!(!r.text().contains(&e.admin));
        }
    }
    // The scheme is case-insensitive; a correct key opens every route.
    let lower = format!("bearer {}", e.admin);
    for (method, path) in ADMIN_ROUTES {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let body = (method == Method::POST).then(|| json!({}));
        let r = send(&e.app, request(method, path, Some(&lower), body.as_ref())).await;
        assert_ne!(r.status, StatusCode::UNAUTHORIZED, "{path}: {}", r.text());
    }
}

#[tokio::test]
async fn unauthenticated_huge_body_is_refused_before_it_is_read() {
    let e = env();
    let big = vec![b'x'; 10 * 1024 * 1024];
    let req = Request::post("/v1/tokens")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(big))
        .unwrap();
    let r = send(&e.app, req).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_admin_key_created_while_running_works_at_once() {
    let e = env();
    let second = KeyStore::new(&e.keys).create_admin_key(NOW).unwrap();
    let r = send(
        &e.app,
        request(
            Method::GET,
            "/v1/keys",
            Some(&format!("Bearer {}", *second)),
            None,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = e.admin(Method::GET, "/v1/keys", None).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn mint_returns_the_token_and_makes_it_current() {
    let e = env();
    let r = e
        .mint(json!({"name": "Q3 rollout", "expires_at": "2027-01-31"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    let m = r.json();
    let token = m["token"].as_str().unwrap();
    assert!(token.len() < 512);
    assert_eq!(m["name"], "Q3 rollout");
    assert_eq!(m["expires_at"], "2027-02-01T00:00:00Z");
    assert_eq!(m["issued_at"], "2026-12-03T10:00:00Z");
    assert_eq!(m["key_id"].as_str().unwrap(), header_kid(token));
    for os in ["windows", "macos", "linux"] {
        assert!(m["commands"][os].as_str().unwrap().contains(token), "{os}");
    }
    let d = e.admin(Method::GET, "/v1/deployment", None).await.json();
    assert_eq!(d["token"], m["token"]);
    assert_eq!(d["renewed"], false);
    assert_eq!(d["renews_at"], "2027-02-01T00:00:00Z");
    assert_eq!(d["server_url"], "http://127.0.0.1:8080");
    assert!(d["commands"]["linux"].as_str().unwrap().contains(token));

    // No expiry, no name, an empty body: all allowed.
    let m = e.mint(json!({"expires_at": null})).await.json();
    assert_eq!(m["expires_at"], Value::Null);
    assert_eq!(m["name"], Value::Null);
    let r = send(
        &e.app,
        Request::post("/v1/tokens")
            .header(header::AUTHORIZATION, e.bearer())
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let m = e
        .mint(json!({"expires_in_days": 30, "name": "a"}))
        .await
        .json();
    assert_eq!(m["expires_at"], "2027-01-02T10:00:00Z");
    let a = e.activate(m["token"].as_str().unwrap()).await;
    assert_eq!(a.status, StatusCode::OK);
    // Four here and the first-run token.
    assert!(e.metrics().await.contains("mdtoken_mints_total 5"));
}

#[tokio::test]
async fn bad_expiries_are_refused_without_panic() {
    // F43.
    let e = env();
    let cases = [
        (
            json!({"expires_at": "2020-01-01"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"expires_at": "2026-12-03T09:59:59Z"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"expires_at": "2026-12-03T10:00:00Z"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"expires_at": "tomorrow"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"expires_at": "2027-02-30"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"expires_at": ""}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"expires_at": "9999-12-31"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"expires_at": "+275760-09-13T00:00:00Z"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"expires_at": "2100-01-01T00:00:00Z"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"expires_at": 1900000000}), StatusCode::BAD_REQUEST),
        (
            json!({"expires_in_days": -1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"expires_in_days": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"expires_in_days": 1_000_000_000}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"expires_in_days": i64::MAX}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"expires_in_days": i64::MIN}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"expires_in_days": 1e9}), StatusCode::BAD_REQUEST),
        (json!({"expires_in_days": 1.5}), StatusCode::BAD_REQUEST),
        (json!({"expires_in_days": "90"}), StatusCode::BAD_REQUEST),
        (
            json!({"expires_in_days": 18446744073709551615u64}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"expires_at": "2027-01-31", "expires_in_days": 5}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"name": "x".repeat(65)}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"name": "a\u{7}b"}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"nam": "typo"}), StatusCode::BAD_REQUEST),
        (json!([1, 2]), StatusCode::BAD_REQUEST),
        (json!("2027-01-31"), StatusCode::BAD_REQUEST),
    ];
    for (body, want) in cases {
        let r = e.mint(body.clone()).await;
        assert_eq!(r.status, want, "{body}: {}", r.text());
        let code = r.error();
        let expected = if want == StatusCode::BAD_REQUEST {
            "bad_request"
        } else {
            "unprocessable"
        };
        assert_eq!(code, expected, "{body}");
    }
    // Nothing was minted: the ledger holds only the first-run token.
    let list = e.admin(Method::GET, "/v1/tokens", None).await.json();
    assert_eq!(list["tokens"].as_array().unwrap().len(), 1);
    // The edge that is allowed: one second ahead.
    let r = e.mint(json!({"expires_at": "2026-12-03T10:00:01Z"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = e.mint(json!({"expires_in_days": 3660})).await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn hostile_bodies_get_413_415_400() {
    // F44, on both routes that read a body.
    let e = env();
    let big = format!("{{\"token\":\"{}\"}}", "a".repeat(10 * 1024 * 1024));
    let r = e
        .raw_activation(Some("application/json"), big.clone())
        .await;
    assert_eq!(
        (r.status, r.error().as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    let just_over = format!("{{\"user\":\"{}\"}}", "a".repeat(BODY_LIMIT));
    let r = e.raw_activation(Some("application/json"), just_over).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let r = send(
        &e.app,
        Request::post("/v1/tokens")
            .header(header::AUTHORIZATION, e.bearer())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(big))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);

    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/jsonx"),
        None,
    ] {
        let r = e.raw_activation(ct, r#"{"token":"a.b.c"}"#).await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            "{ct:?}"
        );
    }
    let r = send(
        &e.app,
        Request::post("/v1/tokens")
            .header(header::AUTHORIZATION, e.bearer())
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::from("{}"))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Deep, yet under the size limit.
    let deep = format!("{}{}", "[".repeat(8_000), "]".repeat(8_000));
    let bad_bodies: Vec<Vec<u8>> = vec![
        b"{\"token\":\"\xff\xfe\"}".to_vec(),
        b"\xef\xbb\xbf{}".to_vec(),
        deep.into_bytes(),
        format!("{{\"user\":{}1{}}}", "[".repeat(200), "]".repeat(200)).into_bytes(),
        b"{\"token\":".to_vec(),
        b"{\"token\":\"a\",\"token\":\"b\"}".to_vec(),
        b"{\"token\":\"a\",\"extra\":1}".to_vec(),
        b"{\"token\":5}".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"{} {}".to_vec(),
    ];
    for body in bad_bodies {
        let r = e
            .raw_activation(Some("application/json"), body.clone())
            .await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (StatusCode::BAD_REQUEST, "bad_request"),
            "{}",
            String::from_utf8_lossy(&body)
        );
        let r = send(
            &e.app,
            Request::post("/v1/tokens")
                .header(header::AUTHORIZATION, e.bearer())
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.clone()))
                .unwrap(),
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
}

#[tokio::test]
async fn activation_accepts_and_rejects_with_reason_codes() {
    let e = env();
    let m = e
        .mint(json!({"name": "fleet", "expires_in_days": 10}))
        .await
        .json();
    let token = m["token"].as_str().unwrap();

    let r = e.activate(token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(r.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let a = r.json();
    assert_eq!(
        a,
        json!({"activated": true, "token_id": m["token_id"], "key_id": m["key_id"], "name": "fleet", "expires_at": m["expires_at"]})
    );

    // As a Bearer header, any case of the scheme, with or without a body.
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let auth = format!("{scheme} {token}");
        let r = send(
            &e.app,
            request(
                Method::POST,
                "/v1/activations",
                Some(&auth),
                Some(&json!({"device": "pc"})),
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{scheme}");
        let r = send(
            &e.app,
            request(Method::POST, "/v1/activations", Some(&auth), None),
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{scheme} without body: {}",
            r.text()
        );
    }
    // Both places: 400. Neither: 401 malformed.
    let auth = format!("Bearer {token}");
    let r = send(
        &e.app,
        request(
            Method::POST,
            "/v1/activations",
            Some(&auth),
            Some(&json!({"token": token})),
        ),
    )
    .await;
    assert_eq!(
        (r.status, r.error().as_str()),
        (StatusCode::BAD_REQUEST, "bad_request")
    );
    for body in [json!({}), json!({"user": "ann"})] {
        let r = send(
            &e.app,
            request(Method::POST, "/v1/activations", None, Some(&body)),
        )
        .await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (StatusCode::UNAUTHORIZED, "malformed")
        );
        assert_eq!(
            r.headers[header::WWW_AUTHENTICATE],
            r#"Bearer error="invalid_token""#
        );
    }
    let r = send(
        &e.app,
        request(Method::POST, "/v1/activations", Some("Basic YTpi"), None),
    )
    .await;
    assert_eq!(
        (r.status, r.error().as_str()),
        (StatusCode::UNAUTHORIZED, "malformed")
    );

    // Rejections carry the reason, never the token.
    let (h, p, s) = {
        let mut it = token.split('.');
        (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
    };
    let flipped = format!(
        "{h}.{p}.{}{}",
        if s.starts_with('A') { "B" } else { "A" },
        &s[1..]
    );
    let cases = [
        ("garbage", "malformed"),
        ("", "malformed"),
        ("a.b", "malformed"),
        (&*"a".repeat(2000), "too_large"),
        (&*flipped, "bad_signature"),
    ];
    for (bad, reason) in cases {
        let r = e.activate(bad).await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (StatusCode::UNAUTHORIZED, reason),
            "{bad:.20}"
        );
        assert!(bad.len() < 5 || !r.text().contains(bad));
    }
    // Labels are bounded.
    let long = "u".repeat(257);
    for body in [
        json!({"token": token, "user": long}),
        json!({"token": token, "device": long}),
        json!({"token": token, "device": "a\nb"}),
    ] {
        let r = send(
            &e.app,
            request(Method::POST, "/v1/activations", None, Some(&body)),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
    let ok = json!({"token": token, "user": "u".repeat(256), "device": "d".repeat(256)});
    assert_eq!(
        send(
            &e.app,
            request(Method::POST, "/v1/activations", None, Some(&ok))
        )
        .await
        .status,
        StatusCode::OK
    );

    let metrics = e.metrics().await;
    assert!(
        metrics.contains("mdtoken_activations_total{outcome=\"accepted\"} 8"),
        "{metrics}"
    );
    assert!(metrics.contains("mdtoken_activations_total{outcome=\"bad_signature\"} 1"));
    assert!(metrics.contains("mdtoken_activations_total{outcome=\"malformed\"} 6"));
    assert!(
        metrics.contains("mdtoken_http_request_duration_seconds_bucket{le="),
        "{metrics}"
    );
    assert!(metrics.contains("route=\"/v1/activations\""));

    // The activity minutes count the same decisions.
    let act = e.admin(Method::GET, "/v1/activity", None).await.json();
    let minutes = act["minutes"].as_array().unwrap();
    assert_eq!(minutes.len(), 60);
    let last = &minutes[59];
    assert_eq!(last["minute"], "2026-12-03T10:00:00Z");
    assert_eq!(
        (
            last["accepted"].as_u64(),
            last["expired"].as_u64(),
            last["rejected"].as_u64()
        ),
        (Some(8), Some(0), Some(8))
    );
    assert_eq!(minutes[0]["minute"], "2026-12-03T09:01:00Z");
}

#[tokio::test]
async fn revoking_a_token() {
    let e = env();
    let m = e.mint(json!({"name": "leaked"})).await.json();
    let token = m["token"].as_str().unwrap();
    let jti = m["token_id"].as_str().unwrap();
    let r = e
        .admin(Method::POST, &format!("/v1/tokens/{jti}/revoke"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"token_id": jti, "revoked": true}));
    // Again: still fine.
    assert_eq!(
        e.admin(Method::POST, &format!("/v1/tokens/{jti}/revoke"), None)
            .await
            .status,
        StatusCode::OK
    );
    let r = e.activate(token).await;
    assert_eq!(
        (r.status, r.error().as_str()),
        (StatusCode::UNAUTHORIZED, "token_revoked")
    );
    for unknown in ["nope", "%FF%FE", &"x".repeat(300)] {
        let r = e
            .admin(Method::POST, &format!("/v1/tokens/{unknown}/revoke"), None)
            .await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (StatusCode::NOT_FOUND, "not_found"),
            "{unknown:.10}"
        );
    }
    // The revoked token is current no more: the deployment renews.
    let d = e.admin(Method::GET, "/v1/deployment", None).await.json();
    assert_eq!(d["renewed"], true);
    assert_ne!(d["token_id"], m["token_id"]);
    let list = e.admin(Method::GET, "/v1/tokens", None).await.json();
    let tokens = list["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 3);
    assert_eq!(tokens[0]["token_id"], d["token_id"]);
    assert_eq!(tokens[0]["status"], "active");
    assert_eq!(tokens[1]["token_id"], m["token_id"]);
    assert_eq!(tokens[1]["status"], "revoked");
    assert_eq!(tokens[2]["name"], "auto-renewed");
}

#[tokio::test]
async fn keys_rotate_and_revoke() {
    let e = env();
    let first = e.mint(json!({"expires_in_days": 7})).await.json();
    let k = e.admin(Method::GET, "/v1/keys", None).await.json();
    assert_eq!(k["issuer"], "mdtoken");
    assert_eq!(k["audience"], "mass-deployment");
    assert_eq!(k["keys"].as_array().unwrap().len(), 1);
    assert_eq!(k["keys"][0]["status"], "active");
    assert_eq!(k["keys"][0]["kid"], first["key_id"]);
    assert_eq!(k["keys"][0]["retired_at"], Value::Null);
    assert_eq!(k["revoked_keys"], json!([]));

    let r = e.admin(Method::POST, "/v1/keys/rotate", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let rot = r.json();
    assert_eq!(rot["old_key_id"], first["key_id"]);
    // The latest expiry the old key signed: the first-run token's 90 days.
    assert_eq!(rot["verify_until"], "2027-03-03T10:00:00Z");
    let old_kid = rot["old_key_id"].as_str().unwrap().to_owned();
    let new_kid = rot["new_key_id"].as_str().unwrap().to_owned();
    assert_eq!(
        e.activate(first["token"].as_str().unwrap()).await.status,
        StatusCode::OK
    );
    let second = e.mint(json!({})).await.json();
    assert_eq!(second["key_id"], new_kid.as_str());
    let jwks = send(
        &e.app,
        request(Method::GET, "/.well-known/jwks.json", None, None),
    )
    .await
    .json();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);

    // Revoking a retired key: no rotation, its tokens are refused.
    let r = e
        .admin(Method::POST, &format!("/v1/keys/{old_kid}/revoke"), None)
        .await;
    assert_eq!(
        r.json(),
        json!({"key_id": old_kid, "revoked": true, "rotated_to": null})
    );
    let r = e.activate(first["token"].as_str().unwrap()).await;
    assert_eq!(
        (r.status, r.error().as_str()),
        (StatusCode::UNAUTHORIZED, "key_revoked")
    );
    // Revoking the active key rotates to a new one.
    let r = e
        .admin(Method::POST, &format!("/v1/keys/{new_kid}/revoke"), None)
        .await
        .json();
    let third_kid = r["rotated_to"].as_str().unwrap().to_owned();
    assert_ne!(third_kid, new_kid);
    assert_eq!(
        e.activate(second["token"].as_str().unwrap()).await.error(),
        "key_revoked"
    );
    let k = e.admin(Method::GET, "/v1/keys", None).await.json();
    assert_eq!(k["keys"].as_array().unwrap().len(), 1);
    assert_eq!(k["keys"][0]["kid"], third_kid.as_str());
    assert_eq!(k["revoked_keys"].as_array().unwrap().len(), 2);
    let jwks = send(
        &e.app,
        request(Method::GET, "/.well-known/jwks.json", None, None),
    )
    .await
    .json();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    // Every token of a revoked key shows as revoked; the deployment renews with the new key.
    let d = e.admin(Method::GET, "/v1/deployment", None).await.json();
    assert_eq!(
        (d["renewed"].as_bool(), d["key_id"].as_str()),
        (Some(true), Some(third_kid.as_str()))
    );
    let list = e.admin(Method::GET, "/v1/tokens", None).await.json();
    let statuses: Vec<&str> = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["active", "revoked", "revoked", "revoked"]);

    for unknown in ["nope", "AAAA"] {
        let r = e
            .admin(Method::POST, &format!("/v1/keys/{unknown}/revoke"), None)
            .await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (StatusCode::NOT_FOUND, "not_found")
        );
    }
    assert!(e.metrics().await.contains("mdtoken_ring_reloads_total 3"));
}

#[tokio::test]
async fn expired_current_token_is_renewed_before_it_is_shown() {
    let config = Config {
        leeway_seconds: 0,
        ..Config::default()
    };
    let e = env_with(config);
    let m = e
        .mint(json!({"name": "short", "expires_at": "2026-12-03T10:00:02Z"}))
        .await
        .json();
    let old = m["token"].as_str().unwrap().to_owned();
    assert_eq!(e.activate(&old).await.status, StatusCode::OK);
    let d = e.admin(Method::GET, "/v1/deployment", None).await.json();
    assert_eq!(
        (d["token"].as_str(), d["renewed"].as_bool()),
        (Some(old.as_str()), Some(false))
    );

    e.clock.advance(3);
    let d = e.admin(Method::GET, "/v1/deployment", None).await.json();
    assert_eq!(d["renewed"], true);
    let new = d["token"].as_str().unwrap();
    assert_ne!(new, old);
    assert_eq!(d["issued_at"], "2026-12-03T10:00:03Z");
    assert_eq!(d["expires_at"], "2027-03-03T10:00:03Z"); // 90 days
    assert_eq!(d["renews_at"], d["expires_at"]);
    assert_eq!(d["name"], "auto-renewed");
    for os in ["windows", "macos", "linux"] {
        let cmd = d["commands"][os].as_str().unwrap();
        assert!(cmd.contains(new) && !cmd.contains(&old), "{os}");
    }
    // The old token is left as it was: rejected now because it expired.
    let r = e.activate(&old).await;
    assert_eq!(
        (r.status, r.error().as_str()),
        (StatusCode::UNAUTHORIZED, "token_expired")
    );
    assert_eq!(e.activate(new).await.status, StatusCode::OK);
    // Read again: no second renewal.
    let again = e.admin(Method::GET, "/v1/deployment", None).await.json();
    assert_eq!(
        (again["token"].as_str(), again["renewed"].as_bool()),
        (Some(new), Some(false))
    );
    let list = e.admin(Method::GET, "/v1/tokens", None).await.json();
    let tokens = list["tokens"].as_array().unwrap();
    assert_eq!(tokens[0]["token_id"], d["token_id"]);
    assert_eq!(tokens[0]["status"], "active");
    assert_eq!(tokens[1]["token_id"], m["token_id"]);
    assert_eq!(tokens[1]["status"], "expired");
    let act = e.admin(Method::GET, "/v1/activity", None).await.json();
    assert_eq!(act["minutes"][59]["expired"], 1);

    // The background task's step, driven by the clock: 90 days on, it renews by itself.
    e.clock.advance(90 * 86_400);
    assert!(e.state.renew_if_needed().unwrap());
    assert!(!e.state.renew_if_needed().unwrap());
    let d2 = e.admin(Method::GET, "/v1/deployment", None).await.json();
    assert_eq!(d2["renewed"], false);
    assert_ne!(d2["token"].as_str(), Some(new));
    // The first-run token, the short one, and two renewals.
    assert!(e.metrics().await.contains("mdtoken_mints_total 4"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_while_activations_run() {
    let e = env();
    let token = e.mint(json!({"expires_in_days": 1})).await.json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let app = e.app.clone();
    let activations = tokio::spawn(async move {
        let mut statuses = Vec::new();
        for _ in 0..300 {
            let req = request(
                Method::POST,
                "/v1/activations",
                None,
                Some(&json!({"token": token})),
            );
            statuses.push(send(&app, req).await.status);
        }
        statuses
    });
    for _ in 0..5 {
        let r = e.admin(Method::POST, "/v1/keys/rotate", None).await;
        assert_eq!(r.status, StatusCode::OK);
        let t = e.mint(json!({"expires_in_days": 1})).await.json();
        assert_eq!(
            e.activate(t["token"].as_str().unwrap()).await.status,
            StatusCode::OK
        );
    }
    let statuses = activations.await.unwrap();
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mints_during_rotation_all_verify_with_the_key_they_name() {
    // F45 (200 mints here; the CI machine is small). Mints queue on the keys directory
    // lock, so the request timeout is raised for this burst.
    let config = Config {
        request_timeout_seconds: 300,
        ..Config::default()
    };
    let e = env_with(config);
    let mut mints = Vec::new();
    for i in 0..200 {
        let app = e.app.clone();
        let auth = e.bearer();
        mints.push(tokio::spawn(async move {
            let req = request(
                Method::POST,
                "/v1/tokens",
                Some(&auth),
                Some(&json!({"name": format!("m{i}")})),
            );
            send(&app, req).await
        }));
        if i % 50 == 25 {
            let r = e.admin(Method::POST, "/v1/keys/rotate", None).await;
            assert_eq!(r.status, StatusCode::OK);
        }
    }
    let ring = KeyStore::new(&e.keys).load_ring().unwrap();
    let verifier = Verifier::new(&ring, 0);
    let mut kids = std::collections::HashSet::new();
    for m in mints {
        let r = m.await.unwrap();
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let m = r.json();
        let token = m["token"].as_str().unwrap();
        let ok = verifier
            .verify(token.as_bytes(), NOW)
            .expect("every minted token verifies");
        assert_eq!(ok.kid, m["key_id"].as_str().unwrap());
        assert_eq!(ok.kid, header_kid(token));
        assert!(ring.key(&ok.kid).is_some());
        kids.insert(ok.kid);
        assert_eq!(e.activate(token).await.status, StatusCode::OK);
    }
    assert!(kids.len() >= 2, "rotations happened between mints");
    assert_eq!(KeyStore::new(&e.keys).ledger().unwrap().len(), 201);
}

fn write(path: &Path, text: &str) {
    std::fs::remove_file(path).ok();
    std::fs::write(path, text).unwrap();
}

#[test]
fn the_server_refuses_to_start_on_a_bad_keys_dir() {
    // F46 and friends.
    let clock: Arc<dyn Clock> = Arc::new(FixedClock::new(NOW));
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let err = AppState::new(&keys, Config::default(), clock.clone(), false).unwrap_err();
    assert!(format!("{err:#}").contains("no key ring"), "{err:#}");
    bootstrap(&keys, &Config::default(), NOW).unwrap();
    assert!(AppState::new(&keys, Config::default(), clock.clone(), false).is_ok());

    // A signing key that does not match the ring's public key.
    let store = KeyStore::new(&keys);
    let ring = store.load_ring().unwrap();
    let pem = keys
        .join("private")
        .join(format!("{}.pem", ring.active().kid()));
    let other = mdtoken::key::SecretKey::generate();
    write(&pem, &other.to_pem());
    let err = AppState::new(&keys, Config::default(), clock.clone(), false).unwrap_err();
    assert!(format!("{err:#}").contains("does not match"), "{err:#}");
    // A verify-only replica needs no private key at all.
    std::fs::remove_file(&pem).unwrap();
    assert!(AppState::new(&keys, Config::default(), clock.clone(), true).is_ok());
    let err = AppState::new(&keys, Config::default(), clock.clone(), false).unwrap_err();
    assert!(format!("{err:#}").contains("missing"), "{err:#}");

    // A configuration that disagrees with the ring.
    let dir2 = tempfile::tempdir().unwrap();
    let keys2 = dir2.path().join("keys");
    bootstrap(&keys2, &Config::default(), NOW).unwrap();
    let config = Config {
        issuer: Some("https://other.example".into()),
        ..Config::default()
    };
    let err = AppState::new(&keys2, config, clock.clone(), false).unwrap_err();
    assert!(format!("{err:#}").contains("issuer"), "{err:#}");

    // A broken or empty ring, in either mode.
    for text in ["{", "", r#"{"issuer":"i","audience":"a","keys":[]}"#] {
        write(&keys2.join("keyring.json"), text);
        for verify_only in [false, true] {
            assert!(
                AppState::new(&keys2, Config::default(), clock.clone(), verify_only).is_err(),
                "{text:?}"
            );
        }
    }
}

#[tokio::test]
async fn verify_only_mode_serves_activations_but_not_admin_routes() {
    let e = env();
    let token = e.mint(json!({})).await.json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let replica_dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        e.keys.join("keyring.json"),
        replica_dir.path().join("keyring.json"),
    )
    .unwrap();
    let state =
        AppState::new(replica_dir.path(), Config::default(), e.clock.clone(), true).unwrap();
    assert!(!state.renew_if_needed().unwrap());
    let app = router(state);
    let r = send(
        &app,
        request(
            Method::POST,
            "/v1/activations",
            None,
            Some(&json!({"token": token})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    for (method, path) in ADMIN_ROUTES {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let r = send(&app, request(method, path, Some(&e.bearer()), None)).await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (StatusCode::NOT_FOUND, "verify_only"),
            "{path}"
        );
        assert!(
            r.json()["message"]
                .as_str()
                .unwrap()
                .contains("use the admin node")
        );
    }
    for path in ["/", "/console/app.js", "/console/style.css"] {
        let r = send(&app, request(Method::GET, path, None, None)).await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (StatusCode::NOT_FOUND, "verify_only"),
            "{path}"
        );
    }
    let h = send(&app, request(Method::GET, "/healthz", None, None))
        .await
        .json();
    assert_eq!(h["mode"], "verify-only");
    for path in ["/.well-known/jwks.json", "/metrics", "/openapi.json"] {
        assert_eq!(
            send(&app, request(Method::GET, path, None, None))
                .await
                .status,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn public_routes_console_and_fallbacks() {
    let e = env();
    let h = send(&e.app, request(Method::GET, "/healthz", None, None)).await;
    assert_eq!(h.status, StatusCode::OK);
    assert_eq!(h.json()["status"], "ok");
    assert_eq!(h.json()["mode"], "full");

    let j = send(
        &e.app,
        request(Method::GET, "/.well-known/jwks.json", None, None),
    )
    .await
    .json();
    let key = &j["keys"][0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["alg"].as_str()
        ),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
    );

    let m = send(&e.app, request(Method::GET, "/metrics", None, None)).await;
    assert!(
        m.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    for name in [
        "mdtoken_activations_total",
        "mdtoken_mints_total",
        "mdtoken_ring_reloads_total",
        "mdtoken_ring_reload_failures_total",
    ] {
        assert!(m.text().contains(name), "{name}");
    }
    // Routes are labelled by their pattern, not the raw path.
    e.admin(Method::POST, "/v1/tokens/abc/revoke", None).await;
    assert!(
        e.metrics()
            .await
            .contains("route=\"/v1/tokens/{jti}/revoke\"")
    );

    let doc = send(&e.app, request(Method::GET, "/openapi.json", None, None))
        .await
        .json();
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in ADMIN_ROUTES.iter().chain(&[
        ("POST", "/v1/activations"),
        ("GET", "/.well-known/jwks.json"),
        ("GET", "/healthz"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("GET", "/"),
        ("GET", "/console/app.js"),
        ("GET", "/console/style.css"),
    ]) {
        let path = path
            .replace("some-jti", "{jti}")
            .replace("some-kid", "{kid}");
        let op =
            &paths.get(&path).unwrap_or_else(|| panic!("{path} missing"))[method.to_lowercase()];
        assert!(op.is_object(), "{method} {path}");
    }
    assert!(doc["components"]["schemas"]["MintRequest"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert!(doc["components"]["securitySchemes"]["deployment_token"].is_object());

    for (path, ct) in [
        ("/", "text/html"),
        ("/console/app.js", "text/javascript"),
        ("/console/style.css", "text/css"),
    ] {
        let r = send(&e.app, request(Method::GET, path, None, None)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            r.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with(ct)
        );
        assert!(
            r.headers[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert_eq!(r.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }

    let r = send(&e.app, request(Method::GET, "/nope", None, None)).await;
    assert_eq!(
        (r.status, r.error().as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let r = send(&e.app, request(Method::GET, "/v1/activations", None, None)).await;
    assert_eq!(
        (r.status, r.error().as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    let r = send(
        &e.app,
        request(Method::DELETE, "/v1/tokens", Some(&e.bearer()), None),
    )
    .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[derive(Clone, Default)]
struct Capture(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn one_audit_line_per_decision_without_the_token() {
    let e = env();
    let m = e
        .mint(json!({"name": "audit me", "expires_at": "2026-12-03T10:00:30Z"}))
        .await
        .json();
    let token = m["token"].as_str().unwrap().to_owned();
    let capture = Capture::default();
    let sink = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || sink.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    assert_eq!(e.activate(&token).await.status, StatusCode::OK);
    e.clock.advance(3600);
    assert_eq!(e.activate(&token).await.error(), "token_expired");
    assert_eq!(e.activate("junk").await.error(), "malformed");
    drop(guard);

    let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(!text.contains(&token), "the token leaked into the log");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["target"] == "mdtoken::audit")
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    let f = &lines[0]["fields"];
    assert_eq!(
        (f["outcome"].as_str(), f["jti"].as_str(), f["kid"].as_str()),
        (
            Some("accepted"),
            m["token_id"].as_str(),
            m["key_id"].as_str()
        )
    );
    assert_eq!(
        (
            f["name"].as_str(),
            f["user"].as_str(),
            f["device"].as_str(),
            f["client"].as_str()
        ),
        (Some("audit me"), Some("ann"), Some("pc-1"), Some("unknown"))
    );
    // An expired token's signature held, so its id and name are logged with the reason.
    let f = &lines[1]["fields"];
    assert_eq!(
        (
            f["outcome"].as_str(),
            f["reason"].as_str(),
            f["jti"].as_str()
        ),
        (
            Some("rejected"),
            Some("token_expired"),
            m["token_id"].as_str()
        )
    );
    let f = &lines[2]["fields"];
    assert_eq!(
        (f["reason"].as_str(), f.get("jti")),
        (Some("malformed"), None)
    );
}

#[test]
fn the_example_config_file_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/mdtoken.example.toml");
    let config = Config::load(Some(&path), |_| None).unwrap();
    assert_eq!(config.server_url(), "https://mdm.example.com");
    assert_eq!(config.log_format, mdtoken::config::LogFormat::Json);
    config.install.check().unwrap();
}

#[tokio::test]
async fn a_mint_waiting_on_the_keys_dir_lock_is_answered_with_what_happened() {
    // The lock is held for longer than the request timeout: the mint must wait for it
    // and say 201, not give up with an error while the write still goes through.
    let e = env_with(Config {
        request_timeout_seconds: 1,
        ..Config::default()
    });
    let before = KeyStore::new(&e.keys).ledger().unwrap().len();
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let keys = e.keys.clone();
    let holder = std::thread::spawn(move || {
        let lock = KeyStore::new(&keys).lock().unwrap();
        held_tx.send(()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2500));
        drop(lock);
    });
    held_rx.recv().unwrap();
    let started = std::time::Instant::now();
    let r = e.mint(json!({"name": "slow lock"})).await;
    assert!(started.elapsed() >= std::time::Duration::from_secs(2));
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    holder.join().unwrap();
    let ledger = KeyStore::new(&e.keys).ledger().unwrap();
    assert_eq!(
        ledger.len(),
        before + 1,
        "exactly one ledger line was added"
    );
    assert_eq!(ledger.last().unwrap().jti, r.json()["token_id"]);
    // Rotation and revocation wait the same way.
    let keys = e.keys.clone();
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let lock = KeyStore::new(&keys).lock().unwrap();
        held_tx.send(()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        drop(lock);
    });
    held_rx.recv().unwrap();
    let r = e.admin(Method::POST, "/v1/keys/rotate", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    holder.join().unwrap();
}

#[tokio::test]
async fn json_bodies_must_be_utf8_json() {
    let e = env();
    for ct in [
        "application/json; charset=latin1",
        "application/json; charset=utf-16",
        "application/json; charset=\"iso-8859-1\"",
        "application/json; boundary=x",
        "application/merge-patch+json",
    ] {
        let r = e.raw_activation(Some(ct), r#"{"token":"a.b.c"}"#).await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            "{ct}"
        );
    }
    for ct in [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON;Charset=\"UTF-8\"",
    ] {
        let r = e.raw_activation(Some(ct), r#"{"token":"a.b.c"}"#).await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (StatusCode::UNAUTHORIZED, "malformed"),
            "{ct}"
        );
    }
}

fn assert_keys_dir_error(r: &Reply, file: &str, hint: &str, secrets: &[&str]) {
    assert_eq!(
        (r.status, r.error().as_str()),
        (StatusCode::CONFLICT, "keys_dir_error"),
        "{}",
        r.text()
    );
    let message = r.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains(file), "{message}");
    assert!(message.contains(hint), "{message}");
    for s in secrets {
        assert!(!message.contains(s), "{message}");
    }
}

#[tokio::test]
async fn a_damaged_keys_dir_answers_409_naming_the_file_and_the_fix() {
    let e = env();
    let minted = e.mint(json!({"name": "a"})).await.json();
    let token = minted["token"].as_str().unwrap().to_owned();
    e.mint(json!({"name": "b"})).await;
    let secrets = [token.as_str(), e.admin.as_str()];

    // A bad line in the middle of the ledger.
    let ledger = e.keys.join("tokens.jsonl");
    let good = std::fs::read_to_string(&ledger).unwrap();
    let (first, rest) = good.split_once('\n').unwrap();
    std::fs::write(&ledger, format!("{first}\n{{\"jti\": 5, oops\n{rest}")).unwrap();
    let r = e.admin(Method::GET, "/v1/tokens", None).await;
    assert_keys_dir_error(&r, "tokens.jsonl", "line 2", &secrets);
    // A mint appends after reading only the ledger's tail, so damage further up does not
    // stop it; its line lands after the damage and shows once the line is repaired.
    let r = e.mint(json!({"name": "c"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = e.admin(Method::POST, "/v1/keys/rotate", None).await;
    assert_ne!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.text());
    if r.status != StatusCode::OK {
        assert_keys_dir_error(&r, "tokens.jsonl", "line", &secrets);
    }
    let r = e.admin(Method::GET, "/v1/tokens", None).await;
    assert_keys_dir_error(&r, "tokens.jsonl", "line 2", &secrets);
    let damaged = std::fs::read_to_string(&ledger).unwrap();
    let repaired: String = damaged
        .split_inclusive('\n')
        .filter(|l| !l.starts_with("{\"jti\": 5"))
        .collect();
    assert!(repaired.starts_with(&good));
    std::fs::write(&ledger, &repaired).unwrap();
    let r = e.admin(Method::GET, "/v1/tokens", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let names: Vec<_> = r.json()["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect();
    assert!(
        ["a", "b", "c"].iter().all(|n| names.iter().any(|m| m == n)),
        "{names:?}"
    );
    std::fs::write(&ledger, &good).unwrap();

    // Garbage in current.json: renewed, or a 409 that quotes none of it.
    let current = e.keys.join("current.json");
    std::fs::write(&current, format!("{{\"token\": 7, \"x\": \"{token}\"")).unwrap();
    let r = e.admin(Method::GET, "/v1/deployment", None).await;
    if r.status != StatusCode::OK {
        assert_keys_dir_error(&r, "current.json", "restore", &secrets);
    }
    std::fs::remove_file(&current).unwrap();

    // A lock file that cannot be opened.
    let lock = e.keys.join(".lock");
    let _ = std::fs::remove_file(&lock);
    std::fs::create_dir(&lock).unwrap();
    let r = e.mint(json!({})).await;
    assert_keys_dir_error(&r, ".lock", "server's user", &secrets);
    std::fs::remove_dir(&lock).unwrap();

    // A foreign ring hot-reloaded: its active key has no private key here.
    let other = tempfile::tempdir().unwrap();
    bootstrap(other.path(), &Config::default(), NOW).unwrap();
    let ring = e.keys.join("keyring.json");
    let ours = std::fs::read(&ring).unwrap();
    std::fs::write(
        &ring,
        std::fs::read(other.path().join("keyring.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(e.state.reload_ring(), mdtoken::server::Reload::Reloaded);
    let r = e.mint(json!({})).await;
    assert_keys_dir_error(
        &r,
        "no private key here",
        "restore the right keyring.json or run `mdtoken keys rotate`",
        &secrets,
    );
    std::fs::write(&ring, ours).unwrap();
    e.state.reload_ring();
    assert_eq!(e.mint(json!({})).await.status, StatusCode::CREATED);
}

#[test]
fn a_refused_first_run_changes_nothing() {
    fn listing(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<_> = walk(dir);
        out.sort();
        out
    }
    fn walk(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                let bytes = std::fs::read(&path).unwrap_or_default();
                out.push((path.display().to_string(), bytes));
            }
        }
        out
    }
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    bootstrap(&keys, &Config::default(), NOW).unwrap();
    std::fs::remove_file(keys.join("admin-keys.json")).unwrap();
    let ring = std::fs::read_to_string(keys.join("keyring.json")).unwrap();

    // A corrupt ring, an empty one, a ring whose signing key is gone, a configuration
    // that disagrees: no admin key is made or shown, no file appears or changes.
    let pem = std::fs::read_dir(keys.join("private"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let key = std::fs::read(&pem).unwrap();
    let other_issuer = Config {
        issuer: Some("https://elsewhere.example".into()),
        ..Config::default()
    };
    for (what, ring_text, keep_key, config) in [
        ("corrupt", "{\"issuer\": \"half", true, Config::default()),
        ("empty", "", true, Config::default()),
        ("no private key", ring.as_str(), false, Config::default()),
        ("other issuer", ring.as_str(), true, other_issuer),
    ] {
        write(&keys.join("keyring.json"), ring_text);
        if keep_key {
            std::fs::write(&pem, &key).unwrap();
        } else {
            let _ = std::fs::remove_file(&pem);
        }
        let before = listing(&keys);
        assert!(bootstrap(&keys, &config, NOW).is_err(), "{what}");
        assert_eq!(listing(&keys), before, "{what}: nothing changed");
        assert!(!keys.join("admin-keys.json").exists(), "{what}");
    }
}

#[test]
fn a_replica_without_a_ring_is_told_to_copy_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(FixedClock::new(NOW));
    let err = AppState::new(dir.path(), Config::default(), clock, true).unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("copied from the admin node"), "{text}");
    assert!(!text.contains("keys init"), "{text}");
}

#[tokio::test]
async fn the_openapi_document_lists_the_new_statuses() {
    let e = env();
    let doc = send(&e.app, request(Method::GET, "/openapi.json", None, None))
        .await
        .json();
    let mint = &doc["paths"]["/v1/tokens"]["post"]["responses"];
    for status in ["201", "404", "408", "409", "413", "415"] {
        assert!(mint.get(status).is_some(), "{status}: {mint}");
    }
    let revoke = doc["paths"]["/v1/tokens/{jti}/revoke"]["post"]["responses"]["404"]["description"]
        .as_str()
        .unwrap();
    assert!(revoke.contains("not_found") && revoke.contains("verify_only"));
    // The writing routes are never cut off by the request timeout; every other route may
    // be, and any route answers 500 on a bug.
    let writing = [
        ("post", "/v1/tokens"),
        ("post", "/v1/tokens/{jti}/revoke"),
        ("post", "/v1/keys/rotate"),
        ("post", "/v1/keys/{kid}/revoke"),
        ("get", "/v1/deployment"),
    ];
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = &op["responses"];
            operations += 1;
            assert!(responses.get("500").is_some(), "{method} {path}");
            assert_eq!(
                responses.get("503").is_none(),
                writing.contains(&(method.as_str(), path.as_str())),
                "503 on {method} {path}"
            );
        }
    }
    assert_eq!(operations, 16);
}

/// Every operation of the document with the answers it really gives.
#[tokio::test]
async fn every_answer_is_described_by_the_document() {
    let e = env();
    let doc = send(&e.app, request(Method::GET, "/openapi.json", None, None))
        .await
        .json();
    let bearer = e.bearer();
    let admin = Some(bearer.as_str());
    let token = e.mint(json!({"name": "doc"})).await.json();
    let (jwt, jti) = (
        token["token"].as_str().unwrap().to_owned(),
        token["token_id"].as_str().unwrap().to_owned(),
    );
    let old_kid = token["key_id"].as_str().unwrap().to_owned();
    let token_bearer = format!("Bearer {jwt}");
    let big = json!({"name": "a".repeat(BODY_LIMIT)});
    let blank_long = json!({"name": " ".repeat(65)});
    let revoke_jti = format!("/v1/tokens/{jti}/revoke");
    let revoke_old_kid = format!("/v1/keys/{old_kid}/revoke");
    // (method, route in the document, path, Authorization, body or a raw (type, body))
    enum B {
        None,
        Json(Value),
        Raw(&'static str, &'static str),
    }
    let activation = |t: &str| B::Json(json!({"token": t, "user": "ann", "device": "pc-1"}));
    let cases: Vec<(Method, &str, &str, Option<&str>, B)> = vec![
        (
            Method::POST,
            "/v1/activations",
            "/v1/activations",
            None,
            activation(&jwt),
        ),
        (
            Method::POST,
            "/v1/activations",
            "/v1/activations",
            Some(&token_bearer),
            B::None,
        ),
        (
            Method::POST,
            "/v1/activations",
            "/v1/activations",
            None,
            activation("x.y.z"),
        ),
        (
            Method::POST,
            "/v1/activations",
            "/v1/activations",
            None,
            B::None,
        ),
        (
            Method::POST,
            "/v1/activations",
            "/v1/activations",
            Some(&token_bearer),
            activation(&jwt),
        ),
        (
            Method::POST,
            "/v1/activations",
            "/v1/activations",
            None,
            B::Raw("text/plain", "{}"),
        ),
        (
            Method::POST,
            "/v1/activations",
            "/v1/activations",
            None,
            B::Raw("application/json", "["),
        ),
        (
            Method::POST,
            "/v1/activations",
            "/v1/activations",
            None,
            B::Json(big.clone()),
        ),
        (
            Method::POST,
            "/v1/tokens",
            "/v1/tokens",
            admin,
            B::Json(json!({"expires_in_days": 30})),
        ),
        (Method::POST, "/v1/tokens", "/v1/tokens", admin, B::None),
        (Method::POST, "/v1/tokens", "/v1/tokens", None, B::None),
        (
            Method::POST,
            "/v1/tokens",
            "/v1/tokens",
            admin,
            B::Json(blank_long),
        ),
        (
            Method::POST,
            "/v1/tokens",
            "/v1/tokens",
            admin,
            B::Json(json!({"expires_in_days": 0})),
        ),
        (
            Method::POST,
            "/v1/tokens",
            "/v1/tokens",
            admin,
            B::Json(json!({"extra": 1})),
        ),
        (
            Method::POST,
            "/v1/tokens",
            "/v1/tokens",
            admin,
            B::Raw("application/json; charset=latin1", "{}"),
        ),
        (
            Method::POST,
            "/v1/tokens",
            "/v1/tokens",
            admin,
            B::Json(big),
        ),
        (Method::GET, "/v1/tokens", "/v1/tokens", admin, B::None),
        (Method::GET, "/v1/tokens", "/v1/tokens", None, B::None),
        (
            Method::POST,
            "/v1/tokens/{jti}/revoke",
            &revoke_jti,
            admin,
            B::None,
        ),
        (
            Method::POST,
            "/v1/tokens/{jti}/revoke",
            "/v1/tokens/nothing/revoke",
            admin,
            B::None,
        ),
        (
            Method::POST,
            "/v1/tokens/{jti}/revoke",
            &revoke_jti,
            None,
            B::None,
        ),
        (
            Method::GET,
            "/v1/deployment",
            "/v1/deployment",
            admin,
            B::None,
        ),
        (
            Method::GET,
            "/v1/deployment",
            "/v1/deployment",
            Some("Basic YTpi"),
            B::None,
        ),
        (Method::GET, "/v1/keys", "/v1/keys", admin, B::None),
        (Method::GET, "/v1/keys", "/v1/keys", None, B::None),
        (
            Method::POST,
            "/v1/keys/rotate",
            "/v1/keys/rotate",
            admin,
            B::None,
        ),
        (
            Method::POST,
            "/v1/keys/rotate",
            "/v1/keys/rotate",
            None,
            B::None,
        ),
        (
            Method::POST,
            "/v1/keys/{kid}/revoke",
            &revoke_old_kid,
            admin,
            B::None,
        ),
        (
            Method::POST,
            "/v1/keys/{kid}/revoke",
            "/v1/keys/nothing/revoke",
            admin,
            B::None,
        ),
        (
            Method::POST,
            "/v1/keys/{kid}/revoke",
            "/v1/keys/nothing/revoke",
            None,
            B::None,
        ),
        (Method::GET, "/v1/activity", "/v1/activity", admin, B::None),
        (Method::GET, "/v1/activity", "/v1/activity", None, B::None),
        (
            Method::GET,
            "/.well-known/jwks.json",
            "/.well-known/jwks.json",
            None,
            B::None,
        ),
        (Method::GET, "/healthz", "/healthz", None, B::None),
        (Method::GET, "/metrics", "/metrics", None, B::None),
        (Method::GET, "/openapi.json", "/openapi.json", None, B::None),
        (Method::GET, "/", "/", None, B::None),
        (
            Method::GET,
            "/console/app.js",
            "/console/app.js",
            None,
            B::None,
        ),
        (
            Method::GET,
            "/console/style.css",
            "/console/style.css",
            None,
            B::None,
        ),
    ];
    // A replica: admin routes and the console answer 404 verify_only.
    let replica_dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        e.keys.join("keyring.json"),
        replica_dir.path().join("keyring.json"),
    )
    .unwrap();
    let replica = router(
        AppState::new(replica_dir.path(), Config::default(), e.clock.clone(), true).unwrap(),
    );
    let mut replica_cases: Vec<(Method, &str, &str, Option<&str>, B)> = ADMIN_ROUTES
        .iter()
        .map(|(m, p)| {
            let route = match *p {
                "/v1/tokens/some-jti/revoke" => "/v1/tokens/{jti}/revoke",
                "/v1/keys/some-kid/revoke" => "/v1/keys/{kid}/revoke",
                p => p,
            };
            (
                Method::from_bytes(m.as_bytes()).unwrap(),
                route,
                *p,
                admin,
                B::None,
            )
        })
        .collect();
    for p in ["/", "/console/app.js", "/console/style.css"] {
        replica_cases.push((Method::GET, p, p, None, B::None));
    }

    let mut seen = std::collections::BTreeSet::new();
    for (app, cases) in [(&e.app, cases), (&replica, replica_cases)] {
        for (method, route, path, auth, body) in cases {
            let mut b = Request::builder().method(method.clone()).uri(path);
            if let Some(a) = auth {
                b = b.header(header::AUTHORIZATION, a);
            }
            let req = match body {
                B::None => b.body(Body::empty()).unwrap(),
                B::Json(v) => b
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(v.to_string()))
                    .unwrap(),
                B::Raw(ct, text) => b
                    .header(header::CONTENT_TYPE, ct)
                    .body(Body::from(text))
                    .unwrap(),
            };
            let r = send(app, req).await;
            let status = r.status.as_str().to_owned();
            let what = format!("{method} {path} -> {status}");
            let op = &doc["paths"][route][method.as_str().to_lowercase()];
            let described = &op["responses"][&status];
            assert!(
                described.is_object(),
                "{what}: not in the document; {}",
                r.text()
            );
            seen.insert((route.to_owned(), method.to_string(), status.clone()));
            for (name, h) in described["headers"].as_object().unwrap() {
                let got = r.headers.get(name.as_str()).map(|v| v.to_str().unwrap());
                assert_eq!(
                    got,
                    h["schema"]["enum"][0].as_str(),
                    "{what}: header {name}"
                );
            }
            let content_type = r.headers[header::CONTENT_TYPE].to_str().unwrap();
            let essence = content_type.split(';').next().unwrap();
            let content = described["content"].as_object().unwrap();
            assert!(content.contains_key(essence), "{what}: {content_type}");
            let Some(schema) = content
                .get("application/json")
                .map(|c| &c["schema"])
                .filter(|s| s.is_object())
            else {
                continue;
            };
            let body = r.json();
            if let Some(all) = schema["allOf"].as_array() {
                // An error: the shared body, with the codes of this status.
                let codes = all[1]["properties"]["error"]["enum"].as_array().unwrap();
                assert!(codes.contains(&body["error"]), "{what}: {body}");
                assert!(body["message"].is_string(), "{what}");
            } else if let Some(reference) = schema["$ref"].as_str() {
                let name = reference.rsplit('/').next().unwrap();
                let component = &doc["components"]["schemas"][name];
                for field in component["required"].as_array().unwrap() {
                    let field = field.as_str().unwrap();
                    assert!(body.get(field).is_some(), "{what}: no {field} in {body}");
                }
            }
        }
    }
    // Every operation was called at least once.
    let routes: std::collections::BTreeSet<_> = seen.iter().map(|(r, m, _)| (r, m)).collect();
    assert_eq!(routes.len(), 16, "{routes:?}");
}

/// An answer that leaves the request body unread says the connection closes, so a
/// keep-alive client does not send its next request into it; other errors keep it open.
#[tokio::test]
async fn a_refused_body_closes_the_connection_and_says_so() {
    let e = env();
    let big = json!({"token": "a".repeat(BODY_LIMIT)});
    for r in [
        e.mint(big.clone()).await,
        send(
            &e.app,
            request(Method::POST, "/v1/activations", None, Some(&big)),
        )
        .await,
    ] {
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(r.headers[header::CONNECTION], "close");
    }
    let r = e.activate("x.y.z").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.headers.get(header::CONNECTION).is_none());
}

/// A blank name stands for none, but is held to the name rules first: over 64
/// characters or holding a control character, it is refused like any other.
#[tokio::test]
async fn a_blank_name_is_held_to_the_name_rules() {
    let e = env();
    for name in [" ".repeat(65), "\t".into(), " \n ".into()] {
        let r = e.mint(json!({ "name": name })).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}");
        assert_eq!(r.error(), "unprocessable");
    }
    let r = e.mint(json!({"name": " ".repeat(64)})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json()["name"], Value::Null);
}
