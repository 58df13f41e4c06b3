//! A stand-in for the `mdtoken` CLI's key and mint commands, built on the library alone,
//! so interop checks can produce a keys directory and tokens without the binary.
//!
//! ```text
//! cargo run --example mint_fixture -- --keys-dir DIR keys init [--issuer ISS] [--audience AUD]
//! cargo run --example mint_fixture -- --keys-dir DIR keys rotate
//! cargo run --example mint_fixture -- --keys-dir DIR keys revoke KID
//! cargo run --example mint_fixture -- --keys-dir DIR mint [--expires-in 30d | --no-expiry] [--name N] [--json]
//! cargo run --example mint_fixture -- --keys-dir DIR verify - --json < token
//! ```
//!
//! `mint --json` and `verify --json` print the same objects as `mdtoken`'s commands.

use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use mdtoken::clock::{Clock as _, SystemClock};
use mdtoken::keyring::rfc3339;
use mdtoken::mint::{Expiry, parse_expires_in, parse_expiry_at};
use mdtoken::store::KeyStore;
use mdtoken::verify::{DEFAULT_LEEWAY, Verifier};

const USAGE: &str = "usage: mint_fixture --keys-dir DIR (keys init [--issuer ISS] [--audience AUD] | keys rotate | keys revoke KID | mint [--expires DATE | --expires-in DUR | --no-expiry] [--name NAME] [--json] | verify TOKEN|- [--json])";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(3)
        }
    }
}

/// Takes the value following `flag` out of `args`.
fn take_value(args: &mut Vec<String>, flag: &str) -> Result<Option<String>> {
    let Some(pos) = args.iter().position(|a| a == flag) else {
        return Ok(None);
    };
    if pos + 1 >= args.len() {
        bail!("{flag} needs a value\n{USAGE}");
    }
    let value = args.remove(pos + 1);
    args.remove(pos);
    Ok(Some(value))
}

/// Takes `flag` out of `args`, saying whether it was there.
fn take_flag(args: &mut Vec<String>, flag: &str) -> bool {
    let before = args.len();
    args.retain(|a| a != flag);
    args.len() != before
}

/// Runs one command; `Ok(false)` means a token was rejected.
fn run(mut args: Vec<String>) -> Result<bool> {
    let dir = take_value(&mut args, "--keys-dir")?
        .or_else(|| std::env::var("MDTOKEN_KEYS_DIR").ok())
        .unwrap_or_else(|| "keys".to_owned());
    let store = KeyStore::new(dir);
    let now = SystemClock.now();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["keys", "init", ..] => {
            let issuer = take_value(&mut args, "--issuer")?
                .unwrap_or_else(|| mdtoken::config::DEFAULT_ISSUER.to_owned());
            let audience = take_value(&mut args, "--audience")?
                .unwrap_or_else(|| mdtoken::config::DEFAULT_AUDIENCE.to_owned());
            let ring = store
                .init(&issuer, &audience, now)
                .context("creating the key ring")?;
            println!(
                "created key {} in {}",
                ring.active().kid(),
                store.dir().display()
            );
        }
        ["keys", "rotate"] => {
            let r = store.rotate(now).context("rotating")?;
            println!("retired {}; active key is now {}", r.old_kid, r.new_kid);
        }
        ["keys", "revoke", kid] => {
            store.revoke_key(kid, now).context("revoking")?;
            println!("revoked {kid}");
        }
        ["mint", ..] => {
            let json = take_flag(&mut args, "--json");
            let never = take_flag(&mut args, "--no-expiry");
            let name = take_value(&mut args, "--name")?;
            let expiry = match (
                take_value(&mut args, "--expires")?,
                take_value(&mut args, "--expires-in")?,
                never,
            ) {
                (None, None, true) => Expiry::Never,
                (Some(at), None, false) => Expiry::At(parse_expiry_at(&at, now)?),
                (None, Some(d), false) => Expiry::At(parse_expires_in(&d, now)?),
                (None, None, false) => Expiry::At(parse_expires_in("90d", now)?),
                _ => bail!("give at most one of --expires, --expires-in, --no-expiry"),
            };
            if args.len() != 1 {
                bail!("unexpected arguments {:?}\n{USAGE}", &args[1..]);
            }
            let m = store
                .mint(name.as_deref(), expiry, now)
                .context("minting")?;
            if json {
                let out = serde_json::json!({
                    "token": m.token,
                    "token_id": m.claims.jti,
                    "key_id": m.kid,
                    "name": m.claims.name,
                    "issued_at": rfc3339(m.claims.iat),
                    "expires_at": m.claims.exp.map(rfc3339),
                });
                println!("{out}");
            } else {
                println!("{}", m.token);
            }
        }
        ["verify", source, ..] => {
            let source = (*source).to_owned();
            let json = take_flag(&mut args, "--json");
            let mut token = if source == "-" {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                    .context("reading the token from stdin")?;
                text
            } else {
                source
            };
            if token.ends_with('\n') {
                token.pop();
            }
            let ring = store.load_ring().context("loading the key ring")?;
            let verifier = Verifier::new(&ring, DEFAULT_LEEWAY);
            return Ok(match verifier.verify(token.as_bytes(), now) {
                Ok(v) => {
                    if json {
                        let c = &v.claims;
                        let out = serde_json::json!({
                            "valid": true, "kid": v.kid, "jti": c.jti, "iss": c.iss,
                            "aud": c.aud, "iat": c.iat, "exp": c.exp, "name": c.name,
                        });
                        println!("{out}");
                    } else {
                        println!("valid: token {} signed by key {}", v.claims.jti, v.kid);
                    }
                    true
                }
                Err(e) => {
                    if json {
                        let out = serde_json::json!({
                            "valid": false, "reason": e.reason.as_str(), "message": e.to_string(),
                        });
                        println!("{out}");
                    } else {
                        println!("rejected: {e}");
                    }
                    false
                }
            });
        }
        _ => bail!("{USAGE}"),
    }
    Ok(true)
}
