//! Property test: the WAL against a `Vec` of records, through random
//! appends, flushes, restarts and crashes that tear the last batch.

mod common;

use std::os::unix::fs::FileExt;
use std::path::Path;

use cairn_storage::wal::{
    recover, DirectIo, FlushStats, OwnedRecord, RecordKind, Wal, WalError, WalOptions,
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Append {
        hard_state: bool,
        data_bytes: usize,
        seed: u8,
    },
    Flush,
    Restart,
    /// Crash during the last flush: only `cut` of its bytes (per mille)
    /// reached the disk; the rest is zeros or garbage.
    TearLastBatch {
        cut_per_mille: u32,
        garbage: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<bool>(), 0usize..3000, any::<u8>()).prop_map(|(h, d, seed)| Op::Append { hard_state: h && d % 4 == 0, data_bytes: d, seed }),
        3 => Just(Op::Flush),
        1 => Just(Op::Restart),
        1 => (0u32..1000, any::<bool>()).prop_map(|(c, g)| Op::TearLastBatch { cut_per_mille: c, garbage: g }),
    ]
}

fn opts() -> WalOptions {
    WalOptions {
        segment_size_bytes: 64 << 10,
        max_batch_bytes: 16 << 10,
        direct_io: DirectIo::Auto,
    }
}

struct Model {
    durable: Vec<OwnedRecord>,
    pending: Vec<OwnedRecord>,
    /// The last flush, if nothing happened since: (stats, records in it).
    last_flush: Option<FlushStats>,
}

impl Model {
    fn next_index(&self) -> u64 {
        self.durable
            .iter()
            .chain(&self.pending)
            .rev()
            .find(|r| r.kind == RecordKind::Entry)
            .map_or(1, |r| r.index + 1)
    }
}

async fn flush(wal: &mut Wal, m: &mut Model) {
    let stats = wal.flush().await.expect("flush");
    assert_eq!(stats.records as usize, m.pending.len());
    if stats.records > 0 {
        m.last_flush = Some(stats);
    }
    m.durable.append(&mut m.pending);
}

async fn restart(wal: Wal, dir: &Path, m: &mut Model) -> Wal {
    wal.close().await.expect("close");
    m.pending.clear();
    m.last_flush = None;
    let rec = recover(dir, &opts()).expect("recover");
    assert_eq!(
        rec.records, m.durable,
        "recovered log differs from the model"
    );
    Wal::open(dir, opts(), &rec.tail).await.expect("open")
}

/// Overwrites the last batch from `cut` on; returns whether its bytes changed.
fn tear(dir: &Path, s: &FlushStats, cut_per_mille: u32, garbage: bool) -> bool {
    let path = common::segment_path(dir, s.segment_seq);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut before = vec![0u8; s.batch_bytes as usize];
    f.read_exact_at(&mut before, s.offset).unwrap();
    let cut = s.written_bytes * u64::from(cut_per_mille) / 1000;
    let len = (s.written_bytes - cut) as usize;
    let fill: Vec<u8> = if garbage {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(37) | 0x80)
            .collect()
    } else {
        vec![0; len]
    };
    f.write_all_at(&fill, s.offset + cut).unwrap();
    let mut after = vec![0u8; s.batch_bytes as usize];
    f.read_exact_at(&mut after, s.offset).unwrap();
    before != after
}

fn run_ops(ops: Vec<Op>) {
    common::run(move || async move {
        let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
        let dir = dir.path().to_path_buf();
        let mut m = Model {
            durable: Vec::new(),
            pending: Vec::new(),
            last_flush: None,
        };
        let mut wal = Wal::open(&dir, opts(), &recover(&dir, &opts()).unwrap().tail)
            .await
            .unwrap();
        for op in ops {
            match op {
                Op::Append {
                    hard_state,
                    data_bytes,
                    seed,
                } => {
                    let index = m.next_index();
                    let kind = if hard_state {
                        RecordKind::HardState
                    } else {
                        RecordKind::Entry
                    };
                    let r = OwnedRecord {
                        kind,
                        term: 1 + index / 7,
                        index,
                        data: vec![seed; data_bytes],
                    };
                    match wal.append(r.kind, r.term, r.index, &r.data) {
                        Ok(()) => {}
                        Err(WalError::BatchFull { .. }) => {
                            flush(&mut wal, &mut m).await;
                            wal.append(r.kind, r.term, r.index, &r.data)
                                .expect("append after flush");
                        }
                        Err(e) => panic!("append: {e}"),
                    }
                    m.pending.push(r);
                    m.last_flush = None;
                }
                Op::Flush => flush(&mut wal, &mut m).await,
                Op::Restart => wal = restart(wal, &dir, &mut m).await,
                Op::TearLastBatch {
                    cut_per_mille,
                    garbage,
                } => {
                    let Some(s) = m.last_flush else { continue };
                    wal.close().await.unwrap();
                    if tear(&dir, &s, cut_per_mille, garbage) {
                        let keep = m.durable.len() - s.records as usize;
                        m.durable.truncate(keep);
                    }
                    m.pending.clear();
                    m.last_flush = None;
                    let rec = recover(&dir, &opts()).expect("recover after tear");
                    assert_eq!(
                        rec.records, m.durable,
                        "log after a torn batch differs from the model"
                    );
                    wal = Wal::open(&dir, opts(), &rec.tail).await.unwrap();
                }
            }
        }
        flush(&mut wal, &mut m).await;
        let _ = restart(wal, &dir, &mut m).await.close().await;
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn wal_matches_vec_model(ops in proptest::collection::vec(op(), 1..60)) {
        run_ops(ops);
    }
}
