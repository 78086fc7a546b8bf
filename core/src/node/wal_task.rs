//! The WAL writer task: makes each Raft Ready durable.
//!
//! The Raft loop hands over everything one Ready must persist — new (or
//! rewritten) log entries and the hard state — as one [`WalWrite`]; the
//! task appends them as one batch, makes it durable with one write and one
//! fdatasync, and answers [`WalEvent::Written`]. While that runs, new
//! proposals collect in Raft's unstable log and go out together in the
//! next Ready: that is the group commit.
//!
//! Record data (see storage/FORMAT.md "Records"): an Entry record holds
//! the Raft entry kind (`0` normal, `1` membership change) followed by the
//! entry's data; a HardState record holds term, vote and commit (u64 LE
//! each).

use cairn_storage::wal::{RecordKind, Wal, WalError};

use super::channel::{Rx, Tx};
use crate::metrics::Metrics;
use crate::raft::{Entry, EntryKind, HardState};

/// What one Ready persists.
pub struct WalWrite {
    /// A snapshot was installed: (index, term) of the snapshot marker that
    /// starts the log after it (written first).
    pub snapshot: Option<(u64, u64)>,
    pub entries: Vec<Entry>,
    pub hard_state: Option<HardState>,
}

/// What the writer reports back, in order.
pub enum WalEvent {
    /// The write handed over last is durable.
    Written,
}

pub const HARD_STATE_BYTES: usize = 24;

pub fn encode_hard_state(hs: &HardState) -> [u8; HARD_STATE_BYTES] {
    let mut out = [0u8; HARD_STATE_BYTES];
    out[..8].copy_from_slice(&hs.term.to_le_bytes());
    out[8..16].copy_from_slice(&hs.vote.to_le_bytes());
    out[16..].copy_from_slice(&hs.commit.to_le_bytes());
    out
}

pub fn decode_hard_state(b: &[u8]) -> Option<HardState> {
    if b.len() != HARD_STATE_BYTES {
        return None;
    }
    let u = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
    Some(HardState {
        term: u(0),
        vote: u(8),
        commit: u(16),
    })
}

/// The record data of `e`: its kind byte, then its data.
pub fn encode_entry(e: &Entry, out: &mut Vec<u8>) {
    out.clear();
    out.push(match e.kind {
        EntryKind::Normal => 0,
        EntryKind::ConfChange => 1,
    });
    out.extend_from_slice(&e.data);
}

/// The entry an Entry record holds; `None` if its kind byte is unknown.
pub fn decode_entry(term: u64, index: u64, data: &[u8]) -> Option<Entry> {
    let (&kind, data) = data.split_first()?;
    let kind = match kind {
        0 => EntryKind::Normal,
        1 => EntryKind::ConfChange,
        _ => return None,
    };
    Some(Entry {
        term,
        index,
        kind,
        data: data.to_vec(),
    })
}

/// Flushes the pending batch of `entries` Raft entries and records it in
/// the metrics (atomic adds only).
async fn flush(wal: &mut Wal, entries: &mut u64, metrics: &Metrics) -> Result<(), WalError> {
    let f = wal.flush().await?;
    metrics.wal_fsync_seconds.observe(f.sync_ns as f64 * 1e-9);
    metrics.wal_write_seconds.observe(f.write_ns as f64 * 1e-9);
    metrics.wal_batch_entries.observe(*entries as f64);
    metrics.wal_write_bytes.add(f.written_bytes as i64);
    *entries = 0;
    Ok(())
}

/// Appends one write's records, flushing when a batch fills up (a Ready
/// can hold more than one batch's worth of entries; each flush is durable
/// before the next starts, so a crash leaves a prefix of the write).
/// Each fdatasync is counted in the metrics (the status reads them).
pub async fn append_write(
    wal: &mut Wal,
    w: &WalWrite,
    scratch: &mut Vec<u8>,
    metrics: &Metrics,
) -> Result<(), WalError> {
    let mut entries = 0u64;
    if let Some((index, term)) = w.snapshot {
        wal.append_snapshot_marker(index, term)?;
    }
    for e in &w.entries {
        encode_entry(e, scratch);
        loop {
            match wal.append(RecordKind::Entry, e.term, e.index, scratch) {
                Ok(()) => break,
                Err(WalError::BatchFull { .. }) if wal.pending_records() > 0 => {
                    flush(wal, &mut entries, metrics).await?;
                }
                Err(err) => return Err(err),
            }
        }
        entries += 1;
    }
    if let Some(hs) = &w.hard_state {
        let data = encode_hard_state(hs);
        if let Err(WalError::BatchFull { .. }) =
            wal.append(RecordKind::HardState, hs.term, 0, &data)
        {
            flush(wal, &mut entries, metrics).await?;
            wal.append(RecordKind::HardState, hs.term, 0, &data)?;
        }
    }
    if wal.pending_records() > 0 {
        flush(wal, &mut entries, metrics).await?;
    }
    Ok(())
}

/// Runs until the channel closes. A failed write or fdatasync ends the
/// process: after a failed fdatasync the kernel may have dropped the data,
/// so neither acknowledging nor retrying is safe; restart recovers.
pub async fn run(
    metrics: std::sync::Arc<Metrics>,
    mut wal: Wal,
    writes: Rx<WalWrite>,
    events: Tx<WalEvent>,
) {
    let mut scratch = Vec::with_capacity(64 << 10);
    while let Some(w) = writes.recv().await {
        if let Err(e) = append_write(&mut wal, &w, &mut scratch, &metrics).await {
            fatal(e);
        }
        if events.send(WalEvent::Written).await.is_err() {
            return;
        }
    }
}

fn fatal(e: WalError) -> ! {
    tracing::error!(error = %e, "WAL write failed; stopping (restart recovers every acknowledged write)");
    eprintln!("cairnd: fatal: {e}");
    std::process::exit(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_state_and_entry_records_round_trip() {
        let hs = HardState {
            term: 3,
            vote: 9,
            commit: 77,
        };
        assert_eq!(decode_hard_state(&encode_hard_state(&hs)), Some(hs));
        assert_eq!(decode_hard_state(&[1, 2]), None);
        let e = Entry {
            term: 2,
            index: 5,
            kind: EntryKind::ConfChange,
            data: vec![1, 2, 3],
        };
        let mut buf = Vec::new();
        encode_entry(&e, &mut buf);
        assert_eq!(decode_entry(2, 5, &buf), Some(e));
        assert_eq!(decode_entry(2, 5, &[7]), None);
        assert_eq!(decode_entry(2, 5, &[]), None);
    }
}
