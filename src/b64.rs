//! Strict unpadded base64url (RFC 7515 §2): no padding, no `+`/`/`, no stray trailing bits.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Encodes bytes as unpadded base64url.
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes unpadded base64url, refusing padding, the standard alphabet and
/// non-canonical trailing bits, so one value has exactly one accepted spelling.
///
/// # Errors
/// Returns `None` for anything that is not canonical unpadded base64url.
pub fn decode(text: impl AsRef<[u8]>) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// As [`decode`], into `buf` instead of a new allocation: the decoded bytes, or `None`
/// for anything that is not canonical unpadded base64url or does not fit.
pub fn decode_into(text: impl AsRef<[u8]>, buf: &mut [u8]) -> Option<&[u8]> {
    let n = URL_SAFE_NO_PAD.decode_slice(text, buf).ok()?;
    Some(&buf[..n])
}

/// Decodes into a fixed-size array; `None` unless the decoded length is exactly `N`.
pub fn decode_array<const N: usize>(text: impl AsRef<[u8]>) -> Option<[u8; N]> {
    let text = text.as_ref();
    // A longer input cannot decode to N bytes; refusing it first bounds the work.
    if text.len() > N.div_ceil(3) * 4 {
        return None;
    }
    let mut out = [0u8; N];
    (decode_into(text, &mut out)?.len() == N).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_strictness() {
        assert_eq!(encode([0xfb, 0xff]), "-_8");
        assert_eq!(decode("-_8"), Some(vec![0xfb, 0xff]));
        assert_eq!(decode("+/8"), None);
        assert_eq!(decode("-_8="), None);
        // "-_9" carries non-zero trailing bits: a second spelling of the same bytes.
        assert_eq!(decode("-_9"), None);
        assert_eq!(decode_array::<2>("-_8"), Some([0xfb, 0xff]));
        assert_eq!(decode_array::<3>("-_8"), None);
        assert_eq!(decode_array::<1>("-_8"), None);
        assert_eq!(decode_array::<2>("-_9"), None);
        let mut buf = [0u8; 2];
        assert_eq!(decode_into("-_8", &mut buf), Some(&[0xfb, 0xff][..]));
        assert_eq!(decode_into("-_-_", &mut buf), None, "does not fit");
        assert_eq!(decode_into("-_8=", &mut buf), None);
    }
}
