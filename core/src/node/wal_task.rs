//! The WAL writer task: group commit.
//!
//! Proposals arrive on a channel. The task takes everything that is queued,
//! appends it as one batch, and makes it durable with one write and one
//! fdatasync; proposals that arrive while that is in flight queue up and go
//! out together in the next batch. Each durable batch goes back to the
//! apply side, in order, with the entries themselves (no copy is kept).

use cairn_storage::wal::{RecordKind, Wal, WalError};

use super::channel::{Rx, Tx};

/// A write request to log: the verified request bytes.
pub struct Proposal {
    pub data: Vec<u8>,
}

/// What the writer reports back, in proposal order.
pub enum WalEvent {
    /// `entries` are durable with indexes `first_index..first_index+len`.
    Durable {
        first_index: u64,
        entries: Vec<Vec<u8>>,
    },
}

/// Counters the WAL writer keeps for status (relaxed atomics: no lock, no
/// ordering needed; they are statistics).
#[derive(Default, Debug)]
pub struct WalStats {
    pub fsyncs: std::sync::atomic::AtomicU64,
    pub entries: std::sync::atomic::AtomicU64,
}

/// Most proposals taken into one batch (bounds the work per fsync and the
/// latency of the first proposal in it).
const MAX_BATCH_ENTRIES: usize = 4096;

/// Runs until the proposal channel closes. A failed write or fdatasync ends
/// the process: after a failed fdatasync the kernel may have dropped the
/// data, so neither acknowledging nor retrying is safe; restart recovers.
pub async fn run(
    stats: std::sync::Arc<WalStats>,
    mut wal: Wal,
    mut next_index: u64,
    term: u64,
    proposals: Rx<Proposal>,
    events: Tx<WalEvent>,
) {
    let mut carry: Option<Proposal> = None;
    loop {
        let first = match carry.take() {
            Some(p) => p,
            None => match proposals.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let first_index = next_index;
        let mut entries = Vec::with_capacity(64);
        let mut item = Some(first);
        while let Some(p) = item.take() {
            match wal.append(RecordKind::Entry, term, next_index, &p.data) {
                Ok(()) => {
                    entries.push(p.data);
                    next_index += 1;
                }
                Err(WalError::BatchFull { .. }) if !entries.is_empty() => {
                    carry = Some(p);
                    break;
                }
                // Requests are bounded by --max-request-bytes, which the
                // batch size is derived from: anything else is a bug or I/O.
                Err(e) => fatal(e),
            }
            if entries.len() < MAX_BATCH_ENTRIES {
                item = proposals.try_recv().await;
            }
        }
        if let Err(e) = wal.flush().await {
            fatal(e);
        }
        use std::sync::atomic::Ordering::Relaxed;
        stats.fsyncs.fetch_add(1, Relaxed);
        stats.entries.fetch_add(entries.len() as u64, Relaxed);
        if events
            .send(WalEvent::Durable {
                first_index,
                entries,
            })
            .await
            .is_err()
        {
            return;
        }
    }
}

fn fatal(e: WalError) -> ! {
    tracing::error!(error = %e, "WAL write failed; stopping (restart recovers every acknowledged write)");
    eprintln!("cairnd: fatal: {e}");
    std::process::exit(1);
}
