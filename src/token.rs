//! The token wire format: a compact JWS whose header and claims are parsed strictly
//! (objects only, no duplicate members, every registered claim strictly typed).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The only `alg` accepted or produced.
pub const ALG: &str = "EdDSA";
/// The explicit type (RFC 8725 §3.11) carried in `typ`.
pub const TYP: &str = "mdt+jwt";
/// Tokens longer than this are refused before any decoding.
pub const MAX_TOKEN_LEN: usize = 1024;
/// Minted tokens are kept under this length (the design's promise).
pub const MINTED_TOKEN_LIMIT: usize = 512;
/// Longest accepted `name`, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Shortest accepted `jti`: 128 bits of base64url.
pub const MIN_JTI_LEN: usize = 22;
/// Longest accepted `jti`, in bytes.
pub const MAX_JTI_LEN: usize = 128;
/// The largest NumericDate accepted: 9999-12-31T23:59:59Z.
pub const MAX_NUMERIC_DATE: i64 = 253_402_300_799;

/// The claims of a mass deployment token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience (a single string).
    pub aud: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Not before, Unix seconds (minted equal to `iat`).
    pub nbf: i64,
    /// Expiry, Unix seconds; `None` means the token never expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Token id: at least 128 random bits, base64url.
    pub jti: String,
    /// The administrator's label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The header as minted.
#[derive(Serialize)]
pub(crate) struct HeaderOut<'a> {
    pub alg: &'a str,
    pub typ: &'a str,
    pub kid: &'a str,
}

/// The three parts of a compact JWS, split but not yet decoded.
#[derive(Debug, Clone, Copy)]
pub struct Parts<'a> {
    /// Encoded header.
    pub header: &'a str,
    /// Encoded payload.
    pub payload: &'a str,
    /// Encoded signature.
    pub signature: &'a str,
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: &'a str,
}

/// Structural faults found before any decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShapeError {
    /// Longer than [`MAX_TOKEN_LEN`].
    TooLarge,
    /// Not three dot-separated base64url segments.
    Malformed,
}

/// Splits a compact JWS after checking its size and alphabet.
///
/// Only the first `MAX_TOKEN_LEN + 1` bytes are ever read, so an oversized input costs
/// no more than a cap-sized one. Within that window a byte outside the base64url
/// alphabet or a third dot proves the input malformed whatever its length; otherwise an
/// input over the cap is too large.
///
/// # Errors
/// [`ShapeError`] naming the fault.
pub fn split(token: &[u8]) -> Result<Parts<'_>, ShapeError> {
    let window = &token[..token.len().min(MAX_TOKEN_LEN + 1)];
    let mut dots = [0usize; 2];
    let mut n = 0;
    for (i, &b) in window.iter().enumerate() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => {}
            b'.' if n < 2 => {
                dots[n] = i;
                n += 1;
            }
            _ => return Err(ShapeError::Malformed),
        }
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(ShapeError::TooLarge);
    }
    if n != 2 {
        return Err(ShapeError::Malformed);
    }
    // Every byte is ASCII, so this cannot fail.
    let text = std::str::from_utf8(token).map_err(|_| ShapeError::Malformed)?;
    let (header, payload) = (&text[..dots[0]], &text[dots[0] + 1..dots[1]]);
    let signature = &text[dots[1] + 1..];
    if header.is_empty() || payload.is_empty() {
        return Err(ShapeError::Malformed);
    }
    Ok(Parts {
        header,
        payload,
        signature,
        signing_input: &text[..dots[1]],
    })
}

/// A JSON object's members in order, with duplicate names refused.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

struct Name<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members: Vec<(Cow<'de, str>, &'de RawValue)> = Vec::with_capacity(8);
                while let Some(Name(name)) = map.next_key()? {
                    // Two parsers that keep different duplicates disagree on what was
                    // signed; the only safe reading of a duplicate is none at all.
                    if members.iter().any(|(n, _)| *n == name) {
                        return Err(de::Error::custom("duplicate member"));
                    }
                    members.push((name, map.next_value()?));
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(V)
    }
}

fn members(json: &[u8]) -> Option<Members<'_>> {
    let text = std::str::from_utf8(json).ok()?;
    serde_json::from_str(text).ok()
}

fn string(raw: &RawValue) -> Option<String> {
    if !raw.get().starts_with('"') {
        return None;
    }
    serde_json::from_str(raw.get()).ok()
}

fn numeric_date(raw: &RawValue) -> Option<i64> {
    let n: u64 = serde_json::from_str(raw.get()).ok()?;
    i64::try_from(n).ok().filter(|&n| n <= MAX_NUMERIC_DATE)
}

/// What a header says, once `alg` and `typ` are known to be right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The `kid`, if present.
    pub kid: Option<String>,
    /// Whether the header has members other than `alg`, `typ` and `kid`.
    pub has_extra_members: bool,
}

/// Header faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// Not a JSON object, a duplicate member, or bad JSON.
    Malformed,
    /// `alg` or `typ` missing or wrong, or `kid` not a string.
    Bad,
}

/// Parses a decoded header.
///
/// # Errors
/// [`HeaderError`] naming the fault.
pub fn parse_header(json: &[u8]) -> Result<Header, HeaderError> {
    let members = members(json).ok_or(HeaderError::Malformed)?;
    let (mut alg, mut typ, mut kid, mut extra) = (false, false, None, false);
    for (name, value) in members.0 {
        match &*name {
            "alg" => alg = string(value).as_deref() == Some(ALG),
            "typ" => typ = string(value).as_deref() == Some(TYP),
            "kid" => kid = Some(string(value).ok_or(HeaderError::Bad)?),
            _ => extra = true,
        }
    }
    if !(alg && typ) {
        return Err(HeaderError::Bad);
    }
    Ok(Header {
        kid,
        has_extra_members: extra,
    })
}

/// Claims faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimsError {
    /// Not a JSON object, a duplicate member, or bad JSON.
    Malformed,
    /// A claim is missing, mistyped, out of range, or unknown; names the claim.
    Invalid(&'static str),
    /// `iss` missing or not a string.
    Issuer,
    /// `aud` missing or not a single string.
    Audience,
}

/// Parses decoded claims, typing every member strictly.
///
/// # Errors
/// [`ClaimsError`] naming the fault.
pub fn parse_claims(json: &[u8]) -> Result<Claims, ClaimsError> {
    use ClaimsError::*;
    let members = members(json).ok_or(Malformed)?;
    let (mut iss, mut aud, mut iat, mut nbf, mut exp, mut jti, mut name) =
        (None, None, None, None, None, None, None);
    for (member, value) in members.0 {
        match &*member {
            "iss" => iss = Some(string(value).ok_or(Issuer)?),
            "aud" => aud = Some(string(value).ok_or(Audience)?),
            "iat" => iat = Some(numeric_date(value).ok_or(Invalid("iat"))?),
            "nbf" => nbf = Some(numeric_date(value).ok_or(Invalid("nbf"))?),
            "exp" => exp = Some(numeric_date(value).ok_or(Invalid("exp"))?),
            "jti" => jti = Some(string(value).ok_or(Invalid("jti"))?),
            "name" => name = Some(string(value).ok_or(Invalid("name"))?),
            _ => return Err(Invalid("unknown claim")),
        }
    }
    // At least 128 bits of base64url (22 characters), as every minted jti is: an id that
    // could carry spaces, newlines or markup has no business in logs and listings.
    let jti = jti
        .filter(|j| {
            (MIN_JTI_LEN..=MAX_JTI_LEN).contains(&j.len())
                && j.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .ok_or(Invalid("jti"))?;
    if name
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NAME_CHARS)
    {
        return Err(Invalid("name"));
    }
    Ok(Claims {
        iss: iss.ok_or(Issuer)?,
        aud: aud.ok_or(Audience)?,
        iat: iat.ok_or(Invalid("iat"))?,
        nbf: nbf.ok_or(Invalid("nbf"))?,
        exp,
        jti,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_shapes() {
        assert!(split(b"a.b.c").is_ok());
        assert!(split(b"a.b.").is_ok(), "empty signature is judged later");
        for bad in [
            &b""[..],
            b".",
            b"..",
            b"a.b",
            b"a.b.c.d",
            b".b.c",
            b"a..c",
            b"a.b.c=",
            b" a.b.c",
            b"a.b+.c",
            b"a.\0.c",
        ] {
            assert_eq!(split(bad).unwrap_err(), ShapeError::Malformed, "{bad:?}");
        }
        assert_eq!(
            split(&vec![b'.'; 1_000_000]).unwrap_err(),
            ShapeError::Malformed
        );
        assert_eq!(
            split(&vec![b'a'; MAX_TOKEN_LEN + 1]).unwrap_err(),
            ShapeError::TooLarge
        );
    }

    #[test]
    fn header_rules() {
        let ok = br#"{"alg":"EdDSA","typ":"mdt+jwt","kid":"k"}"#;
        assert_eq!(
            parse_header(ok).unwrap(),
            Header {
                kid: Some("k".into()),
                has_extra_members: false
            }
        );
        let spaced = br#" { "kid" : "k" ,"typ":"mdt+jwt", "alg" : "EdDSA" } "#;
        assert!(parse_header(spaced).is_ok());
        assert_eq!(
            parse_header(br#"{"alg":"HS256","alg":"EdDSA","typ":"mdt+jwt"}"#),
            Err(HeaderError::Malformed)
        );
        assert_eq!(
            parse_header(br#"{"alg":"EdDSA","typ":"mdt+jwt","kid":"a","kid":"b"}"#),
            Err(HeaderError::Malformed)
        );
        for bad in [&b"[]"[..], b"null", b"\"x\"", b""] {
            assert_eq!(parse_header(bad), Err(HeaderError::Malformed));
        }
        assert_eq!(
            parse_header(br#"{"alg":"none","typ":"mdt+jwt"}"#),
            Err(HeaderError::Bad)
        );
        assert_eq!(parse_header(br#"{"alg":"EdDSA"}"#), Err(HeaderError::Bad));
        assert_eq!(
            parse_header(br#"{"alg":"EdDSA","typ":"JWT"}"#),
            Err(HeaderError::Bad)
        );
        assert_eq!(
            parse_header(br#"{"alg":"EdDSA","typ":"mdt+jwt","kid":1}"#),
            Err(HeaderError::Bad)
        );
        assert!(
            parse_header(br#"{"alg":"EdDSA","typ":"mdt+jwt","crit":["x"]}"#)
                .unwrap()
                .has_extra_members
        );
    }

    #[test]
    fn claims_rules() {
        let ok = br#"{"iss":"i","aud":"a","iat":1,"nbf":1,"exp":2,"jti":"jjjjjjjjjjjjjjjjjjjjjj","name":"n"}"#;
        assert_eq!(parse_claims(ok).unwrap().exp, Some(2));
        let no_exp = br#"{"iss":"i","aud":"a","iat":1,"nbf":1,"jti":"jjjjjjjjjjjjjjjjjjjjjj"}"#;
        assert_eq!(parse_claims(no_exp).unwrap().exp, None);
        for bad in [
            &b"[]"[..],
            b"null",
            b"1",
            b"\"x\"",
            br#"["i","a",1,1,2,"j"]"#,
        ] {
            assert_eq!(parse_claims(bad), Err(ClaimsError::Malformed));
        }
        assert_eq!(
            parse_claims(br#"{"iss":"i","aud":"a","iat":1,"nbf":1,"exp":1,"exp":9,"jti":"jjjjjjjjjjjjjjjjjjjjjj"}"#),
            Err(ClaimsError::Malformed)
        );
        for exp in [
            "\"9\"",
            "null",
            "true",
            "{}",
            "-1",
            "1.5",
            "1e3",
            "99999999999999",
        ] {
            let json = format!(
                r#"{{"iss":"i","aud":"a","iat":1,"nbf":1,"exp":{exp},"jti":"jjjjjjjjjjjjjjjjjjjjjj"}}"#
            );
            assert_eq!(
                parse_claims(json.as_bytes()),
                Err(ClaimsError::Invalid("exp")),
                "{exp}"
            );
        }
        assert_eq!(
            parse_claims(br#"{"iss":"i","aud":[],"iat":1,"nbf":1,"jti":"jjjjjjjjjjjjjjjjjjjjjj"}"#),
            Err(ClaimsError::Audience)
        );
        assert_eq!(
            parse_claims(br#"{"aud":"a","iat":1,"nbf":1,"jti":"jjjjjjjjjjjjjjjjjjjjjj"}"#),
            Err(ClaimsError::Issuer)
        );
        assert_eq!(
            parse_claims(br#"{"iss":"i","aud":"a","iat":1,"nbf":1,"jti":""}"#),
            Err(ClaimsError::Invalid("jti"))
        );
        for jti in [
            "short",
            "jjjjjjjjjjjjjjjjjjjjj\\n",
            "<script>jjjjjjjjjjjjjjjjj",
            "jjjjjjjjjjjjjjjjjjjjj=",
        ] {
            let json = format!(r#"{{"iss":"i","aud":"a","iat":1,"nbf":1,"jti":"{jti}"}}"#);
            assert_eq!(
                parse_claims(json.as_bytes()),
                Err(ClaimsError::Invalid("jti")),
                "{jti}"
            );
        }
        assert_eq!(
            parse_claims(br#"{"iss":"i","aud":"a","iat":1,"jti":"jjjjjjjjjjjjjjjjjjjjjj"}"#),
            Err(ClaimsError::Invalid("nbf"))
        );
        assert_eq!(
            parse_claims(
                br#"{"iss":"i","aud":"a","iat":1,"nbf":1,"jti":"jjjjjjjjjjjjjjjjjjjjjj","x":1}"#
            ),
            Err(ClaimsError::Invalid("unknown claim"))
        );
    }
}
