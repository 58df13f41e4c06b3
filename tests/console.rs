//! The web console in a real browser: headless Chromium driven over WebDriver against a real
//! `mdtoken serve` on a temporary keys directory. Screenshots of the main view and the
//! Generate New Token dialog, at 1280 and 400 px wide, go to `target/console-screenshots/`.
//!
//! Needs the `chromium` and `chromium-driver` packages. Without them the test is skipped,
//! except under CI (`CI` set), where it fails.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const BIN: &str = env!("CARGO_BIN_EXE_mdtoken");
/// The whole browser session, start to finish.
const WHOLE_RUN: Duration = Duration::from_secs(80);
/// Any single wait for the page or a process.
const STEP: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(50);
const SERVER_URL: &str = "https://deploy.example.com";
const ESCAPE: &str = "\u{E00C}";
const ENTER: &str = "\u{E007}";
const SPACE: &str = " ";

type Result<T = ()> = anyhow::Result<T>;

/// A child process killed and reaped when dropped, so a failing test leaves nothing behind.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    );
    target.join("console-screenshots")
}

// ------------------------------------------------------------------ the server

struct Server {
    _process: Reaped,
    _keys: tempfile::TempDir,
    /// `127.0.0.1:PORT`
    addr: String,
    admin_key: String,
}

impl Server {
    fn start() -> Result<Self> {
        let keys = tempfile::tempdir()?;
        let cli = |args: &[&str]| {
            Command::new(BIN)
                .args(args)
                .env("MDTOKEN_KEYS_DIR", keys.path())
                .stdin(Stdio::null())
                .output()
                .with_context(|| format!("running mdtoken {args:?}"))
        };
        let init = cli(&["keys", "init"])?;
        ensure!(init.status.success(), "keys init failed: {init:?}");
        let created = cli(&["admin-key", "create"])?;
        ensure!(
            created.status.success(),
            "admin-key create failed: {created:?}"
        );
        let admin_key = String::from_utf8(created.stdout)?.trim().to_owned();
        ensure!(!admin_key.is_empty(), "admin-key create printed no key");

        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("MDTOKEN_KEYS_DIR", keys.path())
            .env("MDTOKEN_SERVER_URL", SERVER_URL)
            // Expiry is exact, so the test can watch a short-lived token lapse.
            .env("MDTOKEN_LEEWAY_SECONDS", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting mdtoken serve")?;
        let stderr = child.stderr.take().context("server stderr")?;
        let process = Reaped(child);
        let (tx, rx) = mpsc::channel();
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
            }
        });
        let addr = rx
            .recv_timeout(STEP)
            .context("mdtoken serve did not report its address")?;
        Ok(Self {
            _process: process,
            _keys: keys,
            addr,
            admin_key,
        })
    }

    fn base(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// A plain HTTP/1.1 request, so the test checks the server's state independently of
    /// the page.
    fn call(
        &self,
        method: &str,
        path: &str,
        admin: bool,
        body: Option<&Value>,
    ) -> Result<(u16, Value)> {
        let mut stream = TcpStream::connect(&self.addr)?;
        stream.set_read_timeout(Some(STEP))?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\nContent-Length: {}\r\n",
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
        stream.write_all(request.as_bytes())?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let raw = String::from_utf8(raw)?;
        let (head, payload) = raw.split_once("\r\n\r\n").context("no end of headers")?;
        ensure!(
            !head
                .to_ascii_lowercase()
                .contains("transfer-encoding: chunked"),
            "unexpected chunked answer to {method} {path}"
        );
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .context("no status code")?;
        let json = if payload.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(payload)?
        };
        Ok((status, json))
    }

    fn admin_get(&self, path: &str) -> Result<Value> {
        let (status, json) = self.call("GET", path, true, None)?;
        ensure!(status == 200, "GET {path}: {status} {json}");
        Ok(json)
    }

    fn activate(&self, token: &str) -> Result<Value> {
        Ok(self
            .call(
                "POST",
                "/v1/activations",
                false,
                Some(&json!({ "token": token })),
            )?
            .1)
    }
}

// ------------------------------------------------------------------ the browser

struct Browser {
    _driver: Reaped,
    _profile: tempfile::TempDir,
    client: Client,
}

impl Browser {
    async fn start(chromium: &Path, chromedriver: &Path) -> Result<Self> {
        let port = free_port();
        let driver = Reaped(
            Command::new(chromedriver)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting chromedriver")?,
        );
        let profile = tempfile::tempdir()?;
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-extensions",
                    "--disable-default-apps", "--hide-scrollbars", "--force-device-scale-factor=1",
                    "--lang=en-US", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + STEP;
        let client = loop {
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => bail!("cannot start a Chromium session through chromedriver: {e}"),
            }
        };
        Ok(Self {
            _driver: driver,
            _profile: profile,
            client,
        })
    }
}

/// WebDriver "Set Permission" (W3C Permissions extension), which fantoccini does not wrap.
#[derive(Debug)]
struct GrantPermission(&'static str);

impl fantoccini::wd::WebDriverCompatibleCommand for GrantPermission {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> std::result::Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/permissions",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({ "descriptor": { "name": self.0 }, "state": "granted" });
        (http::Method::POST, Some(body.to_string()))
    }
}

/// What the system clipboard holds, read the way a paste would.
async fn read_clipboard(c: &Client) -> Result<String> {
    let v = c
        .execute_async(
            "const done = arguments[0]; navigator.clipboard.readText().then(done, (e) => done({error: String(e)}));",
            vec![],
        )
        .await?;
    match v {
        Value::String(s) => Ok(s),
        other => bail!("cannot read the clipboard: {other}"),
    }
}

async fn js(c: &Client, script: &str) -> Result<Value> {
    c.execute(script, vec![])
        .await
        .with_context(|| format!("running {script}"))
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// Polls a JavaScript expression until it is truthy and returns its value.
async fn wait_for(c: &Client, expr: &str, what: &str) -> Result<Value> {
    let script = format!("return ({expr});");
    let deadline = Instant::now() + STEP;
    loop {
        let v = js(c, &script).await?;
        if truthy(&v) {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what} (`{expr}` is {v})");
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn text(c: &Client, id: &str) -> Result<String> {
    let v = js(
        c,
        &format!("return document.getElementById('{id}').textContent;"),
    )
    .await?;
    Ok(v.as_str().unwrap_or_default().trim().to_owned())
}

async fn click(c: &Client, css: &str) -> Result {
    c.find(Locator::Css(css))
        .await
        .with_context(|| format!("finding {css}"))?
        .click()
        .await
        .with_context(|| format!("clicking {css}"))?;
    Ok(())
}

async fn type_into(c: &Client, css: &str, value: &str) -> Result {
    let field = c.find(Locator::Css(css)).await?;
    field.clear().await?;
    field.send_keys(value).await?;
    Ok(())
}

async fn press_escape(c: &Client) -> Result {
    c.active_element().await?.send_keys(ESCAPE).await?;
    Ok(())
}

async fn set_date(c: &Client, value: &str) -> Result {
    // Typing into a date field depends on the browser's locale; set it as a script would.
    let script = format!(
        "const d = document.getElementById('expiry-date'); d.value = '{value}'; \
         d.dispatchEvent(new Event('input', {{bubbles: true}})); return d.value;"
    );
    let set = js(c, &script).await?;
    ensure!(
        set == json!(value),
        "the date field took {set}, not {value}"
    );
    Ok(())
}

async fn dialog_open(c: &Client, id: &str) -> Result<bool> {
    Ok(truthy(
        &js(c, &format!("return document.getElementById('{id}').open;")).await?,
    ))
}

/// Saves a screenshot; `full_page` grows the window to the document's height first.
async fn screenshot(c: &Client, name: &str, width: u32, height: u32, full_page: bool) -> Result {
    c.set_window_size(width, height).await?;
    if full_page {
        let (_, outer) = c.get_window_size().await?;
        let inner = js(c, "return window.innerHeight;")
            .await?
            .as_u64()
            .unwrap_or(0);
        let doc = js(c, "return document.documentElement.scrollHeight;")
            .await?
            .as_u64()
            .unwrap_or(0);
        if doc > inner {
            let grown = u32::try_from(outer + (doc - inner)).unwrap_or(height);
            c.set_window_size(width, grown).await?;
        }
    }
    let width_seen = js(c, "return window.innerWidth;")
        .await?
        .as_u64()
        .unwrap_or(0);
    ensure!(
        width_seen.abs_diff(u64::from(width)) <= 20,
        "the window is {width_seen} px wide, not {width}"
    );
    c.execute_async(
        "requestAnimationFrame(() => requestAnimationFrame(arguments[0]));",
        vec![],
    )
    .await?;
    let png = c.screenshot().await?;
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), png).with_context(|| format!("saving {name}"))?;
    c.set_window_size(width, height).await?;
    Ok(())
}

fn utc_date(offset_days: i64) -> String {
    let d = OffsetDateTime::now_utc().date() + time::Duration::days(offset_days);
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

// ------------------------------------------------------------------ the scenario

/// Activations of every outcome, so the activity chart has something to show.
fn make_activity(server: &Server, current: &str) -> Result<(u64, u64, u64)> {
    for _ in 0..6 {
        let r = server.activate(current)?;
        ensure!(r["activated"] == json!(true), "activation refused: {r}");
    }
    for _ in 0..2 {
        let r = server.activate("not-a-token")?;
        ensure!(r["error"] == json!("malformed"), "garbage accepted? {r}");
    }
    let soon = (OffsetDateTime::now_utc() + time::Duration::seconds(2)).format(&Rfc3339)?;
    let (status, pilot) = server.call(
        "POST",
        "/v1/tokens",
        true,
        Some(&json!({ "name": "Pilot ring (short-lived)", "expires_at": soon })),
    )?;
    ensure!(
        status == 201,
        "minting a short-lived token: {status} {pilot}"
    );
    let pilot = pilot["token"].as_str().context("token")?.to_owned();
    // Accepted until it lapses, then refused as expired.
    let mut accepted = 6;
    let deadline = Instant::now() + STEP;
    loop {
        let r = server.activate(&pilot)?;
        if r["error"] == json!("token_expired") {
            break;
        }
        ensure!(
            r["activated"] == json!(true),
            "short-lived token refused: {r}"
        );
        ensure!(
            Instant::now() < deadline,
            "the short-lived token never expired"
        );
        accepted += 1;
        std::thread::sleep(Duration::from_millis(250));
    }
    for _ in 0..2 {
        let r = server.activate(&pilot)?;
        ensure!(r["error"] == json!("token_expired"), "{r}");
    }
    Ok((accepted, 3, 2))
}

async fn scenario(c: &Client, server: &Server) -> Result {
    let first = server.admin_get("/v1/deployment")?;
    let (accepted, expired, rejected) =
        make_activity(server, first["token"].as_str().context("token")?)?;

    // --- sign-in: a wrong key is refused with a clear message
    c.set_window_size(1280, 900).await?;
    c.goto(&server.base()).await?;
    wait_for(
        c,
        "!document.getElementById('signin-view').hidden",
        "the sign-in form",
    )
    .await?;
    ensure!(
        js(c, "return document.getElementById('app-view').hidden;").await? == json!(true),
        "the console shows before sign-in"
    );
    type_into(c, "#admin-key", "mdtk_this-is-not-the-key").await?;
    click(c, "#signin-button").await?;
    let error = wait_for(
        c,
        "!document.getElementById('signin-error').hidden && document.getElementById('signin-error').textContent",
        "the wrong-key message",
    )
    .await?;
    screenshot(c, "signin-1280.png", 1280, 900, false).await?;
    ensure!(
        error
            .as_str()
            .unwrap_or_default()
            .contains("The admin key was not accepted"),
        "unexpected sign-in error: {error}"
    );
    ensure!(
        js(c, "return sessionStorage.length;").await? == json!(0),
        "a refused key was kept"
    );

    // --- sign-in with the real key
    type_into(c, "#admin-key", &server.admin_key).await?;
    click(c, "#signin-button").await?;
    wait_for(
        c,
        "!document.getElementById('app-view').hidden && document.getElementById('tokens-body').children.length > 0",
        "the console after sign-in",
    )
    .await?;

    // The short-lived token lapsed, so the console's first look renewed the current token.
    let current = server.admin_get("/v1/deployment")?;
    let token = current["token"].as_str().context("token")?.to_owned();
    ensure!(
        current["name"] == json!("auto-renewed"),
        "not renewed: {current}"
    );
    for os in ["windows", "macos", "linux"] {
        let shown = text(c, &format!("cmd-{os}")).await?;
        ensure!(
            shown == current["commands"][os].as_str().unwrap_or_default().trim(),
            "{os} command shown differs from the API's: {shown}"
        );
        ensure!(
            shown.contains(&token),
            "{os} command lacks the current token"
        );
    }
    ensure!(
        text(c, "current-name").await? == "auto-renewed",
        "current name"
    );
    ensure!(
        text(c, "current-expires").await?.contains(" UTC"),
        "current expiry"
    );
    let renews = text(c, "current-renews").await?;
    ensure!(renews.contains(" UTC (in "), "renewal time: {renews}");

    // --- copy a command and read back what was copied
    click(c, "#copy-windows").await?;
    let copied = wait_for(
        c,
        "document.getElementById('copy-windows').dataset.copied",
        "the copied Windows command",
    )
    .await?;
    ensure!(
        copied.as_str() == Some(text(c, "cmd-windows").await?.as_str()),
        "copied text differs from the command shown: {copied}"
    );
    ensure!(
        copied.as_str().unwrap_or_default().contains(&token),
        "copied command lacks the token"
    );
    c.issue_cmd(GrantPermission("clipboard-read")).await?;
    let pasted = read_clipboard(c).await?;
    ensure!(
        copied.as_str() == Some(pasted.as_str()),
        "the clipboard holds {pasted:?}"
    );
    wait_for(
        c,
        "document.getElementById('status').textContent === 'Copied Windows command'",
        "the copy announcement",
    )
    .await?;

    // --- activity totals from the server's counters
    for (id, n) in [
        ("total-accepted", accepted),
        ("total-expired", expired),
        ("total-rejected", rejected),
    ] {
        let shown = text(c, id).await?;
        ensure!(shown == n.to_string(), "{id} shows {shown}, not {n}");
    }
    let bars = js(
        c,
        "return document.querySelectorAll('#activity-chart rect.seg').length;",
    )
    .await?;
    ensure!(truthy(&bars), "the activity chart has no bars");

    // --- generate a token without expiry
    click(c, "#generate-open").await?;
    ensure!(
        dialog_open(c, "generate-dialog").await?,
        "the dialog did not open"
    );
    ensure!(
        js(c, "return !document.getElementById('expiry-enabled').checked && document.getElementById('expiry-date').disabled;").await?
            == json!(true),
        "expiry must be off by default, with the date field disabled"
    );
    type_into(c, "#token-name", "Laptops Q3").await?;
    click(c, "#generate-submit").await?;
    wait_for(
        c,
        "!document.getElementById('generate-step-result').hidden && document.getElementById('new-token').value",
        "the generated token",
    )
    .await?;
    let no_expiry = server.admin_get("/v1/deployment")?;
    let no_expiry_token = no_expiry["token"].as_str().context("token")?.to_owned();
    ensure!(no_expiry["name"] == json!("Laptops Q3"), "{no_expiry}");
    ensure!(
        no_expiry["expires_at"].is_null(),
        "asked for no expiry: {no_expiry}"
    );
    let shown = js(c, "return document.getElementById('new-token').value;").await?;
    ensure!(
        shown.as_str() == Some(no_expiry_token.as_str()),
        "the dialog shows another token"
    );
    ensure!(
        text(c, "new-expires").await? == "Never",
        "the new token's expiry"
    );
    ensure!(
        text(c, "new-cmd-linux").await?.contains(&no_expiry_token),
        "dialog commands"
    );
    click(c, "#new-token-copy").await?;
    let copied = wait_for(
        c,
        "document.getElementById('new-token-copy').dataset.copied",
        "the copied token",
    )
    .await?;
    ensure!(
        copied.as_str() == Some(no_expiry_token.as_str()),
        "copied token differs"
    );
    click(c, "#generate-done").await?;
    ensure!(
        !dialog_open(c, "generate-dialog").await?,
        "Done did not close the dialog"
    );
    ensure!(
        js(c, "return document.activeElement.id;").await? == json!("generate-open"),
        "focus did not return to the Generate New Token button"
    );
    ensure!(
        js(c, "return document.getElementById('new-token').value;").await? == json!(""),
        "the token stays in the page after the dialog closed"
    );
    wait_for(
        c,
        &format!("document.getElementById('cmd-linux').textContent.includes('{no_expiry_token}')"),
        "the page's commands to carry the new token",
    )
    .await?;
    ensure!(
        text(c, "current-expires").await? == "Never",
        "current expiry should be never"
    );
    let no_expiry_id = no_expiry["token_id"]
        .as_str()
        .context("token_id")?
        .to_owned();
    let row = format!("#tokens-body tr[data-token-id='{no_expiry_id}']");
    wait_for(
        c,
        &format!("document.querySelector(\"{row} .badge-current\")"),
        "the new token in the list, marked current",
    )
    .await?;

    // --- generate a token with an expiry date
    let tokens_before = server.admin_get("/v1/tokens")?["tokens"]
        .as_array()
        .map_or(0, Vec::len);
    click(c, "#generate-open").await?;
    ensure!(
        js(c, "return document.getElementById('token-name').value;").await? == json!(""),
        "the form was not reset"
    );
    type_into(c, "#token-name", "Kiosks EMEA").await?;
    click(c, "#expiry-enabled").await?;
    let min = js(
        c,
        "return !document.getElementById('expiry-date').disabled && document.getElementById('expiry-date').min;",
    )
    .await?;
    ensure!(
        min == json!(utc_date(0)),
        "date field min should be today (UTC): {min}"
    );
    // Refused by the form: a past date.
    set_date(c, &utc_date(-1)).await?;
    click(c, "#generate-submit").await?;
    let refused = wait_for(
        c,
        "!document.getElementById('generate-error').hidden && document.getElementById('generate-error').textContent",
        "the past-date message",
    )
    .await?;
    ensure!(
        refused.as_str().unwrap_or_default().contains("in the past"),
        "{refused}"
    );
    // Refused by the server: too far ahead; its message is shown.
    set_date(c, &utc_date(20 * 366)).await?;
    click(c, "#generate-submit").await?;
    let refused = wait_for(
        c,
        "document.getElementById('generate-error').textContent.startsWith('The server refused') && document.getElementById('generate-error').textContent",
        "the server's refusal",
    )
    .await?;
    ensure!(
        dialog_open(c, "generate-dialog").await?,
        "the dialog closed on a refusal: {refused}"
    );
    let tokens_now = server.admin_get("/v1/tokens")?["tokens"]
        .as_array()
        .map_or(0, Vec::len);
    ensure!(tokens_now == tokens_before, "a refused form minted a token");
    let expiry = utc_date(30);
    set_date(c, &expiry).await?;
    ensure!(
        js(
            c,
            "return document.getElementById('generate-error').hidden;"
        )
        .await?
            == json!(true),
        "the old error should clear when the date changes"
    );
    screenshot(c, "dialog-1280.png", 1280, 900, false).await?;
    click(c, "#generate-submit").await?;
    wait_for(
        c,
        "!document.getElementById('generate-step-result').hidden && document.getElementById('new-token').value",
        "the generated token with expiry",
    )
    .await?;
    let with_expiry = server.admin_get("/v1/deployment")?;
    let next_midnight = format!("{}T00:00:00Z", utc_date(31));
    ensure!(
        with_expiry["expires_at"] == json!(next_midnight),
        "a bare date should expire at the end of that day: {with_expiry}"
    );
    ensure!(
        text(c, "new-expires").await? == format!("End of {expiry} UTC"),
        "the dialog's expiry text"
    );
    let with_expiry_token = with_expiry["token"].as_str().context("token")?.to_owned();
    ensure!(
        js(c, "return document.getElementById('new-token').value;").await?
            == json!(with_expiry_token),
        "the dialog shows another token"
    );
    screenshot(c, "dialog-result-1280.png", 1280, 900, false).await?;
    press_escape(c).await?;
    wait_for(
        c,
        "!document.getElementById('generate-dialog').open",
        "Escape to close the dialog",
    )
    .await?;
    wait_for(
        c,
        &format!(
            "document.getElementById('cmd-macos').textContent.includes('{with_expiry_token}')"
        ),
        "the commands to carry the token with expiry",
    )
    .await?;
    ensure!(
        text(c, "current-expires")
            .await?
            .starts_with(&format!("End of {expiry} UTC")),
        "current expiry"
    );

    // --- revoke a token, first cancelling the confirmation
    let revoke = format!("{row} button[data-revoke]");
    click(c, &revoke).await?;
    ensure!(
        js(c, "return document.activeElement.id;").await? == json!("confirm-cancel"),
        "the confirmation should focus Cancel"
    );
    ensure!(
        dialog_open(c, "confirm-dialog").await?,
        "no confirmation before revoking"
    );
    click(c, "#confirm-cancel").await?;
    ensure!(
        !dialog_open(c, "confirm-dialog").await?,
        "cancel did not close the confirmation"
    );
    let status = |v: &Value, id: &str| {
        v["tokens"]
            .as_array()
            .and_then(|ts| ts.iter().find(|t| t["token_id"] == json!(id)))
            .map(|t| t["status"].clone())
    };
    ensure!(
        status(&server.admin_get("/v1/tokens")?, &no_expiry_id) == Some(json!("active")),
        "cancel revoked the token"
    );
    click(c, &revoke).await?;
    click(c, "#confirm-ok").await?;
    wait_for(
        c,
        &format!("document.querySelector(\"{row}\").dataset.status === 'revoked'"),
        "the token to show as revoked",
    )
    .await?;
    ensure!(
        status(&server.admin_get("/v1/tokens")?, &no_expiry_id) == Some(json!("revoked")),
        "the server does not have the token revoked"
    );
    let refused = server.activate(&no_expiry_token)?;
    ensure!(refused["error"] == json!("token_revoked"), "{refused}");

    // --- rotate the signing key
    let keys = server.admin_get("/v1/keys")?;
    let old_kid = keys["keys"][0]["kid"].as_str().context("kid")?.to_owned();
    click(c, "#rotate-button").await?;
    ensure!(
        dialog_open(c, "confirm-dialog").await?,
        "no confirmation before rotating"
    );
    click(c, "#confirm-ok").await?;
    wait_for(
        c,
        &format!("document.querySelector(\"#keys-body tr[data-kid='{old_kid}']\").dataset.status === 'retired'"),
        "the old key to show as retired",
    )
    .await?;
    let keys = server.admin_get("/v1/keys")?;
    let new_kid = keys["keys"]
        .as_array()
        .and_then(|ks| ks.iter().find(|k| k["status"] == json!("active")))
        .and_then(|k| k["kid"].as_str())
        .context("an active key")?
        .to_owned();
    ensure!(new_kid != old_kid, "rotation kept the old key active");
    wait_for(
        c,
        &format!("document.querySelector(\"#keys-body tr[data-kid='{new_kid}']\")"),
        "the new key in the list",
    )
    .await?;

    // --- everything is still there after a reload
    c.refresh().await?;
    wait_for(
        c,
        "!document.getElementById('app-view').hidden && document.body.dataset.loaded",
        "the console after a reload",
    )
    .await?;
    ensure!(
        text(c, "cmd-windows").await?.contains(&with_expiry_token),
        "the commands after a reload"
    );
    ensure!(
        js(
            c,
            &format!("return document.querySelector(\"{row}\").dataset.status;")
        )
        .await?
            == json!("revoked"),
        "the revoked token after a reload"
    );
    ensure!(
        js(c, &format!("return document.querySelector(\"#keys-body tr[data-kid='{old_kid}']\").dataset.status;")).await?
            == json!("retired"),
        "the retired key after a reload"
    );
    ensure!(
        text(c, "total-accepted").await? == accepted.to_string(),
        "activity after a reload"
    );
    screenshot(c, "main-1280.png", 1280, 900, true).await?;

    // --- narrow screens
    c.set_window_size(400, 860).await?;
    c.execute("window.scrollTo(0, 0);", vec![]).await?;
    ensure!(
        js(
            c,
            "return document.documentElement.scrollWidth <= window.innerWidth;"
        )
        .await?
            == json!(true),
        "the page scrolls sideways at 400 px"
    );
    screenshot(c, "main-400.png", 400, 860, true).await?;
    // This time with the keyboard only.
    js(
        c,
        "document.getElementById('generate-open').focus(); return true;",
    )
    .await?;
    c.active_element().await?.send_keys(ENTER).await?;
    wait_for(
        c,
        "document.getElementById('generate-dialog').open",
        "Enter to open the dialog",
    )
    .await?;
    ensure!(
        js(c, "return document.activeElement.id;").await? == json!("token-name"),
        "the dialog should focus its first field"
    );
    c.active_element().await?.send_keys("Field tablets").await?;
    js(
        c,
        "document.getElementById('expiry-enabled').focus(); return true;",
    )
    .await?;
    c.active_element().await?.send_keys(SPACE).await?;
    wait_for(
        c,
        "!document.getElementById('expiry-date').disabled && document.activeElement.id === 'expiry-date'",
        "Space to enable the date field",
    )
    .await?;
    screenshot(c, "dialog-400.png", 400, 860, false).await?;
    press_escape(c).await?;
    wait_for(
        c,
        "!document.getElementById('generate-dialog').open",
        "Escape to close the dialog",
    )
    .await?;
    c.set_window_size(1280, 900).await?;

    // --- sign out, and a key that stops working mid-session
    click(c, "#signout-button").await?;
    wait_for(
        c,
        "!document.getElementById('signin-view').hidden",
        "the sign-in form after sign-out",
    )
    .await?;
    ensure!(
        js(c, "return sessionStorage.length;").await? == json!(0),
        "sign-out kept the key"
    );
    ensure!(
        js(c, "return document.getElementById('cmd-windows');").await? == Value::Null,
        "sign-out left the commands in the page"
    );
    c.refresh().await?;
    wait_for(
        c,
        "!document.getElementById('signin-view').hidden",
        "the sign-in form after a reload",
    )
    .await?;
    js(
        c,
        "sessionStorage.setItem('mdtoken.adminKey', 'mdtk_revoked-or-mistyped'); return true;",
    )
    .await?;
    c.refresh().await?;
    let error = wait_for(
        c,
        "!document.getElementById('signin-error').hidden && document.getElementById('signin-error').textContent",
        "the 401 message",
    )
    .await?;
    ensure!(
        error
            .as_str()
            .unwrap_or_default()
            .contains("The admin key was not accepted"),
        "unexpected message: {error}"
    );
    ensure!(
        js(c, "return sessionStorage.length;").await? == json!(0),
        "a refused key was kept"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_headless_chromium() {
    let chromium = find_program(&["chromium", "chromium-browser"]);
    let chromedriver = find_program(&["chromedriver"]);
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium and chromedriver are required in CI: apt-get install chromium chromium-driver"
        );
        eprintln!("skipped: install chromium chromium-driver to run the console browser test");
        return;
    };
    let server = Server::start().expect("starting mdtoken serve");
    let browser = Browser::start(&chromium, &chromedriver)
        .await
        .expect("starting headless Chromium");
    let c = &browser.client;
    let outcome = tokio::time::timeout(WHOLE_RUN, scenario(c, &server)).await;
    if !matches!(outcome, Ok(Ok(())))
        && let Ok(png) = c.screenshot().await
    {
        let dir = screenshot_dir();
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join("failure.png"), png);
    }
    // Ends the browser session cleanly so Chromium exits with chromedriver.
    let _ = browser.client.clone().close().await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("console test failed: {e:#}"),
        Err(_) => panic!("console test took longer than {WHOLE_RUN:?}"),
    }
}
