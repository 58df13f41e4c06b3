//! The server over a real socket on 127.0.0.1 (random port): activation over TCP,
//! graceful shutdown with a request in flight, a verify-only replica reloading its ring
//! through a `..data` symlink swap, and the header-read timeout.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mdtoken::clock::FixedClock;
use mdtoken::config::Config;
use mdtoken::mint::Expiry;
use mdtoken::server::{AppState, bootstrap, serve};
use mdtoken::store::KeyStore;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const NOW: i64 = 1_796_292_000;

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn start(state: AppState) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(serve(listener, state, async {
            let _ = rx.await;
        }));
        Self {
            addr,
            stop: Some(tx),
            task,
        }
    }

    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("the server stops")
            .unwrap()
            .unwrap();
    }
}

fn master(dir: &Path, config: &Config) -> (KeyStore, AppState) {
    let keys = dir.join("keys");
    bootstrap(&keys, config, NOW).unwrap();
    let state =
        AppState::new(&keys, config.clone(), Arc::new(FixedClock::new(NOW)), false).unwrap();
    (KeyStore::new(keys), state)
}

fn post(path: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
}

fn parse(raw: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(raw);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

async fn http(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("response within 10 s")
        .unwrap();
    parse(&out)
}

async fn activate(addr: SocketAddr, token: &str) -> (u16, String) {
    http(
        addr,
        &post(
            "/v1/activations",
            &format!(r#"{{"token":"{token}","device":"pc-7"}}"#),
        ),
    )
    .await
}

/// Polls `check` until it holds, for at most 10 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn activation_over_tcp_and_graceful_shutdown_with_a_request_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let (store, state) = master(dir.path(), &Config::default());
    let token = store
        .mint(Some("tcp"), Expiry::At(NOW + 3600), NOW)
        .unwrap()
        .token;
    let server = Running::start(state).await;
    let addr = server.addr;

    let (status, body) = activate(addr, &token).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""activated":true"#));
    let (status, body) = activate(addr, "x.y.z").await;
    assert_eq!(status, 401);
    assert!(body.contains(r#""error":"malformed""#));
    let (status, body) = http(addr, &get("/healthz")).await;
    assert_eq!((status, body.contains("\"ok\"")), (200, true));

    // A request whose body is still arriving when the shutdown starts is finished.
    let body = format!(r#"{{"token":"{token}"}}"#);
    let request = post("/v1/activations", &body);
    let (head, tail) = request.split_at(request.len() - 10);
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let Running { stop, task, .. } = server;
    stop.unwrap().send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    conn.write_all(tail.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let (status, body) = parse(&out);
    assert_eq!(status, 200, "{body}");
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("serve returns after the last request")
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}

fn swap_data(replica: &Path, version: &str, ring: &str) {
    let target = replica.join(version);
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("keyring.json"), ring).unwrap();
    let tmp = replica.join("..data_tmp");
    std::os::unix::fs::symlink(version, &tmp).unwrap();
    // The rename replaces the `..data` link atomically, as the kubelet does.
    std::fs::rename(&tmp, replica.join("..data")).unwrap();
}

#[tokio::test]
async fn verify_only_replica_follows_a_symlink_swap_and_keeps_the_last_good_ring() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _master) = master(dir.path(), &Config::default());
    let old = store.mint(None, Expiry::At(NOW + 86_400), NOW).unwrap();

    // A ConfigMap-style mount: keyring.json -> ..data/keyring.json, ..data -> ..v1.
    let replica = dir.path().join("replica");
    std::fs::create_dir(&replica).unwrap();
    swap_data(
        &replica,
        "..v1",
        &std::fs::read_to_string(store.ring_path()).unwrap(),
    );
    std::os::unix::fs::symlink("..data/keyring.json", replica.join("keyring.json")).unwrap();

    let config = Config {
        reload_interval_ms: 50,
        ..Config::default()
    };
    let state = AppState::new(&replica, config, Arc::new(FixedClock::new(NOW)), true).unwrap();
    let server = Running::start(state).await;
    let addr = server.addr;
    assert_eq!(activate(addr, &old.token).await.0, 200);
    let (status, body) = http(addr, &post("/v1/tokens", "{}")).await;
    assert_eq!(status, 404);
    assert!(body.contains("verify_only"));

    // The admin node rotates and mints with the new key: unknown to the replica so far.
    store.rotate(NOW + 1).unwrap();
    let new = store.mint(None, Expiry::At(NOW + 86_400), NOW + 1).unwrap();
    assert_eq!(activate(addr, &new.token).await.0, 401);

    swap_data(
        &replica,
        "..v2",
        &std::fs::read_to_string(store.ring_path()).unwrap(),
    );
    eventually("the replica picks up the swapped ring", || async {
        activate(addr, &new.token).await.0 == 200
    })
    .await;
    assert_eq!(
        activate(addr, &old.token).await.0,
        200,
        "the retired key still verifies"
    );

    // A broken ring is logged and counted; the last good ring stays in force.
    swap_data(&replica, "..v3", "{\"issuer\": \"half a file");
    eventually("the broken ring is refused", || async {
        http(addr, &get("/metrics"))
            .await
            .1
            .contains("mdtoken_ring_reload_failures_total 1")
    })
    .await;
    assert_eq!(activate(addr, &new.token).await.0, 200);
    assert_eq!(activate(addr, &old.token).await.0, 200);
    let (_, jwks) = http(addr, &get("/.well-known/jwks.json")).await;
    assert!(jwks.contains(&new.kid) && jwks.contains(&old.kid));

    // A good ring again, now revoking the old key: followed too.
    store.revoke_key(&old.kid, NOW + 2).unwrap();
    swap_data(
        &replica,
        "..v4",
        &std::fs::read_to_string(store.ring_path()).unwrap(),
    );
    eventually("the replica follows the revocation", || async {
        activate(addr, &old.token).await.1.contains("key_revoked")
    })
    .await;
    assert_eq!(activate(addr, &new.token).await.0, 200);
    let (_, metrics) = http(addr, &get("/metrics")).await;
    assert!(
        metrics.contains("mdtoken_ring_reloads_total 2"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_client_trickling_headers_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        request_timeout_seconds: 1,
        ..Config::default()
    };
    let (_store, state) = master(dir.path(), &config);
    let server = Running::start(state).await;
    let started = Instant::now();
    let conn = TcpStream::connect(server.addr).await.unwrap();
    let (mut rd, mut wr) = conn.into_split();
    wr.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
        .await
        .unwrap();
    // Keep sending a header line now and then, never the blank line that ends them.
    let trickle = tokio::spawn(async move {
        for i in 0..100 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if wr
                .write_all(format!("X-Slow-{i}: a\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
    });
    let mut out = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), rd.read_to_end(&mut out)).await;
    assert!(closed.is_ok(), "the connection was not closed within 10 s");
    assert!(started.elapsed() < Duration::from_secs(8));
    assert!(!String::from_utf8_lossy(&out).contains("200 OK"));
    trickle.abort();
    // A connection that sends nothing at all is closed too.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let mut out = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), silent.read_to_end(&mut out)).await;
    assert!(closed.is_ok(), "an idle connection was kept open");
    // Other clients were never affected.
    assert_eq!(http(server.addr, &get("/healthz")).await.0, 200);
    server.stop().await;
}

#[tokio::test]
async fn a_fifo_swapped_in_for_the_ring_is_refused_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _master) = master(dir.path(), &Config::default());
    let token = store
        .mint(None, Expiry::At(NOW + 86_400), NOW)
        .unwrap()
        .token;
    let replica = dir.path().join("replica");
    std::fs::create_dir(&replica).unwrap();
    let ring = std::fs::read_to_string(store.ring_path()).unwrap();
    swap_data(&replica, "..v1", &ring);
    std::os::unix::fs::symlink("..data/keyring.json", replica.join("keyring.json")).unwrap();
    let config = Config {
        reload_interval_ms: 50,
        ..Config::default()
    };
    let state = AppState::new(&replica, config, Arc::new(FixedClock::new(NOW)), true).unwrap();
    let server = Running::start(state.clone()).await;
    let addr = server.addr;
    assert_eq!(activate(addr, &token).await.0, 200);

    // `..data` now points at a directory whose keyring.json is a FIFO nobody writes.
    let v2 = replica.join("..v2");
    std::fs::create_dir(&v2).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(v2.join("keyring.json"))
        .status()
        .unwrap();
    assert!(made.success());
    let tmp = replica.join("..data_tmp");
    std::os::unix::fs::symlink("..v2", &tmp).unwrap();
    std::fs::rename(&tmp, replica.join("..data")).unwrap();

    let st = state.clone();
    let reload = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::task::spawn_blocking(move || st.reload_ring()),
    )
    .await
    .expect("a reload does not wait on a FIFO")
    .unwrap();
    // The background poll may have seen it first; either way it is not installed.
    assert!(
        matches!(
            reload,
            mdtoken::server::Reload::Refused | mdtoken::server::Reload::Unchanged
        ),
        "{reload:?}"
    );
    eventually("the FIFO is counted as a refused reload", || async {
        http(addr, &get("/metrics"))
            .await
            .1
            .contains("mdtoken_ring_reload_failures_total 1")
    })
    .await;
    assert_eq!(
        activate(addr, &token).await.0,
        200,
        "the last good ring stays"
    );
    assert_eq!(http(addr, &get("/healthz")).await.0, 200);

    // Reloads still work afterwards: a revocation is followed.
    store
        .revoke_key(store.load_ring().unwrap().active().kid(), NOW + 1)
        .unwrap();
    swap_data(
        &replica,
        "..v3",
        &std::fs::read_to_string(store.ring_path()).unwrap(),
    );
    eventually("the replica follows the revocation", || async {
        activate(addr, &token).await.1.contains("key_revoked")
    })
    .await;
    server.stop().await;
}

/// Sends `head` then `body_parts` (with `pause` between them) on one connection and
/// returns the answer and how long it took from the first byte.
async fn send_slowly(
    addr: SocketAddr,
    head: String,
    body_parts: Vec<&'static str>,
    pause: Duration,
) -> ((u16, String), Duration) {
    let started = Instant::now();
    let conn = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = conn.into_split();
    wr.write_all(head.as_bytes()).await.unwrap();
    let writer = tokio::spawn(async move {
        for part in body_parts {
            tokio::time::sleep(pause).await;
            if wr.write_all(part.as_bytes()).await.is_err() {
                break;
            }
        }
        // Keep the write half open: the server must not wait for an EOF.
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(wr);
    });
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    // Read until the whole JSON answer is in (the connection may stay open).
    let answer = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
            if out.ends_with(b"}") {
                break;
            }
        }
    })
    .await;
    assert!(answer.is_ok(), "no answer within 10 s");
    writer.abort();
    (parse(&out), started.elapsed())
}

fn head(path: &str, auth: Option<&str>, content_length: u64) -> String {
    let auth = auth.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
    format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\n{auth}Content-Type: application/json\r\nContent-Length: {content_length}\r\n\r\n"
    )
}

#[tokio::test]
async fn slow_short_and_oversized_bodies_get_408_and_413() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        request_timeout_seconds: 1,
        ..Config::default()
    };
    let keys = dir.path().join("keys");
    let admin = bootstrap(&keys, &config, NOW).unwrap().unwrap().to_string();
    let state = AppState::new(&keys, config, Arc::new(FixedClock::new(NOW)), false).unwrap();
    let server = Running::start(state).await;
    let addr = server.addr;

    for (path, auth) in [
        ("/v1/activations", None),
        ("/v1/tokens", Some(admin.as_str())),
    ] {
        // A Content-Length larger than what is sent.
        let ((status, body), took) = send_slowly(
            addr,
            head(path, auth, 100),
            vec!["{\"name\":"],
            Duration::ZERO,
        )
        .await;
        assert_eq!(status, 408, "{path}: {body}");
        assert!(body.contains(r#""error":"request_timeout""#), "{body}");
        assert!(took < Duration::from_secs(5), "{path}: {took:?}");

        // A body trickling in, a byte now and then, never finishing in time.
        let parts = vec![
            "{", "\"", "n", "a", "m", "e", "\"", ":", "\"", "x", "\"", "}",
        ];
        let ((status, body), took) = send_slowly(
            addr,
            head(path, auth, 12),
            parts,
            Duration::from_millis(300),
        )
        .await;
        assert_eq!(status, 408, "{path}: {body}");
        assert!(took < Duration::from_secs(5), "{path}: {took:?}");

        // A declared length over the cap is refused at once, without waiting for it.
        let ((status, body), took) =
            send_slowly(addr, head(path, auth, 1 << 30), vec![], Duration::ZERO).await;
        assert_eq!(status, 413, "{path}: {body}");
        assert!(body.contains("payload_too_large"), "{body}");
        assert!(took < Duration::from_millis(900), "{path}: {took:?}");
    }
    assert_eq!(http(addr, &get("/healthz")).await.0, 200);
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_never_reads_is_dropped_while_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        request_timeout_seconds: 1,
        ..Config::default()
    };
    let (_store, state) = master(dir.path(), &config);
    let server = Running::start(state).await;
    let addr = server.addr;
    let (_, doc) = http(addr, &get("/openapi.json")).await;
    let requests = 3000;
    assert!(
        doc.len() * requests > 32 << 20,
        "answers overflow any socket buffer"
    );

    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let conn = socket.connect(addr).await.unwrap();
    let (mut rd, mut wr) = conn.into_split();
    let pipelined = "GET /openapi.json HTTP/1.1\r\nHost: test\r\n\r\n".repeat(requests);
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(pipelined.as_bytes()).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(wr);
    });
    // While that client reads nothing, others are served.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(http(addr, &get("/healthz")).await.0, 200);
    }
    // By now the server has given up on it: what is left to read ends well short of
    // the answers asked for.
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    let drained = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(drained.is_ok(), "the connection was not closed");
    let answered = out.windows(12).filter(|w| w == b"HTTP/1.1 200").count();
    assert!(
        answered < requests,
        "{answered} answers: it was never cut off"
    );
    writer.abort();
    server.stop().await;
}

#[tokio::test]
async fn connections_over_the_cap_wait_in_the_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        request_timeout_seconds: 2,
        max_connections: 2,
        ..Config::default()
    };
    let (_store, state) = master(dir.path(), &config);
    let server = Running::start(state).await;
    let addr = server.addr;
    // Two silent clients take both places until the header timeout closes them.
    let started = Instant::now();
    let _a = TcpStream::connect(addr).await.unwrap();
    let _b = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A third connects (the kernel queues it) but is not served until a place frees.
    let (status, _) = http(addr, &get("/healthz")).await;
    assert_eq!(status, 200);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(1500), "{waited:?}");
    assert!(waited < Duration::from_secs(8), "{waited:?}");
    server.stop().await;
}
