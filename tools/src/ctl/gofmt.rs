//! Go's text formats that etcdctl's output is made of: `%q` quoting,
//! `time.Duration` printing and parsing, `strconv` integer and bool parsing
//! (with Go's error texts), go-humanize's byte sizes, and etcdctl's `--hex`
//! byte escaping. Byte-exact output depends on these matching Go.

use std::fmt::Write as _;
use std::time::Duration;

/// Go's `strconv.Quote` of a byte string (`%q` of `string(b)`): printable
/// runes as is, `"` and `\` escaped, C escapes, `\xHH` for invalid UTF-8 and
/// ASCII controls, `\uHHHH`/`\UHHHHHHHH` for other non-printable runes.
pub fn quote(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() + 2);
    out.push('"');
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_quoted_char(&mut out, c);
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out.push('"');
    out
}

fn push_quoted_char(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        c if is_go_printable(c) => out.push(c),
        c if (c as u32) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if (c as u32) < 0x10000 => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\U{:08x}", c as u32);
        }
    }
}

/// An approximation of Go's `unicode.IsPrint`: graphic runes and the ASCII
/// space. Rust's std has no general categories, so unassigned code points
/// count as printable here (Go escapes them); every assigned control,
/// separator and format rune that matters in practice is handled.
fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    // Format characters (Cf) and private use / surrogate-adjacent ranges.
    !matches!(u, 0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x200b..=0x200f | 0x202a..=0x202e
        | 0x2060..=0x206f | 0xfeff | 0xfff9..=0xfffb | 0xe000..=0xf8ff | 0xfffe | 0xffff)
}

/// etcdctl's `--hex` form of a byte string: `\x` before every byte's two
/// lowercase hex digits.
pub fn hex_escape(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() * 4);
    for byte in b {
        let _ = write!(out, "\\x{byte:02x}");
    }
    out
}

/// Go's `time.Duration.String()`: `1.277286ms`, `956.407µs`, `5.000487452s`,
/// `1m30s`, `0s`.
pub fn duration(d: Duration) -> String {
    let u = d.as_nanos().min(u64::MAX as u128) as u64;
    if u == 0 {
        return "0s".into();
    }
    if u < 1_000_000_000 {
        let (prec, unit) = match u {
            0..=999 => (0, "ns"),
            1_000..=999_999 => (3, "µs"),
            _ => (6, "ms"),
        };
        let mut s = fixed_point(u, prec);
        s.push_str(unit);
        return s;
    }
    let secs = u / 1_000_000_000;
    let frac = fixed_point(u % 1_000_000_000 + secs % 60 * 1_000_000_000, 9);
    let (h, m) = (secs / 3600, secs / 60 % 60);
    match (h, m) {
        (0, 0) => format!("{frac}s"),
        (0, m) => format!("{m}m{frac}s"),
        (h, m) => format!("{h}h{m}m{frac}s"),
    }
}

/// `v / 10^prec` with the fraction's trailing zeros (and a bare point) dropped.
fn fixed_point(v: u64, prec: u32) -> String {
    let p = 10u64.pow(prec);
    let (int, frac) = (v / p, v % p);
    if frac == 0 {
        return int.to_string();
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    format!("{int}.{}", digits.trim_end_matches('0'))
}

/// Go's `time.ParseDuration`, with Go's error texts.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let invalid = || format!("time: invalid duration {}", quote(s.as_bytes()));
    let mut rest = s;
    let mut neg = false;
    if let Some(r) = rest.strip_prefix('-') {
        neg = true;
        rest = r;
    } else if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total_ns: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(invalid());
        }
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale = match unit {
            "" => {
                return Err(format!(
                    "time: missing unit in duration {}",
                    quote(s.as_bytes())
                ))
            }
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    quote(unit.as_bytes()),
                    quote(s.as_bytes())
                ))
            }
        };
        let v: f64 = num.parse().map_err(|_| invalid())?;
        total_ns += v * scale;
    }
    if total_ns > i64::MAX as f64 {
        return Err(invalid());
    }
    // A negative timeout expires at once, like Go's context with a past deadline.
    Ok(if neg {
        Duration::ZERO
    } else {
        Duration::from_nanos(total_ns.round() as u64)
    })
}

/// Go's `strconv.ParseInt(s, base, 64)` (base 0: `0x`, `0o`, `0b`, `0`
/// prefixes and `_` separators), with Go's error texts.
pub fn parse_int(s: &str, base: u32) -> Result<i64, String> {
    let err = |why: &str| format!("strconv.ParseInt: parsing {}: {why}", quote(s.as_bytes()));
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if base == 0 {
        let lower = body.to_ascii_lowercase();
        if lower.starts_with("0x") {
            (16, body[2..].replace('_', ""))
        } else if lower.starts_with("0o") {
            (8, body[2..].replace('_', ""))
        } else if lower.starts_with("0b") {
            (2, body[2..].replace('_', ""))
        } else if body.len() > 1 && body.starts_with('0') {
            (8, body[1..].replace('_', ""))
        } else {
            (10, body.replace('_', ""))
        }
    } else {
        (base, body.to_string())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(err("invalid syntax"));
    }
    let mag = u128::from_str_radix(&digits, radix).map_err(|_| err("value out of range"))?;
    let limit = if neg { 1u128 << 63 } else { (1u128 << 63) - 1 };
    if mag > limit {
        return Err(err("value out of range"));
    }
    Ok(if neg {
        (mag as i128).wrapping_neg() as i64
    } else {
        mag as i64
    })
}

/// Go's `strconv.ParseUint(s, base, 64)` for a base of 2..=36 (no sign,
/// no prefix, no `_`), with Go's error texts.
pub fn parse_uint(s: &str, base: u32) -> Result<u64, String> {
    let err = |why: &str| format!("strconv.ParseUint: parsing {}: {why}", quote(s.as_bytes()));
    if s.is_empty() || !s.chars().all(|c| c.is_digit(base)) {
        return Err(err("invalid syntax"));
    }
    u64::from_str_radix(s, base).map_err(|_| err("value out of range"))
}

/// Go's `strconv.ParseBool`, with Go's error text.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "strconv.ParseBool: parsing {}: invalid syntax",
            quote(s.as_bytes())
        )),
    }
}

/// go-humanize's `Bytes`: SI units, one decimal below 10 (`29 kB`, `1.2 MB`).
pub fn humanize_bytes(n: u64) -> String {
    const SIZES: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    if n < 10 {
        return format!("{n} B");
    }
    let nf = n as f64;
    let e = (nf.ln() / 1000f64.ln()).floor() as usize;
    let e = e.min(SIZES.len() - 1);
    let val = (nf / 1000f64.powi(e as i32) * 10.0 + 0.5).floor() / 10.0;
    if val < 10.0 {
        format!("{val:.1} {}", SIZES[e])
    } else {
        format!("{val:.0} {}", SIZES[e])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_matches_go_percent_q() {
        // Observed from etcdctl -w fields.
        assert_eq!(quote(b"ke\"y"), r#""ke\"y""#);
        assert_eq!(quote(b"va\\lue"), r#""va\\lue""#);
        assert_eq!(quote(b"\x01\xff\xe2\x82\xac"), r#""\x01\xff€""#);
        assert_eq!(quote(b"line1\nline2\n"), r#""line1\nline2\n""#);
        assert_eq!(quote(b"\x7f\xc2\xa0"), r#""\x7f\u00a0""#);
    }

    #[test]
    fn parse_uint_hex_matches_go() {
        // The texts etcdctl 3.4.23 printed for bad member ids.
        assert_eq!(parse_uint("ff11295f2b4b6772", 16), Ok(0xff11295f2b4b6772));
        assert_eq!(parse_uint("ABC", 16), Ok(0xabc));
        let e = |s: &str| parse_uint(s, 16).unwrap_err();
        assert_eq!(
            e("zz"),
            r#"strconv.ParseUint: parsing "zz": invalid syntax"#
        );
        assert_eq!(
            e("0x12"),
            r#"strconv.ParseUint: parsing "0x12": invalid syntax"#
        );
        assert_eq!(
            e("-12"),
            r#"strconv.ParseUint: parsing "-12": invalid syntax"#
        );
        assert_eq!(e(""), r#"strconv.ParseUint: parsing "": invalid syntax"#);
        assert_eq!(
            e("12345678901234567890"),
            r#"strconv.ParseUint: parsing "12345678901234567890": value out of range"#
        );
    }

    #[test]
    fn duration_matches_go_string() {
        assert_eq!(duration(Duration::from_nanos(1_277_286)), "1.277286ms");
        assert_eq!(duration(Duration::from_nanos(956_407)), "956.407µs");
        assert_eq!(
            duration(Duration::from_nanos(5_000_487_452)),
            "5.000487452s"
        );
        assert_eq!(duration(Duration::from_nanos(300_786_240)), "300.78624ms");
        assert_eq!(duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(duration(Duration::from_nanos(12)), "12ns");
        assert_eq!(duration(Duration::ZERO), "0s");
        assert_eq!(duration(Duration::from_millis(2)), "2ms");
    }

    #[test]
    fn parse_duration_accepts_go_forms_and_reports_go_errors() {
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(
            parse_duration("xyz").unwrap_err(),
            r#"time: invalid duration "xyz""#
        );
        assert_eq!(
            parse_duration("5").unwrap_err(),
            r#"time: missing unit in duration "5""#
        );
        assert_eq!(
            parse_duration("5x").unwrap_err(),
            r#"time: unknown unit "x" in duration "5x""#
        );
    }

    #[test]
    fn parse_int_matches_strconv() {
        assert_eq!(parse_int("42", 10).unwrap(), 42);
        assert_eq!(parse_int("-1", 0).unwrap(), -1);
        assert_eq!(parse_int("0x10", 0).unwrap(), 16);
        assert_eq!(parse_int("1234abcd", 16).unwrap(), 0x1234abcd);
        assert_eq!(
            parse_int("abc", 10).unwrap_err(),
            r#"strconv.ParseInt: parsing "abc": invalid syntax"#
        );
        assert_eq!(
            parse_int("zz", 16).unwrap_err(),
            r#"strconv.ParseInt: parsing "zz": invalid syntax"#
        );
        assert_eq!(
            parse_int("7fffffffffffffffff", 16).unwrap_err(),
            r#"strconv.ParseInt: parsing "7fffffffffffffffff": value out of range"#
        );
        assert_eq!(parse_int("-9223372036854775808", 10).unwrap(), i64::MIN);
    }

    #[test]
    fn parse_bool_matches_strconv() {
        assert!(parse_bool("true").unwrap());
        assert!(!parse_bool("F").unwrap());
        assert_eq!(
            parse_bool("maybe").unwrap_err(),
            r#"strconv.ParseBool: parsing "maybe": invalid syntax"#
        );
    }

    #[test]
    fn humanize_matches_go_humanize() {
        assert_eq!(humanize_bytes(28672), "29 kB");
        assert_eq!(humanize_bytes(5), "5 B");
        assert_eq!(humanize_bytes(1234), "1.2 kB");
        assert_eq!(humanize_bytes(20_480_000), "20 MB");
    }

    #[test]
    fn hex_escape_matches_etcdctl_hex() {
        assert_eq!(hex_escape(b"foo"), r"\x66\x6f\x6f");
        assert_eq!(hex_escape(b""), "");
    }
}
