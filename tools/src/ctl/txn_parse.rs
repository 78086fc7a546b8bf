//! etcdctl's txn input: compares, a blank line, success requests, a blank
//! line, failure requests, a blank line. Every section, the last one
//! included, must end with a newline-terminated blank line, or the txn
//! fails with `Error: EOF` (exit 3), exactly as etcdctl's `ReadString('\n')`.
//!
//! Compares read `TARGET("key") OP "value"` with TARGET one of `ver`/`version`,
//! `c`/`create`, `m`/`mod`, `val`/`value`, `lease` (hex); requests are
//! `put`, `get` and `del` command lines with their own flags.
//!
//! Deliberate difference: etcdctl 3.4 panics on an unknown compare operator
//! (`>=`) and on `lease(...)`; cairnctl reports the first as a malformed
//! comparison and supports the second.

use std::io::BufRead;

use cairn_schemas::rpc;

use super::argify::{argify, scan_quoted};
use super::exit::Exit;
use super::flags::{self, FlagSpec};
use super::gofmt::{self, quote};
use super::ops;

/// Reads one section: lines up to a blank one.
fn read_section(input: &mut dyn BufRead) -> Result<Vec<String>, Exit> {
    let mut lines = Vec::new();
    loop {
        let mut buf = Vec::new();
        let n = input
            .read_until(b'\n', &mut buf)
            .map_err(|e| Exit::invalid_input(e.to_string()))?;
        if n == 0 || buf.last() != Some(&b'\n') {
            return Err(Exit::invalid_input("EOF"));
        }
        let line = String::from_utf8_lossy(&buf).trim().to_string();
        if line.is_empty() {
            return Ok(lines);
        }
        lines.push(line);
    }
}

/// Reads the compares section.
pub fn read_compares(input: &mut dyn BufRead) -> Result<Vec<rpc::CompareT>, Exit> {
    read_section(input)?
        .iter()
        .map(|l| parse_compare(l).map_err(Exit::invalid_input))
        .collect()
}

/// Reads a success or failure section.
pub fn read_ops(input: &mut dyn BufRead) -> Result<Vec<rpc::RequestOpT>, Exit> {
    read_section(input)?
        .iter()
        .map(|l| parse_request(l))
        .collect()
}

/// What `Sscanf(rest, "%q) %s %q", &key, &op, &val)` fills in, and how many.
fn scan_compare(rest: &str) -> (usize, String, String, String) {
    let Some((key, after)) = scan_quoted(rest) else {
        return (0, String::new(), String::new(), String::new());
    };
    let Some(after) = after.strip_prefix(')') else {
        return (1, key, String::new(), String::new());
    };
    let after = after.trim_start_matches([' ', '\t']);
    let op_len = after.find(char::is_whitespace).unwrap_or(after.len());
    if op_len == 0 {
        return (1, key, String::new(), String::new());
    }
    let (op, after) = after.split_at(op_len);
    match scan_quoted(after) {
        Some((val, _)) => (3, key, op.to_string(), val),
        None => (2, key, op.to_string(), String::new()),
    }
}

/// Parses one compare line (etcdctl's `parseCompare`).
pub fn parse_compare(line: &str) -> Result<rpc::CompareT, String> {
    let Some((target, rest)) = line.split_once('(') else {
        return Err(format!("malformed comparison: {line}"));
    };
    let (n, key, op, val) = scan_compare(rest);
    if n != 3 {
        return Err(format!(
            "malformed comparison: {line}; got {target}({}) {op} {}",
            quote(key.as_bytes()),
            quote(val.as_bytes())
        ));
    }
    let result = match op.as_str() {
        "=" | "==" => rpc::CompareResult::Equal,
        "!=" => rpc::CompareResult::NotEqual,
        ">" => rpc::CompareResult::Greater,
        "<" => rpc::CompareResult::Less,
        _ => {
            return Err(format!(
                "malformed comparison: {line} (unknown result op {op})"
            ))
        }
    };
    let invalid = |_| format!("invalid txn compare request: {line}");
    let mut cmp = rpc::CompareT {
        result,
        key: Some(key.into_bytes()),
        ..Default::default()
    };
    match target {
        "ver" | "version" => {
            cmp.target = rpc::CompareTarget::Version;
            cmp.version = gofmt::parse_int(&val, 10).map_err(invalid)?;
        }
        "c" | "create" => {
            cmp.target = rpc::CompareTarget::Create;
            cmp.create_revision = gofmt::parse_int(&val, 10).map_err(invalid)?;
        }
        "m" | "mod" => {
            cmp.target = rpc::CompareTarget::Mod;
            cmp.mod_revision = gofmt::parse_int(&val, 10).map_err(invalid)?;
        }
        "val" | "value" => {
            cmp.target = rpc::CompareTarget::Value;
            cmp.value = Some(val.into_bytes());
        }
        "lease" => {
            cmp.target = rpc::CompareTarget::Lease;
            cmp.lease = gofmt::parse_int(&val, 16).map_err(invalid)?;
        }
        _ => {
            return Err(format!(
                "malformed comparison: {line} (unknown target {target})"
            ))
        }
    }
    Ok(cmp)
}

/// Parses one request line (etcdctl's `parseRequestUnion`).
pub fn parse_request(line: &str) -> Result<rpc::RequestOpT, Exit> {
    let args = argify(line).map_err(Exit::invalid_input)?;
    if args.len() < 2 {
        return Err(Exit::invalid_input(format!(
            "invalid txn compare request: {line}"
        )));
    }
    let invalid = || Exit::invalid_input(format!("invalid txn request: {line}"));
    let specs: &[FlagSpec] = match args[0].as_str() {
        "put" => ops::PUT_FLAGS,
        "get" => ops::GET_FLAGS,
        "del" => ops::DEL_FLAGS,
        _ => return Err(invalid()),
    };
    let spec_refs: Vec<&FlagSpec> = specs.iter().collect();
    let p = flags::parse(&spec_refs, &args[1..]).map_err(|_| invalid())?;
    let op = match args[0].as_str() {
        // Inside a txn stdin holds the txn itself, never a value.
        "put" => rpc::RequestOpKindT::PutRequest(Box::new(ops::put_op(&p, || None)?)),
        "get" => rpc::RequestOpKindT::RangeRequest(Box::new(ops::get_op(&p)?)),
        _ => rpc::RequestOpKindT::DeleteRangeRequest(Box::new(ops::del_op(&p)?)),
    };
    Ok(rpc::RequestOpT { op })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_three_sections() {
        let mut input: &[u8] = b"value(\"foo\") = \"bar\"\n\nput foo bar2\n\nput foo bar3\n\n";
        let cmps = read_compares(&mut input).unwrap();
        assert_eq!(cmps.len(), 1);
        assert_eq!(cmps[0].target, rpc::CompareTarget::Value);
        assert_eq!(cmps[0].value.as_deref(), Some(&b"bar"[..]));
        assert_eq!(read_ops(&mut input).unwrap().len(), 1);
        assert_eq!(read_ops(&mut input).unwrap().len(), 1);
    }

    #[test]
    fn missing_final_blank_line_is_eof() {
        let mut input: &[u8] = b"value(\"foo\") = \"bar\"\n\nput foo bar2\n\nput foo bar3\n";
        read_compares(&mut input).unwrap();
        read_ops(&mut input).unwrap();
        assert_eq!(
            read_ops(&mut input).unwrap_err(),
            Exit::invalid_input("EOF")
        );
        let mut empty: &[u8] = b"";
        assert_eq!(
            read_compares(&mut empty).unwrap_err(),
            Exit::invalid_input("EOF")
        );
    }

    #[test]
    fn compare_errors_match_etcdctl() {
        assert_eq!(
            parse_compare("bogus").unwrap_err(),
            "malformed comparison: bogus"
        );
        assert_eq!(
            parse_compare(r#"value("foo) = "bar""#).unwrap_err(),
            r#"malformed comparison: value("foo) = "bar"; got value("foo) = ")  """#
        );
        assert_eq!(
            parse_compare(r#"mod( "foo" )  >  "0""#).unwrap_err(),
            r#"malformed comparison: mod( "foo" )  >  "0"; got mod("foo")  """#
        );
        assert_eq!(
            parse_compare(r#"ver("foo") = "x""#).unwrap_err(),
            r#"invalid txn compare request: ver("foo") = "x""#
        );
        assert_eq!(
            parse_compare(r#"foo("foo") = "1""#).unwrap_err(),
            r#"malformed comparison: foo("foo") = "1" (unknown target foo)"#
        );
    }

    #[test]
    fn compares_cover_every_target() {
        let c = parse_compare(r#"mod("foo") > "0""#).unwrap();
        assert_eq!(
            (c.target, c.result, c.mod_revision),
            (rpc::CompareTarget::Mod, rpc::CompareResult::Greater, 0)
        );
        let c = parse_compare(r#"c("foo") != "3""#).unwrap();
        assert_eq!(
            (c.target, c.result, c.create_revision),
            (rpc::CompareTarget::Create, rpc::CompareResult::NotEqual, 3)
        );
        let c = parse_compare(r#"version("foo") < "100""#).unwrap();
        assert_eq!(
            (c.target, c.result, c.version),
            (rpc::CompareTarget::Version, rpc::CompareResult::Less, 100)
        );
        let c = parse_compare("val(\"foo\") = `bar2`").unwrap();
        assert_eq!(c.value.as_deref(), Some(&b"bar2"[..]));
        let c = parse_compare(r#"lease("foo") = "1f""#).unwrap();
        assert_eq!((c.target, c.lease), (rpc::CompareTarget::Lease, 0x1f));
    }

    #[test]
    fn request_errors_match_etcdctl() {
        assert_eq!(
            parse_request("frob x").unwrap_err(),
            Exit::invalid_input("invalid txn request: frob x")
        );
        assert_eq!(
            parse_request("put").unwrap_err(),
            Exit::invalid_input("invalid txn compare request: put")
        );
        assert_eq!(
            parse_request("get foo --prefix -w json").unwrap_err(),
            Exit::invalid_input("invalid txn request: get foo --prefix -w json")
        );
        assert_eq!(
            parse_request("put a").unwrap_err(),
            Exit::bad_args("put command needs 1 argument and input from stdin or 2 arguments")
        );
    }

    #[test]
    fn requests_carry_their_flags() {
        let op = parse_request("get fo --prefix --keys-only").unwrap();
        let rpc::RequestOpKindT::RangeRequest(r) = op.op else {
            panic!("expected a range")
        };
        assert!(r.keys_only);
        assert_eq!(r.range_end.as_deref(), Some(&b"fp"[..]));
        let op = parse_request(r#"put "a b" "c\nd" --prev-kv"#).unwrap();
        let rpc::RequestOpKindT::PutRequest(p) = op.op else {
            panic!("expected a put")
        };
        assert_eq!(
            (p.key.unwrap(), p.value.unwrap(), p.prev_kv),
            (b"a b".to_vec(), b"c\nd".to_vec(), true)
        );
    }
}
