//! The WAL byte format: segment header, batch header, record header, their
//! encoding, decoding and checksums. No I/O here.
//!
//! All integers are little-endian with explicit widths (`zerocopy`
//! little-endian types, alignment 1, so views work at any offset). The
//! layout is drawn in `storage/FORMAT.md`.

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Every batch starts at a multiple of this and is padded to it; block 0 of a
/// segment holds the segment header. 4096 is a multiple of every O_DIRECT
/// logical block size we accept.
pub const BLOCK_SIZE_BYTES: u64 = 4096;
/// On-disk format version written in every segment header.
pub const FORMAT_VERSION: u32 = 1;
/// Size of the segment header (block 0 of every segment) on disk.
pub const SEGMENT_HEADER_BYTES: usize = 64;
/// Size of the batch header that opens every batch.
pub const BATCH_HEADER_BYTES: usize = 64;
/// Size of the header in front of every record's data.
pub const RECORD_HEADER_BYTES: usize = 32;

const SEGMENT_MAGIC: [u8; 8] = *b"CAIRNWAL";
const BATCH_MAGIC: [u8; 8] = *b"CAIRNBAT";
/// Bytes of each header covered by its own checksum (all but the last u64).
const SEGMENT_CHECKED_BYTES: usize = SEGMENT_HEADER_BYTES - 8;
const BATCH_CHECKED_BYTES: usize = BATCH_HEADER_BYTES - 8;
const RECORD_CHECKED_BYTES: usize = RECORD_HEADER_BYTES - 8;

/// What a record holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RecordKind {
    /// A Raft log entry. Its index is at most the effective last index + 1:
    /// one at or below it replaces the entries from that index on.
    Entry = 1,
    /// Raft HardState / metadata (term, vote, commit); its index is free.
    HardState = 2,
    /// The log resumes after a snapshot: data is the snapshot's index and
    /// term (u64 LE each, see [`super::SnapshotMarker`]), the header index
    /// is the snapshot index. Every earlier Entry is superseded.
    Snapshot = 3,
}

impl RecordKind {
    /// Decodes the on-disk kind byte.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(RecordKind::Entry),
            2 => Some(RecordKind::HardState),
            3 => Some(RecordKind::Snapshot),
            _ => None,
        }
    }
}

/// A record read back from the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedRecord {
    /// Entry, HardState or Snapshot marker.
    pub kind: RecordKind,
    /// Raft term.
    pub term: u64,
    /// Raft index (see [`RecordKind`] for the rule per kind).
    pub index: u64,
    /// The caller's bytes.
    pub data: Vec<u8>,
}

/// Block 0 of every segment (the rest of the block is zero).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Clone, Copy, Debug)]
#[repr(C)]
pub(crate) struct SegmentHeader {
    pub magic: [u8; 8],
    pub version: U32,
    pub block_size: U32,
    pub seq: U64,
    pub first_index: U64,
    pub segment_size: U64,
    /// Random per segment; seeds the batch checksums so that bytes a client
    /// wrote inside a record can never pass for a batch header.
    pub salt: U64,
    /// Offset where the previous segment's last batch ended (0 for a first
    /// segment): tells recovery where that segment's data stops.
    pub prev_end_offset: U64,
    /// xxh3-64 of bytes 0..56.
    pub checksum: U64,
}

/// Opens every batch, at a block-aligned offset.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Clone, Copy, Debug)]
#[repr(C)]
pub(crate) struct BatchHeader {
    pub magic: [u8; 8],
    pub seq: U64,
    /// Byte offset of this header in its segment (catches misplaced writes).
    pub offset: U64,
    /// Effective last index + 1 when the batch was started (0 = log was
    /// empty). The batch's first Entry may carry a lower index (a rewrite).
    pub first_index: U64,
    /// Bytes of records after this header, without padding.
    pub payload_bytes: U32,
    pub record_count: U32,
    /// xxh3-64 of the payload, seeded with the segment salt.
    pub payload_checksum: U64,
    pub reserved: [u8; 8],
    /// xxh3-64 of bytes 0..56, seeded with the segment salt.
    pub checksum: U64,
}

/// In front of every record's data.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Clone, Copy, Debug)]
#[repr(C)]
pub(crate) struct RecordHeader {
    pub kind: u8,
    pub reserved: [u8; 3],
    pub data_bytes: U32,
    pub term: U64,
    pub index: U64,
    /// xxh3-64 of the data, seeded with xxh3-64 of header bytes 0..24.
    pub checksum: U64,
}

const _: () = assert!(std::mem::size_of::<SegmentHeader>() == SEGMENT_HEADER_BYTES);
const _: () = assert!(std::mem::size_of::<BatchHeader>() == BATCH_HEADER_BYTES);
const _: () = assert!(std::mem::size_of::<RecordHeader>() == RECORD_HEADER_BYTES);

/// Rounds `v` up to the next block boundary.
pub(crate) fn align_up(v: u64) -> u64 {
    v.div_ceil(BLOCK_SIZE_BYTES) * BLOCK_SIZE_BYTES
}

/// The identity of a segment as written into its header.
pub(crate) struct SegmentIdentity {
    pub seq: u64,
    pub first_index: u64,
    pub segment_size: u64,
    pub salt: u64,
    pub prev_end_offset: u64,
}

pub(crate) fn encode_segment_header(id: &SegmentIdentity) -> [u8; SEGMENT_HEADER_BYTES] {
    let mut h = SegmentHeader {
        magic: SEGMENT_MAGIC,
        version: FORMAT_VERSION.into(),
        block_size: (BLOCK_SIZE_BYTES as u32).into(),
        seq: id.seq.into(),
        first_index: id.first_index.into(),
        segment_size: id.segment_size.into(),
        salt: id.salt.into(),
        prev_end_offset: id.prev_end_offset.into(),
        checksum: 0.into(),
    };
    h.checksum = xxh3_64(&h.as_bytes()[..SEGMENT_CHECKED_BYTES]).into();
    let mut out = [0u8; SEGMENT_HEADER_BYTES];
    out.copy_from_slice(h.as_bytes());
    out
}

pub(crate) fn decode_segment_header(bytes: &[u8]) -> Result<SegmentHeader, &'static str> {
    let (h, _) =
        SegmentHeader::read_from_prefix(bytes).map_err(|_| "segment shorter than its header")?;
    if h.magic != SEGMENT_MAGIC {
        return Err("bad segment magic");
    }
    if h.checksum.get() != xxh3_64(&h.as_bytes()[..SEGMENT_CHECKED_BYTES]) {
        return Err("segment header checksum mismatch");
    }
    if h.version.get() != FORMAT_VERSION {
        return Err("unsupported segment format version");
    }
    if u64::from(h.block_size.get()) != BLOCK_SIZE_BYTES {
        return Err("unsupported segment block size");
    }
    Ok(h)
}

/// Appends one record (header + data) to `out`.
pub(crate) fn encode_record(
    out: &mut Vec<u8>,
    kind: RecordKind,
    term: u64,
    index: u64,
    data: &[u8],
) {
    let data_bytes = u32::try_from(data.len())
        .expect("invariant: record length bounded by max_batch_bytes <= u32::MAX");
    let mut h = RecordHeader {
        kind: kind as u8,
        reserved: [0; 3],
        data_bytes: data_bytes.into(),
        term: term.into(),
        index: index.into(),
        checksum: 0.into(),
    };
    h.checksum = record_checksum(&h, data).into();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
}

fn record_checksum(h: &RecordHeader, data: &[u8]) -> u64 {
    xxh3_64_with_seed(data, xxh3_64(&h.as_bytes()[..RECORD_CHECKED_BYTES]))
}

/// Fields the writer fills into a batch header when it seals a batch.
pub(crate) struct BatchSeal {
    pub seq: u64,
    pub offset: u64,
    pub first_index: u64,
    pub record_count: u32,
    pub salt: u64,
}

/// Writes the batch header into `batch[..BATCH_HEADER_BYTES]`; the records
/// follow it in `batch[BATCH_HEADER_BYTES..]`.
pub(crate) fn seal_batch(batch: &mut [u8], seal: &BatchSeal) {
    let payload = &batch[BATCH_HEADER_BYTES..];
    let payload_bytes = u32::try_from(payload.len())
        .expect("invariant: batch bounded by max_batch_bytes <= u32::MAX");
    let mut h = BatchHeader {
        magic: BATCH_MAGIC,
        seq: seal.seq.into(),
        offset: seal.offset.into(),
        first_index: seal.first_index.into(),
        payload_bytes: payload_bytes.into(),
        record_count: seal.record_count.into(),
        payload_checksum: xxh3_64_with_seed(payload, seal.salt).into(),
        reserved: [0; 8],
        checksum: 0.into(),
    };
    h.checksum = xxh3_64_with_seed(&h.as_bytes()[..BATCH_CHECKED_BYTES], seal.salt).into();
    batch[..BATCH_HEADER_BYTES].copy_from_slice(h.as_bytes());
}

/// Checks the batch header at the start of `bytes`, written for segment
/// `seq` at `offset`. Only self-consistency: the payload is checked by
/// [`decode_records`].
pub(crate) fn decode_batch_header(
    bytes: &[u8],
    seq: u64,
    offset: u64,
    salt: u64,
) -> Result<BatchHeader, &'static str> {
    let (h, _) =
        BatchHeader::read_from_prefix(bytes).map_err(|_| "batch header past segment end")?;
    if h.magic != BATCH_MAGIC {
        return Err("no batch header (bad magic)");
    }
    if h.checksum.get() != xxh3_64_with_seed(&h.as_bytes()[..BATCH_CHECKED_BYTES], salt) {
        return Err("batch header checksum mismatch");
    }
    if h.seq.get() != seq || h.offset.get() != offset {
        return Err("batch header belongs to another segment or offset");
    }
    Ok(h)
}

/// Where a payload stopped checking out: offset relative to the payload
/// start, and why.
pub(crate) type PayloadFault = (u64, &'static str);

/// Decodes and checksums the `count` records in `payload` (the bytes after a
/// batch header, exactly `payload_bytes` long). Records are appended to
/// `out`; on a fault `out` may hold a partial batch and the caller drops it.
pub(crate) fn decode_records(
    payload: &[u8],
    count: u32,
    salt: u64,
    payload_checksum: u64,
    out: &mut Vec<OwnedRecord>,
) -> Result<(), PayloadFault> {
    let mut pos = 0usize;
    for _ in 0..count {
        let (h, rest) = RecordHeader::read_from_prefix(&payload[pos..])
            .map_err(|_| (pos as u64, "record header past batch end"))?;
        let data_bytes = h.data_bytes.get() as usize;
        let data = rest
            .get(..data_bytes)
            .ok_or((pos as u64, "record data past batch end"))?;
        if h.checksum.get() != record_checksum(&h, data) {
            return Err((pos as u64, "record checksum mismatch"));
        }
        let kind = RecordKind::from_u8(h.kind).ok_or((pos as u64, "unknown record kind"))?;
        out.push(OwnedRecord {
            kind,
            term: h.term.get(),
            index: h.index.get(),
            data: data.to_vec(),
        });
        pos += RECORD_HEADER_BYTES + data_bytes;
    }
    if pos != payload.len() {
        return Err((
            pos as u64,
            "batch payload length does not match its records",
        ));
    }
    if xxh3_64_with_seed(payload, salt) != payload_checksum {
        return Err((0, "batch payload checksum mismatch"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(records: &[(RecordKind, u64, u64, &[u8])], salt: u64) -> Vec<u8> {
        let mut buf = vec![0u8; BATCH_HEADER_BYTES];
        for (k, t, i, d) in records {
            encode_record(&mut buf, *k, *t, *i, d);
        }
        let seal = BatchSeal {
            seq: 3,
            offset: 8192,
            first_index: 7,
            record_count: records.len() as u32,
            salt,
        };
        seal_batch(&mut buf, &seal);
        buf
    }

    #[test]
    fn batch_round_trips() {
        let b = batch(
            &[
                (RecordKind::Entry, 2, 7, b"hello"),
                (RecordKind::HardState, 2, 7, b""),
            ],
            99,
        );
        let h = decode_batch_header(&b, 3, 8192, 99).unwrap();
        assert_eq!(h.first_index.get(), 7);
        let mut out = Vec::new();
        decode_records(
            &b[BATCH_HEADER_BYTES..],
            h.record_count.get(),
            99,
            h.payload_checksum.get(),
            &mut out,
        )
        .unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0],
            OwnedRecord {
                kind: RecordKind::Entry,
                term: 2,
                index: 7,
                data: b"hello".to_vec()
            }
        );
        assert_eq!(out[1].kind, RecordKind::HardState);
    }

    #[test]
    fn batch_header_checksum_depends_on_salt_and_position() {
        let b = batch(&[(RecordKind::Entry, 1, 7, b"x")], 5);
        assert!(decode_batch_header(&b, 3, 8192, 6).is_err());
        assert!(decode_batch_header(&b, 3, 4096, 5).is_err());
        assert!(decode_batch_header(&b, 4, 8192, 5).is_err());
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let b = batch(&[(RecordKind::Entry, 1, 7, b"abcdef")], 5);
        for i in 0..b.len() {
            for bit in 0..8 {
                let mut c = b.clone();
                c[i] ^= 1 << bit;
                let ok = decode_batch_header(&c, 3, 8192, 5).and_then(|h| {
                    let mut out = Vec::new();
                    decode_records(
                        &c[BATCH_HEADER_BYTES..],
                        h.record_count.get(),
                        5,
                        h.payload_checksum.get(),
                        &mut out,
                    )
                    .map_err(|e| e.1)
                });
                assert!(ok.is_err(), "flip of byte {i} bit {bit} went unnoticed");
            }
        }
    }

    #[test]
    fn segment_header_round_trips_and_rejects_flips() {
        let h = encode_segment_header(&SegmentIdentity {
            seq: 1,
            first_index: 42,
            segment_size: 1 << 20,
            salt: 77,
            prev_end_offset: 8192,
        });
        let d = decode_segment_header(&h).unwrap();
        assert_eq!(
            (
                d.seq.get(),
                d.first_index.get(),
                d.segment_size.get(),
                d.salt.get(),
                d.prev_end_offset.get()
            ),
            (1, 42, 1 << 20, 77, 8192)
        );
        let mut bad = h;
        bad[20] ^= 1;
        assert!(decode_segment_header(&bad).is_err());
    }
}
