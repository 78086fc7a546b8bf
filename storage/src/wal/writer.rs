//! The glommio WAL writer: group commit into block-aligned batches, one
//! write + one fdatasync per flush, rollover into a segment that was
//! zero-filled in the background.
//!
//! Pre-creation policy: right after a segment becomes active, a task on the
//! writer's executor creates and zero-fills the next one (`{seq}.wal.tmp`).
//! Rollover awaits that task, which has normally long finished, so a batch
//! never waits for a 64 MiB zero-fill unless segments fill faster than they
//! can be zeroed.

use std::path::{Path, PathBuf};

use glommio::task::JoinHandle;

use super::effective::{IndexFault, LogEnd, SnapshotMarker};
use super::file::{IoMode, SegmentFile};
use super::record::{
    align_up, encode_record, seal_batch, BatchSeal, RecordKind, BATCH_HEADER_BYTES,
    BLOCK_SIZE_BYTES, RECORD_HEADER_BYTES,
};
use super::segment::{self, segment_file_name, ActiveSegment, PreparedSegment};
use super::{TailPosition, WalOptions};
use crate::WalError;

/// What one [`Wal::flush`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlushStats {
    /// Records made durable.
    pub records: u32,
    /// Bytes of header and records, before padding.
    pub batch_bytes: u64,
    /// Bytes written (padded to whole blocks); 0 if nothing was pending.
    pub written_bytes: u64,
    /// Whether the batch went into a new segment.
    pub rolled: bool,
    /// Segment that holds the batch.
    pub segment_seq: u64,
    /// Offset of the batch in that segment.
    pub offset: u64,
    /// Time the write took (after any segment roll), in nanoseconds.
    pub write_ns: u64,
    /// Time the fdatasync took, in nanoseconds.
    pub sync_ns: u64,
}

type PrepareTask = JoinHandle<Result<PreparedSegment, WalError>>;

/// The WAL writer. Lives on one glommio executor; not `Send`.
pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    mode: IoMode,
    current: ActiveSegment,
    /// Zero-fill of segment `current.seq + 1`, running in the background.
    next: Option<PrepareTask>,
    /// The pending batch: header placeholder + records. Capacity is
    /// `max_batch_bytes`, reserved once.
    staging: Vec<u8>,
    pending_records: u32,
    /// Effective end of the log, pending records included.
    end: LogEnd,
    /// Effective end of the durable log (what batch headers and new
    /// segment names record, and what recovery will check them against).
    durable_end: LogEnd,
    poisoned: bool,
}

impl Wal {
    /// Opens the writer in `dir` after `tail` (from [`super::recover`]): in
    /// a new segment after the last one, or segment 0 in an empty
    /// directory. Must run inside a glommio executor.
    pub async fn open(dir: &Path, opts: WalOptions, tail: &TailPosition) -> Result<Wal, WalError> {
        let size = opts.segment_size_bytes;
        Self::open_sized(dir, opts, tail, size).await
    }

    /// [`Wal::open`], with the segment the writer starts in (a new one, in
    /// either case) of `first_segment_bytes` (at least one full batch plus
    /// the header block, at most `segment_size_bytes`); the segments after
    /// it have the configured size. A small first segment makes a start
    /// zero-fill, and the next start read, a few MiB instead of a whole
    /// segment.
    pub async fn open_sized(
        dir: &Path,
        opts: WalOptions,
        tail: &TailPosition,
        first_segment_bytes: u64,
    ) -> Result<Wal, WalError> {
        opts.validate()?;
        let first_segment_bytes = first_segment_bytes.clamp(
            opts.max_batch_bytes + BLOCK_SIZE_BYTES,
            opts.segment_size_bytes,
        ) / BLOCK_SIZE_BYTES
            * BLOCK_SIZE_BYTES;
        std::fs::create_dir_all(dir).map_err(|e| WalError::io("creating", dir, e))?;
        let (current, mode) = match &tail.segment {
            Some(t) => {
                let (file, mode) =
                    SegmentFile::open_resolving(&t.path, false, opts.direct_io).await?;
                let seg = ActiveSegment {
                    seq: t.seq,
                    first_index: t.first_index,
                    size_bytes: t.size_bytes,
                    salt: t.salt,
                    offset: t.offset,
                    file,
                };
                (seg, mode)
            }
            None => {
                let tmp = dir.join(segment::tmp_file_name(0));
                let (file, mode) = SegmentFile::open_resolving(&tmp, true, opts.direct_io).await?;
                let prepared = segment::fill_and_sync(PreparedSegment {
                    seq: 0,
                    size_bytes: first_segment_bytes,
                    file,
                })
                .await?;
                let end = LogEnd {
                    last: tail.last_index,
                    floor: tail.rewrite_floor,
                };
                (
                    segment::activate(prepared, dir, end.next_index_or_zero(), 0).await?,
                    mode,
                )
            }
        };
        let mut staging = Vec::new();
        staging.reserve_exact(opts.max_batch_bytes as usize);
        let mut wal = Wal {
            dir: dir.to_path_buf(),
            opts,
            mode,
            current,
            next: None,
            staging,
            pending_records: 0,
            end: LogEnd {
                last: tail.last_index,
                floor: tail.rewrite_floor,
            },
            durable_end: LogEnd {
                last: tail.last_index,
                floor: tail.rewrite_floor,
            },
            poisoned: false,
        };
        if tail.segment.is_some() {
            // Never write into a segment a previous process wrote: after a
            // kill -9 the kernel may still complete a write that process
            // had submitted (its io_uring is torn down asynchronously), and
            // it would land over whatever this process wrote at the same
            // offset. A fresh segment makes such a late write harmless: the
            // new segment's header records where the old one's data ends,
            // and recovery reads no further.
            wal.roll_sized(first_segment_bytes).await?;
        } else {
            wal.start_prepare();
        }
        Ok(wal)
    }

    /// Copies a record into the pending batch. Errors: the record can never
    /// fit (`RecordTooLarge`), the pending batch is full (`BatchFull`: flush,
    /// then append again), an Entry index leaves a gap after the effective
    /// last index (`IndexNotContiguous`) or is 0 or at or below the last
    /// Snapshot marker (`IndexBelowFloor`), a Snapshot marker's data is not
    /// its (index, term) (`BadSnapshotMarker`). A rejected record changes
    /// nothing.
    ///
    /// An Entry at an index `<= last_index()` replaces: it and the entries
    /// after it supersede every earlier entry from that index on (a Raft
    /// follower overwriting a conflicting uncommitted suffix). A Snapshot
    /// marker supersedes every earlier entry; the log resumes after it.
    pub fn append(
        &mut self,
        kind: RecordKind,
        term: u64,
        index: u64,
        data: &[u8],
    ) -> Result<(), WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        let max_data_bytes = self.opts.max_record_data_bytes();
        if data.len() > max_data_bytes {
            return Err(WalError::RecordTooLarge {
                data_bytes: data.len(),
                max_data_bytes,
            });
        }
        let record_bytes = RECORD_HEADER_BYTES + data.len();
        let pending_bytes = self.pending_batch_bytes();
        let max_batch_bytes = self.opts.max_batch_bytes as usize;
        if pending_bytes.max(BATCH_HEADER_BYTES) + record_bytes > max_batch_bytes {
            return Err(WalError::BatchFull {
                pending_bytes,
                record_bytes,
                max_batch_bytes,
            });
        }
        match kind {
            RecordKind::Entry => self.end.check_entry(index).map_err(|f| match f {
                IndexFault::Gap { expected, got } => WalError::IndexNotContiguous { expected, got },
                IndexFault::BelowFloor { first_allowed, got } => {
                    WalError::IndexBelowFloor { first_allowed, got }
                }
            })?,
            RecordKind::Snapshot => {
                SnapshotMarker::decode(index, data)
                    .map_err(|reason| WalError::BadSnapshotMarker { index, reason })?;
            }
            RecordKind::HardState => {}
        }
        self.end.apply(kind, index);
        if self.pending_records == 0 {
            self.staging.clear();
            self.staging.resize(BATCH_HEADER_BYTES, 0);
        }
        encode_record(&mut self.staging, kind, term, index, data);
        self.pending_records += 1;
        assert!(
            self.staging.len() <= max_batch_bytes,
            "invariant: pending batch within max_batch_bytes"
        );
        Ok(())
    }

    /// Makes every pending record durable: one write of the whole batch at
    /// the block-aligned tail and one fdatasync, after rolling to the next
    /// segment if the batch does not fit. After an error the writer is
    /// poisoned (see [`WalError::Poisoned`]).
    pub async fn flush(&mut self) -> Result<FlushStats, WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        if self.pending_records == 0 {
            return Ok(FlushStats {
                segment_seq: self.current.seq,
                offset: self.current.offset,
                ..FlushStats::default()
            });
        }
        self.poisoned = true;
        let stats = self.write_batch().await?;
        self.poisoned = false;
        Ok(stats)
    }

    async fn write_batch(&mut self) -> Result<FlushStats, WalError> {
        let batch_bytes = self.staging.len() as u64;
        let written_bytes = align_up(batch_bytes);
        let rolled = self.current.offset + written_bytes > self.current.size_bytes;
        if rolled {
            self.roll().await?;
        }
        let cur = &self.current;
        let seal = BatchSeal {
            seq: cur.seq,
            offset: cur.offset,
            first_index: self.durable_end.next_index_or_zero(),
            record_count: self.pending_records,
            salt: cur.salt,
        };
        seal_batch(&mut self.staging, &seal);
        self.staging.resize(written_bytes as usize, 0);
        let write_start = std::time::Instant::now();
        cur.file.write_all_at(&self.staging, cur.offset).await?;
        let sync_start = std::time::Instant::now();
        cur.file.fdatasync().await?;
        let sync_end = std::time::Instant::now();
        let stats = FlushStats {
            write_ns: (sync_start - write_start).as_nanos() as u64,
            sync_ns: (sync_end - sync_start).as_nanos() as u64,
            records: self.pending_records,
            batch_bytes,
            written_bytes,
            rolled,
            segment_seq: cur.seq,
            offset: cur.offset,
        };
        self.current.offset += written_bytes;
        self.staging.clear();
        self.pending_records = 0;
        self.durable_end = self.end;
        Ok(stats)
    }

    /// Switches to segment `current.seq + 1`, named after the effective
    /// durable last index + 1 (recovery checks the name against the log it
    /// has read so far, before it reads the new segment's batches).
    async fn roll(&mut self) -> Result<(), WalError> {
        self.roll_sized(self.opts.segment_size_bytes).await
    }

    /// [`Self::roll`]; a segment not prepared in the background gets
    /// `size_bytes`.
    async fn roll_sized(&mut self, size_bytes: u64) -> Result<(), WalError> {
        let seq = self.current.seq + 1;
        let prepared = match self.next.take() {
            Some(task) => task.await.unwrap_or_else(|| {
                Err(WalError::io(
                    "preparing segment",
                    self.dir.join(segment::tmp_file_name(seq)),
                    std::io::Error::other("background task cancelled"),
                ))
            })?,
            None => segment::prepare(self.dir.clone(), seq, size_bytes, self.mode).await?,
        };
        assert_eq!(
            prepared.seq, seq,
            "invariant: the prepared segment is the next in sequence"
        );
        let first_index = self.durable_end.next_index_or_zero();
        let new = segment::activate(prepared, &self.dir, first_index, self.current.offset).await?;
        let old = std::mem::replace(&mut self.current, new);
        tracing::debug!(seq, first_index, "WAL rolled to a new segment");
        old.file.close().await?;
        self.start_prepare();
        Ok(())
    }

    fn start_prepare(&mut self) {
        assert!(
            self.next.is_none(),
            "invariant: one segment is prepared at a time"
        );
        let fut = segment::prepare(
            self.dir.clone(),
            self.current.seq + 1,
            self.opts.segment_size_bytes,
            self.mode,
        );
        self.next = Some(glommio::spawn_local(fut).detach());
    }

    /// Records appended but not yet flushed.
    pub fn pending_records(&self) -> usize {
        self.pending_records as usize
    }

    /// Bytes of the pending batch (header included), 0 if none.
    pub fn pending_batch_bytes(&self) -> usize {
        if self.pending_records == 0 {
            0
        } else {
            self.staging.len()
        }
    }

    /// Whether segments are written with O_DIRECT.
    pub fn direct_io(&self) -> bool {
        self.mode == IoMode::Direct
    }

    /// Effective last index of the log, pending records included: of the
    /// last Entry appended (after a rewrite, the rewritten one), or of a
    /// Snapshot marker appended after it.
    pub fn last_index(&self) -> Option<u64> {
        self.end.last
    }

    /// Effective last index made durable by a completed flush.
    pub fn durable_last_index(&self) -> Option<u64> {
        self.durable_end.last
    }

    /// Appends a Snapshot marker for a snapshot through `index` at `term`
    /// (the record's term and index fields carry the same values).
    pub fn append_snapshot_marker(&mut self, index: u64, term: u64) -> Result<(), WalError> {
        let data = SnapshotMarker { index, term }.encode();
        self.append(RecordKind::Snapshot, term, index, &data)
    }

    /// Path of the segment being written.
    pub fn current_segment_path(&self) -> PathBuf {
        self.dir.join(segment_file_name(
            self.current.seq,
            self.current.first_index,
        ))
    }

    /// Closes the current segment. Pending records are dropped (flush
    /// first); a background zero-fill is abandoned (its `.tmp` file is
    /// removed by the next recovery).
    pub async fn close(mut self) -> Result<(), WalError> {
        if let Some(task) = self.next.take() {
            task.cancel();
        }
        self.current.file.close().await
    }
}
