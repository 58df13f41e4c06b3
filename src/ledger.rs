//! `tokens.jsonl`: one line of metadata per minted token (never the token itself),
//! appended durably; a torn last line left by a crash is tolerated and repaired.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// One minted token's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerEntry {
    /// Token id.
    pub jti: String,
    /// Signing key.
    pub kid: String,
    /// The admin's label.
    #[serde(default)]
    pub name: Option<String>,
    /// Issued at.
    #[serde(with = "time::serde::rfc3339")]
    pub iat: OffsetDateTime,
    /// Expiry, or null for never.
    #[serde(with = "time::serde::rfc3339::option")]
    pub exp: Option<OffsetDateTime>,
}

/// A ledger line that does not parse and is not a torn tail.
#[derive(Debug, thiserror::Error)]
#[error("line {line} is not a ledger entry")]
pub struct LedgerError {
    /// 1-based line number.
    pub line: usize,
    /// The parse error.
    #[source]
    pub source: serde_json::Error,
}

/// The parsed ledger and how many bytes of the file are whole lines.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Entries in file order.
    pub entries: Vec<LedgerEntry>,
    /// Length of the prefix made of complete, valid lines; anything after it is a torn
    /// tail from an interrupted append.
    pub valid_len: usize,
}

/// Parses ledger text. A final line without its newline is a torn append and is ignored;
/// any other bad line is an error.
///
/// # Errors
/// [`LedgerError`] naming the first bad complete line.
pub fn parse(text: &[u8]) -> Result<Parsed, LedgerError> {
    let mut parsed = Parsed::default();
    let mut offset = 0;
    for (i, line) in text.split_inclusive(|&b| b == b'\n').enumerate() {
        if !line.ends_with(b"\n") {
            break;
        }
        let body = &line[..line.len() - 1];
        if !body.iter().all(u8::is_ascii_whitespace) {
            let entry = serde_json::from_slice(body).map_err(|source| LedgerError {
                line: i + 1,
                source,
            })?;
            parsed.entries.push(entry);
        }
        offset += line.len();
        parsed.valid_len = offset;
    }
    Ok(parsed)
}

/// One entry as a line, newline included.
pub fn line(entry: &LedgerEntry) -> String {
    let mut s = serde_json::to_string(entry).expect("ledger entry serialises");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(jti: &str) -> LedgerEntry {
        LedgerEntry {
            jti: jti.into(),
            kid: "k".into(),
            name: None,
            iat: OffsetDateTime::UNIX_EPOCH,
            exp: None,
        }
    }

    #[test]
    fn torn_tail_is_ignored_and_measured() {
        let whole = format!("{}{}", line(&entry("a")), line(&entry("b")));
        let torn = format!("{whole}{{\"jti\":\"c\",\"ki");
        let p = parse(torn.as_bytes()).unwrap();
        assert_eq!(p.entries.len(), 2);
        assert_eq!(p.valid_len, whole.len());
        let broken = format!("garbage\n{whole}");
        assert_eq!(parse(broken.as_bytes()).unwrap_err().line, 1);
    }
}

/// A minted token's standing, as the ledger and ring tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenStatus {
    /// Still accepted.
    Active,
    /// Past its expiry, or its key has left the ring.
    Expired,
    /// The token or its key was revoked.
    Revoked,
}

impl TokenStatus {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenStatus::Active => "active",
            TokenStatus::Expired => "expired",
            TokenStatus::Revoked => "revoked",
        }
    }
}

impl LedgerEntry {
    /// The token's status at `now` against `ring`.
    pub fn status(&self, ring: &crate::keyring::KeyRing, now: i64) -> TokenStatus {
        if ring.revoked_tokens().iter().any(|r| r.jti == self.jti) || ring.is_key_revoked(&self.kid)
        {
            TokenStatus::Revoked
        } else if self.exp.is_some_and(|e| e.unix_timestamp() <= now)
            || ring.key(&self.kid).is_none()
        {
            TokenStatus::Expired
        } else {
            TokenStatus::Active
        }
    }
}
