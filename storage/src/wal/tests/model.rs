//! The WAL against a model: a `Vec` of (index, term, data) plus the last
//! snapshot marker. Random appends (continuing or rewriting the suffix),
//! snapshot markers, flushes and reopens; after every reopen and at the
//! end, what recovery leaves in effect must equal the model's durable
//! state. Tiny segments make batches roll often.

use proptest::prelude::*;

use super::*;

#[derive(Clone, Debug)]
enum Op {
    /// Append `count` entries, starting `back` indexes below the next one
    /// (clamped to what may still be rewritten); a new term if `new_term`.
    Append {
        back: u8,
        count: u8,
        new_term: bool,
        data_bytes: u16,
    },
    /// A snapshot marker at the effective last index + `delta` (>= 0).
    Snapshot {
        delta: i8,
    },
    Flush,
    /// Close (dropping what is pending), recover, check, reopen.
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..6, 1u8..5, any::<bool>(), 0u16..1500).prop_map(|(back, count, new_term, data_bytes)| {
            Op::Append { back, count, new_term, data_bytes }
        }),
        1 => (-4i8..20).prop_map(|delta| Op::Snapshot { delta }),
        3 => Just(Op::Flush),
        1 => Just(Op::Reopen),
    ]
}

/// The log as a node sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Model {
    snapshot: Option<SnapshotMarker>,
    entries: Vec<(u64, u64, Vec<u8>)>,
    last: Option<u64>,
}

impl Model {
    fn floor(&self) -> Option<u64> {
        self.snapshot.map(|s| s.index)
    }

    fn append(&mut self, index: u64, term: u64, data: Vec<u8>) {
        self.entries.retain(|e| e.0 < index);
        self.entries.push((index, term, data));
        self.last = Some(index);
    }

    fn snapshot(&mut self, m: SnapshotMarker) {
        self.snapshot = Some(m);
        self.entries.clear();
        self.last = Some(m.index);
    }

    fn of(rec: &Recovered) -> Model {
        let log = rec.effective_log();
        Model {
            snapshot: log.snapshot,
            entries: log
                .entries
                .iter()
                .map(|e| (e.index, e.term, e.data.clone()))
                .collect(),
            last: rec.tail.last_index,
        }
    }
}

fn opts() -> WalOptions {
    WalOptions {
        segment_size_bytes: 16 << 10,
        max_batch_bytes: 8 << 10,
        direct_io: DirectIo::Auto,
    }
}

fn check(dir: &Path, durable: &Model, step: usize) -> Result<TailPosition, String> {
    let rec = recover(dir, &opts()).map_err(|e| format!("step {step}: {e}"))?;
    let got = Model::of(&rec);
    if &got != durable {
        return Err(format!(
            "step {step}: recovered {got:?}\n  model {durable:?}"
        ));
    }
    if rec.tail.rewrite_floor != durable.floor() {
        return Err(format!("step {step}: floor {:?}", rec.tail.rewrite_floor));
    }
    Ok(rec.tail)
}

async fn flush(wal: &mut Wal, model: &Model, durable: &mut Model) {
    wal.flush().await.expect("flush");
    *durable = model.clone();
}

async fn run_ops(dir: PathBuf, ops: Vec<Op>) -> Result<(), String> {
    let mut wal = Wal::open(&dir, opts(), &check(&dir, &Model::default(), 0)?)
        .await
        .expect("open");
    let (mut model, mut durable) = (Model::default(), Model::default());
    let mut term = 1;
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Append {
                back,
                count,
                new_term,
                data_bytes,
            } => {
                term += u64::from(new_term);
                let next = model.last.map_or(1, |l| l + 1);
                let lowest = model.floor().map_or(1, |f| f + 1);
                let start = next.saturating_sub(u64::from(back)).max(lowest);
                for index in start..start + u64::from(count) {
                    let data = vec![(index + term) as u8; usize::from(data_bytes)];
                    match wal.append(RecordKind::Entry, term, index, &data) {
                        Ok(()) => {}
                        Err(WalError::BatchFull { .. }) => {
                            flush(&mut wal, &model, &mut durable).await;
                            wal.append(RecordKind::Entry, term, index, &data)
                                .expect("append after flush");
                        }
                        Err(e) => return Err(format!("step {step}: {e}")),
                    }
                    model.append(index, term, data);
                }
            }
            Op::Snapshot { delta } => {
                let last = model.last.unwrap_or(0);
                let index = last.saturating_add_signed(i64::from(delta));
                match wal.append_snapshot_marker(index, term) {
                    Ok(()) => {}
                    Err(WalError::BatchFull { .. }) => {
                        flush(&mut wal, &model, &mut durable).await;
                        wal.append_snapshot_marker(index, term)
                            .expect("marker after flush");
                    }
                    Err(e) => return Err(format!("step {step}: {e}")),
                }
                model.snapshot(SnapshotMarker { index, term });
            }
            Op::Flush => flush(&mut wal, &model, &mut durable).await,
            Op::Reopen => {
                wal.close().await.expect("close");
                model = durable.clone();
                let tail = check(&dir, &durable, step)?;
                wal = Wal::open(&dir, opts(), &tail).await.expect("reopen");
            }
        }
        if wal.last_index() != model.last || wal.durable_last_index() != durable.last {
            return Err(format!("step {step}: writer's last index disagrees"));
        }
    }
    flush(&mut wal, &model, &mut durable).await;
    wal.close().await.expect("close");
    check(&dir, &durable, usize::MAX).map(|_| ())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn recovery_matches_a_model_of_appends_rewrites_and_snapshots(
        ops in proptest::collection::vec(op(), 1..60)
    ) {
        let dir = tempdir();
        let d = dir.path().to_path_buf();
        let result = run(move || run_ops(d, ops));
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}
