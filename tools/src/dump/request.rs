//! Decoding the data of a WAL Entry record (storage/FORMAT.md "Entry
//! data"): the Raft entry kind, then for a client request its origin and a
//! FlatBuffers `Request` (`schemas/fbs/rpc.fbs`), checked with the verifier
//! before any field is read, then summarised on one line or as JSON.
//!
//! Text, one line per entry:
//!
//! ```text
//! empty                            (a new leader's first entry)
//! member publish                   (a member's name and client URLs)
//! member update                    (a member's new peer URLs)
//! member add-voter id=<hex>        (membership changes)
//! member add-learner id=<hex>
//! member remove id=<hex>
//! put key="foo" value_len=3 [lease=N] [prev_kv] [ignore_value] [ignore_lease]
//! delete key="a" [range_end="b"] [prev_kv]
//! range key="a" [range_end="b"] [limit=N] [revision=N] [count_only] [keys_only]
//! txn compares=1 success=2 failure=0
//! compaction revision=5 [physical]
//! status
//! request type=AlarmRequest        (a body this tool does not summarise)
//! invalid request: <verifier error>
//! ```
//!
//! Keys and range ends are quoted with [`escape_bytes`]. JSON carries the
//! same fields, and for a txn its compares and both branches in full.

use cairn_schemas::rpc;
use serde_json::{json, Map, Value};

use super::escape::{escape_bytes, quoted};

/// An Entry's data, decoded.
pub(crate) enum Decoded {
    /// Not a client request: the leader's empty entry, a membership
    /// change or a member's attributes (described in words).
    Raft(String),
    /// A verified request.
    Request(rpc::RequestBodyT),
    /// Verified, but of a body type this tool does not summarise; the
    /// schema's name for it.
    Other(String),
    /// The FlatBuffers verifier refused the bytes.
    Invalid(String),
}

/// Decodes an Entry record's data: `kind u8` (0 normal, 1 membership
/// change) and the entry; a normal entry is empty (a leader's first), or
/// `1 | origin u64 | seq u64 | request`, `2 | member` (publish) or
/// `3 | origin | seq | id | member` (update).
pub(crate) fn decode(data: &[u8]) -> Decoded {
    match data.split_first() {
        Some((0, [])) => Decoded::Raft("empty".into()),
        Some((0, [1, rest @ ..])) if rest.len() >= 16 => decode_request(&rest[16..]),
        Some((0, [2, ..])) => Decoded::Raft("member publish".into()),
        Some((0, [3, ..])) => Decoded::Raft("member update".into()),
        Some((1, [kind, rest @ ..])) if rest.len() >= 8 => {
            let id = u64::from_le_bytes(rest[..8].try_into().unwrap_or_default());
            let what = match kind {
                1 => "add-voter",
                2 => "add-learner",
                3 => "remove",
                _ => return Decoded::Invalid(format!("unknown membership change {kind}")),
            };
            Decoded::Raft(format!("member {what} id={id:x}"))
        }
        _ => Decoded::Invalid("not a Cairn log entry".into()),
    }
}

/// Verifies and decodes a client request.
fn decode_request(data: &[u8]) -> Decoded {
    let req = match cairn_schemas::verify_request(data) {
        Ok(r) => r,
        Err(e) => return Decoded::Invalid(e.to_string()),
    };
    let body = req.unpack().body;
    match body {
        rpc::RequestBodyT::RangeRequest(_)
        | rpc::RequestBodyT::PutRequest(_)
        | rpc::RequestBodyT::DeleteRangeRequest(_)
        | rpc::RequestBodyT::TxnRequest(_)
        | rpc::RequestBodyT::CompactionRequest(_)
        | rpc::RequestBodyT::StatusRequest(_) => Decoded::Request(body),
        _ => {
            let t = req.body_type();
            let name = t
                .variant_name()
                .map_or_else(|| t.0.to_string(), str::to_string);
            Decoded::Other(name)
        }
    }
}

impl Decoded {
    /// The one-line summary (see the module docs).
    pub(crate) fn summary(&self) -> String {
        match self {
            Decoded::Raft(what) => what.clone(),
            Decoded::Request(body) => body_summary(body),
            Decoded::Other(name) => format!("request type={name}"),
            Decoded::Invalid(e) => format!("invalid request: {e}"),
        }
    }

    /// The same as a JSON object with a `"type"` field.
    pub(crate) fn to_json(&self) -> Value {
        match self {
            Decoded::Raft(what) => json!({ "type": "raft", "entry": what }),
            Decoded::Request(body) => body_json(body),
            Decoded::Other(name) => json!({ "type": "other", "body": name }),
            Decoded::Invalid(e) => json!({ "type": "invalid", "error": e }),
        }
    }
}

fn bytes(v: &Option<Vec<u8>>) -> &[u8] {
    v.as_deref().unwrap_or_default()
}

fn len(v: &Option<Vec<u8>>) -> usize {
    v.as_ref().map_or(0, Vec::len)
}

/// Appends ` name` when `flag` is set.
fn flag(out: &mut String, flag: bool, name: &str) {
    if flag {
        out.push(' ');
        out.push_str(name);
    }
}

/// Appends ` name=value` when `value` is not zero.
fn nonzero(out: &mut String, value: i64, name: &str) {
    if value != 0 {
        out.push_str(&format!(" {name}={value}"));
    }
}

/// Appends ` range_end="..."` when the request names a range.
fn range_end(out: &mut String, end: &Option<Vec<u8>>) {
    if len(end) > 0 {
        out.push_str(&format!(" range_end={}", quoted(bytes(end))));
    }
}

fn body_summary(body: &rpc::RequestBodyT) -> String {
    match body {
        rpc::RequestBodyT::PutRequest(p) => put_summary(p),
        rpc::RequestBodyT::DeleteRangeRequest(d) => delete_summary(d),
        rpc::RequestBodyT::RangeRequest(r) => range_summary(r),
        rpc::RequestBodyT::TxnRequest(t) => format!(
            "txn compares={} success={} failure={}",
            t.compare.as_ref().map_or(0, Vec::len),
            t.success.as_ref().map_or(0, Vec::len),
            t.failure.as_ref().map_or(0, Vec::len),
        ),
        rpc::RequestBodyT::CompactionRequest(c) => {
            let mut s = format!("compaction revision={}", c.revision);
            flag(&mut s, c.physical, "physical");
            s
        }
        rpc::RequestBodyT::StatusRequest(_) => "status".to_string(),
        rpc::RequestBodyT::NONE => "request type=NONE".to_string(),
        _ => "request type=other".to_string(),
    }
}

fn put_summary(p: &rpc::PutRequestT) -> String {
    let mut s = format!(
        "put key={} value_len={}",
        quoted(bytes(&p.key)),
        len(&p.value)
    );
    nonzero(&mut s, p.lease, "lease");
    flag(&mut s, p.prev_kv, "prev_kv");
    flag(&mut s, p.ignore_value, "ignore_value");
    flag(&mut s, p.ignore_lease, "ignore_lease");
    s
}

fn delete_summary(d: &rpc::DeleteRangeRequestT) -> String {
    let mut s = format!("delete key={}", quoted(bytes(&d.key)));
    range_end(&mut s, &d.range_end);
    flag(&mut s, d.prev_kv, "prev_kv");
    s
}

fn range_summary(r: &rpc::RangeRequestT) -> String {
    let mut s = format!("range key={}", quoted(bytes(&r.key)));
    range_end(&mut s, &r.range_end);
    nonzero(&mut s, r.limit, "limit");
    nonzero(&mut s, r.revision, "revision");
    flag(&mut s, r.count_only, "count_only");
    flag(&mut s, r.keys_only, "keys_only");
    s
}

/// Inserts `name: escaped bytes` when present and non-empty.
fn insert_bytes(m: &mut Map<String, Value>, name: &str, v: &Option<Vec<u8>>) {
    if len(v) > 0 {
        m.insert(name.to_string(), Value::from(escape_bytes(bytes(v))));
    }
}

fn body_json(body: &rpc::RequestBodyT) -> Value {
    match body {
        rpc::RequestBodyT::PutRequest(p) => put_json(p),
        rpc::RequestBodyT::DeleteRangeRequest(d) => {
            let mut m = Map::new();
            m.insert("type".into(), "delete".into());
            m.insert("key".into(), escape_bytes(bytes(&d.key)).into());
            insert_bytes(&mut m, "range_end", &d.range_end);
            m.insert("prev_kv".into(), d.prev_kv.into());
            Value::Object(m)
        }
        rpc::RequestBodyT::RangeRequest(r) => range_json(r),
        rpc::RequestBodyT::TxnRequest(t) => txn_json(t),
        rpc::RequestBodyT::CompactionRequest(c) => json!({
            "type": "compaction", "revision": c.revision, "physical": c.physical,
        }),
        rpc::RequestBodyT::StatusRequest(_) => json!({ "type": "status" }),
        rpc::RequestBodyT::NONE => json!({ "type": "other", "body": "NONE" }),
        _ => json!({ "type": "other" }),
    }
}

fn put_json(p: &rpc::PutRequestT) -> Value {
    json!({
        "type": "put",
        "key": escape_bytes(bytes(&p.key)),
        "value_len": len(&p.value),
        "lease": p.lease,
        "prev_kv": p.prev_kv,
        "ignore_value": p.ignore_value,
        "ignore_lease": p.ignore_lease,
    })
}

fn range_json(r: &rpc::RangeRequestT) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), "range".into());
    m.insert("key".into(), escape_bytes(bytes(&r.key)).into());
    insert_bytes(&mut m, "range_end", &r.range_end);
    m.insert("limit".into(), r.limit.into());
    m.insert("revision".into(), r.revision.into());
    m.insert("count_only".into(), r.count_only.into());
    m.insert("keys_only".into(), r.keys_only.into());
    Value::Object(m)
}

fn op_json(op: &rpc::RequestOpT) -> Value {
    match &op.op {
        rpc::RequestOpKindT::PutRequest(p) => put_json(p),
        rpc::RequestOpKindT::DeleteRangeRequest(d) => {
            body_json(&rpc::RequestBodyT::DeleteRangeRequest(d.clone()))
        }
        rpc::RequestOpKindT::RangeRequest(r) => range_json(r),
        // Nesting is bounded by the verifier's depth limit.
        rpc::RequestOpKindT::TxnRequest(t) => txn_json(t),
        _ => json!({ "type": "other" }),
    }
}

fn compare_json(c: &rpc::CompareT) -> Value {
    let name = |s: Option<&str>| s.unwrap_or("unknown").to_ascii_lowercase();
    let mut m = Map::new();
    m.insert("key".into(), escape_bytes(bytes(&c.key)).into());
    insert_bytes(&mut m, "range_end", &c.range_end);
    m.insert("target".into(), name(c.target.variant_name()).into());
    m.insert("result".into(), name(c.result.variant_name()).into());
    let operand: Value = match c.target {
        rpc::CompareTarget::Version => c.version.into(),
        rpc::CompareTarget::Create => c.create_revision.into(),
        rpc::CompareTarget::Mod => c.mod_revision.into(),
        rpc::CompareTarget::Value => escape_bytes(bytes(&c.value)).into(),
        rpc::CompareTarget::Lease => c.lease.into(),
        _ => Value::Null,
    };
    m.insert("operand".into(), operand);
    Value::Object(m)
}

fn txn_json(t: &rpc::TxnRequestT) -> Value {
    let ops = |v: &Option<Vec<rpc::RequestOpT>>| -> Vec<Value> {
        v.iter().flatten().map(op_json).collect()
    };
    let compares: Vec<Value> = t.compare.iter().flatten().map(compare_json).collect();
    json!({
        "type": "txn",
        "compares": compares,
        "success": ops(&t.success),
        "failure": ops(&t.failure),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Entry record data of a client request (normal entry, tag 1,
    /// origin member 7, seq 9).
    fn encode(body: rpc::RequestBodyT) -> Vec<u8> {
        let mut builder = Default::default();
        let req = cairn_net::codec::encode_request(&mut builder, &body).to_vec();
        let mut data = vec![0u8, 1];
        data.extend_from_slice(&7u64.to_le_bytes());
        data.extend_from_slice(&9u64.to_le_bytes());
        data.extend_from_slice(&req);
        data
    }

    fn put(key: &[u8], value: &[u8]) -> rpc::PutRequestT {
        rpc::PutRequestT {
            key: Some(key.to_vec()),
            value: Some(value.to_vec()),
            ..Default::default()
        }
    }

    fn summary(body: rpc::RequestBodyT) -> String {
        decode(&encode(body)).summary()
    }

    #[test]
    fn put_summary_names_key_and_value_length() {
        let s = summary(rpc::RequestBodyT::PutRequest(Box::new(put(b"foo", b"bar"))));
        assert_eq!(s, r#"put key="foo" value_len=3"#);
        let p = rpc::PutRequestT {
            lease: 7,
            prev_kv: true,
            ..put(b"\xffk\n", b"")
        };
        let s = summary(rpc::RequestBodyT::PutRequest(Box::new(p)));
        assert_eq!(s, r#"put key="\xffk\n" value_len=0 lease=7 prev_kv"#);
    }

    #[test]
    fn delete_summary_shows_range_end_only_for_ranges() {
        let d = |end: Option<&[u8]>| {
            summary(rpc::RequestBodyT::DeleteRangeRequest(Box::new(
                rpc::DeleteRangeRequestT {
                    key: Some(b"a".to_vec()),
                    range_end: end.map(<[u8]>::to_vec),
                    prev_kv: false,
                },
            )))
        };
        assert_eq!(d(None), r#"delete key="a""#);
        assert_eq!(d(Some(b"b")), r#"delete key="a" range_end="b""#);
        assert_eq!(d(Some(b"\0")), r#"delete key="a" range_end="\0""#);
    }

    fn sample_txn() -> rpc::TxnRequestT {
        let op = |p| rpc::RequestOpT {
            op: rpc::RequestOpKindT::PutRequest(Box::new(p)),
        };
        rpc::TxnRequestT {
            compare: Some(vec![rpc::CompareT {
                key: Some(b"k".to_vec()),
                target: rpc::CompareTarget::Value,
                result: rpc::CompareResult::NotEqual,
                value: Some(b"v".to_vec()),
                ..Default::default()
            }]),
            success: Some(vec![op(put(b"a", b"1")), op(put(b"b", b"22"))]),
            failure: None,
        }
    }

    #[test]
    fn txn_summary_counts_compares_and_branches() {
        let s = summary(rpc::RequestBodyT::TxnRequest(Box::new(sample_txn())));
        assert_eq!(s, "txn compares=1 success=2 failure=0");
    }

    #[test]
    fn txn_json_carries_compares_and_branches() {
        let v = decode(&encode(rpc::RequestBodyT::TxnRequest(Box::new(
            sample_txn(),
        ))))
        .to_json();
        assert_eq!(v["type"], "txn");
        assert_eq!(
            v["compares"][0],
            json!({"key": "k", "target": "value", "result": "notequal", "operand": "v"})
        );
        assert_eq!(v["success"][1]["key"], "b");
        assert_eq!(v["success"][1]["value_len"], 2);
        assert_eq!(v["failure"], json!([]));
    }

    #[test]
    fn compaction_and_status_summaries() {
        let c = rpc::CompactionRequestT {
            revision: 5,
            physical: true,
        };
        assert_eq!(
            summary(rpc::RequestBodyT::CompactionRequest(Box::new(c))),
            "compaction revision=5 physical"
        );
        assert_eq!(
            summary(rpc::RequestBodyT::StatusRequest(Box::default())),
            "status"
        );
    }

    #[test]
    fn raft_entries_are_named() {
        assert_eq!(decode(&[0]).summary(), "empty");
        let mut cc = vec![1u8, 2];
        cc.extend_from_slice(&0xabcu64.to_le_bytes());
        assert_eq!(decode(&cc).summary(), "member add-learner id=abc");
        assert_eq!(decode(&[0, 2, 1, 2]).summary(), "member publish");
    }

    #[test]
    fn garbage_is_reported_as_invalid_not_read() {
        let mut garbage = vec![0u8, 1];
        garbage.extend_from_slice(&[0; 16]);
        garbage.extend_from_slice(b"\x01\x02garbage");
        let d = decode(&garbage);
        assert!(matches!(d, Decoded::Invalid(_)));
        assert!(
            d.summary().starts_with("invalid request: "),
            "{}",
            d.summary()
        );
        assert_eq!(d.to_json()["type"], "invalid");
    }

    #[test]
    fn non_utf8_keys_round_trip_through_json_as_escapes() {
        let v = decode(&encode(rpc::RequestBodyT::PutRequest(Box::new(put(
            b"k\xfe", b"x",
        )))))
        .to_json();
        assert_eq!(v["key"], "k\\xfe");
        assert!(v.to_string().contains(r#""key":"k\\xfe""#), "{v}");
    }
}
