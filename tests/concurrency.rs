//! The admin server and the CLI writing one keys directory at the same time.
//!
//! `mdtoken serve` runs as a process on 127.0.0.1 (random port) and mints and rotates
//! through its admin API in a loop, while `mdtoken mint` and `mdtoken keys rotate`
//! processes run against the same directory and a reader keeps sending activations.
//! Afterwards every token either side reported verifies with `mdtoken verify` at a pinned
//! time, the ring loads, every key that was ever active is still there (retired, with a
//! record of exactly the tokens it signed), the ledger lists every token exactly once,
//! and the server has picked up the CLI's rotations.
//!
//! Nothing here asserts on timing: the only deadlines are generous bounds on how long the
//! server may take to start and to notice a changed ring.

mod common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::time::{Duration, Instant};

use mdtoken::keyring::KeyStatus;
use mdtoken::store::KeyStore;
use serde_json::{Value, json};

/// Tokens the server mints through `POST /v1/tokens`.
const SERVER_MINTS: usize = 48;
/// The server rotates through `POST /v1/keys/rotate` after every this many mints.
const SERVER_ROTATE_EVERY: usize = 6;
/// CLI processes minting at once, and the tokens each mints.
const CLI_MINTERS: usize = 2;
const CLI_MINTS: usize = 20;
/// `mdtoken keys rotate` runs, each followed by a `mint --no-expiry`.
const CLI_ROTATIONS: usize = 8;
/// How long the server may take to start, or to notice a changed ring (it polls every
/// 50 ms): bounds for a stuck test, not measurements.
const PATIENCE: Duration = Duration::from_secs(30);

/// A child process killed and reaped when dropped, so a failing test leaves nothing behind.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `mdtoken --keys-dir KEYS` with a clean environment and the writers' clock pinned.
fn cli(keys: &Path, now: i64) -> Command {
    let mut c = Command::new(common::bin());
    c.env_clear()
        .arg("--keys-dir")
        .arg(keys)
        .env("MDTOKEN_NOW", common::rfc3339(now))
        .stdin(Stdio::null());
    c
}

/// Runs a CLI command that must succeed and print JSON.
fn cli_json(keys: &Path, now: i64, args: &[&str]) -> Value {
    let out = cli(keys, now).args(args).output().expect("spawn mdtoken");
    assert!(
        out.status.success(),
        "mdtoken {args:?} failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "mdtoken {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// A token as the side that minted it reported it.
#[derive(Debug, Clone)]
struct Minted {
    by: String,
    token: String,
    jti: String,
    kid: String,
}

impl Minted {
    /// From a `mint --json` or `POST /v1/tokens` answer (the same member names).
    fn from_answer(by: String, v: &Value) -> Self {
        let s = |k: &str| {
            v[k].as_str()
                .unwrap_or_else(|| panic!("{by}: no {k} in {v}"))
                .to_owned()
        };
        Self {
            token: s("token"),
            jti: s("token_id"),
            kid: s("key_id"),
            by,
        }
    }
}

/// A rotation as the side that made it reported it.
#[derive(Debug, Clone)]
struct Rotated {
    by: String,
    old: String,
    new: String,
}

impl Rotated {
    fn from_answer(by: String, v: &Value) -> Self {
        let s = |k: &str| {
            v[k].as_str()
                .unwrap_or_else(|| panic!("{by}: no {k} in {v}"))
                .to_owned()
        };
        Self {
            old: s("old_key_id"),
            new: s("new_key_id"),
            by,
        }
    }
}

/// `mdtoken serve` on 127.0.0.1 with a random port, killed when dropped. Only the test's
/// own thread owns it, so a failing test never leaves the process behind.
struct Server {
    _process: Reaped,
    client: Client,
}

/// What the threads share to talk to the server.
#[derive(Clone)]
struct Client {
    addr: String,
    admin_key: String,
    /// The tail of the server's log, for failure messages.
    log: Arc<Mutex<VecDeque<String>>>,
}

impl Server {
    fn start(keys: &Path, admin_key: String) -> Self {
        let mut child = Command::new(common::bin())
            .env_clear()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("MDTOKEN_KEYS_DIR", keys)
            // Notice a ring written by another process quickly.
            .env("MDTOKEN_RELOAD_INTERVAL_MS", "50")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mdtoken serve");
        let stderr = child.stderr.take().unwrap();
        let process = Reaped(child);
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            // Keeps draining the log so the server never blocks on a full pipe.
            for line in BufReader::new(stderr)
                .lines()
                .map_while(std::io::Result::ok)
            {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr: String = rest
                        .chars()
                        .take_while(|c| !c.is_whitespace() && *c != ';' && *c != '/')
                        .collect();
                    let _ = tx.send(addr);
                }
                let mut sink = sink.lock().unwrap();
                if sink.len() == 50 {
                    sink.pop_front();
                }
                sink.push_back(line);
            }
        });
        let addr = rx
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("mdtoken serve did not start: {:?}", log.lock()));
        Self {
            _process: process,
            client: Client {
                addr,
                admin_key,
                log,
            },
        }
    }
}

impl Client {
    /// One HTTP/1.1 request on a fresh connection; the status and the JSON answer.
    fn call(&self, method: &str, path: &str, admin: bool, body: Option<&Value>) -> (u16, Value) {
        let mut stream = TcpStream::connect(&self.addr).expect("connect to the server");
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        if !body.is_empty() {
            request.push_str("Content-Type: application/json\r\n");
        }
        if admin {
            request.push_str(&format!("Authorization: Bearer {}\r\n", self.admin_key));
        }
        request.push_str("\r\n");
        request.push_str(&body);
        stream.write_all(request.as_bytes()).unwrap();
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .unwrap_or_else(|e| panic!("{method} {path}: no answer ({e})"));
        let raw = String::from_utf8(raw).unwrap();
        let (head, payload) = raw
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("{method} {path}: no end of headers in {raw:?}"));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{method} {path}: no status in {head:?}"));
        let json = if payload.is_empty() || path == "/metrics" {
            Value::String(payload.to_owned())
        } else {
            serde_json::from_str(payload)
                .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {payload:?}"))
        };
        (status, json)
    }

    /// A call that must answer `expected`.
    fn expect(
        &self,
        expected: u16,
        method: &str,
        path: &str,
        admin: bool,
        body: Option<&Value>,
    ) -> Value {
        let (status, v) = self.call(method, path, admin, body);
        assert_eq!(
            status,
            expected,
            "{method} {path}: {v}; server log tail: {:?}",
            self.log_tail()
        );
        v
    }

    fn activate(&self, token: &str) -> (u16, Value) {
        self.call(
            "POST",
            "/v1/activations",
            false,
            Some(&json!({ "token": token, "device": "concurrency" })),
        )
    }

    fn log_tail(&self) -> Vec<String> {
        self.log.lock().unwrap().iter().cloned().collect()
    }
}

/// Private key files left in `private/` (names).
fn private_files(keys: &Path) -> BTreeSet<String> {
    std::fs::read_dir(keys.join("private"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn server_and_cli_writing_one_keys_dir_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let keys: PathBuf = dir.path().join("keys");
    // The server reads the real clock (MDTOKEN_NOW is the CLI's alone), so the CLI
    // writers are pinned to the time the test starts: never ahead of the server.
    let t0 = time::OffsetDateTime::now_utc().unix_timestamp();
    // Every verdict at the end is given at one pinned time, well inside every lifetime.
    let verify_at = t0 + 3600;

    let init = cli(&keys, t0)
        .args(["keys", "init", "--issuer", common::ISS])
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");
    let first_kid = KeyStore::new(&keys)
        .load_ring()
        .unwrap()
        .active()
        .kid()
        .to_owned();
    let created = cli(&keys, t0)
        .args(["admin-key", "create"])
        .output()
        .unwrap();
    assert!(created.status.success());
    let admin_key = String::from_utf8(created.stdout).unwrap().trim().to_owned();

    let process = Server::start(&keys, admin_key);
    let server = &process.client;
    // The server's start-up made a first current token: it is in the ledger too.
    let first = server.expect(200, "GET", "/v1/deployment", true, None);
    let minted: Arc<Mutex<Vec<Minted>>> = Arc::new(Mutex::new(vec![Minted::from_answer(
        "server start-up".into(),
        &first,
    )]));
    let rotations: Arc<Mutex<Vec<Rotated>>> = Arc::new(Mutex::new(Vec::new()));
    let writers_done = Arc::new(AtomicBool::new(false));
    let writers = 2 + CLI_MINTERS;
    let start = Arc::new(Barrier::new(writers + 1));

    let mut handles = Vec::new();
    // The server, minting through the admin API and rotating every few mints.
    {
        let (server, minted, rotations, start) = (
            server.clone(),
            Arc::clone(&minted),
            Arc::clone(&rotations),
            Arc::clone(&start),
        );
        handles.push(std::thread::spawn(move || {
            start.wait();
            for i in 0..SERVER_MINTS {
                let body = json!({ "name": format!("server {i}"), "expires_in_days": 30 });
                let v = server.expect(201, "POST", "/v1/tokens", true, Some(&body));
                minted
                    .lock()
                    .unwrap()
                    .push(Minted::from_answer(format!("server mint {i}"), &v));
                if i % SERVER_ROTATE_EVERY == SERVER_ROTATE_EVERY - 1 {
                    let v = server.expect(200, "POST", "/v1/keys/rotate", true, None);
                    rotations
                        .lock()
                        .unwrap()
                        .push(Rotated::from_answer(format!("server rotation {i}"), &v));
                }
            }
        }));
    }
    // CLI processes minting.
    for m in 0..CLI_MINTERS {
        let (keys, minted, start) = (keys.clone(), Arc::clone(&minted), Arc::clone(&start));
        handles.push(std::thread::spawn(move || {
            start.wait();
            for i in 0..CLI_MINTS {
                let name = format!("cli {m}.{i}");
                let v = cli_json(
                    &keys,
                    t0,
                    &["mint", "--expires-in", "30d", "--name", &name, "--json"],
                );
                minted
                    .lock()
                    .unwrap()
                    .push(Minted::from_answer(format!("cli mint {m}.{i}"), &v));
            }
        }));
    }
    // A CLI process rotating, each rotation followed by a token that never expires.
    {
        let (keys, minted, rotations, start) = (
            keys.clone(),
            Arc::clone(&minted),
            Arc::clone(&rotations),
            Arc::clone(&start),
        );
        handles.push(std::thread::spawn(move || {
            start.wait();
            for i in 0..CLI_ROTATIONS {
                let v = cli_json(&keys, t0, &["keys", "rotate", "--json"]);
                rotations
                    .lock()
                    .unwrap()
                    .push(Rotated::from_answer(format!("cli rotation {i}"), &v));
                let v = cli_json(&keys, t0, &["mint", "--no-expiry", "--json"]);
                minted
                    .lock()
                    .unwrap()
                    .push(Minted::from_answer(format!("cli no-expiry mint {i}"), &v));
            }
        }));
    }
    // A device side activating whatever has been minted so far, while the ring changes
    // under the server. A token can only be accepted, or refused as `unknown_key` when
    // its key was made by a rotation the server has not loaded yet.
    let reader = {
        let (server, minted, done, start) = (
            server.clone(),
            Arc::clone(&minted),
            Arc::clone(&writers_done),
            Arc::clone(&start),
        );
        std::thread::spawn(move || {
            start.wait();
            let (mut accepted, mut not_yet) = (0usize, 0usize);
            let mut next = 0usize;
            loop {
                let token = {
                    let minted = minted.lock().unwrap();
                    let t = minted[next % minted.len()].clone();
                    next += 1;
                    t
                };
                let (status, v) = server.activate(&token.token);
                match (status, v["error"].as_str()) {
                    (200, _) => {
                        assert_eq!(v["token_id"], token.jti.as_str(), "{v}");
                        accepted += 1;
                    }
                    (401, Some("unknown_key")) => not_yet += 1,
                    _ => panic!("activation of {} during the race: {status} {v}", token.by),
                }
                // At least one round, whatever the writers do: the first token (the
                // start-up one) is accepted by every ring the server can hold.
                if done.load(Ordering::SeqCst) || accepted + not_yet >= 2000 {
                    break;
                }
            }
            (accepted, not_yet)
        })
    };
    for h in handles {
        h.join().expect("a writer failed");
    }
    writers_done.store(true, Ordering::SeqCst);
    let (accepted_in_race, _) = reader.join().expect("the activation reader failed");

    // A last rotation and mint by the CLI: the server must pick that ring up by itself.
    let last = Rotated::from_answer(
        "cli final rotation".into(),
        &cli_json(&keys, t0, &["keys", "rotate", "--json"]),
    );
    let last_cli = Minted::from_answer(
        "cli final mint".into(),
        &cli_json(&keys, t0, &["mint", "--json", "--expires-in", "1d"]),
    );
    assert_eq!(last_cli.kid, last.new);
    let waited = Instant::now();
    loop {
        let health = server.expect(200, "GET", "/healthz", false, None);
        if health["active_kid"] == last.new.as_str() {
            break;
        }
        assert!(
            waited.elapsed() < PATIENCE,
            "the server never loaded the CLI's rotation to {}: {health}; log: {:?}",
            last.new,
            server.log_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let v = server.activate(&last_cli.token).1;
    assert_eq!(v["activated"], true, "{v}");
    assert_eq!(v["key_id"], last.new.as_str(), "{v}");
    // And it mints with the CLI's new key.
    let v = server.expect(
        201,
        "POST",
        "/v1/tokens",
        true,
        Some(&json!({ "name": "after the cli", "expires_in_days": 1 })),
    );
    let last_server = Minted::from_answer("server final mint".into(), &v);
    assert_eq!(last_server.kid, last.new);
    let metrics = server.expect(200, "GET", "/metrics", false, None);
    let reloads: u64 = metrics
        .as_str()
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("mdtoken_ring_reloads_total "))
        .and_then(|n| n.trim().parse().ok())
        .expect("mdtoken_ring_reloads_total in /metrics");
    assert!(reloads >= 1, "the server never reloaded the ring");

    let mut minted = std::mem::take(&mut *minted.lock().unwrap());
    minted.push(last_cli);
    minted.push(last_server);
    let mut rotations = std::mem::take(&mut *rotations.lock().unwrap());
    rotations.push(last.clone());
    let expected_tokens = 1 + SERVER_MINTS + CLI_MINTERS * CLI_MINTS + CLI_ROTATIONS + 2;
    let expected_rotations = SERVER_MINTS / SERVER_ROTATE_EVERY + CLI_ROTATIONS + 1;
    assert_eq!(minted.len(), expected_tokens);
    assert_eq!(rotations.len(), expected_rotations);

    // Every token either side reported verifies with the CLI, at a pinned time, and
    // names the jti and key that were reported; the server accepts each one too.
    let keys_arg = keys.to_str().unwrap();
    let pinned = common::rfc3339(verify_at);
    for m in &minted {
        let run = common::run(
            &["--keys-dir", keys_arg, "verify", "-", "--json"],
            m.token.as_bytes(),
            &[("MDTOKEN_NOW", &pinned)],
        );
        let v = run.json();
        assert_eq!(run.code, 0, "{}: mdtoken verify: {run:?}", m.by);
        assert_eq!(v["valid"], true, "{}: {v}", m.by);
        assert_eq!(v["jti"], m.jti.as_str(), "{}: {v}", m.by);
        assert_eq!(v["kid"], m.kid.as_str(), "{}: {v}", m.by);
        let (status, a) = server.activate(&m.token);
        assert_eq!(
            (status, &a["activated"]),
            (200, &json!(true)),
            "{}: activation after the race: {a}",
            m.by
        );
    }

    // The ring loads, with its active key usable.
    let store = KeyStore::new(&keys);
    let ring = store.load_ring().expect("the ring loads");
    store.load_minter(&ring).expect("the active key is usable");
    let listed = cli_json(&keys, verify_at, &["keys", "list", "--json"]);
    assert_eq!(listed["keys"].as_array().unwrap().len(), ring.keys().len());

    // No key was lost: the rotations form one chain from the first key to the last, and
    // every key in it is in the ring, retired but the last.
    let news: BTreeSet<&str> = rotations.iter().map(|r| r.new.as_str()).collect();
    let olds: BTreeSet<&str> = rotations.iter().map(|r| r.old.as_str()).collect();
    assert_eq!(news.len(), rotations.len(), "two rotations made one key");
    let mut retired_by: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in &rotations {
        retired_by.entry(&r.old).or_default().push(&r.by);
    }
    for (kid, by) in &retired_by {
        assert_eq!(
            by.len(),
            1,
            "key {kid} retired twice (a lost update): by {by:?}"
        );
    }
    let mut ever_active: BTreeSet<&str> = news.clone();
    ever_active.insert(&first_kid);
    let mut retired_expected = ever_active.clone();
    retired_expected.remove(last.new.as_str());
    assert_eq!(olds, retired_expected, "the rotations are not one chain");
    let in_ring: BTreeSet<&str> = ring.keys().iter().map(|k| k.kid()).collect();
    assert_eq!(
        in_ring, ever_active,
        "the ring's keys are not the keys made"
    );
    assert!(ring.revoked_keys().is_empty());
    assert_eq!(ring.active().kid(), last.new);
    for k in ring.keys() {
        let want = if k.kid() == last.new {
            KeyStatus::Active
        } else {
            KeyStatus::Retired
        };
        assert_eq!(k.status, want, "{}", k.kid());
    }
    for m in &minted {
        assert!(
            in_ring.contains(m.kid.as_str()),
            "{}: key {} lost",
            m.by,
            m.kid
        );
    }
    // Only the active key's private half is left, and no temporary file.
    assert_eq!(
        private_files(&keys),
        BTreeSet::from([format!("{}.pem", last.new)])
    );
    let leftovers: Vec<String> = std::fs::read_dir(&keys)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    // The ledger lists every minted token exactly once, under the key that signed it,
    // and nothing else.
    let ledger = store.ledger().expect("the ledger parses");
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &ledger {
        *counts.entry(e.jti.as_str()).or_default() += 1;
    }
    for m in &minted {
        assert_eq!(
            counts.get(m.jti.as_str()).copied(),
            Some(1),
            "{}: jti {} in the ledger",
            m.by,
            m.jti
        );
        let e = ledger.iter().find(|e| e.jti == m.jti).unwrap();
        assert_eq!(e.kid, m.kid, "{}: the ledger names another key", m.by);
    }
    assert_eq!(
        ledger.len(),
        minted.len(),
        "the ledger holds tokens nobody reported"
    );
    let listed = server.expect(200, "GET", "/v1/tokens", true, None);
    assert_eq!(listed["tokens"].as_array().unwrap().len(), minted.len());

    // Each retired key records exactly the tokens it signed, and the latest expiry
    // among them (none when one of them never expires).
    for k in ring
        .keys()
        .iter()
        .filter(|k| k.status == KeyStatus::Retired)
    {
        let signed: Vec<_> = ledger.iter().filter(|e| e.kid == k.kid()).collect();
        let recorded: BTreeSet<&str> = k
            .signed_jtis
            .as_ref()
            .unwrap_or_else(|| panic!("retired key {} has no signed_jtis", k.kid()))
            .iter()
            .map(String::as_str)
            .collect();
        let ledgered: BTreeSet<&str> = signed.iter().map(|e| e.jti.as_str()).collect();
        assert_eq!(recorded, ledgered, "signed_jtis of {}", k.kid());
        if !signed.is_empty() {
            let until = if signed.iter().any(|e| e.exp.is_none()) {
                None
            } else {
                signed
                    .iter()
                    .filter_map(|e| e.exp.map(|t| t.unix_timestamp()))
                    .max()
            };
            assert_eq!(k.verify_until, until, "verify_until of {}", k.kid());
        }
    }

    // The race really raced: the activations saw tokens accepted while writers ran.
    assert!(accepted_in_race > 0, "no activation ran during the race");
}
