//! `run` as `mdtoken serve` uses it: first run on an empty keys directory, a second run
//! that reuses everything, and SIGTERM ending the server with success. Its own test
//! binary, because a signal reaches the whole process.

use std::time::{Duration, Instant};

use mdtoken::config::Config;
use mdtoken::server::{ServeOptions, run};
use mdtoken::store::KeyStore;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn healthy(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let req = "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    if s.write_all(req.as_bytes()).await.is_err() {
        return false;
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    out.starts_with(b"HTTP/1.1 200")
}

async fn serve_once(keys: &std::path::Path) {
    let port = free_port();
    let config = Config {
        listen: format!("127.0.0.1:{port}"),
        ..Config::default()
    };
    let task = tokio::spawn(run(ServeOptions {
        keys_dir: keys.to_owned(),
        config,
        verify_only: false,
    }));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !healthy(port).await {
        assert!(!task.is_finished(), "run ended early: {:?}", task.await);
        assert!(Instant::now() < deadline, "the server never became healthy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the accept loop come round to the signal watch once more.
    assert!(healthy(port).await);
    let status = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let result = tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("SIGTERM stops the server")
        .unwrap();
    result.unwrap();
    assert!(!healthy(port).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_sets_up_keys_and_a_second_run_reuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    serve_once(&keys).await;
    let store = KeyStore::new(&keys);
    let ring = store.load_ring().unwrap();
    let admin = std::fs::read_to_string(keys.join("admin-keys.json")).unwrap();
    let current = store.current().unwrap().expect("a first current token");
    assert_eq!(store.admin_keys().unwrap().keys.len(), 1);

    serve_once(&keys).await;
    assert_eq!(
        store.load_ring().unwrap().active().kid(),
        ring.active().kid()
    );
    assert_eq!(
        std::fs::read_to_string(keys.join("admin-keys.json")).unwrap(),
        admin
    );
    assert_eq!(store.current().unwrap().unwrap(), current);
}
