//! The `mdtoken` binary run as a real process on a temporary keys directory: every
//! subcommand and every exit code. The clock is pinned with `MDTOKEN_NOW`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const NOW: &str = "2026-12-03T10:00:00Z";

struct Cli {
    _dir: tempfile::TempDir,
    keys: PathBuf,
    now: String,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }
}

impl Cli {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        Self {
            _dir: dir,
            keys,
            now: NOW.into(),
        }
    }

    fn initialised() -> Self {
        let cli = Self::new();
        cli.ok(&[
            "keys",
            "init",
            "--issuer",
            "https://mdm.example",
            "--audience",
            "aud",
        ]);
        cli
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mdtoken"));
        c.arg("--keys-dir")
            .arg(&self.keys)
            .args(args)
            .env("MDTOKEN_NOW", &self.now)
            .env_remove("MDTOKEN_KEYS_DIR")
            .env_remove("MDTOKEN_CONFIG")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Run {
        finish(self.cmd(args).output().unwrap())
    }

    fn run_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        finish(out)
    }

    fn ok_at(&self, now: &str, args: &[&str]) -> Run {
        let r = finish(self.cmd(args).env("MDTOKEN_NOW", now).output().unwrap());
        assert_eq!(r.code, 0, "{args:?}: {}{}", r.stdout, r.stderr);
        r
    }

    fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(r.code, 0, "{args:?}: {}{}", r.stdout, r.stderr);
        r
    }

    fn mint(&self, args: &[&str]) -> Value {
        let mut all = vec!["mint", "--json"];
        all.extend_from_slice(args);
        self.ok(&all).json()
    }

    fn verify(&self, token: &str, at: Option<&str>) -> Run {
        let mut args = vec!["verify", token, "--json"];
        if let Some(at) = at {
            args.extend(["--at", at]);
        }
        self.run(&args)
    }

    fn keys_list(&self) -> Value {
        self.ok(&["keys", "list", "--json"]).json()
    }
}

fn finish(out: Output) -> Run {
    let r = Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    };
    assert_ne!(r.code, 101, "panicked: {}", r.stderr);
    r
}

fn reason(r: &Run) -> String {
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    r.json()["reason"].as_str().unwrap().to_owned()
}

#[test]
fn init_mint_verify_and_expiry() {
    let cli = Cli::initialised();
    let t = cli.mint(&["--expires-in", "30d", "--name", "Q1 rollout"]);
    assert_eq!(t["expires_at"], "2027-01-02T10:00:00Z");
    let token = t["token"].as_str().unwrap();
    assert!(token.len() < 512);
    let ok = cli.verify(token, None);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let v = ok.json();
    assert_eq!(v["valid"], true);
    assert_eq!(v["name"], "Q1 rollout");
    assert_eq!(v["iss"], "https://mdm.example");
    assert_eq!(v["aud"], "aud");
    assert_eq!(v["jti"], t["token_id"]);
    assert_eq!(v["kid"], t["key_id"]);
    // Plain output shows the claims too.
    let plain = cli.ok(&["verify", token]);
    assert!(plain.stdout.contains("Q1 rollout") && plain.stdout.contains("2027-01-02T10:00:00Z"));
    // Within the leeway, then after it.
    assert_eq!(cli.verify(token, Some("2027-01-02T10:00:59Z")).code, 0);
    let late = cli.verify(token, Some("2027-01-02T10:01:00Z"));
    assert_eq!(reason(&late), "token_expired");
    assert!(
        !late.stdout.contains(token),
        "messages never echo the token"
    );
}

#[test]
fn token_from_stdin_and_file_strips_one_newline_only() {
    let cli = Cli::initialised();
    let token = cli.mint(&[])["token"].as_str().unwrap().to_owned();
    assert_eq!(
        cli.run_stdin(&["verify", "-"], format!("{token}\n").as_bytes())
            .code,
        0
    );
    assert_eq!(cli.run_stdin(&["verify"], token.as_bytes()).code, 0);
    let two = cli.run_stdin(&["verify", "--json"], format!("{token}\n\n").as_bytes());
    assert_eq!(reason(&two), "malformed");
    let crlf = cli.run_stdin(&["verify", "--json"], format!("{token}\r\n").as_bytes());
    assert_eq!(reason(&crlf), "malformed");
    let file = cli.keys.parent().unwrap().join("token.txt");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    assert_eq!(cli.run(&["verify", file.to_str().unwrap()]).code, 0);
    let huge = vec![b'a'; 16 << 20];
    assert_eq!(
        reason(&cli.run_stdin(&["verify", "--json"], &huge)),
        "too_large"
    );
}

#[test]
fn rotation_keeps_old_tokens_and_sets_verify_until() {
    let cli = Cli::initialised();
    let old = cli.mint(&["--expires-in", "30d"]);
    let old_kid = old["key_id"].as_str().unwrap().to_owned();
    let private = cli.keys.join("private").join(format!("{old_kid}.pem"));
    assert!(private.exists());
    cli.ok(&["keys", "rotate"]);
    assert_eq!(cli.verify(old["token"].as_str().unwrap(), None).code, 0);
    let new = cli.mint(&["--expires-in", "1d"]);
    assert_ne!(new["key_id"], old["key_id"]);
    let list = cli.keys_list();
    let keys = list["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    let active: Vec<_> = keys.iter().filter(|k| k["status"] == "active").collect();
    let retired: Vec<_> = keys.iter().filter(|k| k["status"] == "retired").collect();
    assert_eq!((active.len(), retired.len()), (1, 1));
    assert_eq!(retired[0]["kid"], old_kid.as_str());
    assert_eq!(retired[0]["verify_until"], old["expires_at"]);
    assert!(
        !private.exists(),
        "the retired key's private file is deleted"
    );
    // The plain listing works too.
    assert!(cli.ok(&["keys", "list"]).stdout.contains("retired"));
}

#[test]
fn no_expiry_token_keeps_its_key_through_prune() {
    let cli = Cli::initialised();
    let t = cli.mint(&["--no-expiry"]);
    assert_eq!(t["expires_at"], Value::Null);
    cli.ok(&["keys", "rotate"]);
    let retired = cli.keys_list()["keys"][1].clone();
    assert_eq!(retired["kid"], t["key_id"]);
    assert_eq!(retired["verify_until"], Value::Null);
    cli.ok_at("2099-01-01T00:00:00Z", &["keys", "prune"]);
    assert_eq!(cli.keys_list()["keys"].as_array().unwrap().len(), 2);
    assert_eq!(
        cli.verify(t["token"].as_str().unwrap(), Some("2099-01-01T00:00:00Z"))
            .code,
        0
    );
}

#[test]
fn prune_drops_lapsed_keys_only() {
    let cli = Cli::initialised();
    let t = cli.mint(&["--expires-in", "1d"]);
    cli.ok(&["keys", "rotate"]);
    cli.ok_at("2026-12-04T10:00:00Z", &["keys", "prune"]);
    assert_eq!(
        cli.keys_list()["keys"].as_array().unwrap().len(),
        2,
        "within leeway"
    );
    let dry = cli.ok_at("2026-12-04T10:01:01Z", &["keys", "prune", "--dry-run"]);
    assert!(dry.stdout.contains("would drop"));
    assert_eq!(
        cli.keys_list()["keys"].as_array().unwrap().len(),
        2,
        "dry run"
    );
    let out = cli.ok_at("2026-12-04T10:01:01Z", &["keys", "prune"]);
    assert!(out.stdout.contains(t["key_id"].as_str().unwrap()));
    assert_eq!(cli.keys_list()["keys"].as_array().unwrap().len(), 1);
    let gone = cli.verify(t["token"].as_str().unwrap(), Some("2026-12-03T11:00:00Z"));
    assert_eq!(reason(&gone), "unknown_key");
}

#[test]
fn revoking_keys_and_tokens() {
    let cli = Cli::initialised();
    let a = cli.mint(&["--expires-in", "30d"]);
    cli.ok(&["keys", "rotate"]);
    let b = cli.mint(&["--expires-in", "30d"]);
    let c = cli.mint(&["--no-expiry"]);
    cli.ok(&["keys", "revoke", a["key_id"].as_str().unwrap()]);
    assert_eq!(
        reason(&cli.verify(a["token"].as_str().unwrap(), None)),
        "key_revoked"
    );
    cli.ok(&["tokens", "revoke", b["token_id"].as_str().unwrap()]);
    assert_eq!(
        reason(&cli.verify(b["token"].as_str().unwrap(), None)),
        "token_revoked"
    );
    assert_eq!(
        cli.verify(c["token"].as_str().unwrap(), None).code,
        0,
        "siblings pass"
    );
    // Revoking again is harmless; unknown ids are usage errors.
    cli.ok(&["tokens", "revoke", b["token_id"].as_str().unwrap()]);
    assert_eq!(cli.run(&["tokens", "revoke", "nope"]).code, 2);
    assert_eq!(cli.run(&["keys", "revoke", "nope"]).code, 2);
    let list = cli.ok(&["tokens", "list", "--json"]).json();
    let status = |jti: &Value| {
        list["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["token_id"] == *jti)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status(&a["token_id"]), "revoked");
    assert_eq!(status(&b["token_id"]), "revoked");
    assert_eq!(status(&c["token_id"]), "active");
    assert!(cli.ok(&["tokens", "list"]).stdout.contains("revoked"));
}

#[test]
fn revoking_the_active_key_rotates_first() {
    let cli = Cli::initialised();
    let a = cli.mint(&["--no-expiry"]);
    let out = cli.ok(&["keys", "revoke", a["key_id"].as_str().unwrap()]);
    assert!(out.stdout.contains("new active key"));
    let b = cli.mint(&[]);
    assert_ne!(a["key_id"], b["key_id"]);
    assert_eq!(cli.verify(b["token"].as_str().unwrap(), None).code, 0);
}

#[test]
fn expiry_forms_and_usage_errors() {
    let cli = Cli::initialised();
    assert_eq!(
        cli.mint(&["--expires", "2026-12-31"])["expires_at"],
        "2027-01-01T00:00:00Z"
    );
    assert_eq!(
        cli.mint(&["--expires", "2027-01-31T12:00:00+01:00"])["expires_at"],
        "2027-01-31T11:00:00Z"
    );
    assert_eq!(
        cli.mint(&[])["expires_at"],
        "2027-03-03T10:00:00Z",
        "default: renew_days"
    );
    for bad in [
        &["mint", "--expires", "2020-01-01"][..],
        &["mint", "--expires", "tomorrow"],
        &["mint", "--expires-in", "-1d"],
        &["mint", "--expires-in", "0d"],
        &["mint", "--expires-in", "1000000000d"],
        &["mint", "--expires-in", "1d", "--no-expiry"],
        &["mint", "--name", &"x".repeat(65)],
        &["verify", "x", "--at", "yesterday"],
        &["keys", "bogus"],
        &["nonsense"],
    ] {
        let r = cli.run(bad);
        assert_eq!(r.code, 2, "{bad:?}: {}", r.stderr);
        assert!(!r.stderr.is_empty());
    }
    let past = cli.run(&["mint", "--expires", "2020-01-01"]);
    assert!(past.stderr.contains("not in the future"), "{}", past.stderr);
    let unparseable = cli.run(&["mint", "--expires", "tomorrow"]);
    assert!(unparseable.stderr.contains("YYYY") || unparseable.stderr.contains("2027-01-31"));
}

#[test]
fn inspect_marks_output_unverified() {
    let cli = Cli::initialised();
    let t = cli.mint(&["--name", "lab"]);
    let out = cli.ok(&["inspect", t["token"].as_str().unwrap()]);
    assert!(out.stdout.starts_with("UNVERIFIED"));
    assert!(out.stdout.contains("\"lab\"") && out.stdout.contains("mdt+jwt"));
    assert_eq!(cli.run(&["inspect", "garbage"]).code, 1);
    assert_eq!(cli.run(&["inspect", "garbage.not.token"]).code, 1);
    // inspect needs no key ring at all.
    let empty = Cli::new();
    assert_eq!(
        empty.run(&["inspect", t["token"].as_str().unwrap()]).code,
        0
    );
}

#[test]
fn install_commands_embed_the_current_token() {
    let cli = Cli::initialised();
    let t = cli.mint(&["--expires-in", "1d"]);
    let token = t["token"].as_str().unwrap();
    let win = cli.ok(&[
        "command",
        "--os",
        "windows",
        "--server",
        "https://mdm.example:8443",
    ]);
    assert_eq!(
        win.stdout.trim(),
        format!(
            r#"msiexec /i mdclient.msi /qn MDT_SERVER="https://mdm.example:8443" MDT_TOKEN="{token}""#
        )
    );
    let all = cli.ok(&["command"]).stdout;
    assert!(all.contains("# windows") && all.contains("# macos") && all.contains("# linux"));
    assert_eq!(all.matches(token).count(), 3);
    assert_eq!(
        cli.run(&["command", "--server", "https://x\";rm -rf /"])
            .code,
        2
    );
    // After the current token lapses, `command` renews it (90 days by default).
    let later = Cli {
        now: "2026-12-05T00:00:00Z".into(),
        ..cli
    };
    let renewed = later.ok(&["command", "--json"]).json();
    assert_ne!(renewed["token_id"], t["token_id"]);
    assert_eq!(renewed["expires_at"], "2027-03-05T00:00:00Z");
    assert!(
        later
            .run(&["tokens", "list"])
            .stdout
            .contains("auto-renewed")
    );
}

#[test]
fn admin_key_is_printed_once_and_stored_hashed() {
    let cli = Cli::initialised();
    let out = cli.ok(&["admin-key", "create"]);
    let key = out.stdout.trim();
    assert!(key.starts_with("mdt_admin_"));
    let stored = std::fs::read_to_string(cli.keys.join("admin-keys.json")).unwrap();
    assert!(!stored.contains(key));
    assert_eq!(mode(&cli.keys.join("admin-keys.json")), 0o600);
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn file_modes() {
    let cli = Cli::initialised();
    let t = cli.mint(&[]);
    assert_eq!(mode(&cli.keys.join("keyring.json")), 0o644);
    assert_eq!(mode(&cli.keys.join("private")), 0o700);
    let kid = t["key_id"].as_str().unwrap();
    let pem = cli.keys.join("private").join(format!("{kid}.pem"));
    assert_eq!(mode(&pem), 0o600);
    assert!(
        std::fs::read_to_string(&pem)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    assert_eq!(mode(&cli.keys.join("tokens.jsonl")), 0o600);
    assert_eq!(mode(&cli.keys.join("current.json")), 0o600);
    let ledger = std::fs::read_to_string(cli.keys.join("tokens.jsonl")).unwrap();
    assert!(
        !ledger.contains(t["token"].as_str().unwrap()),
        "the ledger never holds tokens"
    );
}

#[test]
fn corrupt_or_missing_ring_exits_3_and_changes_nothing() {
    let cli = Cli::initialised();
    let t = cli.mint(&[]);
    let token = t["token"].as_str().unwrap().to_owned();
    let jti = t["token_id"].as_str().unwrap().to_owned();
    let ring = cli.keys.join("keyring.json");
    for bad in [
        &b""[..],
        b"{",
        b"garbage",
        b"{\"issuer\":\"i\",\"audience\":\"a\",\"keys\":[]}",
    ] {
        std::fs::write(&ring, bad).unwrap();
        for args in [
            &["keys", "list"][..],
            &["keys", "rotate"],
            &["keys", "revoke", "x"],
            &["keys", "prune"],
            &["mint"],
            &["tokens", "list"],
            &["tokens", "revoke", &jti],
            &["verify", &token],
            &["command"],
        ] {
            let r = cli.run(args);
            assert_eq!(r.code, 3, "{args:?} with {bad:?}: {}{}", r.stdout, r.stderr);
            assert!(r.stderr.contains("keyring.json"), "{args:?}: {}", r.stderr);
            assert_eq!(
                std::fs::read(&ring).unwrap(),
                bad,
                "{args:?} changed the ring"
            );
        }
        let init = cli.run(&["keys", "init"]);
        assert_eq!(init.code, 3);
        assert_eq!(std::fs::read(&ring).unwrap(), bad);
    }
    std::fs::remove_file(&ring).unwrap();
    let missing = cli.run(&["verify", &token]);
    assert_eq!(missing.code, 3);
    assert!(missing.stderr.contains("keys init"), "{}", missing.stderr);
    let elsewhere = cli.run(&["verify", &token, "--keyring", "/nonexistent/keyring.json"]);
    assert_eq!(elsewhere.code, 3);
}

#[test]
fn configuration_file_env_and_identity_checks() {
    let cli = Cli::initialised();
    let dir = cli.keys.parent().unwrap();
    let config = dir.join("mdtoken.toml");
    std::fs::write(&config, "leeway_seconds = 0\n").unwrap();
    let t = cli.mint(&["--expires-in", "1h"]);
    let token = t["token"].as_str().unwrap();
    let c = config.to_str().unwrap();
    assert_eq!(
        cli.run(&[
            "--config",
            c,
            "verify",
            token,
            "--at",
            "2026-12-03T11:00:00Z"
        ])
        .code,
        1
    );
    let mut env = cli.cmd(&["verify", token, "--at", "2026-12-03T11:00:00Z"]);
    env.env("MDTOKEN_LEEWAY_SECONDS", "5");
    assert_eq!(
        finish(env.output().unwrap()).code,
        0,
        "env overrides file defaults"
    );
    std::fs::write(&config, "issuer = \"someone-else\"\n").unwrap();
    let r = cli.run(&["--config", c, "mint"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("issuer"));
    std::fs::write(&config, "leeway = 1\n").unwrap();
    let r = cli.run(&["--config", c, "keys", "list"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("mdtoken.toml"));
}

#[test]
fn keys_init_refuses_to_overwrite() {
    let cli = Cli::initialised();
    let before = std::fs::read(cli.keys.join("keyring.json")).unwrap();
    let r = cli.run(&["keys", "init"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("already exists"));
    assert_eq!(
        std::fs::read(cli.keys.join("keyring.json")).unwrap(),
        before
    );
}

#[test]
fn help_is_available() {
    let cli = Cli::new();
    let out = cli.ok(&["--help"]);
    assert!(out.stdout.contains("Exit codes"));
    for sub in [
        "keys",
        "mint",
        "tokens",
        "verify",
        "inspect",
        "command",
        "admin-key",
        "serve",
    ] {
        cli.ok(&[sub, "--help"]);
    }
}

#[test]
fn ids_beginning_with_a_hyphen_are_arguments() {
    let cli = Cli::initialised();
    let r = cli.run(&["tokens", "revoke", "-AAAAAAAAAAAAAAAAAAAAA"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("no token -AAAAAAAAAAAAAAAAAAAAA"),
        "{}",
        r.stderr
    );
    let r = cli.run(&["keys", "revoke", "-9-hwAYXW3wK"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no key -9-hwAYXW3wK"), "{}", r.stderr);
}

#[test]
fn clock_pins_out_of_range_are_refused() {
    let cli = Cli::initialised();
    let r = finish(
        cli.cmd(&["mint"])
            .env("MDTOKEN_NOW", "9999-12-31T23:59:59Z")
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = cli.run(&["verify", "x", "--at", "0000-01-01T00:00:00Z"]);
    assert_eq!(r.code, 2);
}

#[test]
fn serve_warns_at_start_of_a_damaged_ledger_and_still_serves() {
    use std::io::BufRead as _;
    let cli = Cli::initialised();
    cli.mint(&["--name", "a"]);
    let ledger = cli.keys.join("tokens.jsonl");
    let good = std::fs::read_to_string(&ledger).unwrap();
    std::fs::write(&ledger, format!("{{\"jti\": 5, oops\n{good}")).unwrap();
    let mut child = cli
        .cmd(&["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let warned = loop {
        let Some(Ok(line)) = lines.next() else {
            break false;
        };
        // The log line of the same start-up, written after the warning by the same
        // writer (the plain "listening on" notice goes straight to stderr).
        if line.contains("INFO") && line.contains(": listening") {
            break seen.iter().any(|l: &String| {
                l.contains("WARN")
                    && l.contains("the token ledger cannot be read")
                    && l.contains("tokens.jsonl")
                    && l.contains("line 1")
                    && !l.contains("oops")
            });
        }
        seen.push(line);
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(warned, "{seen:#?}");
}
