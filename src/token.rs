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
struct HeaderOut<'a> {
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
    // Any byte outside the alphabet, and the dots: sixteen bytes at a time without a
    // branch per byte (the compiler keeps each block in one vector register), then the
    // tail through a table.
    let (mut outside, mut dots) = (0u8, 0usize);
    let mut blocks = window.chunks_exact(16);
    for block in &mut blocks {
        let (mut bad, mut n) = (0u8, 0u8);
        for &b in block {
            let dot = b == b'.';
            let ok = ((b | 0x20).wrapping_sub(b'a') < 26)
                | (b.wrapping_sub(b'0') < 10)
                | (b == b'-')
                | (b == b'_')
                | dot;
            bad |= u8::from(!ok);
            n += u8::from(dot);
        }
        outside |= bad;
        dots += usize::from(n);
    }
    for &b in blocks.remainder() {
        let class = CLASS[usize::from(b)];
        outside |= class & OTHER;
        dots += usize::from(class & DOT);
    }
    let bad = outside != 0;
    if bad || dots > 2 {
        return Err(ShapeError::Malformed);
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(ShapeError::TooLarge);
    }
    if dots != 2 {
        return Err(ShapeError::Malformed);
    }
    // Every byte is ASCII, so this cannot fail.
    let text = std::str::from_utf8(token).map_err(|_| ShapeError::Malformed)?;
    let (header, rest) = text.split_once('.').ok_or(ShapeError::Malformed)?;
    let (payload, signature) = rest.split_once('.').ok_or(ShapeError::Malformed)?;
    if header.is_empty() || payload.is_empty() {
        return Err(ShapeError::Malformed);
    }
    Ok(Parts {
        header,
        payload,
        signature,
        signing_input: &text[..header.len() + 1 + payload.len()],
    })
}

const DOT: u8 = 1;
const OTHER: u8 = 1 << 1;

/// The class of every byte for [`split`]: 0 for the base64url alphabet, [`DOT`] for `.`,
/// [`OTHER`] for anything else.
static CLASS: [u8; 256] = {
    let mut table = [OTHER; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() || c == b'-' || c == b'_' {
            table[b] = 0;
        }
        b += 1;
    }
    table[b'.' as usize] = DOT;
    table
};

/// The encoded header of every token `kid` signs: the exact bytes the minter writes, so a
/// verifier can recognise them without decoding.
pub fn encoded_header(kid: &str) -> String {
    let header = serde_json::to_vec(&HeaderOut {
        alg: ALG,
        typ: TYP,
        kid,
    })
    .expect("a header of strings serialises");
    crate::b64::encode(header)
}

/// A JSON object's members in order, with duplicate names refused; each value is kept as
/// its raw JSON text and typed by the rule of its member.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

/// A member's value as a string: a JSON string, unescaped. Most need no unescaping and
/// are borrowed as they stand.
fn string(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if inner.bytes().all(|b| b != b'\\' && b >= 0x20) {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(text).ok().map(Cow::Owned)
}

/// A member's value as a NumericDate: a non-negative integer up to 9999-12-31.
fn numeric_date(raw: &RawValue) -> Option<i64> {
    let text = raw.get();
    let n: u64 = if text.bytes().all(|b| b.is_ascii_digit()) {
        // The raw value is valid JSON, so this is a plain integer without leading zeros.
        text.parse().ok()?
    } else {
        serde_json::from_str(text).ok()?
    };
    i64::try_from(n).ok().filter(|&n| n <= MAX_NUMERIC_DATE)
}

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

/// The members of a JSON object, or `None` for anything else: bad UTF-8 or JSON, another
/// type, trailing bytes, or a duplicate name anywhere in it.
fn members(json: &[u8]) -> Option<Members<'_>> {
    let text = std::str::from_utf8(json).ok()?;
    serde_json::from_str(text).ok()
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
            "kid" => kid = Some(string(value).ok_or(HeaderError::Bad)?.into_owned()),
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
    let text = std::str::from_utf8(json).map_err(|_| Malformed)?;
    let raw = match minted(text) {
        Some(raw) => raw,
        None => general(text)?,
    };
    // At least 128 bits of base64url (22 characters), as every minted jti is: an id that
    // could carry spaces, newlines or markup has no business in logs and listings.
    let jti = raw
        .jti
        .filter(|j| {
            (MIN_JTI_LEN..=MAX_JTI_LEN).contains(&j.len())
                && j.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .ok_or(Invalid("jti"))?;
    if raw
        .name
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NAME_CHARS)
    {
        return Err(Invalid("name"));
    }
    Ok(Claims {
        iss: raw.iss.ok_or(Issuer)?.into_owned(),
        aud: raw.aud.ok_or(Audience)?.into_owned(),
        iat: raw.iat.ok_or(Invalid("iat"))?,
        nbf: raw.nbf.ok_or(Invalid("nbf"))?,
        exp: raw.exp,
        jti: jti.into_owned(),
        name: raw.name.map(Cow::into_owned),
    })
}

/// Claims read and typed, before the rules that span members.
#[derive(Default)]
struct RawClaims<'a> {
    iss: Option<Cow<'a, str>>,
    aud: Option<Cow<'a, str>>,
    iat: Option<i64>,
    nbf: Option<i64>,
    exp: Option<i64>,
    jti: Option<Cow<'a, str>>,
    name: Option<Cow<'a, str>>,
}

/// Any JSON object: every member typed by its name's rule, in document order, so the
/// first fault found is the first in the text.
fn general(text: &str) -> Result<RawClaims<'_>, ClaimsError> {
    use ClaimsError::*;
    let members = members(text.as_bytes()).ok_or(Malformed)?;
    let mut raw = RawClaims::default();
    for (member, value) in members.0 {
        match &*member {
            "iss" => raw.iss = Some(string(value).ok_or(Issuer)?),
            "aud" => raw.aud = Some(string(value).ok_or(Audience)?),
            "iat" => raw.iat = Some(numeric_date(value).ok_or(Invalid("iat"))?),
            "nbf" => raw.nbf = Some(numeric_date(value).ok_or(Invalid("nbf"))?),
            "exp" => raw.exp = Some(numeric_date(value).ok_or(Invalid("exp"))?),
            "jti" => raw.jti = Some(string(value).ok_or(Invalid("jti"))?),
            "name" => raw.name = Some(string(value).ok_or(Invalid("name"))?),
            _ => return Err(Invalid("unknown claim")),
        }
    }
    Ok(raw)
}

/// The claims exactly as the minter writes them: `iss`, `aud`, `iat`, `nbf`, optional
/// `exp`, `jti`, optional `name`, in that order, no white space, strings without escapes,
/// dates plain integers in range. Such a text means the same to every JSON parser, and is
/// read here in one pass; anything else (`None`) takes the general reading.
fn minted(text: &str) -> Option<RawClaims<'_>> {
    let mut c = Cursor { text, at: 0 };
    c.literal("{\"iss\":")?;
    let iss = c.string()?;
    c.literal(",\"aud\":")?;
    let aud = c.string()?;
    c.literal(",\"iat\":")?;
    let iat = c.date()?;
    c.literal(",\"nbf\":")?;
    let nbf = c.date()?;
    let exp = match c.literal(",\"exp\":") {
        Some(()) => Some(c.date()?),
        None => None,
    };
    c.literal(",\"jti\":")?;
    let jti = c.string()?;
    let name = match c.literal(",\"name\":") {
        Some(()) => Some(c.string()?),
        None => None,
    };
    c.literal("}")?;
    (c.at == text.len()).then(|| RawClaims {
        iss: Some(Cow::Borrowed(iss)),
        aud: Some(Cow::Borrowed(aud)),
        iat: Some(iat),
        nbf: Some(nbf),
        exp,
        jti: Some(Cow::Borrowed(jti)),
        name: name.map(Cow::Borrowed),
    })
}

struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    /// Steps over `lit` if the text continues with it.
    fn literal(&mut self, lit: &str) -> Option<()> {
        self.text[self.at..]
            .starts_with(lit)
            .then(|| self.at += lit.len())
    }

    /// A string without escapes or control characters: its contents as they stand.
    fn string(&mut self) -> Option<&'a str> {
        let rest = self.text[self.at..].strip_prefix('"')?;
        let len = rest
            .bytes()
            .position(|b| b == b'"' || b == b'\\' || b < 0x20)?;
        (rest.as_bytes()[len] == b'"').then(|| {
            self.at += len + 2;
            &rest[..len]
        })
    }

    /// A NumericDate: digits without a leading zero, at most [`MAX_NUMERIC_DATE`].
    fn date(&mut self) -> Option<i64> {
        let rest = &self.text.as_bytes()[self.at..];
        let len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if len == 0 || len > 12 || (len > 1 && rest[0] == b'0') {
            return None;
        }
        let n = rest[..len]
            .iter()
            .fold(0i64, |n, &d| n * 10 + i64::from(d - b'0'));
        self.at += len;
        (n <= MAX_NUMERIC_DATE).then_some(n)
    }
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
    fn every_byte_is_classed_alike_in_blocks_and_in_the_tail() {
        let base = format!("{}.{}.{}", "h".repeat(20), "p".repeat(20), "s".repeat(9));
        for b in 0..=255u8 {
            let in_alphabet = b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
            // Position 3 lies in the first 16-byte block, the last byte in the tail.
            for at in [3, base.len() - 1] {
                let mut t = base.clone().into_bytes();
                t[at] = b;
                let got = split(&t);
                if in_alphabet {
                    assert!(got.is_ok(), "byte {b:#04x} at {at}");
                } else {
                    assert_eq!(
                        got.unwrap_err(),
                        ShapeError::Malformed,
                        "byte {b:#04x} at {at}"
                    );
                }
            }
        }
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

    /// A plain reading of header and claims (every value typed by serde_json on its own),
    /// the reference the faster typing above must agree with on every input.
    mod reference {
        use super::super::*;
        use serde_json::value::RawValue;

        fn members(json: &[u8]) -> Option<Vec<(String, &RawValue)>> {
            let text = std::str::from_utf8(json).ok()?;
            let map: Vec<(String, &RawValue)> = {
                struct M<'a>(Vec<(String, &'a RawValue)>);
                impl<'de> Deserialize<'de> for M<'de> {
                    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                        struct V;
                        impl<'de> Visitor<'de> for V {
                            type Value = M<'de>;
                            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                                f.write_str("object")
                            }
                            fn visit_map<A: MapAccess<'de>>(
                                self,
                                mut map: A,
                            ) -> Result<Self::Value, A::Error> {
                                let mut out: Vec<(String, &'de RawValue)> = Vec::new();
                                while let Some(name) = map.next_key::<String>()? {
                                    if out.iter().any(|(n, _)| *n == name) {
                                        return Err(de::Error::custom("duplicate"));
                                    }
                                    out.push((name, map.next_value()?));
                                }
                                Ok(M(out))
                            }
                        }
                        d.deserialize_map(V)
                    }
                }
                serde_json::from_str::<M<'_>>(text).ok()?.0
            };
            Some(map)
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

        pub fn parse_header(json: &[u8]) -> Result<Header, HeaderError> {
            let members = members(json).ok_or(HeaderError::Malformed)?;
            let (mut alg, mut typ, mut kid, mut extra) = (false, false, None, false);
            for (name, value) in members {
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

        pub fn parse_claims(json: &[u8]) -> Result<Claims, ClaimsError> {
            use ClaimsError::*;
            let members = members(json).ok_or(Malformed)?;
            let (mut iss, mut aud, mut iat, mut nbf, mut exp, mut jti, mut name) =
                (None, None, None, None, None, None, None);
            for (member, value) in members {
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
    }

    const NAMES: &[&str] = &[
        "iss",
        "aud",
        "iat",
        "nbf",
        "exp",
        "jti",
        "name",
        "alg",
        "typ",
        "kid",
        "crit",
        "x",
        "i\\u0073s",
        "\\u006bid",
    ];
    const VALUES: &[&str] = &[
        "\"i\"",
        "\"a\"",
        "\"EdDSA\"",
        "\"mdt+jwt\"",
        "\"k\"",
        "\"jjjjjjjjjjjjjjjjjjjjjj\"",
        "\"j\\u006ajjjjjjjjjjjjjjjjjjjjj\"",
        "\"\\ud800\"",
        "\"\\u0000\"",
        "\"a\u{1}b\"",
        "\"a\tb\"",
        "\"\u{e9}\u{1F600}\"",
        "\"\\\"\"",
        "1",
        "0",
        "-0",
        "-1",
        "1.0",
        "1e3",
        "1E400",
        "253402300799",
        "253402300800",
        "9223372036854775807",
        "18446744073709551615",
        "18446744073709551616",
        "01",
        "true",
        "null",
        "[]",
        "[1,[2,{\"a\":[]}]]",
        "{}",
        "{\"a\":{\"b\":null}}",
        "\"",
        "",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    ];

    fn object() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let member = (0..NAMES.len(), 0..VALUES.len(), any::<bool>());
        (
            proptest::collection::vec(member, 0..9),
            0..6u8,
            proptest::collection::vec(any::<u8>(), 0..3),
        )
            .prop_map(|(members, shape, junk)| {
                let body: Vec<String> = members
                    .iter()
                    .map(|&(n, v, space)| {
                        let sp = if space { " " } else { "" };
                        format!("{sp}\"{}\"{sp}:{sp}{}", NAMES[n], VALUES[v])
                    })
                    .collect();
                let mut out = format!("{{{}}}", body.join(",")).into_bytes();
                match shape {
                    0 => out.extend_from_slice(&junk),
                    1 => out.insert(0, b'['),
                    2 => out.truncate(out.len().saturating_sub(1)),
                    _ => {}
                }
                out
            })
    }

    /// Objects in the minter's layout (the one-pass reading's domain), with every slot's
    /// value drawn from the catalogue, optional members present or not, and now and then
    /// a space or a stray byte.
    fn minted_layout() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let value = 0..VALUES.len() + 4;
        (
            proptest::collection::vec(value, 7),
            any::<(bool, bool)>(),
            0..12u8,
            any::<u8>(),
        )
            .prop_map(|(v, (exp, name), tweak, byte)| {
                // Slots past the catalogue hold a well-formed value for their member.
                let typed = |slot: usize, good: &str| -> String {
                    VALUES
                        .get(v[slot])
                        .map_or(good.to_owned(), |s| (*s).to_owned())
                };
                let mut out = format!(
                    r#"{{"iss":{},"aud":{},"iat":{},"nbf":{}"#,
                    typed(0, "\"i\""),
                    typed(1, "\"a\""),
                    typed(2, "1"),
                    typed(3, "1700000000"),
                );
                if exp {
                    out += &format!(r#","exp":{}"#, typed(4, "1800000000"));
                }
                out += &format!(r#","jti":{}"#, typed(5, "\"jjjjjjjjjjjjjjjjjjjjjj\""));
                if name {
                    out += &format!(r#","name":{}"#, typed(6, "\"rollout \u{e9}\""));
                }
                out.push('}');
                let mut out = out.into_bytes();
                let at = usize::from(byte) % out.len();
                match tweak {
                    0 => out.insert(at, b' '),
                    1 => out.insert(at, byte),
                    2 => out[at] = byte,
                    3 => out.push(b' '),
                    _ => {}
                }
                out
            })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]

        #[test]
        fn fast_typing_agrees_with_the_reference(json in object()) {
            proptest::prop_assert_eq!(parse_claims(&json), reference::parse_claims(&json));
            proptest::prop_assert_eq!(parse_header(&json), reference::parse_header(&json));
        }

        #[test]
        fn one_pass_reading_agrees_with_the_reference(json in minted_layout()) {
            proptest::prop_assert_eq!(parse_claims(&json), reference::parse_claims(&json));
        }

        #[test]
        fn agrees_on_arbitrary_bytes(json in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            proptest::prop_assert_eq!(parse_claims(&json), reference::parse_claims(&json));
            proptest::prop_assert_eq!(parse_header(&json), reference::parse_header(&json));
        }
    }

    #[test]
    fn minted_claims_take_the_one_pass_reading() {
        let minted_text = r#"{"iss":"https://mdm.example","aud":"mass-deployment","iat":1800000000,"nbf":1800000000,"exp":1802592000,"jti":"AAAAAAAAAAAAAAAAAAAAAA","name":"rollout é"}"#;
        let raw = minted(minted_text).expect("the minter's layout");
        assert_eq!(raw.exp, Some(1_802_592_000));
        assert_eq!(raw.name.as_deref(), Some("rollout é"));
        let bare = r#"{"iss":"i","aud":"a","iat":0,"nbf":0,"jti":"j"}"#;
        assert!(minted(bare).is_some_and(|r| r.exp.is_none() && r.name.is_none()));
        for other in [
            r#"{"iss":"i","aud":"a","iat":01,"nbf":0,"jti":"j"}"#,
            r#"{"iss":"i","aud":"a","iat":0,"nbf":0,"jti":"j\u006a"}"#,
            r#"{"iss":"i","aud":"a","iat":0,"nbf":0,"jti":"j"} "#,
            r#"{"iss":"i","aud":"a","iat":0, "nbf":0,"jti":"j"}"#,
            r#"{"aud":"a","iss":"i","iat":0,"nbf":0,"jti":"j"}"#,
            r#"{"iss":"i","aud":"a","iat":0,"nbf":0,"jti":"j","jti":"k"}"#,
            r#"{"iss":"i","aud":"a","iat":253402300800,"nbf":0,"jti":"j"}"#,
            r#"{"iss":"i","aud":"a","iat":1.0,"nbf":0,"jti":"j"}"#,
        ] {
            assert!(minted(other).is_none(), "{other}");
        }
    }

    #[test]
    fn agrees_on_minted_shapes() {
        for json in [
            &br#"{"iss":"i","aud":"a","iat":1,"nbf":1,"exp":2,"jti":"jjjjjjjjjjjjjjjjjjjjjj","name":"n"}"#[..],
            br#"{"iss":"i","aud":"a","iat":-0,"nbf":1,"jti":"jjjjjjjjjjjjjjjjjjjjjj"}"#,
            br#"{"iss":"i","aud":"a","iat":1,"nbf":1,"jti":"jjjjjjjjjjjjjjjjjjjjjj","x":[[[]]],"x":1}"#,
            br#"{"alg":"EdDSA","typ":"mdt+jwt","kid":"k","jwk":{"kty":"OKP"}}"#,
        ] {
            assert_eq!(parse_claims(json), reference::parse_claims(json));
            assert_eq!(parse_header(json), reference::parse_header(json));
        }
    }
}
