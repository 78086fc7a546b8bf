//! Printing byte strings (keys, range ends) readably and unambiguously.

use std::fmt::Write as _;

/// `bytes` as the inside of a Rust string literal: valid UTF-8 is kept
/// (with `char::escape_debug`: quotes, backslashes and control characters
/// escaped), every byte that is not part of valid UTF-8 becomes `\xNN`.
/// Distinct inputs give distinct outputs, so nothing is lost.
pub(crate) fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            out.extend(c.escape_debug());
        }
        for b in chunk.invalid() {
            // Writing into a String cannot fail.
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// [`escape_bytes`] in double quotes.
pub(crate) fn quoted(bytes: &[u8]) -> String {
    format!("\"{}\"", escape_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_is_kept_and_specials_are_escaped() {
        assert_eq!(escape_bytes(b"foo/bar"), "foo/bar");
        assert_eq!(escape_bytes("clé".as_bytes()), "clé");
        assert_eq!(escape_bytes(b"a\"b\\c\n\0"), "a\\\"b\\\\c\\n\\0");
        assert_eq!(quoted(b""), "\"\"");
    }

    #[test]
    fn invalid_utf8_bytes_become_hex_escapes() {
        assert_eq!(escape_bytes(b"\xff\xfek"), "\\xff\\xfek");
        // A truncated multi-byte sequence: each of its bytes is escaped.
        assert_eq!(escape_bytes(b"a\xc3"), "a\\xc3");
        assert_eq!(escape_bytes(b"\xe2\x82z"), "\\xe2\\x82z");
    }

    #[test]
    fn escaping_is_injective_on_tricky_pairs() {
        // The literal text `\xff` and the byte 0xff must differ.
        assert_ne!(escape_bytes(b"\\xff"), escape_bytes(b"\xff"));
    }
}
