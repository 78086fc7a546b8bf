//! Splitting one txn request line into arguments (etcdctl's `Argify`) and
//! reading Go-quoted strings (`fmt.Sscanf("%q")`).
//!
//! Tokens are `"double quoted"` (Go escapes), `'single quoted'` (taken
//! literally) or runs of non-space characters that do not start with a
//! quote. Like etcdctl's regular expression, an unterminated quote is
//! skipped and scanning resumes after it.
//!
//! Deliberate difference: etcdctl 3.4 cuts single-quoted tokens with the
//! wrong length (`args[i][1:len(args)-1]`, so `put 'a b' v` writes key `a`);
//! cairnctl strips just the quotes.

/// Splits a txn request line into arguments. Errors carry Go's `Sscanf` text.
pub fn argify(line: &str) -> Result<Vec<String>, String> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '"' {
            if let Some(end) = closing_double_quote(&chars, i) {
                let raw: String = chars[i..=end].iter().collect();
                out.push(unquote(&raw)?);
                i = end + 1;
            } else {
                i += 1;
            }
            continue;
        }
        if c == '\'' {
            if let Some(off) = chars[i + 1..].iter().position(|&x| x == '\'') {
                out.push(chars[i + 1..i + 1 + off].iter().collect());
                i += off + 2;
            } else {
                i += 1;
            }
            continue;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() {
            i += 1;
        }
        out.push(chars[start..i].iter().collect());
    }
    Ok(out)
}

/// Index of the `"` closing the string opened at `open`, skipping escapes.
fn closing_double_quote(chars: &[char], open: usize) -> Option<usize> {
    let mut j = open + 1;
    while j < chars.len() {
        match chars[j] {
            '\\' => j += 2,
            '"' => return Some(j),
            _ => j += 1,
        }
    }
    None
}

/// Reads one Go-quoted string (`"..."` with escapes, or `` `raw` ``) from the
/// start of `s` after leading spaces, as `Sscanf("%q")` does. Returns the
/// string and the rest of the input.
pub fn scan_quoted(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start_matches([' ', '\t', '\r', '\n']);
    let chars: Vec<char> = s.chars().collect();
    match chars.first()? {
        '`' => {
            let end = chars[1..].iter().position(|&c| c == '`')? + 1;
            let raw: String = chars[1..end].iter().collect();
            let consumed: usize = chars[..=end].iter().map(|c| c.len_utf8()).sum();
            Some((raw, &s[consumed..]))
        }
        '"' => {
            let end = closing_double_quote(&chars, 0)?;
            let raw: String = chars[..=end].iter().collect();
            let consumed = raw.len();
            Some((unquote(&raw).ok()?, &s[consumed..]))
        }
        _ => None,
    }
}

/// Go's `strconv.Unquote` of a double-quoted string literal.
pub fn unquote(q: &str) -> Result<String, String> {
    let bad = || "invalid syntax".to_string();
    let inner = q
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .ok_or_else(bad)?;
    let mut out = Vec::<u8>::new();
    let mut it = inner.chars().peekable();
    while let Some(c) = it.next() {
        if c == '"' || c == '\n' {
            return Err(bad());
        }
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let e = it.next().ok_or_else(bad)?;
        let simple = match e {
            'a' => Some(7u8),
            'b' => Some(8),
            'f' => Some(12),
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            'v' => Some(11),
            '\\' => Some(b'\\'),
            '"' => Some(b'"'),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            continue;
        }
        let mut take = |n: usize, radix: u32| -> Result<u32, String> {
            let digits: String = (0..n).filter_map(|_| it.next()).collect();
            if digits.len() != n {
                return Err(bad());
            }
            u32::from_str_radix(&digits, radix).map_err(|_| bad())
        };
        match e {
            'x' => out.push(take(2, 16)? as u8),
            '0'..='7' => {
                let rest = take(2, 8)?;
                let v = e.to_digit(8).unwrap_or(0) * 64 + rest;
                out.push(u8::try_from(v).map_err(|_| bad())?);
            }
            'u' | 'U' => {
                let v = take(if e == 'u' { 4 } else { 8 }, 16)?;
                let ch = char::from_u32(v).ok_or_else(bad)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            _ => return Err(bad()),
        }
    }
    // Go strings may hold any bytes; keys here are carried as UTF-8 text.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_spaces_and_quotes() {
        assert_eq!(argify("put foo bar").unwrap(), vec!["put", "foo", "bar"]);
        assert_eq!(
            argify(r#"put "a b" "c\nd""#).unwrap(),
            vec!["put", "a b", "c\nd"]
        );
        assert_eq!(argify("put 'a b' c").unwrap(), vec!["put", "a b", "c"]);
        assert_eq!(argify(r#"  get "foo"  "#).unwrap(), vec!["get", "foo"]);
    }

    #[test]
    fn unterminated_quote_is_skipped_like_etcdctl() {
        assert_eq!(
            argify("put a \"unterminated").unwrap(),
            vec!["put", "a", "unterminated"]
        );
    }

    #[test]
    fn scan_quoted_reads_go_strings() {
        assert_eq!(
            scan_quoted(r#""foo") = "bar""#),
            Some(("foo".to_string(), r#") = "bar""#))
        );
        assert_eq!(scan_quoted("`raw\\n`x"), Some(("raw\\n".to_string(), "x")));
        assert_eq!(scan_quoted(r#"  "a\"b""#), Some(("a\"b".to_string(), "")));
        assert_eq!(scan_quoted("foo"), None);
        assert_eq!(scan_quoted(r#""open"#), None);
    }

    #[test]
    fn unquote_handles_go_escapes() {
        assert_eq!(unquote(r#""\x41\101\u00e9\t""#).unwrap(), "AAé\t");
        assert!(unquote(r#""\q""#).is_err());
    }
}
