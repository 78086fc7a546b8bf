//! A JSON object writer that produces Go `encoding/json` output for etcd's
//! gogo-protobuf structs: fields in declaration order, zero values omitted
//! (`omitempty`), byte strings as standard base64, 64-bit integers as plain
//! numbers, and Go's string escaping (`<`, `>`, `&` as `\u003c`...).

use base64::Engine as _;

/// Builds one JSON object; fields are appended in call order.
#[derive(Default)]
pub struct Obj {
    buf: String,
}

impl Obj {
    pub fn new() -> Obj {
        Obj::default()
    }

    fn key(&mut self, k: &str) {
        self.buf.push(if self.buf.is_empty() { '{' } else { ',' });
        self.buf.push('"');
        self.buf.push_str(k);
        self.buf.push_str("\":");
    }

    /// An already-encoded JSON value, always written.
    pub fn raw(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        self.buf.push_str(v);
        self
    }

    /// A signed integer, omitted when zero.
    pub fn int(&mut self, k: &str, v: i64) -> &mut Self {
        if v != 0 {
            self.raw(k, &v.to_string());
        }
        self
    }

    /// An unsigned integer, omitted when zero.
    pub fn uint(&mut self, k: &str, v: u64) -> &mut Self {
        if v != 0 {
            self.raw(k, &v.to_string());
        }
        self
    }

    /// A bool, omitted when false.
    pub fn flag(&mut self, k: &str, v: bool) -> &mut Self {
        if v {
            self.raw(k, "true");
        }
        self
    }

    /// Bytes as base64, omitted when empty.
    pub fn bytes(&mut self, k: &str, v: &[u8]) -> &mut Self {
        if !v.is_empty() {
            let enc = base64::engine::general_purpose::STANDARD.encode(v);
            self.raw(k, &format!("\"{enc}\""));
        }
        self
    }

    /// A string, omitted when empty.
    pub fn str_nonempty(&mut self, k: &str, v: &str) -> &mut Self {
        if !v.is_empty() {
            self.raw(k, &string(v));
        }
        self
    }

    /// A string, always written.
    pub fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.raw(k, &string(v))
    }

    /// The finished object (`{}` when no field was written).
    pub fn finish(&self) -> String {
        if self.buf.is_empty() {
            "{}".into()
        } else {
            format!("{}}}", self.buf)
        }
    }
}

/// A JSON array of already-encoded values.
pub fn array(items: &[String]) -> String {
    format!("[{}]", items.join(","))
}

/// A JSON string with Go's `encoding/json` escaping.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn omits_zero_fields_and_keeps_order() {
        let mut o = Obj::new();
        o.uint("cluster_id", 14841639068965178418)
            .int("revision", 5)
            .int("count", 0)
            .flag("more", false);
        assert_eq!(
            o.finish(),
            r#"{"cluster_id":14841639068965178418,"revision":5}"#
        );
        assert_eq!(Obj::new().finish(), "{}");
    }

    #[test]
    fn bytes_are_base64() {
        let mut o = Obj::new();
        o.bytes("key", b"foo").bytes("value", b"");
        assert_eq!(o.finish(), r#"{"key":"Zm9v"}"#);
    }

    #[test]
    fn strings_escape_like_go() {
        assert_eq!(
            string("a<b>&\"\n\x01"),
            r#""a\u003cb\u003e\u0026\"\n\u0001""#
        );
    }
}
