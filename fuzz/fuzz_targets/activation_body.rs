//! `POST /v1/activations` through the real router (every middleware included), with a
//! fuzzed body, a fuzzed choice of `Content-Type` and `Authorization`.
//!
//! Input: one control byte, then the body. Control bits 0-2 pick the content type (none,
//! `application/json`, with `charset=utf-8`, mixed case and quoted, `text/plain`, a
//! latin1 charset, a form type, or the body's first line); bits 3-4 the Authorization
//! header (none, Bearer with the valid token, Bearer with an expired one, Basic). In the
//! body, `@T` becomes the server's valid token and `@E` an expired one.
//!
//! The answer is predicted independently (size cap, content type rule, JSON object with
//! only `token`, `user`, `device`, label rules, where the token comes from, and the
//! reference verifier's verdict) and must match: status and error code. So a 5xx never
//! passes, and a 200 comes only for a token the reference verifier accepts.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use libfuzzer_sys::fuzz_target;
use mdtoken::clock::FixedClock;
use mdtoken::config::Config;
use mdtoken::keyring::KeyRing;
use mdtoken::mint::Expiry;
use mdtoken::server::{AppState, BODY_LIMIT, bootstrap, router};
use mdtoken::store::KeyStore;
use mdtoken_fuzz::{DAY, NOW, RingModel, object, reference, trace};
use serde_json::Value;
use tower::ServiceExt as _;

struct Server {
    _dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    app: Router,
    model: RingModel,
    leeway: i64,
    valid: String,
    expired: String,
}

fn server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = Config::default();
        bootstrap(dir.path(), &config, NOW - 10 * DAY).expect("bootstrap");
        let store = KeyStore::new(dir.path());
        let expired = store
            .mint(None, Expiry::At(NOW - 4 * DAY), NOW - 5 * DAY)
            .expect("mint")
            .token;
        let valid = store
            .mint(Some("fuzz"), Expiry::At(NOW + DAY), NOW)
            .expect("mint")
            .token;
        let ring: KeyRing = store.load_ring().expect("ring");
        let leeway = config.leeway_seconds;
        let state = AppState::new(dir.path(), config, Arc::new(FixedClock::new(NOW)), false)
            .expect("state");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        Server {
            _dir: dir,
            rt,
            app: router(state),
            model: RingModel::of(&ring),
            leeway,
            valid,
            expired,
        }
    })
}

const CONTENT_TYPES: [Option<&str>; 7] = [
    None,
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("Application/JSON;charset=\"UTF-8\""),
    Some("text/plain"),
    Some("application/json; charset=latin1"),
    Some("application/x-www-form-urlencoded"),
];

/// The documented rule: `application/json`, with no parameter or only `charset=utf-8`
/// (any case, quoted or not).
fn is_json(ct: &[u8]) -> bool {
    let Ok(ct) = std::str::from_utf8(ct) else {
        return false;
    };
    let mut parts = ct.split(';');
    if !parts
        .next()
        .is_some_and(|e| e.trim().eq_ignore_ascii_case("application/json"))
    {
        return false;
    }
    parts.all(|p| match p.split_once('=') {
        Some((n, v)) => {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            n.trim().eq_ignore_ascii_case("charset") && v.eq_ignore_ascii_case("utf-8")
        }
        None => false,
    })
}

fn expand(body: &[u8], s: &Server) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 512);
    let mut i = 0;
    while i < body.len() {
        match body[i..] {
            [b'@', b'T', ..] => out.extend_from_slice(s.valid.as_bytes()),
            [b'@', b'E', ..] => out.extend_from_slice(s.expired.as_bytes()),
            _ => {
                out.push(body[i]);
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    out
}

/// The status and error code the documentation gives for this request.
fn expected(
    s: &Server,
    ct: Option<&[u8]>,
    bearer: Option<&str>,
    body: &[u8],
) -> (StatusCode, &'static str) {
    if body.len() > BODY_LIMIT {
        return (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    }
    let (mut token, mut user, mut device) = (None, None, None);
    match ct {
        None if body.is_empty() => {}
        Some(ct) if is_json(ct) => {
            if body.trim_ascii_start().first() != Some(&b'{') {
                return (StatusCode::BAD_REQUEST, "bad_request");
            }
            let Some(members) = object(body) else {
                return (StatusCode::BAD_REQUEST, "bad_request");
            };
            for (name, value) in members {
                let value = match value {
                    Some(Value::Null) => None,
                    Some(Value::String(v)) => Some(v),
                    _ => return (StatusCode::BAD_REQUEST, "bad_request"),
                };
                match name.as_str() {
                    "token" => token = value,
                    "user" => user = value,
                    "device" => device = value,
                    _ => return (StatusCode::BAD_REQUEST, "bad_request"),
                }
            }
        }
        _ => return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
    }
    for label in [&user, &device].into_iter().flatten() {
        if label.chars().count() > 256 || label.chars().any(char::is_control) {
            return (StatusCode::BAD_REQUEST, "bad_request");
        }
    }
    let token = match (token, bearer) {
        (Some(_), Some(_)) => return (StatusCode::BAD_REQUEST, "bad_request"),
        (Some(t), None) => t,
        (None, Some(t)) => t.to_owned(),
        (None, None) => return (StatusCode::UNAUTHORIZED, "malformed"),
    };
    match reference(&s.model, token.as_bytes(), NOW, s.leeway) {
        Ok(_) => (StatusCode::OK, ""),
        Err(reason) => (StatusCode::UNAUTHORIZED, reason.as_str()),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let s = server();
    let (ct, body): (Option<Vec<u8>>, &[u8]) = match usize::from(control & 7) {
        7 => {
            let (line, body) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &[][..]),
            };
            if HeaderValue::from_bytes(line).is_err() {
                return;
            }
            (Some(line.to_vec()), body)
        }
        i => (CONTENT_TYPES[i].map(|c| c.as_bytes().to_vec()), rest),
    };
    let body = expand(body, s);
    let auth = match control >> 3 & 3 {
        0 => None,
        1 => Some(format!("Bearer {}", s.valid)),
        2 => Some(format!("Bearer {}", s.expired)),
        _ => Some("Basic dXNlcjpwYXNz".to_owned()),
    };
    let bearer = auth.as_deref().and_then(|a| a.strip_prefix("Bearer "));
    let want = expected(s, ct.as_deref(), bearer, &body);

    let mut req = Request::post("/v1/activations");
    if let Some(ct) = &ct {
        req = req.header(header::CONTENT_TYPE, ct.as_slice());
    }
    if let Some(a) = &auth {
        req = req.header(header::AUTHORIZATION, a.as_str());
    }
    let req = req.body(Body::from(body.clone())).expect("request");
    let (status, answer) = s.rt.block_on(async {
        let res = s.app.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .expect("response body");
        (status, bytes)
    });
    trace(|| {
        format!(
            "{status} {} for {:?}",
            String::from_utf8_lossy(&answer),
            String::from_utf8_lossy(&body[..body.len().min(120)])
        )
    });
    assert!(
        !status.is_server_error(),
        "{status}: {}",
        String::from_utf8_lossy(&answer)
    );
    let answer: Value = serde_json::from_slice(&answer).expect("every answer is JSON");
    let code = answer["error"].as_str().unwrap_or("");
    assert_eq!(
        (status, code),
        want,
        "answer {answer} for body {:?}",
        String::from_utf8_lossy(&body)
    );
    if status == StatusCode::OK {
        assert_eq!(answer["activated"], Value::Bool(true));
        assert!(answer["token_id"].is_string() && answer["key_id"].is_string());
    } else {
        let message = answer["message"].as_str().expect("a message");
        for t in [&s.valid, &s.expired] {
            let sig = t.rsplit('.').next().unwrap();
            assert!(!message.contains(sig), "the message repeats a token");
        }
    }
});
