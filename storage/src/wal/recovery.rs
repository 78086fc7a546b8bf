//! Reading a WAL directory: validate every segment, return the records,
//! truncate a torn tail, refuse corruption before the tail.
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
//!
//! One read-only scan ([`scan_log`]) makes all these decisions. Two callers
//! share it:
//!
//! * [`recover`] (at start) removes leftover `*.wal.tmp` files, zeroes the
//!   torn tail the scan found, and returns the records.
//! * [`verify`] / [`verify_each`] (offline, `cairn-dump verify`) never
//!   write: they report what `recover` would accept, and the torn tail it
//!   would zero, without changing a byte.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use super::effective::{effective_log, EffectiveLog, LogEnd, SnapshotMarker};
use super::hard_state::{find_hard_state, Find};
use super::record::{
    align_up, decode_batch_header, decode_records, decode_segment_header, OwnedRecord, RecordKind,
    SegmentHeader, BATCH_HEADER_BYTES, BLOCK_SIZE_BYTES, RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES,
};
use super::segment::{self, SegmentName};
use super::{SegmentTail, TailPosition, WalOptions};
use crate::WalError;

/// What [`recover`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// Every record of every intact batch, in file order, superseded ones
    /// included ([`Recovered::effective_log`] drops those).
    pub records: Vec<OwnedRecord>,
    /// Where the writer continues.
    pub tail: TailPosition,
    /// Set when a torn batch was found and zeroed.
    pub torn_tail: Option<TornTail>,
}

impl Recovered {
    /// The log in effect: last Snapshot marker, entries in index order
    /// without the superseded ones, last HardState (see [`effective_log`]).
    pub fn effective_log(&self) -> EffectiveLog<'_> {
        effective_log(&self.records)
    }
}

/// A torn last batch: zeroed by [`recover`], reported by [`verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The segment holding it.
    pub path: PathBuf,
    /// Where the torn batch began (the new tail offset).
    pub offset: u64,
    /// How many bytes from `offset` were zeroed ([`recover`]) or would be
    /// ([`verify`]): up to the last non-zero byte, rounded up to a block.
    pub zeroed_bytes: u64,
    /// Why the batch did not check out.
    pub reason: String,
}

/// What [`verify`] found: a log that [`recover`] would accept as it is,
/// or after zeroing [`VerifyReport::torn_tail`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Every segment, in `seq` order.
    pub segments: Vec<SegmentReport>,
    /// Records of every intact batch (Entry, HardState, Snapshot).
    pub record_count: u64,
    /// Entry records among them.
    pub entry_count: u64,
    /// Index of the first Entry record, `None` if there is none.
    pub first_index: Option<u64>,
    /// Effective last index (see [`TailPosition::last_index`]), `None` if
    /// the log has no Entry and no Snapshot marker.
    pub last_index: Option<u64>,
    /// The torn last batch `recover` would zero, if any.
    pub torn_tail: Option<TornTail>,
    /// Leftover `*.wal.tmp` files (an unfinished next segment) that
    /// `recover` would remove; harmless.
    pub tmp_files: Vec<PathBuf>,
}

/// One segment as [`verify`] saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentReport {
    /// The segment file.
    pub path: PathBuf,
    /// Segment sequence number.
    pub seq: u64,
    /// First index recorded in the segment name and header.
    pub first_index: u64,
    /// Size of the segment file (from its header).
    pub size_bytes: u64,
    /// Bytes of intact batches (headers, records, padding): from the end of
    /// block 0 to the end of the last intact batch.
    pub data_bytes: u64,
    /// Intact batches.
    pub batch_count: u64,
    /// Records in them.
    pub record_count: u64,
}

/// Where a record sits on disk (handed to the [`verify_each`] visitor).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordPosition {
    /// Sequence number of the segment holding it.
    pub segment_seq: u64,
    /// Byte offset of the record header in the segment file.
    pub offset: u64,
}

/// Receives each record of an intact batch, in log order.
type Visit<'v> = &'v mut dyn FnMut(RecordPosition, OwnedRecord);

/// Log state carried from batch to batch and segment to segment.
struct Scan<'v> {
    first_index: Option<u64>,
    /// Effective end of the log read so far.
    end: LogEnd,
    entry_count: u64,
    record_count: u64,
    /// Records of the batch being checked. They reach `visit` only once the
    /// whole batch checked out, so no caller ever sees part of a bad batch.
    batch: Vec<OwnedRecord>,
    visit: Visit<'v>,
    /// The largest batch a writer makes: how far past its data the last
    /// segment can hold anything (FORMAT.md, F4).
    max_batch_bytes: u64,
}

/// How much more of the last segment is read at a time.
pub(crate) const READ_STEP_BYTES: usize = 1 << 20;

/// A segment's bytes, read as far as needed: a segment with a successor up
/// to where its data ends, the last one up to the batch being checked plus
/// one largest batch, so that a start does not read the preallocated
/// zeros of a 64 MiB segment.
struct SegmentBytes {
    file: std::fs::File,
    len: u64,
    buf: Vec<u8>,
}

impl SegmentBytes {
    fn open(path: &Path) -> std::io::Result<SegmentBytes> {
        let file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        Ok(SegmentBytes {
            file,
            len,
            buf: Vec::new(),
        })
    }

    /// Holds at least the bytes below `upto` (or the whole file).
    fn ensure(&mut self, upto: u64) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let want = upto.min(self.len) as usize;
        let have = self.buf.len();
        if want <= have {
            return Ok(());
        }
        let want = want.max((have + READ_STEP_BYTES).min(self.len as usize));
        self.buf.resize(want, 0);
        self.file.read_exact_at(&mut self.buf[have..], have as u64)
    }
}

/// One segment as scanned.
struct SegmentScan {
    tail: SegmentTail,
    batch_count: u64,
    record_count: u64,
}

/// What the read-only scan of a whole log found.
struct LogScan {
    segments: Vec<SegmentScan>,
    /// How many segments at the start were skipped as absorbed.
    first_read: usize,
    first_index: Option<u64>,
    end: LogEnd,
    /// The index before the first segment read when absorbed segments were
    /// skipped: a writer must not rewrite at or below it.
    skipped_through: Option<u64>,
    entry_count: u64,
    record_count: u64,
    /// Only ever in the last segment.
    torn_tail: Option<TornTail>,
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
    recover_after(dir, opts, None)
}

/// [`recover`] for a log whose entries through `absorbed_through` are held
/// elsewhere (the page file): the oldest segments whose every entry still
/// in effect is at or below it (known from the next segment's first index)
/// are not read, and their records are not returned. The last segment is
/// always read. One exception keeps the Raft term and vote: if the
/// segments read hold no HardState, the last HardState of the skipped
/// segments is returned first in `records`.
pub fn recover_after(
    dir: &Path,
    opts: &WalOptions,
    absorbed_through: Option<u64>,
) -> Result<Recovered, WalError> {
    opts.validate()?;
    let empty = Recovered {
        records: Vec::new(),
        tail: TailPosition {
            segment: None,
            last_index: None,
            rewrite_floor: None,
        },
        torn_tail: None,
    };
    if !dir.exists() {
        return Ok(empty);
    }
    let listing = segment::list(dir)?;
    for tmp in listing.tmp_files.iter().chain(&listing.discarded) {
        tracing::debug!(path = %tmp.display(), "removing unfinished WAL segment");
        discard(tmp)?;
    }
    let mut records = Vec::new();
    let log = scan_log(
        &listing.segments,
        absorbed_through,
        opts.max_batch_bytes,
        &mut |_, r| records.push(r),
    )?;
    if let Some(torn) = &log.torn_tail {
        zero_torn_tail(torn)?;
    }
    if log.first_read > 0 && !records.iter().any(|r| r.kind == RecordKind::HardState) {
        if let Some(hs) = last_skipped_hard_state(&listing.segments[..log.first_read + 1])? {
            // Earlier in the file than every record read: order is kept.
            records.insert(0, hs);
        }
    }
    let Some(last) = log.segments.last() else {
        return Ok(empty);
    };
    Ok(Recovered {
        records,
        tail: TailPosition {
            segment: Some(last.tail.clone()),
            last_index: log.end.last,
            // A writer must refuse what a later full scan would refuse: a
            // marker in a skipped segment is at or below skipped_through.
            rewrite_floor: log.end.floor.max(log.skipped_through),
        },
        torn_tail: log.torn_tail,
    })
}

/// Removes an unfinished segment without making the start wait for it:
/// unlinking a preallocated 64 MiB file costs tens of milliseconds on ext4,
/// and stalls the start's reads of the file system meanwhile, so it happens
/// [`DISCARD_DELAY`] later on a thread of its own. The file is renamed
/// first (at once), so a writer preparing the same name cannot lose its
/// new file to the removal; a leftover is removed at the next start.
fn discard(tmp: &Path) -> Result<(), WalError> {
    let is_discard = tmp.extension().is_some_and(|e| e == "discard");
    let target = if is_discard {
        tmp.to_path_buf()
    } else {
        let mut name = tmp.as_os_str().to_owned();
        name.push(".discard");
        let target = std::path::PathBuf::from(name);
        std::fs::rename(tmp, &target).map_err(|e| WalError::io("renaming", tmp, e))?;
        target
    };
    let remove = move |delay: std::time::Duration| {
        std::thread::sleep(delay);
        if let Err(e) = std::fs::remove_file(&target) {
            tracing::warn!(path = %target.display(), error = %e, "cannot remove a discarded WAL segment");
        }
    };
    let remover = remove.clone();
    if std::thread::Builder::new()
        .name("wal-discard".into())
        .spawn(move || remove(DISCARD_DELAY))
        .is_err()
    {
        remover(std::time::Duration::ZERO);
    }
    Ok(())
}

/// How long after a start an unfinished segment is removed.
const DISCARD_DELAY: std::time::Duration = std::time::Duration::from_secs(2);

/// The last HardState among the skipped segments `segments[..n-1]` (the
/// last one given is the first segment read), newest segment first.
fn last_skipped_hard_state(segments: &[SegmentName]) -> Result<Option<OwnedRecord>, WalError> {
    for pair in segments.windows(2).rev() {
        let data_end = prev_end_offset(&pair[1])?;
        if let Some(hs) = find_hard_state(&pair[0].path, Some(data_end), Find::Last)? {
            return Ok(Some(hs));
        }
    }
    Ok(None)
}

/// Checks the WAL in `dir` exactly as [`recover`] would, without writing
/// anything: a torn tail is reported, not zeroed, and `*.wal.tmp` files are
/// listed, not removed. Corruption is the same [`WalError::Corrupt`] that
/// `recover` returns. A missing or empty directory is an empty log.
pub fn verify(dir: &Path, opts: &WalOptions) -> Result<VerifyReport, WalError> {
    verify_each(dir, opts, |_, _| {})
}

/// [`verify`], handing every record of every intact batch to `visit` in log
/// order, with its position. Records arrive as their batch checks out, so
/// on an error `visit` has seen every record before the bad batch.
pub fn verify_each(
    dir: &Path,
    opts: &WalOptions,
    mut visit: impl FnMut(RecordPosition, OwnedRecord),
) -> Result<VerifyReport, WalError> {
    opts.validate()?;
    if !dir.exists() {
        return Ok(VerifyReport::default());
    }
    let listing = segment::list(dir)?;
    let log = scan_log(&listing.segments, None, opts.max_batch_bytes, &mut visit)?;
    let segments = log
        .segments
        .into_iter()
        .map(|s| SegmentReport {
            data_bytes: s.tail.offset - BLOCK_SIZE_BYTES,
            path: s.tail.path,
            seq: s.tail.seq,
            first_index: s.tail.first_index,
            size_bytes: s.tail.size_bytes,
            batch_count: s.batch_count,
            record_count: s.record_count,
        })
        .collect();
    Ok(VerifyReport {
        segments,
        record_count: log.record_count,
        entry_count: log.entry_count,
        first_index: log.first_index,
        last_index: log.end.last,
        torn_tail: log.torn_tail,
        tmp_files: listing.tmp_files,
    })
}

/// The one scan behind [`recover`] and [`verify`]: reads `segments` (sorted
/// by seq) and decides corruption versus torn tail. Never writes.
fn scan_log(
    segments: &[SegmentName],
    skip_through: Option<u64>,
    max_batch_bytes: u64,
    visit: Visit<'_>,
) -> Result<LogScan, WalError> {
    for pair in segments.windows(2) {
        if pair[1].seq != pair[0].seq + 1 {
            return Err(WalError::corrupt(
                &pair[1].path,
                0,
                format!("segment sequence gap: expected seq {:#x}", pair[0].seq + 1),
            ));
        }
    }
    let mut scan = Scan {
        first_index: None,
        end: LogEnd::default(),
        entry_count: 0,
        record_count: 0,
        batch: Vec::new(),
        visit,
        max_batch_bytes,
    };
    // Absorbed segments: the longest prefix whose every segment has a
    // successor starting at or below `skip_through + 1`. Every entry still
    // in effect above `skip_through` was written after that successor
    // began (FORMAT.md, "Recovery after the page file"), so nothing needed
    // is lost. Only a prefix: first indexes are not monotonic once the log
    // is rewritten, and skipping a segment between two that are read could
    // hide a rewrite of the records read before it.
    let first_read = skip_through.map_or(0, |skip| {
        segments
            .windows(2)
            .take_while(|p| p[1].first_index > 0 && p[1].first_index <= skip.saturating_add(1))
            .count()
    });
    // Segments before the first one read may also have been released: its
    // header says where the log stood when it began (0: a log that began
    // there), so the log continues from there even if no segment read
    // holds an entry.
    if let Some(first) = segments.get(first_read).filter(|s| s.first_index > 0) {
        scan.end.last = Some(first.first_index - 1);
    }
    let skipped_through = if first_read > 0 { scan.end.last } else { None };
    let mut scanned = Vec::with_capacity(segments.len() - first_read);
    let mut torn_tail = None;
    for (i, name) in segments.iter().enumerate().skip(first_read) {
        let data_end = match segments.get(i + 1) {
            Some(next) => Some(prev_end_offset(next)?),
            None => None,
        };
        let (segment, torn) = scan_segment(name, data_end, &mut scan)?;
        assert!(
            torn.is_none() || data_end.is_none(),
            "invariant: only the last segment can have a torn tail"
        );
        scanned.push(segment);
        torn_tail = torn;
    }
    Ok(LogScan {
        segments: scanned,
        first_read,
        first_index: scan.first_index,
        end: scan.end,
        skipped_through,
        entry_count: scan.entry_count,
        record_count: scan.record_count,
        torn_tail,
    })
}

fn read_header(
    name: &SegmentName,
    bytes: &[u8],
    file_len: u64,
    scan: &Scan,
) -> Result<SegmentHeader, WalError> {
    let corrupt = |reason: String| WalError::corrupt(&name.path, 0, reason);
    let h = decode_segment_header(bytes).map_err(|r| corrupt(r.to_string()))?;
    if h.seq.get() != name.seq || h.first_index.get() != name.first_index {
        return Err(corrupt(
            "segment header does not match the file name".into(),
        ));
    }
    let size = h.segment_size.get();
    if size % BLOCK_SIZE_BYTES != 0 || size < 2 * BLOCK_SIZE_BYTES || file_len != size {
        return Err(corrupt(format!(
            "segment is {file_len} bytes, header says {size}"
        )));
    }
    // The writer names a segment after the effective last index + 1 of
    // the durable log when it activates it (0 for an empty log).
    let expected = scan.end.next_index_or_zero();
    if h.first_index.get() != expected {
        let last = scan
            .end
            .last
            .map_or_else(|| "none (empty log)".to_string(), |l| l.to_string());
        return Err(corrupt(format!(
            "segment first index {} does not follow last index {last}",
            h.first_index.get()
        )));
    }
    Ok(h)
}

/// Where the data of the segment before `next` ends, from `next`'s header.
pub(crate) fn prev_end_offset(next: &SegmentName) -> Result<u64, WalError> {
    let mut buf = [0u8; SEGMENT_HEADER_BYTES];
    let f = std::fs::File::open(&next.path).map_err(|e| WalError::io("opening", &next.path, e))?;
    f.read_exact_at(&mut buf, 0)
        .map_err(|e| WalError::io("reading", &next.path, e))?;
    let h = decode_segment_header(&buf).map_err(|r| WalError::corrupt(&next.path, 0, r))?;
    Ok(h.prev_end_offset.get())
}

/// Scans one segment; returns it and, for the last segment, a torn batch
/// (not yet zeroed). `data_end` is where the data ends as recorded by the
/// next segment's header; `None` for the last segment.
fn scan_segment(
    name: &SegmentName,
    data_end: Option<u64>,
    scan: &mut Scan,
) -> Result<(SegmentScan, Option<TornTail>), WalError> {
    let io = |e| WalError::io("reading", &name.path, e);
    let mut seg = SegmentBytes::open(&name.path).map_err(io)?;
    let file_len = seg.len;
    // A segment with a successor needs reading only up to where its data
    // ends (the rest is preallocated zeros). The last one is read as far
    // as its batches go plus one largest batch: telling a torn tail from
    // corruption looks past the bad spot, but nothing can lie further.
    seg.ensure(data_end.unwrap_or(0).max(BLOCK_SIZE_BYTES))
        .map_err(io)?;
    let h = read_header(name, &seg.buf, file_len, scan)?;
    let (seq, salt) = (h.seq.get(), h.salt.get());
    let records_before = scan.record_count;
    let mut offset = BLOCK_SIZE_BYTES;
    let mut batch_count = 0;
    let mut torn = None;
    let limit = data_end.unwrap_or(file_len);
    while offset < limit {
        if data_end.is_none() {
            seg.ensure(offset + scan.max_batch_bytes + BLOCK_SIZE_BYTES)
                .map_err(io)?;
        }
        let bytes = &seg.buf;
        match read_batch(bytes, offset, seq, salt, scan) {
            Ok(padded) => {
                offset += padded;
                batch_count += 1;
            }
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
                if let Some(later) = later_valid_batch(bytes, offset + BLOCK_SIZE_BYTES, seq, salt)
                {
                    return Err(WalError::corrupt(
                        &name.path,
                        bad,
                        format!("{reason} (a valid batch follows at offset {later})"),
                    ));
                }
                torn = find_torn_tail(&name.path, bytes, offset, reason);
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
    let segment = SegmentScan {
        tail,
        batch_count,
        record_count: scan.record_count - records_before,
    };
    Ok((segment, torn))
}

/// Validates the batch at `offset`; on success hands its records to
/// `scan.visit` and returns its padded length.
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
    scan.batch.clear();
    decode_records(
        payload,
        h.record_count.get(),
        salt,
        h.payload_checksum.get(),
        &mut scan.batch,
    )
    .map_err(|(at, reason)| unreadable(payload_start + at, reason))?;
    scan.end = check_indexes(&scan.batch, h.first_index.get(), payload_start, scan.end)?;
    let mut at = payload_start;
    for r in scan.batch.drain(..) {
        if r.kind == RecordKind::Entry {
            scan.first_index.get_or_insert(r.index);
            scan.entry_count += 1;
        }
        scan.record_count += 1;
        let position = RecordPosition {
            segment_seq: seq,
            offset: at,
        };
        at += (RECORD_HEADER_BYTES + r.data.len()) as u64;
        (scan.visit)(position, r);
    }
    Ok(align_up(payload_end) - offset)
}

/// The batch must start where the durable log ended, and each record must
/// obey the index rule (`super::effective`): an Entry at most one past the
/// effective last index and above the last Snapshot marker, a Snapshot
/// marker whose data names its own index. Returns the log's end after the
/// batch.
fn check_indexes(
    records: &[OwnedRecord],
    batch_first_index: u64,
    payload_start: u64,
    mut end: LogEnd,
) -> Result<LogEnd, BadBatch> {
    let expected = end.next_index_or_zero();
    if batch_first_index != expected {
        let last = end
            .last
            .map_or_else(|| "none (empty log)".to_string(), |l| l.to_string());
        let reason =
            format!("batch first index {batch_first_index} does not follow last index {last}");
        return Err(BadBatch::Inconsistent {
            offset: payload_start - BATCH_HEADER_BYTES as u64,
            reason,
        });
    }
    let mut at = payload_start;
    for r in records {
        let fault = match r.kind {
            RecordKind::Entry => end.check_entry(r.index).err().map(|f| f.describe()),
            RecordKind::Snapshot => SnapshotMarker::decode(r.index, &r.data)
                .err()
                .map(str::to_string),
            RecordKind::HardState => None,
        };
        if let Some(reason) = fault {
            return Err(BadBatch::Inconsistent { offset: at, reason });
        }
        end.apply(r.kind, r.index);
        at += (RECORD_HEADER_BYTES + r.data.len()) as u64;
    }
    Ok(end)
}

/// Offset of the first valid batch header at a block boundary in
/// `[from, end)`, if any.
fn later_valid_batch(bytes: &[u8], from: u64, seq: u64, salt: u64) -> Option<u64> {
    (from..bytes.len() as u64)
        .step_by(BLOCK_SIZE_BYTES as usize)
        .find(|&off| decode_batch_header(&bytes[off as usize..], seq, off, salt).is_ok())
}

/// The torn tail from `offset` on, where nothing valid follows: `None` if
/// the rest of the segment is zero (the normal clean end of a segment).
fn find_torn_tail(path: &Path, bytes: &[u8], offset: u64, reason: &str) -> Option<TornTail> {
    let rest = &bytes[offset as usize..];
    let last_nonzero = rest.iter().rposition(|&b| b != 0)?;
    Some(TornTail {
        path: path.to_path_buf(),
        offset,
        zeroed_bytes: align_up(last_nonzero as u64 + 1).min(rest.len() as u64),
        reason: reason.to_string(),
    })
}

/// Zeroes the torn tail and syncs, so the next start sees a clean end.
fn zero_torn_tail(torn: &TornTail) -> Result<(), WalError> {
    let TornTail {
        path,
        offset,
        zeroed_bytes,
        reason,
    } = torn;
    tracing::warn!(path = %path.display(), offset, zeroed_bytes, reason, "WAL torn tail truncated");
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| WalError::io("opening", path, e))?;
    f.write_all_at(&vec![0u8; *zeroed_bytes as usize], *offset)
        .map_err(|e| WalError::io("zeroing torn tail", path, e))?;
    f.sync_data()
        .map_err(|e| WalError::io("fdatasync", path, e))
}
