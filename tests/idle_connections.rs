//! Ten thousand idle connections against a real `mdtoken serve` process: the server holds
//! at most `max_connections` of them (the kernel queues or retries the rest), its memory
//! stays bounded, the header timeout closes the silent ones, and a well-behaved client is
//! still served.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const IDLE: usize = 10_000;
const MAX_CONNECTIONS: usize = 4096;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

async fn healthz(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.ok()?;
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Raises this process's open-file limit to what 10 000 sockets need, if the hard limit
/// allows; `false` if it does not.
fn enough_files() -> bool {
    let out = Command::new("sh")
        .args(["-c", "ulimit -Hn"])
        .output()
        .unwrap();
    let hard = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    hard == "unlimited" || hard.parse::<usize>().is_ok_and(|n| n > IDLE + 512)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_idle_connections_are_bounded_timed_out_and_do_not_starve_others() {
    if !enough_files() {
        eprintln!("skipped: the hard open-file limit is below {IDLE} sockets");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let port = free_port();
    // The server gets the same soft limit raise through the shell that starts it.
    let mut server = Server(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -n $(ulimit -Hn) && exec '{}' --keys-dir '{}' serve --listen 127.0.0.1:{port}",
                env!("CARGO_BIN_EXE_mdtoken"),
                keys.display()
            ))
            .env("MDTOKEN_REQUEST_TIMEOUT_SECONDS", "3")
            .env("MDTOKEN_MAX_CONNECTIONS", MAX_CONNECTIONS.to_string())
            .env("MDTOKEN_LOG", "warn")
            .env_remove("MDTOKEN_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = server.0.id();
    let mut up = false;
    for _ in 0..200 {
        if healthz(port)
            .await
            .is_some_and(|r| r.starts_with("HTTP/1.1 200"))
        {
            up = true;
            break;
        }
        assert!(server.0.try_wait().unwrap().is_none(), "the server exited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the server never answered");
    let rss_before = rss_kib(pid);

    // The idle clients come from a child with its own open-file limit raised, so the
    // limit of this test process does not matter.
    let mut idle = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n $(ulimit -Hn) && exec python3 -c '{}' {port} {IDLE} {MAX_CONNECTIONS}",
            IDLE_CLIENTS.replace('\'', "'\\''")
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = idle.stdout.take().unwrap();
    // The client reports once max_connections of its connections are established.
    let opened: usize = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
        line.trim().parse().unwrap()
    })
    .await
    .unwrap();
    assert!(
        opened >= MAX_CONNECTIONS,
        "only {opened} connections opened"
    );

    // With every place taken by a silent client, a new client waits in the backlog and
    // is served once the header timeout frees places: well within a minute.
    let rss_full = rss_kib(pid);
    let served = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Some(r) = healthz(port).await
                && r.starts_with("HTTP/1.1 200")
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(served.is_ok(), "a well-behaved client was never served");
    // Held connections cost memory, but boundedly: at most max_connections of them at a
    // time (the rest wait in the kernel), each well under 20 KiB.
    let bound = rss_before + (MAX_CONNECTIONS as u64) * 20;
    assert!(
        rss_full < bound,
        "RSS grew from {rss_before} KiB to {rss_full} KiB with {MAX_CONNECTIONS} idle connections held"
    );
    let _ = idle.kill();
    let _ = idle.wait();
    // The server is still healthy, and its memory came back down.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        healthz(port)
            .await
            .is_some_and(|r| r.starts_with("HTTP/1.1 200"))
    );
    assert!(server.0.try_wait().unwrap().is_none(), "the server exited");
    let rss_after = rss_kib(pid);
    eprintln!(
        "{opened} idle connections opened; server RSS {rss_before} KiB before, \
         {rss_full} KiB with them, {rss_after} KiB after"
    );
    assert!(
        rss_after < bound,
        "RSS {rss_after} KiB after the idle clients left (was {rss_before} KiB)"
    );
}

/// Opens N connections to 127.0.0.1:PORT without sending a byte, then waits until at
/// least TARGET of them have been established (a SYN the kernel dropped while the accept
/// queue was full is retried after a second or more) or 30 s have passed, prints how many
/// were established, and holds them all until killed.
const IDLE_CLIENTS: &str = r#"
import socket, sys, time
port, n, target = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
held = []
for _ in range(n):
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    except OSError:
        s.close()
        continue
    held.append(s)
established = set()
deadline = time.monotonic() + 30
while True:
    time.sleep(0.25)
    for i, s in enumerate(held):
        if i in established:
            continue
        try:
            s.getpeername()
            established.add(i)
        except OSError:
            pass
    if len(established) >= target or time.monotonic() > deadline:
        break
print(len(established), flush=True)
time.sleep(3600)
"#;
