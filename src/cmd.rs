//! One function per subcommand; each only reads its arguments, calls the library and
//! prints.

use std::io::{self, Read as _, Write as _};
use std::path::Path;

use anyhow::Context as _;
use mdtoken::clock::{Clock as _, SystemClock};
use mdtoken::config::{self, Config};
use mdtoken::install::Os;
use mdtoken::keyring::{KeyRing, KeyStatus, rfc3339};
use mdtoken::mint::{self, Expiry};
use mdtoken::store::{Current, KeyStore};
use mdtoken::token;
use mdtoken::verify::Verifier;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::{
    AdminKeyCommand, Cli, Command, CommandArgs, Failure, InspectArgs, KeysCommand, MintArgs, OsArg,
    ServeArgs, TokensCommand, VerifyArgs, exit, usage,
};

type Result<T = u8> = std::result::Result<T, Failure>;

/// Runs the parsed command and returns the exit code.
pub fn run(cli: Cli) -> Result {
    let config = Config::load(cli.config.as_deref(), |k| std::env::var(k).ok())
        .context("loading configuration")?;
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("MDTOKEN_") && !config::ENV_VARS.contains(&name.as_ref()) {
            eprintln!("warning: ignoring unknown environment variable {name}");
        }
    }
    let store = KeyStore::new(&cli.keys_dir);
    // MDTOKEN_NOW pins the clock (RFC 3339) for reproducible scripts and tests.
    let now = match std::env::var("MDTOKEN_NOW") {
        Ok(t) => parse_at(Some(&t), 0)?,
        Err(_) => SystemClock.now(),
    };
    match cli.command {
        Command::Keys(c) => keys(&store, &config, c, now),
        Command::Mint(a) => mint_cmd(&store, &config, a, now),
        Command::Tokens(c) => tokens(&store, c, now),
        Command::Verify(a) => verify(&store, &config, a, now),
        Command::Inspect(a) => inspect(a),
        Command::Command(a) => command(&store, &config, a, now),
        Command::AdminKey(AdminKeyCommand::Create) => admin_key_create(&store, now),
        Command::Serve(a) => serve(cli.keys_dir, config, a),
    }
}

fn parse_at(at: Option<&str>, now: i64) -> Result<i64> {
    match at {
        None => Ok(now),
        Some(text) => OffsetDateTime::parse(text, &Rfc3339)
            .map(OffsetDateTime::unix_timestamp)
            .ok()
            .filter(|t| (0..=token::MAX_NUMERIC_DATE).contains(t))
            .ok_or_else(|| {
                usage(format!(
                    "{text:?} is not an RFC 3339 time between 1970 and 9999, such as 2027-01-31T12:00:00Z"
                ))
            }),
    }
}

fn opt_time(t: Option<i64>) -> serde_json::Value {
    t.map_or(serde_json::Value::Null, |t| rfc3339(t).into())
}

fn load_ring(store: &KeyStore, config: &Config) -> Result<KeyRing> {
    let ring = store.load_ring()?;
    config.check_ring_identity(&ring)?;
    Ok(ring)
}

fn warn_permissions(store: &KeyStore) {
    for w in store.permission_warnings() {
        eprintln!("warning: {w}");
    }
}

fn print_json(v: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("JSON serialises")
    );
}

fn keys(store: &KeyStore, config: &Config, c: KeysCommand, now: i64) -> Result {
    match c {
        KeysCommand::Init { issuer, audience } => {
            let issuer = issuer.or(config.issuer.clone());
            let audience = audience.or(config.audience.clone());
            let check = Config {
                issuer: issuer.clone(),
                audience: audience.clone(),
                ..config.clone()
            };
            check.validate().map_err(usage)?;
            let ring = store.init(
                issuer.as_deref().unwrap_or(config::DEFAULT_ISSUER),
                audience.as_deref().unwrap_or(config::DEFAULT_AUDIENCE),
                now,
            )?;
            let dir = store.dir().display();
            println!(
                "created key ring {dir}/keyring.json (issuer {:?}, audience {:?})",
                ring.issuer, ring.audience
            );
            println!(
                "active key {} (private key in {dir}/private/, mode 0600)",
                ring.active().kid()
            );
            println!("next: mdtoken --keys-dir {dir} mint --expires-in 90d");
            Ok(exit::OK)
        }
        KeysCommand::List { json } => {
            let ring = load_ring(store, config)?;
            let key_json = |k: &mdtoken::keyring::RingKey| {
                json!({
                    "kid": k.kid(),
                    "status": match k.status { KeyStatus::Active => "active", KeyStatus::Retired => "retired" },
                    "created_at": rfc3339(k.created_at),
                    "retired_at": opt_time(k.retired_at),
                    "verify_until": opt_time(k.verify_until),
                })
            };
            if json {
                print_json(&json!({
                    "issuer": ring.issuer,
                    "audience": ring.audience,
                    "keys": ring.keys().iter().map(key_json).collect::<Vec<_>>(),
                    "revoked_keys": ring.revoked_keys(),
                }));
            } else {
                println!("issuer {:?}, audience {:?}", ring.issuer, ring.audience);
                println!(
                    "{:<44} {:<8} {:<21} {:<21} VERIFY_UNTIL",
                    "KID", "STATUS", "CREATED", "RETIRED"
                );
                for k in ring.keys() {
                    let v = key_json(k);
                    let s = |f: &str| v[f].as_str().unwrap_or("-").to_owned();
                    let until = match (k.status, k.verify_until) {
                        (KeyStatus::Active, _) => "-".to_owned(),
                        (KeyStatus::Retired, None) => {
                            "never (signed a token without expiry)".to_owned()
                        }
                        (KeyStatus::Retired, Some(t)) => rfc3339(t),
                    };
                    println!(
                        "{:<44} {:<8} {:<21} {:<21} {until}",
                        s("kid"),
                        s("status"),
                        s("created_at"),
                        s("retired_at")
                    );
                }
                for r in ring.revoked_keys() {
                    let at = r.revoked_at.format(&Rfc3339).unwrap_or_default();
                    println!("{:<44} revoked  (revoked at {at})", r.kid);
                }
            }
            Ok(exit::OK)
        }
        KeysCommand::Rotate { json } => {
            load_ring(store, config)?;
            let r = store.rotate(now)?;
            if json {
                print_json(
                    &json!({"old_key_id": r.old_kid, "new_key_id": r.new_kid, "verify_until": opt_time(r.verify_until)}),
                );
            } else {
                println!("new active key {}", r.new_kid);
                match r.verify_until {
                    Some(t) => println!(
                        "retired key {} verifies its tokens until {}",
                        r.old_kid,
                        rfc3339(t)
                    ),
                    None => println!(
                        "retired key {} verifies its tokens indefinitely (it signed a token without expiry)",
                        r.old_kid
                    ),
                }
                println!(
                    "copy {} to every verify-only replica",
                    store.ring_path().display()
                );
            }
            Ok(exit::OK)
        }
        KeysCommand::Revoke { kid } => {
            load_ring(store, config)?;
            let rotation = store.revoke_key(&kid, now)?;
            if let Some(r) = rotation {
                println!("{kid} was the active key; new active key {}", r.new_kid);
            }
            println!("revoked key {kid}: every token it signed is now refused");
            println!(
                "copy {} to every verify-only replica",
                store.ring_path().display()
            );
            Ok(exit::OK)
        }
        KeysCommand::Prune { dry_run } => {
            let mut ring = load_ring(store, config)?;
            let (kids, tokens) = if dry_run {
                ring.prune(now, config.leeway_seconds)
            } else {
                store.prune(now, config.leeway_seconds)?
            };
            let verb = if dry_run { "would drop" } else { "dropped" };
            for kid in &kids {
                println!("{verb} retired key {kid}");
            }
            println!(
                "{} {} key(s) and {tokens} revoked-token entr{}",
                if dry_run { "would prune" } else { "pruned" },
                kids.len(),
                if tokens == 1 { "y" } else { "ies" }
            );
            Ok(exit::OK)
        }
    }
}

fn minted_json(m: &mdtoken::mint::Minted) -> serde_json::Value {
    json!({
        "token": m.token,
        "token_id": m.claims.jti,
        "key_id": m.kid,
        "name": m.claims.name,
        "issued_at": rfc3339(m.claims.iat),
        "expires_at": opt_time(m.claims.exp),
    })
}

fn mint_cmd(store: &KeyStore, config: &Config, a: MintArgs, now: i64) -> Result {
    let expiry = if a.no_expiry {
        Expiry::Never
    } else if let Some(at) = &a.expires {
        Expiry::At(mint::parse_expiry_at(at, now)?)
    } else if let Some(d) = &a.expires_in {
        Expiry::At(mint::parse_expires_in(d, now)?)
    } else {
        Expiry::At(mint::expiry_in_days(config.renew_days, now)?)
    };
    load_ring(store, config)?;
    let minted = store.mint(a.name.as_deref(), expiry, now)?;
    warn_permissions(store);
    if a.json {
        print_json(&minted_json(&minted));
    } else {
        println!("{}", minted.token);
        let exp = minted.claims.exp.map_or("never".to_owned(), rfc3339);
        eprintln!(
            "token {} signed by {}, expires {exp}; it is now the current token",
            minted.claims.jti, minted.kid
        );
    }
    Ok(exit::OK)
}

fn tokens(store: &KeyStore, c: TokensCommand, now: i64) -> Result {
    match c {
        TokensCommand::List { json } => {
            let ring = store.load_ring()?;
            let mut entries = store.ledger()?;
            entries.reverse();
            let rows: Vec<_> = entries
                .iter()
                .map(|e| {
                    json!({
                        "token_id": e.jti,
                        "key_id": e.kid,
                        "name": e.name,
                        "issued_at": e.iat.format(&Rfc3339).unwrap_or_default(),
                        "expires_at": e.exp.map(|t| t.format(&Rfc3339).unwrap_or_default()),
                        "status": e.status(&ring, now).as_str(),
                    })
                })
                .collect();
            if json {
                print_json(&json!({ "tokens": rows }));
            } else {
                println!(
                    "{:<23} {:<8} {:<21} {:<21} {:<12} NAME",
                    "TOKEN_ID", "STATUS", "ISSUED", "EXPIRES", "KEY"
                );
                for r in &rows {
                    println!(
                        "{:<23} {:<8} {:<21} {:<21} {:<12} {}",
                        r["token_id"].as_str().unwrap_or(""),
                        r["status"].as_str().unwrap_or(""),
                        r["issued_at"].as_str().unwrap_or(""),
                        r["expires_at"].as_str().unwrap_or("never"),
                        format!(
                            "{}…",
                            r["key_id"]
                                .as_str()
                                .unwrap_or("")
                                .chars()
                                .take(10)
                                .collect::<String>()
                        ),
                        r["name"].as_str().unwrap_or(""),
                    );
                }
            }
            Ok(exit::OK)
        }
        TokensCommand::Revoke { jti } => {
            let added = store.revoke_token(&jti)?;
            if added {
                println!("revoked token {jti}");
                println!(
                    "copy {} to every verify-only replica",
                    store.ring_path().display()
                );
            } else {
                println!("token {jti} was already revoked");
            }
            Ok(exit::OK)
        }
    }
}

/// Reads a token argument: `-` or nothing for stdin, an existing file, else the text
/// itself. At most a little over the size cap is kept, so a huge input costs bounded
/// memory yet still reads as too large. Exactly one trailing `\n` is stripped from
/// stdin or file input; nothing else is forgiven.
fn read_token(arg: Option<&std::ffi::OsStr>) -> Result<Vec<u8>> {
    let limit = token::MAX_TOKEN_LEN + 2;
    let read_bounded = |mut r: Box<dyn io::Read>, what: &str| -> Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(limit);
        (&mut r)
            .take(limit as u64)
            .read_to_end(&mut buf)
            .with_context(|| format!("reading {what}"))?;
        let complete = buf.len() < limit;
        // Drain the rest so a writer into a pipe is not cut off mid-write.
        io::copy(&mut r, &mut io::sink()).with_context(|| format!("reading {what}"))?;
        if complete && buf.last() == Some(&b'\n') {
            buf.pop();
        }
        Ok(buf)
    };
    match arg {
        None => read_bounded(Box::new(io::stdin().lock()), "standard input"),
        Some(a) if a == "-" => read_bounded(Box::new(io::stdin().lock()), "standard input"),
        Some(a) if Path::new(a).is_file() => {
            let f = std::fs::File::open(a)
                .with_context(|| format!("opening {}", Path::new(a).display()))?;
            read_bounded(Box::new(f), &Path::new(a).display().to_string())
        }
        Some(a) => Ok(a.as_encoded_bytes().to_vec()),
    }
}

fn verify(store: &KeyStore, config: &Config, a: VerifyArgs, now: i64) -> Result {
    let now = parse_at(a.at.as_deref(), now)?;
    let token = read_token(a.token.as_deref())?;
    let ring = match &a.keyring {
        Some(path) => mdtoken::store::load_ring_file(path)?,
        None => load_ring(store, config)?,
    };
    let verifier = Verifier::new(&ring, config.leeway_seconds);
    match verifier.verify(&token, now) {
        Ok(v) => {
            let c = &v.claims;
            if a.json {
                println!(
                    "{}",
                    json!({
                        "valid": true, "kid": v.kid, "jti": c.jti, "iss": c.iss, "aud": c.aud,
                        "iat": rfc3339(c.iat), "exp": opt_time(c.exp), "name": c.name,
                    })
                );
            } else {
                println!("valid token {}", c.jti);
                println!("  key      {}", v.kid);
                println!("  name     {}", c.name.as_deref().unwrap_or("-"));
                println!("  issuer   {}", c.iss);
                println!("  audience {}", c.aud);
                println!("  issued   {}", rfc3339(c.iat));
                println!("  expires  {}", c.exp.map_or("never".to_owned(), rfc3339));
            }
            Ok(exit::OK)
        }
        Err(r) => {
            if a.json {
                println!(
                    "{}",
                    json!({"valid": false, "reason": r.reason.as_str(), "message": r.to_string()})
                );
            } else {
                println!("rejected: {r}");
            }
            Ok(exit::REJECTED)
        }
    }
}

fn inspect(a: InspectArgs) -> Result {
    let token = read_token(a.token.as_deref())?;
    let parts = match token::split(&token) {
        Ok(p) => p,
        Err(e) => {
            println!(
                "cannot decode: {}",
                match e {
                    token::ShapeError::TooLarge => "token is over the size cap",
                    token::ShapeError::Malformed => "not three base64url segments joined by dots",
                }
            );
            return Ok(exit::REJECTED);
        }
    };
    let decode = |seg: &str| -> Option<serde_json::Value> {
        mdtoken::b64::decode(seg).and_then(|b| serde_json::from_slice(&b).ok())
    };
    let (Some(header), Some(mut claims)) = (decode(parts.header), decode(parts.payload)) else {
        println!("cannot decode: the header or the claims are not base64url JSON");
        return Ok(exit::REJECTED);
    };
    for field in ["iat", "nbf", "exp"] {
        if let Some(t) = claims.get(field).and_then(serde_json::Value::as_i64) {
            claims[format!("{field}_utc")] = rfc3339(t).into();
        }
    }
    println!(
        "UNVERIFIED: decoded only; the signature and claims were NOT checked (use `mdtoken verify`)"
    );
    print_json(
        &json!({ "header": header, "claims": claims, "signature_bytes": mdtoken::b64::decode(parts.signature).map(|s| s.len()) }),
    );
    Ok(exit::OK)
}

fn command(store: &KeyStore, config: &Config, a: CommandArgs, now: i64) -> Result {
    let server = a.server.clone().unwrap_or_else(|| config.server_url());
    mdtoken::install::check_server_url(&server).map_err(usage)?;
    load_ring(store, config)?;
    let (current, renewed): (Current, bool) = store.current_or_renew(config.renew_days, now)?;
    if renewed {
        eprintln!(
            "the current token had lapsed; minted a new one valid {} days",
            config.renew_days
        );
    }
    let oses: Vec<Os> = match a.os {
        None => Os::ALL.to_vec(),
        Some(OsArg::Windows) => vec![Os::Windows],
        Some(OsArg::Macos) => vec![Os::Macos],
        Some(OsArg::Linux) => vec![Os::Linux],
    };
    if a.json {
        let commands: serde_json::Map<_, _> = oses
            .iter()
            .map(|&os| {
                (
                    os.as_str().to_owned(),
                    config.install.render(os, &current.token, &server).into(),
                )
            })
            .collect();
        print_json(
            &json!({"token_id": current.jti, "key_id": current.kid, "expires_at": current.exp.map(|t| t.format(&Rfc3339).unwrap_or_default()), "commands": commands}),
        );
    } else if oses.len() == 1 {
        println!(
            "{}",
            config.install.render(oses[0], &current.token, &server)
        );
    } else {
        for os in oses {
            println!("# {}", os.as_str());
            println!("{}", config.install.render(os, &current.token, &server));
        }
    }
    Ok(exit::OK)
}

fn admin_key_create(store: &KeyStore, now: i64) -> Result {
    let key = store.create_admin_key(now)?;
    let mut out = io::stdout().lock();
    writeln!(out, "{}", key.as_str()).context("writing to standard output")?;
    eprintln!(
        "admin API key created; it is shown only this once (only its SHA-256 hash is stored in {})",
        store.path(mdtoken::store::files::ADMIN_KEYS).display()
    );
    eprintln!("use it as: Authorization: Bearer <key>");
    Ok(exit::OK)
}

fn serve(keys_dir: std::path::PathBuf, mut config: Config, a: ServeArgs) -> Result {
    if let Some(listen) = a.listen {
        config.listen = listen;
    }
    config.validate().context("invalid configuration")?;
    // Held until the server stops, so every buffered log line is written out.
    let _log_guard = init_tracing(config.log_format)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(mdtoken::server::run(mdtoken::server::ServeOptions {
        keys_dir,
        config,
        verify_only: a.verify_only,
    }))?;
    Ok(exit::OK)
}

/// Logs go to stderr through a background writer ([`mdtoken::logwriter`]), so an
/// activation does not wait for the terminal or the journal to take its line; the writer
/// blocks callers rather than drop lines when it falls 1 MiB behind, because audit lines
/// must not be lost. It writes
/// what has gathered every few milliseconds in one `write`, so a busy server makes one
/// write for hundreds of lines and an idle one shows a line within milliseconds.
/// Lines are formatted by [`mdtoken::logline`], without colour.
fn init_tracing(format: config::LogFormat) -> anyhow::Result<mdtoken::logwriter::Guard> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("MDTOKEN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) =
        mdtoken::logwriter::spawn(io::stderr()).context("starting the log writer")?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .event_format(mdtoken::logline::LineFormat {
            json: matches!(format, config::LogFormat::Json),
        })
        .with_writer(writer)
        .init();
    Ok(guard)
}
