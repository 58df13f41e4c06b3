//! Minting: building and signing tokens with a key held in memory, and reading the
//! expiry forms administrators type (a date, an RFC 3339 instant, a duration).

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

use crate::b64;
use crate::key::SecretKey;
use crate::token::{self, Claims};

/// The furthest ahead an expiry may be set: ten years of 366 days.
pub const MAX_LIFETIME_SECS: i64 = 10 * 366 * 86_400;

/// When a new token expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Never (valid until its key or the token is revoked).
    Never,
    /// At this Unix time.
    At(i64),
}

/// Why an expiry or name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MintError {
    /// The expiry text is not a date, an RFC 3339 time, or a duration.
    #[error(
        "cannot read expiry {0:?}: use a date (2027-01-31, the end of that day in UTC), an RFC 3339 time (2027-01-31T12:00:00Z) or a duration (90d, 12h, 30m, 2w)"
    )]
    Unparseable(String),
    /// The expiry is not in the future.
    #[error("expiry {0} is not in the future")]
    InPast(String),
    /// The expiry is more than ten years ahead.
    #[error("expiry {0} is more than ten years ahead")]
    TooFar(String),
    /// The name is too long or has control characters.
    #[error("name must be at most 64 characters with no control characters")]
    BadName,
    /// The clock reads before 1970 or after 9999.
    #[error(
        "the clock reads {0} seconds from 1970, outside 1970 to 9999; check the system time or MDTOKEN_NOW"
    )]
    Clock(i64),
    /// The token would exceed the size promise (a long issuer, audience or name).
    #[error("the token would be {0} bytes, over the 511-byte limit; use a shorter name")]
    TooLong(usize),
}

/// Parses an absolute expiry: `YYYY-MM-DD` (the end of that day in UTC) or RFC 3339.
///
/// # Errors
/// [`MintError`] if unparseable, not after `now`, or more than ten years ahead.
pub fn parse_expiry_at(text: &str, now: i64) -> Result<i64, MintError> {
    let exp = if let Ok(date) = Date::parse(text, format_description!("[year]-[month]-[day]")) {
        // The whole named day is valid: exp is 00:00:00Z of the next day.
        date.next_day()
            .ok_or_else(|| MintError::Unparseable(text.to_owned()))?
            .midnight()
            .assume_utc()
            .unix_timestamp()
    } else {
        OffsetDateTime::parse(text, &Rfc3339)
            .map_err(|_| MintError::Unparseable(text.to_owned()))?
            .unix_timestamp()
    };
    check_expiry(exp, now)
}

/// Parses a duration such as `90d`, `12h`, `30m`, `45s` or `2w` and adds it to `now`.
///
/// # Errors
/// [`MintError`] if unparseable, zero, or more than ten years.
pub fn parse_expires_in(text: &str, now: i64) -> Result<i64, MintError> {
    let bad = || MintError::Unparseable(text.to_owned());
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() || digits.len() > 12 {
        return Err(bad());
    }
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    let secs = n
        .checked_mul(unit)
        .ok_or_else(|| MintError::TooFar(text.to_owned()))?;
    if secs > MAX_LIFETIME_SECS {
        return Err(MintError::TooFar(text.to_owned()));
    }
    check_expiry(now.saturating_add(secs), now)
}

/// An expiry `days` days from `now` (the HTTP `expires_in_days` and auto-renewal).
///
/// # Errors
/// [`MintError`] unless `1 ≤ days ≤ 3660`.
pub fn expiry_in_days(days: i64, now: i64) -> Result<i64, MintError> {
    if days <= 0 {
        return Err(MintError::InPast(format!("{days} days")));
    }
    if days > MAX_LIFETIME_SECS / 86_400 {
        return Err(MintError::TooFar(format!("{days} days")));
    }
    check_expiry(now + days * 86_400, now)
}

fn check_expiry(exp: i64, now: i64) -> Result<i64, MintError> {
    if exp > token::MAX_NUMERIC_DATE {
        return Err(MintError::TooFar(format!("{exp} (past the year 9999)")));
    }
    if exp <= now {
        return Err(MintError::InPast(crate::keyring::rfc3339(exp)));
    }
    if exp - now > MAX_LIFETIME_SECS {
        return Err(MintError::TooFar(crate::keyring::rfc3339(exp)));
    }
    Ok(exp)
}

/// Checks an administrator's label.
///
/// # Errors
/// [`MintError::BadName`] if over 64 characters or holding control characters.
pub fn check_name(name: &str) -> Result<(), MintError> {
    if name.chars().count() > token::MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(MintError::BadName);
    }
    Ok(())
}

/// A freshly minted token and its claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Minted {
    /// The compact JWS.
    pub token: String,
    /// The key that signed it.
    pub kid: String,
    /// Its claims.
    pub claims: Claims,
}

/// Signs tokens for one ring identity with one key, built once.
#[derive(Debug)]
pub struct Minter {
    key: SecretKey,
    issuer: String,
    audience: String,
    header_b64: String,
}

impl Minter {
    /// A minter for `key` issuing tokens with the given `iss` and `aud`.
    pub fn new(key: SecretKey, issuer: &str, audience: &str) -> Self {
        Self {
            header_b64: token::encoded_header(key.kid()),
            key,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        }
    }

    /// The signing key's kid.
    pub fn kid(&self) -> &str {
        self.key.kid()
    }

    /// Mints a token issued at `now`, with a fresh 128-bit random `jti`.
    ///
    /// # Errors
    /// [`MintError`] for a past expiry, a bad name, or a token over 511 bytes.
    pub fn mint(&self, name: Option<&str>, expiry: Expiry, now: i64) -> Result<Minted, MintError> {
        let mut jti = [0u8; 16];
        getrandom::fill(&mut jti).expect("operating system random source failed");
        self.mint_with_jti(name, expiry, now, &b64::encode(jti))
    }

    /// As [`Minter::mint`] with a given `jti` (for reproducible tests and benchmarks).
    ///
    /// # Errors
    /// As [`Minter::mint`].
    pub fn mint_with_jti(
        &self,
        name: Option<&str>,
        expiry: Expiry,
        now: i64,
        jti: &str,
    ) -> Result<Minted, MintError> {
        if !(0..=token::MAX_NUMERIC_DATE).contains(&now) {
            return Err(MintError::Clock(now));
        }
        if let Some(name) = name {
            check_name(name)?;
        }
        let exp = match expiry {
            Expiry::Never => None,
            Expiry::At(exp) => Some(check_expiry(exp, now)?),
        };
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            nbf: now,
            exp,
            jti: jti.to_owned(),
            name: name.map(str::to_owned),
        };
        let payload = serde_json::to_vec(&claims).expect("claims serialise");
        let mut token = String::with_capacity(token::MINTED_TOKEN_LIMIT);
        token.push_str(&self.header_b64);
        token.push('.');
        base64::Engine::encode_string(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            payload,
            &mut token,
        );
        let signature = self.key.sign(token.as_bytes());
        token.push('.');
        base64::Engine::encode_string(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            signature,
            &mut token,
        );
        if token.len() >= token::MINTED_TOKEN_LIMIT {
            return Err(MintError::TooLong(token.len()));
        }
        Ok(Minted {
            token,
            kid: self.key.kid().to_owned(),
            claims,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-12-03T10:00:00Z
    const NOW: i64 = 1_796_292_000;

    #[test]
    fn bare_date_is_end_of_day_utc() {
        let exp = parse_expiry_at("2026-12-31", NOW).unwrap();
        assert_eq!(crate::keyring::rfc3339(exp), "2027-01-01T00:00:00Z");
        assert_eq!(
            parse_expiry_at("2026-12-31T12:00:00+02:00", NOW).unwrap(),
            exp - 14 * 3600
        );
        assert!(matches!(
            parse_expiry_at("2026-12-02", NOW),
            Err(MintError::InPast(_))
        ));
        // Today is still in the future until midnight UTC.
        assert!(parse_expiry_at("2026-12-03", NOW).is_ok());
        assert!(matches!(
            parse_expiry_at("tomorrow", NOW),
            Err(MintError::Unparseable(_))
        ));
        assert!(matches!(
            parse_expiry_at("2126-01-01", NOW),
            Err(MintError::TooFar(_))
        ));
        assert!(parse_expiry_at("9999-12-31", NOW).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_expires_in("90d", NOW), Ok(NOW + 90 * 86_400));
        assert_eq!(parse_expires_in("2w", NOW), Ok(NOW + 14 * 86_400));
        for bad in [
            "",
            "d",
            "-1d",
            "0d",
            "1.5d",
            "10y",
            "99999999999999d",
            " 1d",
        ] {
            assert!(parse_expires_in(bad, NOW).is_err(), "{bad}");
        }
        assert!(expiry_in_days(0, NOW).is_err());
        assert!(expiry_in_days(-3, NOW).is_err());
        assert!(expiry_in_days(1_000_000_000, NOW).is_err());
        assert_eq!(expiry_in_days(90, NOW), Ok(NOW + 90 * 86_400));
    }

    #[test]
    fn minted_tokens_are_small_and_unique() {
        let m = Minter::new(
            SecretKey::generate(),
            "https://mdtoken.example",
            "mass-deployment",
        );
        let a = m.mint(Some(&"é".repeat(64)), Expiry::At(NOW + 10), NOW);
        let b = m.mint(None, Expiry::Never, NOW).unwrap();
        let c = m.mint(None, Expiry::Never, NOW).unwrap();
        assert_ne!(b.claims.jti, c.claims.jti);
        assert_eq!(b.claims.jti.len(), 22);
        assert!(b.token.len() < 512);
        assert!(a.is_ok() || matches!(a, Err(MintError::TooLong(_))));
        assert_eq!(
            m.mint(Some(&"x".repeat(65)), Expiry::Never, NOW),
            Err(MintError::BadName)
        );
        assert_eq!(
            m.mint(Some("a\nb"), Expiry::Never, NOW),
            Err(MintError::BadName)
        );
        assert!(matches!(
            m.mint(None, Expiry::At(NOW), NOW),
            Err(MintError::InPast(_))
        ));
    }
}
