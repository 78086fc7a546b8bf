//! Reading a WAL directory at start: validate every segment, return the
//! records, truncate a torn tail, refuse corruption before the tail.
//!
//! Torn tail versus corruption: batches are written strictly one after the
//! other, each only after the previous one's fdatasync returned, and a
//! segment gets its final name only after the previous segment's last batch
//! was synced; its header records where that data ended. So a segment that
//! has a successor must hold valid batches exactly up to that offset: any
//! bad spot there is corruption. In the last segment, if a valid batch
//! header exists at a later block, the bad spot had been durable once:
//! corruption. Otherwise the bad spot is the batch that was in flight at the
//! crash (never acknowledged): it is zeroed and the writer continues there.
//! See `storage/FORMAT.md`.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use super::record::{
    align_up, decode_batch_header, decode_records, decode_segment_header, OwnedRecord, RecordKind,
    SegmentHeader, BATCH_HEADER_BYTES, BLOCK_SIZE_BYTES, SEGMENT_HEADER_BYTES,
};
use super::segment::{self, SegmentName};
use super::{SegmentTail, TailPosition, WalOptions};
use crate::WalError;

/// What [`recover`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// Every record of every intact batch, in log order.
    pub records: Vec<OwnedRecord>,
    /// Where the writer continues.
    pub tail: TailPosition,
    /// Set when a torn batch was found and zeroed.
    pub torn_tail: Option<TornTail>,
}

/// A torn last batch that recovery zeroed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The segment holding it.
    pub path: PathBuf,
    /// Where the torn batch began (the new tail offset).
    pub offset: u64,
    /// How many bytes were zeroed from `offset`.
    pub zeroed_bytes: u64,
    /// Why the batch did not check out.
    pub reason: String,
}

/// Log state carried from batch to batch and segment to segment.
struct Scan {
    records: Vec<OwnedRecord>,
    last_index: Option<u64>,
}

/// A batch that did not check out.
enum BadBatch {
    /// Checksums or structure fail: torn or corrupt, decided by position.
    Unreadable { offset: u64, reason: &'static str },
    /// Checksums pass but the content breaks a rule: always corruption.
    Inconsistent { offset: u64, reason: String },
}

/// Reads the WAL in `dir` (see the module docs). A missing or empty
/// directory is an empty log. Leftover `*.wal.tmp` files are removed.
pub fn recover(dir: &Path, opts: &WalOptions) -> Result<Recovered, WalError> {
    opts.validate()?;
    let empty = Recovered {
        records: Vec::new(),
        tail: TailPosition {
            segment: None,
            last_index: None,
        },
        torn_tail: None,
    };
    if !dir.exists() {
        return Ok(empty);
    }
    let listing = segment::list(dir)?;
    for tmp in &listing.tmp_files {
        tracing::debug!(path = %tmp.display(), "removing unfinished WAL segment");
        std::fs::remove_file(tmp).map_err(|e| WalError::io("removing", tmp, e))?;
    }
    for pair in listing.segments.windows(2) {
        if pair[1].seq != pair[0].seq + 1 {
            return Err(WalError::corrupt(
                &pair[1].path,
                0,
                format!("segment sequence gap: expected seq {:#x}", pair[0].seq + 1),
            ));
        }
    }
    let mut scan = Scan {
        records: Vec::new(),
        last_index: None,
    };
    let mut tail = None;
    let mut torn_tail = None;
    for (i, name) in listing.segments.iter().enumerate() {
        let data_end = match listing.segments.get(i + 1) {
            Some(next) => Some(prev_end_offset(next)?),
            None => None,
        };
        let (seg_tail, torn) = scan_segment(name, data_end, &mut scan)?;
        tail = Some(seg_tail);
        torn_tail = torn;
    }
    let Some(segment) = tail else {
        return Ok(empty);
    };
    Ok(Recovered {
        records: scan.records,
        tail: TailPosition {
            segment: Some(segment),
            last_index: scan.last_index,
        },
        torn_tail,
    })
}

fn read_header(name: &SegmentName, bytes: &[u8], scan: &Scan) -> Result<SegmentHeader, WalError> {
    let corrupt = |reason: String| WalError::corrupt(&name.path, 0, reason);
    let h = decode_segment_header(bytes).map_err(|r| corrupt(r.to_string()))?;
    if h.seq.get() != name.seq || h.first_index.get() != name.first_index {
        return Err(corrupt(
            "segment header does not match the file name".into(),
        ));
    }
    let size = h.segment_size.get();
    if size % BLOCK_SIZE_BYTES != 0 || size < 2 * BLOCK_SIZE_BYTES || bytes.len() as u64 != size {
        return Err(corrupt(format!(
            "segment is {} bytes, header says {size}",
            bytes.len()
        )));
    }
    if let Some(last) = scan.last_index {
        if h.first_index.get() != last + 1 {
            return Err(corrupt(format!(
                "segment first index {} does not follow last index {last}",
                h.first_index.get()
            )));
        }
    }
    Ok(h)
}

/// Where the data of the segment before `next` ends, from `next`'s header.
fn prev_end_offset(next: &SegmentName) -> Result<u64, WalError> {
    let mut buf = [0u8; SEGMENT_HEADER_BYTES];
    let f = std::fs::File::open(&next.path).map_err(|e| WalError::io("opening", &next.path, e))?;
    f.read_exact_at(&mut buf, 0)
        .map_err(|e| WalError::io("reading", &next.path, e))?;
    let h = decode_segment_header(&buf).map_err(|r| WalError::corrupt(&next.path, 0, r))?;
    Ok(h.prev_end_offset.get())
}

/// Scans one segment; returns its tail and, for the last segment, a torn
/// batch that was zeroed. `data_end` is where the data ends as recorded by
/// the next segment's header; `None` for the last segment.
fn scan_segment(
    name: &SegmentName,
    data_end: Option<u64>,
    scan: &mut Scan,
) -> Result<(SegmentTail, Option<TornTail>), WalError> {
    let bytes = std::fs::read(&name.path).map_err(|e| WalError::io("reading", &name.path, e))?;
    let h = read_header(name, &bytes, scan)?;
    let (seq, salt) = (h.seq.get(), h.salt.get());
    let mut offset = BLOCK_SIZE_BYTES;
    let mut torn = None;
    let limit = data_end.unwrap_or(bytes.len() as u64);
    while offset < limit {
        match read_batch(&bytes, offset, seq, salt, scan) {
            Ok(padded) => offset += padded,
            Err(BadBatch::Inconsistent { offset, reason }) => {
                return Err(WalError::corrupt(&name.path, offset, reason))
            }
            Err(BadBatch::Unreadable {
                offset: bad,
                reason,
            }) => {
                if let Some(end) = data_end {
                    return Err(WalError::corrupt(
                        &name.path,
                        bad,
                        format!("{reason} (the next segment says data runs to offset {end})"),
                    ));
                }
                if let Some(later) = later_valid_batch(&bytes, offset + BLOCK_SIZE_BYTES, seq, salt)
                {
                    return Err(WalError::corrupt(
                        &name.path,
                        bad,
                        format!("{reason} (a valid batch follows at offset {later})"),
                    ));
                }
                torn = truncate_torn(&name.path, &bytes, offset, reason)?;
                break;
            }
        }
    }
    if data_end.is_some_and(|end| offset != end) {
        return Err(WalError::corrupt(
            &name.path,
            offset,
            format!(
                "data ends at offset {offset}, the next segment says {}",
                limit
            ),
        ));
    }
    let tail = SegmentTail {
        path: name.path.clone(),
        seq,
        first_index: h.first_index.get(),
        size_bytes: h.segment_size.get(),
        salt,
        offset,
    };
    Ok((tail, torn))
}

/// Validates the batch at `offset`; on success appends its records to
/// `scan` and returns its padded length.
fn read_batch(
    bytes: &[u8],
    offset: u64,
    seq: u64,
    salt: u64,
    scan: &mut Scan,
) -> Result<u64, BadBatch> {
    let unreadable = |offset: u64, reason| BadBatch::Unreadable { offset, reason };
    let h = decode_batch_header(&bytes[offset as usize..], seq, offset, salt)
        .map_err(|r| unreadable(offset, r))?;
    let payload_start = offset + BATCH_HEADER_BYTES as u64;
    let payload_end = payload_start + u64::from(h.payload_bytes.get());
    if align_up(payload_end) > bytes.len() as u64 {
        return Err(unreadable(offset, "batch runs past the segment end"));
    }
    let payload = &bytes[payload_start as usize..payload_end as usize];
    let first_new = scan.records.len();
    if let Err((at, reason)) = decode_records(
        payload,
        h.record_count.get(),
        salt,
        h.payload_checksum.get(),
        &mut scan.records,
    ) {
        scan.records.truncate(first_new);
        return Err(unreadable(payload_start + at, reason));
    }
    if let Err(e) = check_indexes(
        &scan.records[first_new..],
        h.first_index.get(),
        payload_start,
        scan.last_index,
    ) {
        scan.records.truncate(first_new);
        return Err(e);
    }
    if let Some(last) = scan.records[first_new..]
        .iter()
        .rev()
        .find(|r| r.kind == RecordKind::Entry)
    {
        scan.last_index = Some(last.index);
    }
    Ok(align_up(payload_end) - offset)
}

/// Entry indexes must continue the log by exactly one each.
fn check_indexes(
    records: &[OwnedRecord],
    batch_first_index: u64,
    payload_start: u64,
    mut last: Option<u64>,
) -> Result<(), BadBatch> {
    if let Some(last) = last {
        if batch_first_index != last + 1 {
            let reason =
                format!("batch first index {batch_first_index} does not follow last index {last}");
            return Err(BadBatch::Inconsistent {
                offset: payload_start - BATCH_HEADER_BYTES as u64,
                reason,
            });
        }
    }
    let mut at = payload_start;
    for r in records {
        if r.kind == RecordKind::Entry {
            if let Some(prev) = last {
                if r.index != prev + 1 {
                    let reason = format!(
                        "entry index {} does not follow {prev} (gap or regression)",
                        r.index
                    );
                    return Err(BadBatch::Inconsistent { offset: at, reason });
                }
            }
            last = Some(r.index);
        }
        at += (super::RECORD_HEADER_BYTES + r.data.len()) as u64;
    }
    Ok(())
}

/// Offset of the first valid batch header at a block boundary in
/// `[from, end)`, if any.
fn later_valid_batch(bytes: &[u8], from: u64, seq: u64, salt: u64) -> Option<u64> {
    (from..bytes.len() as u64)
        .step_by(BLOCK_SIZE_BYTES as usize)
        .find(|&off| decode_batch_header(&bytes[off as usize..], seq, off, salt).is_ok())
}

/// Zeroes everything non-zero from `offset` on (nothing valid follows it)
/// and syncs. All zeros is the normal clean end of a segment.
fn truncate_torn(
    path: &Path,
    bytes: &[u8],
    offset: u64,
    reason: &str,
) -> Result<Option<TornTail>, WalError> {
    let rest = &bytes[offset as usize..];
    let Some(last_nonzero) = rest.iter().rposition(|&b| b != 0) else {
        return Ok(None);
    };
    let zeroed_bytes = align_up(last_nonzero as u64 + 1).min(rest.len() as u64);
    tracing::warn!(path = %path.display(), offset, zeroed_bytes, reason, "WAL torn tail truncated");
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| WalError::io("opening", path, e))?;
    f.write_all_at(&vec![0u8; zeroed_bytes as usize], offset)
        .map_err(|e| WalError::io("zeroing torn tail", path, e))?;
    f.sync_data()
        .map_err(|e| WalError::io("fdatasync", path, e))?;
    Ok(Some(TornTail {
        path: path.to_path_buf(),
        offset,
        zeroed_bytes,
        reason: reason.to_string(),
    }))
}
