//! Opening a page file (`member/db`) or a snapshot read-only, and decoding
//! what the node keeps in it (`cairn_storage::layout`): the meta entries and
//! the history records. Shared by `cairn-dump verify`, `cairn-dump db` and
//! `cairnctl snapshot status`.

use std::path::{Path, PathBuf};

use cairn_storage::btree::{BtreeError, Db, Options, ReadTxn};
use cairn_storage::layout::{self, Record};
use cairn_storage::snapshot::{self, SnapshotError, SnapshotInfo};
use serde_json::{json, Value};

use super::escape::{escape_bytes, quoted};

/// Which kind of file an [`Image`] was opened from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// A page file (`member/db` or a copy of it).
    PageFile,
    /// A snapshot: its trailer, checked (with the image hash when the
    /// caller asked for it).
    Snapshot(SnapshotInfo),
}

/// A page file or snapshot image, opened read-only.
pub(crate) struct Image {
    pub path: PathBuf,
    pub source: Source,
    pub db: Db,
}

/// Why an image could not be opened: the snapshot container or the page
/// file inside it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    PageFile(#[from] BtreeError),
}

/// Opens the snapshot at `path` (its trailer checked, and with
/// `full_check` its image hash too) and the page file inside it.
pub(crate) fn open_snapshot(path: &Path, full_check: bool) -> Result<Image, OpenError> {
    let info = if full_check {
        snapshot::check(path)?
    } else {
        snapshot::read_trailer(path)?
    };
    let db = Db::open_read_only(path, Some(info.image_len_bytes), Options::default())?;
    Ok(Image {
        path: path.to_path_buf(),
        source: Source::Snapshot(info),
        db,
    })
}

/// Opens the page file at `path`.
pub(crate) fn open_page_file(path: &Path) -> Result<Image, OpenError> {
    let db = Db::open_read_only(path, None, Options::default())?;
    Ok(Image {
        path: path.to_path_buf(),
        source: Source::PageFile,
        db,
    })
}

/// The meta entries the node writes, decoded; `None` where an entry is
/// missing (or there is no meta keyspace at all).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct MetaSummary {
    pub applied_index: Option<u64>,
    pub current_revision: Option<i64>,
    pub compact_revision: Option<i64>,
    pub layout_version: Option<u32>,
}

impl MetaSummary {
    /// Reads the summary; a present entry that does not decode is an error.
    pub fn read(r: &ReadTxn) -> Result<MetaSummary, String> {
        let mut m = MetaSummary::default();
        let keyspaces = r.keyspaces().map_err(|e| e.to_string())?;
        if !keyspaces.iter().any(|k| k == layout::KEYSPACE_META) {
            return Ok(m);
        }
        if let Some(MetaValue::U64(v)) = meta_entry(r, layout::META_APPLIED_INDEX)? {
            m.applied_index = Some(v);
        }
        if let Some(MetaValue::I64(v)) = meta_entry(r, layout::META_CURRENT_REVISION)? {
            m.current_revision = Some(v);
        }
        if let Some(MetaValue::I64(v)) = meta_entry(r, layout::META_COMPACT_REVISION)? {
            m.compact_revision = Some(v);
        }
        if let Some(MetaValue::U32(v)) = meta_entry(r, layout::META_LAYOUT_VERSION)? {
            m.layout_version = Some(v);
        }
        Ok(m)
    }

    /// `applied_index=42 current_revision=10 compact_revision=-1 layout_version=1`
    /// (`-` for a missing entry).
    pub fn line(&self) -> String {
        fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
            v.as_ref().map_or_else(|| "-".to_string(), T::to_string)
        }
        format!(
            "applied_index={} current_revision={} compact_revision={} layout_version={}",
            opt(&self.applied_index),
            opt(&self.current_revision),
            opt(&self.compact_revision),
            opt(&self.layout_version)
        )
    }
}

/// The meta entry `name`, decoded; a value that does not decode is an error.
fn meta_entry(r: &ReadTxn, name: &[u8]) -> Result<Option<MetaValue>, String> {
    match r.get(layout::KEYSPACE_META, name) {
        Ok(None) => Ok(None),
        Ok(Some(v)) => match decode_meta(name, &v) {
            MetaValue::Invalid(why) => Err(format!("meta entry {}: {why}", escape_bytes(name))),
            decoded => Ok(Some(decoded)),
        },
        Err(e) => Err(e.to_string()),
    }
}

/// A meta entry's value, decoded by its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum MetaValue {
    U64(u64),
    I64(i64),
    U32(u32),
    Alarms(Vec<(u64, u8)>),
    /// A name this tool does not know: shown raw.
    Unknown,
    /// A known name whose value does not decode: why.
    Invalid(String),
}

/// Decodes the meta entry `name`.
pub(crate) fn decode_meta(name: &[u8], v: &[u8]) -> MetaValue {
    let bad = |what: &str| MetaValue::Invalid(format!("{} bytes, expected {what}", v.len()));
    match name {
        n if n == layout::META_APPLIED_INDEX => {
            layout::decode_u64(v).map_or_else(|| bad("8 (u64)"), MetaValue::U64)
        }
        n if n == layout::META_CURRENT_REVISION || n == layout::META_COMPACT_REVISION => {
            layout::decode_i64(v).map_or_else(|| bad("8 (i64)"), MetaValue::I64)
        }
        n if n == layout::META_LAYOUT_VERSION => <[u8; 4]>::try_from(v)
            .map(|b| MetaValue::U32(u32::from_le_bytes(b)))
            .unwrap_or_else(|_| bad("4 (u32)")),
        n if n == layout::META_ALARMS => {
            layout::decode_alarms(v).map_or_else(|| bad("a multiple of 9"), MetaValue::Alarms)
        }
        _ => MetaValue::Unknown,
    }
}

/// etcd's `AlarmType` name of an alarm code.
pub(crate) fn alarm_name(code: u8) -> String {
    match code {
        0 => "NONE".into(),
        1 => "NOSPACE".into(),
        2 => "CORRUPT".into(),
        n => format!("UNKNOWN({n})"),
    }
}

/// Values longer than this are cut in text output (JSON carries them whole).
const TEXT_VALUE_MAX_BYTES: usize = 100;

/// `value="..."`, cut after [`TEXT_VALUE_MAX_BYTES`] with a note of the rest.
fn text_value(v: &[u8]) -> String {
    if v.len() <= TEXT_VALUE_MAX_BYTES {
        return format!("value={}", quoted(v));
    }
    format!(
        "value={}...(+{} bytes)",
        quoted(&v[..TEXT_VALUE_MAX_BYTES]),
        v.len() - TEXT_VALUE_MAX_BYTES
    )
}

/// Inserts `v` as `"<name>"` when it is printable UTF-8, else as
/// `"<name>_base64"`: either way nothing is lost.
fn insert_bytes(m: &mut serde_json::Map<String, Value>, name: &str, v: &[u8]) {
    use base64::Engine as _;
    match std::str::from_utf8(v) {
        Ok(s) if !s.chars().any(char::is_control) => {
            m.insert(name.into(), s.into());
        }
        _ => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(v);
            m.insert(format!("{name}_base64"), b64.into());
        }
    }
}

/// One meta entry as a text line (`meta applied_index=42`).
pub(crate) fn meta_text(name: &[u8], v: &[u8]) -> String {
    let value = match decode_meta(name, v) {
        MetaValue::U64(n) => n.to_string(),
        MetaValue::I64(n) => n.to_string(),
        MetaValue::U32(n) => n.to_string(),
        MetaValue::Alarms(a) if a.is_empty() => "none".into(),
        MetaValue::Alarms(a) => a
            .iter()
            .map(|(member, alarm)| format!("{member:x}:{}", alarm_name(*alarm)))
            .collect::<Vec<_>>()
            .join(","),
        MetaValue::Unknown => format!("(unknown entry) {}", quoted(v)),
        MetaValue::Invalid(why) => format!("(invalid: {why}) {}", quoted(v)),
    };
    format!("meta {}={value}", escape_bytes(name))
}

/// One meta entry as a JSON object.
pub(crate) fn meta_json(name: &[u8], v: &[u8]) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("keyspace".into(), layout::KEYSPACE_META.into());
    m.insert("name".into(), escape_bytes(name).into());
    match decode_meta(name, v) {
        MetaValue::U64(n) => {
            m.insert("value".into(), n.into());
        }
        MetaValue::I64(n) => {
            m.insert("value".into(), n.into());
        }
        MetaValue::U32(n) => {
            m.insert("value".into(), n.into());
        }
        MetaValue::Alarms(a) => {
            let list: Vec<Value> = a
                .iter()
                .map(|(member, alarm)| {
                    json!({"member": member, "alarm": alarm_name(*alarm), "alarm_code": alarm})
                })
                .collect();
            m.insert("value".into(), list.into());
        }
        MetaValue::Unknown => insert_bytes(&mut m, "raw", v),
        MetaValue::Invalid(why) => {
            m.insert("error".into(), why.into());
            insert_bytes(&mut m, "raw", v);
        }
    }
    Value::Object(m)
}

/// One history record as a text line
/// (`key rev=2 key="foo" put create_revision=2 version=1 lease=0 value_len=3 value="bar"`).
/// `Err` (with the line to print) when the record does not decode.
pub(crate) fn history_text(k: &[u8], v: &[u8]) -> Result<String, String> {
    let Some((rev, key)) = layout::split_history_key(k) else {
        return Err(format!(
            "key raw_key={} invalid: history key shorter than its revision",
            quoted(k)
        ));
    };
    let head = format!("key rev={rev} key={}", quoted(key));
    match layout::decode_record(v) {
        Ok(Record::Put {
            create_revision,
            version,
            lease,
            value,
        }) => Ok(format!(
            "{head} put create_revision={create_revision} version={version} lease={lease} \
             value_len={} {}",
            value.len(),
            text_value(value)
        )),
        Ok(Record::Tombstone) => Ok(format!("{head} tombstone")),
        Err(why) => Err(format!("{head} invalid: {why}")),
    }
}

/// One history record as a JSON object; `Err` (with the object to print)
/// when it does not decode.
pub(crate) fn history_json(k: &[u8], v: &[u8]) -> Result<Value, Value> {
    let mut m = serde_json::Map::new();
    m.insert("keyspace".into(), layout::KEYSPACE_KEY.into());
    let Some((rev, key)) = layout::split_history_key(k) else {
        insert_bytes(&mut m, "raw_key", k);
        m.insert(
            "error".into(),
            "history key shorter than its revision".into(),
        );
        return Err(Value::Object(m));
    };
    m.insert("revision".into(), rev.into());
    m.insert("key".into(), escape_bytes(key).into());
    match layout::decode_record(v) {
        Ok(Record::Put {
            create_revision,
            version,
            lease,
            value,
        }) => {
            m.insert("type".into(), "put".into());
            m.insert("create_revision".into(), create_revision.into());
            m.insert("version".into(), version.into());
            m.insert("lease".into(), lease.into());
            m.insert("value_len".into(), value.len().into());
            insert_bytes(&mut m, "value", value);
            Ok(Value::Object(m))
        }
        Ok(Record::Tombstone) => {
            m.insert("type".into(), "tombstone".into());
            Ok(Value::Object(m))
        }
        Err(why) => {
            m.insert("error".into(), why.into());
            insert_bytes(&mut m, "raw", v);
            Err(Value::Object(m))
        }
    }
}

/// An entry of a keyspace this tool does not know, as text.
pub(crate) fn other_text(keyspace: &str, k: &[u8], v: &[u8]) -> String {
    format!(
        "{} key={} value_len={} {}",
        escape_bytes(keyspace.as_bytes()),
        quoted(k),
        v.len(),
        text_value(v)
    )
}

/// An entry of a keyspace this tool does not know, as JSON.
pub(crate) fn other_json(keyspace: &str, k: &[u8], v: &[u8]) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("keyspace".into(), keyspace.into());
    m.insert("key".into(), escape_bytes(k).into());
    m.insert("value_len".into(), v.len().into());
    insert_bytes(&mut m, "value", v);
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_entries_decode_by_name() {
        let n = layout::encode_u64(42);
        assert_eq!(
            meta_text(layout::META_APPLIED_INDEX, &n),
            "meta applied_index=42"
        );
        assert_eq!(
            meta_text(layout::META_COMPACT_REVISION, &layout::encode_i64(-1)),
            "meta compact_revision=-1"
        );
        assert_eq!(
            meta_text(layout::META_LAYOUT_VERSION, &1u32.to_le_bytes()),
            "meta layout_version=1"
        );
        let alarms = layout::encode_alarms(&[(0x8e9e, 1), (2, 2)]);
        assert_eq!(
            meta_text(layout::META_ALARMS, &alarms),
            "meta alarms=8e9e:NOSPACE,2:CORRUPT"
        );
        assert_eq!(meta_text(layout::META_ALARMS, &[]), "meta alarms=none");
        assert_eq!(
            meta_text(layout::META_CURRENT_REVISION, b"abc"),
            "meta current_revision=(invalid: 3 bytes, expected 8 (i64)) \"abc\""
        );
        let j = meta_json(layout::META_ALARMS, &alarms);
        assert_eq!(j["value"][0]["alarm"], "NOSPACE");
        assert_eq!(j["value"][0]["member"], 0x8e9e);
        assert_eq!(meta_json(b"x", b"\x00")["raw_base64"], "AA==");
    }

    #[test]
    fn history_records_decode_with_values_printable_or_base64() {
        let put = Record::Put {
            create_revision: 2,
            version: 3,
            lease: 0,
            value: b"bar",
        };
        let k = layout::history_key(5, b"foo");
        assert_eq!(
            history_text(&k, &put.encode()).unwrap(),
            "key rev=5 key=\"foo\" put create_revision=2 version=3 lease=0 value_len=3 value=\"bar\""
        );
        assert_eq!(
            history_text(&layout::history_key(6, b"foo"), &Record::Tombstone.encode()).unwrap(),
            "key rev=6 key=\"foo\" tombstone"
        );
        let bin = Record::Put {
            create_revision: 2,
            version: 1,
            lease: 7,
            value: b"\xff\x00",
        };
        let j = history_json(&layout::history_key(7, b"k\xff"), &bin.encode()).unwrap();
        assert_eq!(j["key"], "k\\xff");
        assert_eq!(j["value_base64"], "/wA=");
        assert!(j.get("value").is_none());
        assert_eq!(j["lease"], 7);
        assert!(history_text(b"short", b"").is_err());
        assert!(history_json(&k, &[9]).is_err());
    }

    #[test]
    fn long_values_are_cut_in_text_only() {
        let v = vec![b'a'; 150];
        let put = Record::Put {
            create_revision: 1,
            version: 1,
            lease: 0,
            value: &v,
        };
        let k = layout::history_key(1, b"big");
        let line = history_text(&k, &put.encode()).unwrap();
        assert!(line.ends_with(&format!("value=\"{}\"...(+50 bytes)", "a".repeat(100))));
        let j = history_json(&k, &put.encode()).unwrap();
        assert_eq!(j["value"].as_str().unwrap().len(), 150);
    }
}
