//! `cairn-dump wal PATH [--from INDEX] [--limit N] [--json]`: print the
//! records of a WAL, one per line, with Entry data decoded as requests.
//!
//! ```text
//! index=2 term=1 kind=entry data_len=48 put key="foo" value_len=3
//! index=900 term=4 kind=snapshot data_len=16 snapshot_index=900 snapshot_term=4
//! ```
//!
//! Records are listed in file order, superseded ones included: an Entry
//! at or below the previous entry's index replaces the log from there on,
//! a `snapshot` marker restarts it after its index (`storage/FORMAT.md`).
//!
//! With `--json`, one object per line:
//! `{"data_len":48,"index":2,"kind":"entry","offset":4160,"request":{...},"segment":0,"term":1}`
//! (`segment` and `offset` locate the record header on disk).
//!
//! Records are printed as their batch checks out; the whole log is always
//! verified (also past `--limit`), and damage ends the listing with the
//! error and exit 1, exactly where the server would refuse to start.

use std::io::Write;
use std::path::Path;

use cairn_storage::wal::{
    self, OwnedRecord, RecordKind, RecordPosition, SnapshotMarker, WalOptions,
};
use serde_json::json;

use super::request;
use super::target::Origin;
use super::{verify, DAMAGED, OK};

/// Which records to print and how.
#[derive(Clone, Debug, Default)]
pub(crate) struct Selection {
    /// Start at the Entry record with this index (HardState records that
    /// follow it are printed too).
    pub from_index: Option<u64>,
    /// Print at most this many records.
    pub limit: Option<u64>,
    /// One JSON object per line.
    pub json: bool,
}

/// Lists the WAL in `dir`; with a segment as `from`, only its records.
pub(crate) fn run(
    dir: &Path,
    from: &Origin,
    sel: &Selection,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let only_seq = match from {
        Origin::Segment { seq, .. } => Some(*seq),
        _ => None,
    };
    let mut started = sel.from_index.is_none();
    let mut printed = 0u64;
    let mut out_closed = false;
    let result = wal::verify_each(dir, &WalOptions::default(), |pos, rec| {
        if !started
            && rec.kind == RecordKind::Entry
            && sel.from_index.is_some_and(|f| rec.index >= f)
        {
            started = true;
        }
        let wanted = started
            && only_seq.is_none_or(|s| s == pos.segment_seq)
            && sel.limit.is_none_or(|l| printed < l);
        if !wanted || out_closed {
            return;
        }
        let line = if sel.json {
            json_line(pos, &rec)
        } else {
            text_line(&rec)
        };
        // A closed pipe (`| head`) ends the output, not the verification.
        match writeln!(out, "{line}") {
            Ok(()) => printed += 1,
            Err(_) => out_closed = true,
        }
    });
    match result {
        Ok(report) => match &report.torn_tail {
            Some(torn) => verify::torn_tail(torn, false, err),
            None => OK,
        },
        Err(e) => {
            let _ = writeln!(err, "cairn-dump: {e}");
            DAMAGED
        }
    }
}

fn kind_name(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Entry => "entry",
        RecordKind::HardState => "hardstate",
        RecordKind::Snapshot => "snapshot",
    }
}

/// The (index, term) a Snapshot marker carries; verification already
/// checked it, so `None` only for a record that is not a marker.
fn snapshot_marker(rec: &OwnedRecord) -> Option<SnapshotMarker> {
    if rec.kind != RecordKind::Snapshot {
        return None;
    }
    SnapshotMarker::decode(rec.index, &rec.data).ok()
}

/// One record as text (see the module docs).
pub(crate) fn text_line(rec: &OwnedRecord) -> String {
    let mut line = format!(
        "index={} term={} kind={} data_len={}",
        rec.index,
        rec.term,
        kind_name(rec.kind),
        rec.data.len()
    );
    if rec.kind == RecordKind::Entry {
        line.push(' ');
        line.push_str(&request::decode(&rec.data).summary());
    }
    if let Some(m) = snapshot_marker(rec) {
        line.push_str(&format!(
            " snapshot_index={} snapshot_term={}",
            m.index, m.term
        ));
    }
    line
}

/// One record as a JSON object on one line.
pub(crate) fn json_line(pos: RecordPosition, rec: &OwnedRecord) -> String {
    let mut v = json!({
        "segment": pos.segment_seq,
        "offset": pos.offset,
        "index": rec.index,
        "term": rec.term,
        "kind": kind_name(rec.kind),
        "data_len": rec.data.len(),
    });
    if rec.kind == RecordKind::Entry {
        v["request"] = request::decode(&rec.data).to_json();
    }
    if let Some(m) = snapshot_marker(rec) {
        v["snapshot"] = json!({ "index": m.index, "term": m.term });
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use cairn_schemas::rpc;

    use super::*;

    fn put_entry(index: u64, key: &[u8]) -> OwnedRecord {
        let body = rpc::RequestBodyT::PutRequest(Box::new(rpc::PutRequestT {
            key: Some(key.to_vec()),
            value: Some(b"xyz".to_vec()),
            ..Default::default()
        }));
        let mut builder = Default::default();
        let req = cairn_net::codec::encode_request(&mut builder, &body).to_vec();
        // A normal entry (0) holding a client request (1) from member 1, seq 1.
        let mut data = vec![0u8, 1];
        data.extend_from_slice(&1u64.to_le_bytes());
        data.extend_from_slice(&1u64.to_le_bytes());
        data.extend_from_slice(&req);
        OwnedRecord {
            kind: RecordKind::Entry,
            term: 1,
            index,
            data,
        }
    }

    #[test]
    fn text_line_shows_header_fields_and_the_request() {
        let r = put_entry(5, b"foo");
        assert_eq!(
            text_line(&r),
            format!(
                "index=5 term=1 kind=entry data_len={} put key=\"foo\" value_len=3",
                r.data.len()
            )
        );
        let hs = OwnedRecord {
            kind: RecordKind::HardState,
            term: 3,
            index: 0,
            data: b"vote".to_vec(),
        };
        assert_eq!(text_line(&hs), "index=0 term=3 kind=hardstate data_len=4");
    }

    #[test]
    fn snapshot_markers_show_their_index_and_term() {
        let m = SnapshotMarker {
            index: 900,
            term: 4,
        };
        let rec = OwnedRecord {
            kind: RecordKind::Snapshot,
            term: 4,
            index: 900,
            data: m.encode().to_vec(),
        };
        assert_eq!(
            text_line(&rec),
            "index=900 term=4 kind=snapshot data_len=16 snapshot_index=900 snapshot_term=4"
        );
        let pos = RecordPosition {
            segment_seq: 1,
            offset: 4160,
        };
        let v: serde_json::Value = serde_json::from_str(&json_line(pos, &rec)).unwrap();
        assert_eq!(v["kind"], "snapshot");
        assert_eq!(v["snapshot"]["index"], 900);
        assert_eq!(v["snapshot"]["term"], 4);
    }

    #[test]
    fn json_line_is_one_object_with_position_and_request() {
        let r = put_entry(9, b"k\xff");
        let pos = RecordPosition {
            segment_seq: 2,
            offset: 4160,
        };
        let line = json_line(pos, &r);
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["segment"], 2);
        assert_eq!(v["offset"], 4160);
        assert_eq!(v["index"], 9);
        assert_eq!(v["kind"], "entry");
        assert_eq!(v["request"]["type"], "put");
        assert_eq!(v["request"]["key"], "k\\xff");
    }
}
