//! What `member/db` holds: the keyspaces the node keeps in the page file
//! and the encoding of their records. Pure byte codecs, no I/O, shared by
//! the node (which writes them), `cairn-dump` and `cairnctl snapshot`
//! (which read them).
//!
//! # Keyspaces
//!
//! * [`KEYSPACE_KEY`] — the MVCC history, one record per write of a key:
//!   key = revision (8 bytes, **big-endian**, so that byte order is
//!   revision order) followed by the user key; value = a [`Record`].
//!   Within one revision a key is written at most once (a txn may not put
//!   and delete the same key), so `(revision, key)` is unique.
//! * [`KEYSPACE_META`] — the node's own state, named entries:
//!   [`META_APPLIED_INDEX`] (u64: the last log entry whose effects the file
//!   holds), [`META_CURRENT_REVISION`] (i64), [`META_COMPACT_REVISION`]
//!   (i64, -1 before the first compaction), [`META_ALARMS`] (a list of
//!   `(member u64, alarm u8)`), [`META_APPLIED_TERM`] (u64: the Raft term
//!   of the applied entry), [`META_MEMBERS`] (the cluster membership),
//!   [`META_LAYOUT_VERSION`] (u32).
//!
//! Integers in values are little-endian (as everywhere on disk); only the
//! revision prefix of a history key is big-endian, because keys compare as
//! bytes. The byte layout is also in `storage/FORMAT.md` ("Keyspaces").
//!
//! # Example
//!
//! ```
//! use cairn_storage::layout::{decode_record, history_key, split_history_key, Record};
//!
//! let k = history_key(7, b"foo");
//! assert_eq!(split_history_key(&k), Some((7, &b"foo"[..])));
//! let v = Record::Put { create_revision: 5, version: 3, lease: 0, value: b"bar" }.encode();
//! assert_eq!(decode_record(&v).unwrap(), Record::Put { create_revision: 5, version: 3, lease: 0, value: b"bar" });
//! ```

/// The MVCC history keyspace.
pub const KEYSPACE_KEY: &str = "key";
/// The node's metadata keyspace.
pub const KEYSPACE_META: &str = "meta";
/// Leases: key the lease id (i64 LE), value [`encode_lease`]. Created on
/// open when a file from before leases lacks it.
pub const KEYSPACE_LEASE: &str = "lease";

/// Meta entry: u64, the last applied log index the file reflects.
pub const META_APPLIED_INDEX: &[u8] = b"applied_index";
/// Meta entry: i64, the store's current revision.
pub const META_CURRENT_REVISION: &[u8] = b"current_revision";
/// Meta entry: i64, the compaction point (-1 before the first compaction).
pub const META_COMPACT_REVISION: &[u8] = b"compact_revision";
/// Meta entry: raised alarms, `(member u64, alarm u8)` each.
pub const META_ALARMS: &[u8] = b"alarms";
/// Meta entry: u64, the Raft term of the entry at the applied index.
pub const META_APPLIED_TERM: &[u8] = b"applied_term";
/// Meta entry: the cluster membership at the applied index (encoded by
/// the node: `core/src/node/members.rs`).
pub const META_MEMBERS: &[u8] = b"members";
/// Meta entry: u32, [`LAYOUT_VERSION`].
pub const META_LAYOUT_VERSION: &[u8] = b"layout_version";

/// Version of the keyspace layout described here.
pub const LAYOUT_VERSION: u32 = 1;

/// Bytes of the revision prefix of a history key.
pub const REVISION_PREFIX_BYTES: usize = 8;

const TAG_PUT: u8 = 1;
const TAG_TOMBSTONE: u8 = 2;
/// Tag + create revision + version + lease.
const PUT_HEADER_BYTES: usize = 1 + 8 + 8 + 8;

/// The history key of `key` written at `revision` (revision must be >= 0).
pub fn history_key(revision: i64, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(REVISION_PREFIX_BYTES + key.len());
    k.extend_from_slice(&revision_prefix(revision));
    k.extend_from_slice(key);
    k
}

/// The first history key of `revision`: every key of revisions
/// `>= revision` sorts at or after it.
pub fn revision_prefix(revision: i64) -> [u8; REVISION_PREFIX_BYTES] {
    // Revisions are never negative; clamp so that ordering stays sane.
    (revision.max(0) as u64).to_be_bytes()
}

/// Splits a history key into its revision and user key; `None` if it is
/// too short to hold a revision.
pub fn split_history_key(k: &[u8]) -> Option<(i64, &[u8])> {
    let (rev, key) = k.split_at_checked(REVISION_PREFIX_BYTES)?;
    let rev = u64::from_be_bytes(rev.try_into().ok()?);
    Some((i64::try_from(rev).ok()?, key))
}

/// One history record (the value of a history key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// A put: the key's generation started at `create_revision`, this is
    /// its `version`-th put.
    Put {
        /// Revision of the put that created the key's current generation.
        create_revision: i64,
        /// 1 on create, +1 per put.
        version: i64,
        /// Lease id, 0 = none.
        lease: i64,
        /// The value.
        value: &'a [u8],
    },
    /// A delete ended the key's generation at this revision.
    Tombstone,
}

impl Record<'_> {
    /// The record's bytes: tag u8, then for a put create_revision i64,
    /// version i64, lease i64 (little-endian) and the value.
    pub fn encode(&self) -> Vec<u8> {
        match *self {
            Record::Put {
                create_revision,
                version,
                lease,
                value,
            } => {
                let mut v = Vec::with_capacity(PUT_HEADER_BYTES + value.len());
                v.push(TAG_PUT);
                v.extend_from_slice(&create_revision.to_le_bytes());
                v.extend_from_slice(&version.to_le_bytes());
                v.extend_from_slice(&lease.to_le_bytes());
                v.extend_from_slice(value);
                v
            }
            Record::Tombstone => vec![TAG_TOMBSTONE],
        }
    }
}

fn le_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_le_bytes(a)
}

/// Decodes a history record; the error says what is wrong with it.
pub fn decode_record(b: &[u8]) -> Result<Record<'_>, String> {
    match b.first() {
        Some(&TAG_PUT) if b.len() >= PUT_HEADER_BYTES => Ok(Record::Put {
            create_revision: le_i64(b, 1),
            version: le_i64(b, 9),
            lease: le_i64(b, 17),
            value: &b[PUT_HEADER_BYTES..],
        }),
        Some(&TAG_PUT) => Err(format!("put record of {} bytes is truncated", b.len())),
        Some(&TAG_TOMBSTONE) if b.len() == 1 => Ok(Record::Tombstone),
        Some(&TAG_TOMBSTONE) => Err(format!("tombstone record of {} bytes", b.len())),
        Some(t) => Err(format!("unknown record tag {t}")),
        None => Err("empty record".into()),
    }
}

/// Encodes a u64 meta value.
pub fn encode_u64(v: u64) -> [u8; 8] {
    v.to_le_bytes()
}

/// Decodes a u64 meta value.
pub fn decode_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

/// Encodes an i64 meta value.
pub fn encode_i64(v: i64) -> [u8; 8] {
    v.to_le_bytes()
}

/// Decodes an i64 meta value.
pub fn decode_i64(b: &[u8]) -> Option<i64> {
    Some(i64::from_le_bytes(b.try_into().ok()?))
}

/// A lease record: granted TTL i64 LE | checkpointed remaining TTL i64 LE
/// (seconds; 0: none).
pub fn encode_lease(ttl_secs: i64, remaining_ttl_secs: i64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&ttl_secs.to_le_bytes());
    b[8..].copy_from_slice(&remaining_ttl_secs.to_le_bytes());
    b
}

/// (granted TTL, remaining TTL) of a lease record; `None` if it is not 16
/// bytes.
pub fn decode_lease(b: &[u8]) -> Option<(i64, i64)> {
    let b: &[u8; 16] = b.try_into().ok()?;
    let ttl = i64::from_le_bytes(b[..8].try_into().ok()?);
    let remaining = i64::from_le_bytes(b[8..].try_into().ok()?);
    Some((ttl, remaining))
}

/// Encodes the alarm list: 9 bytes per alarm (member u64, alarm u8).
pub fn encode_alarms(alarms: &[(u64, u8)]) -> Vec<u8> {
    let mut v = Vec::with_capacity(alarms.len() * 9);
    for (member, alarm) in alarms {
        v.extend_from_slice(&member.to_le_bytes());
        v.push(*alarm);
    }
    v
}

/// Decodes the alarm list; `None` if the length is not a multiple of 9.
pub fn decode_alarms(b: &[u8]) -> Option<Vec<(u64, u8)>> {
    if !b.len().is_multiple_of(9) {
        return None;
    }
    Some(
        b.chunks_exact(9)
            .map(|c| (le_i64(c, 0) as u64, c[8]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keys_sort_by_revision_then_key() {
        let mut keys = [
            history_key(300, b"a"),
            history_key(2, b"zz"),
            history_key(2, b"b"),
            history_key(1 << 40, b""),
        ];
        keys.sort();
        let split: Vec<_> = keys.iter().map(|k| split_history_key(k).unwrap()).collect();
        assert_eq!(
            split,
            vec![(2, &b"b"[..]), (2, b"zz"), (300, b"a"), (1 << 40, b"")]
        );
        assert_eq!(split_history_key(b"short"), None);
    }

    #[test]
    fn records_round_trip_and_damage_is_an_error() {
        let put = Record::Put {
            create_revision: -1,
            version: i64::MAX,
            lease: 7,
            value: b"",
        };
        assert_eq!(decode_record(&put.encode()).unwrap(), put);
        assert_eq!(
            decode_record(&Record::Tombstone.encode()).unwrap(),
            Record::Tombstone
        );
        assert!(decode_record(&[]).is_err());
        assert!(decode_record(&[1, 2, 3]).is_err());
        assert!(decode_record(&[2, 0]).is_err());
        assert!(decode_record(&[9]).is_err());
    }

    #[test]
    fn alarms_round_trip() {
        let a = vec![(1u64, 1u8), (u64::MAX, 2)];
        assert_eq!(decode_alarms(&encode_alarms(&a)), Some(a));
        assert_eq!(decode_alarms(&[1, 2]), None);
    }
}
