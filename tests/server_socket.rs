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
    assert_eq!(status, 503);
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
