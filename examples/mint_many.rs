//! Mints many distinct valid tokens with the active key of a keys directory, one per line,
//! for load tests (`benches/http_load.sh`, `benches/peers.sh`). The tokens are not written
//! to the ledger and do not become current: they exist only in the output file.
//!
//! ```text
//! cargo run --release --example mint_many -- KEYS_DIR COUNT OUT_FILE [EXPIRES_IN_SECONDS]
//! ```
//!
//! `MDTOKEN_NOW=<RFC 3339>` pins the issue time, as for the CLI: with a time in the past
//! and a short lifetime the tokens are already expired (`scripts/soak.sh`).

use std::io::Write as _;

use anyhow::{Context as _, Result, bail};
use mdtoken::clock::{Clock as _, SystemClock};
use mdtoken::mint::Expiry;
use mdtoken::store::KeyStore;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, count, out, rest @ ..] = args.as_slice() else {
        bail!("usage: mint_many KEYS_DIR COUNT OUT_FILE [EXPIRES_IN_SECONDS]");
    };
    let count: usize = count.parse().context("COUNT")?;
    let lifetime: i64 = match rest.first() {
        Some(s) => s.parse().context("EXPIRES_IN_SECONDS")?,
        None => 86_400,
    };
    let store = KeyStore::new(dir);
    let ring = store.load_ring().context("loading the key ring")?;
    let minter = store
        .load_minter(&ring)
        .context("loading the signing key")?;
    let now = match std::env::var("MDTOKEN_NOW") {
        Ok(t) => OffsetDateTime::parse(&t, &Rfc3339)
            .context("MDTOKEN_NOW must be an RFC 3339 time")?
            .unix_timestamp(),
        Err(_) => SystemClock.now(),
    };
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(out).with_context(|| format!("creating {out}"))?,
    );
    for i in 0..count {
        let minted = minter
            .mint(Some(&format!("load {i}")), Expiry::At(now + lifetime), now)
            .context("minting")?;
        writeln!(file, "{}", minted.token)?;
    }
    file.flush()?;
    Ok(())
}
