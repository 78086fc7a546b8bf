//! One logical client's closed loop, the same for every driver: take a
//! ticket from the budget, pick a key and an operation, send the request,
//! wait for its response, record the latency or the error, repeat.
//!
//! All clients of a run are tasks on one thread, so the shared state is
//! `Rc` + `Cell`/`RefCell` and never borrowed across an await.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Instant;

use super::args::{Config, Consistency, Stop, Workload};
use super::budget::Budget;
use super::keydist::KeyPicker;
use super::keys::KeyBuf;
use super::recorder::Recorder;
use super::rng::Rng;
use super::BenchError;

/// Attempts of one `txn-put` before it counts as an error. etcd's tool
/// retries without bound; a bound keeps a run from spinning on a key whose
/// revision it can never learn (e.g. the server lost its data).
pub const CAS_ATTEMPTS_MAX: u32 = 32;

/// The outcome of a compare-and-swap txn.
pub(crate) enum Cas {
    /// The compare held and the put applied at this revision.
    Swapped { revision: i64 },
    /// The compare failed; the key's mod_revision as read by the else
    /// branch (0 if the key does not exist).
    Mismatch { mod_revision: i64 },
}

/// What a driver must do; errors are messages, counted by kind.
pub(crate) trait Conn {
    /// Returns the revision of the put (its response header's).
    async fn put(&mut self, key: &[u8], value: &[u8]) -> Result<i64, String>;
    async fn range(&mut self, key: &[u8], serializable: bool) -> Result<(), String>;
    /// `if mod_revision(key) == expected { put(key, value) } else { get(key) }`.
    async fn txn_cas(&mut self, key: &[u8], expected: i64, value: &[u8]) -> Result<Cas, String>;
    /// Grants a lease of `ttl_secs`; returns its id.
    async fn lease_grant(&mut self, ttl_secs: i64) -> Result<i64, String>;
    /// One keep-alive of lease `id`; an error if the lease is gone.
    async fn lease_keep_alive(&mut self, id: i64) -> Result<(), String>;
    /// A put attached to lease `lease`.
    async fn put_leased(&mut self, key: &[u8], value: &[u8], lease: i64) -> Result<i64, String>;
    /// Waits until `t` on the driver's runtime (open loop).
    async fn sleep_until(&mut self, t: Instant);
}

/// Which requests a phase sends.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Put every key of the key space once, in order (not measured).
    Prefill,
    /// The measured workload.
    Measure,
}

/// State shared by the clients of one phase.
pub(crate) struct Run {
    pub cfg: Config,
    pub phase: Phase,
    pub value: Vec<u8>,
    /// How the measured requests pick key indexes (`--key-dist`).
    pub keys: KeyPicker,
    pub budget: Budget,
    pub recorder: RefCell<Recorder>,
    /// `txn-put`: the last mod_revision seen per key (0 = not yet written).
    /// Filled by the prefill phase, so that the measured txns start with
    /// the right revisions instead of retrying once per key.
    pub revisions: RefCell<Vec<i64>>,
    /// Lease workloads: the lease granted per key index by the prefill.
    pub leases: RefCell<Vec<i64>>,
    /// Watch workload: when the run began (puts carry the time since in
    /// their value's first 8 bytes, in ns), and the events the
    /// acknowledged puts owe the watchers.
    pub epoch: Instant,
    pub events_expected: Cell<u64>,
    /// Set when every client has finished (stops the progress task).
    pub finished: Cell<bool>,
}

impl Run {
    pub fn new(cfg: &Config, phase: Phase) -> Run {
        let stop = match phase {
            Phase::Prefill => Stop::Total(cfg.key_space),
            Phase::Measure => cfg.stop,
        };
        let mut value = vec![0u8; cfg.val_size];
        Rng::new(cfg.seed ^ 0x5eed).fill(&mut value);
        let revisions = if cfg.workload == Workload::TxnPut {
            vec![0; cfg.key_space as usize]
        } else {
            Vec::new()
        };
        Run {
            cfg: cfg.clone(),
            phase,
            value,
            keys: KeyPicker::new(cfg.key_dist, cfg.key_space),
            budget: Budget::new(stop),
            recorder: RefCell::new(Recorder::new()),
            revisions: RefCell::new(revisions),
            leases: RefCell::new(if cfg.workload.uses_leases() {
                vec![0; cfg.key_space as usize]
            } else {
                Vec::new()
            }),
            epoch: Instant::now(),
            events_expected: Cell::new(0),
            finished: Cell::new(false),
        }
    }

    pub fn completed(&self) -> u64 {
        self.recorder.borrow().completed()
    }

    /// Notes that key `key_index` was written at `revision` (`txn-put` only).
    fn learn(&self, key_index: u64, revision: i64) {
        if let Some(r) = self.revisions.borrow_mut().get_mut(key_index as usize) {
            *r = (*r).max(revision);
        }
    }

    /// Hands the revisions learnt by this (prefill) phase to the next one.
    pub fn pass_revisions_to(&self, next: &Run) {
        if next.cfg.workload == Workload::TxnPut {
            *next.revisions.borrow_mut() = self.revisions.take();
        }
        if next.cfg.workload.uses_leases() {
            *next.leases.borrow_mut() = self.leases.take();
        }
    }

    /// The measured run that follows this finished prefill, or why there
    /// is none: a prefill with failed puts would measure a partial data set.
    pub fn measure_next(&self) -> Result<Run, BenchError> {
        let rec = self.recorder.borrow();
        if rec.errors() > 0 {
            let (errors, completed) = (rec.errors(), rec.completed());
            return Err(BenchError::Prefill(format!(
                "{errors} of {completed} puts failed: {:?}",
                rec.error_kinds()
            )));
        }
        let next = Run::new(&self.cfg, Phase::Measure);
        self.pass_revisions_to(&next);
        Ok(next)
    }
}

#[derive(Copy, Clone)]
enum Op {
    Put,
    Range,
    TxnPut,
    /// Prefill of the lease workloads: grant the key index's lease (and,
    /// for lease-storm, put its key with it).
    Grant,
    KeepAlive,
    /// A put of the send time (watch workload).
    PutStamped,
}

/// Runs client `index` until the budget is spent.
pub(crate) async fn client_loop<C: Conn>(mut conn: C, run: Rc<Run>, index: u32) {
    let cfg = &run.cfg;
    let mut rng = Rng::for_client(cfg.seed, index);
    let mut keys = KeyBuf::new(cfg.key_size);
    let serializable = cfg.consistency == Consistency::S;
    let mut stamped = run.value.clone();
    while let Some(ticket) = run.budget.next() {
        let (key_index, op) = match run.phase {
            Phase::Prefill if cfg.workload.uses_leases() => (ticket, Op::Grant),
            Phase::Prefill => (ticket, Op::Put),
            // lease-storm writes the key space after the leased keys.
            Phase::Measure if cfg.workload == Workload::LeaseStorm => {
                (cfg.key_space + run.keys.pick(&mut rng), Op::Put)
            }
            Phase::Measure => (run.keys.pick(&mut rng), pick_op(cfg, &mut rng)),
        };
        let key = keys.key(key_index);
        // Open loop: wait for the ticket's send time and measure from it.
        let start = match (cfg.rate, run.phase) {
            (Some(rate), Phase::Measure) => match run.budget.intended(ticket, rate) {
                Some(at) => {
                    conn.sleep_until(at).await;
                    at
                }
                None => break,
            },
            _ => Instant::now(),
        };
        let result = match op {
            Op::Put => conn
                .put(key, &run.value)
                .await
                .map(|revision| run.learn(key_index, revision)),
            Op::Range => conn.range(key, serializable).await,
            Op::TxnPut => cas_put(&mut conn, &run, key_index, key).await,
            Op::Grant => grant(&mut conn, &run, key_index, key).await,
            Op::KeepAlive => {
                let id = run.leases.borrow()[key_index as usize];
                conn.lease_keep_alive(id).await
            }
            Op::PutStamped => {
                // Stamped with the send time the latency counts from.
                let sent = start.saturating_duration_since(run.epoch).as_nanos() as u64;
                stamped[..8].copy_from_slice(&sent.to_le_bytes());
                conn.put(key, &stamped).await.map(|_| {
                    let owed = run.events_expected.get() + cfg.watchers_on(key_index);
                    run.events_expected.set(owed);
                })
            }
        };
        let latency = start.elapsed();
        let mut rec = run.recorder.borrow_mut();
        match result {
            Ok(()) => rec.record_ok(latency),
            Err(e) => rec.record_error(&e),
        }
    }
}

fn pick_op(cfg: &Config, rng: &mut Rng) -> Op {
    match cfg.workload {
        Workload::Put => Op::Put,
        Workload::Range => Op::Range,
        Workload::TxnPut => Op::TxnPut,
        Workload::Mixed if rng.chance(cfg.read_ratio) => Op::Range,
        Workload::Mixed => Op::Put,
        Workload::LeaseKeepalive => Op::KeepAlive,
        Workload::LeaseStorm => Op::Put,
        Workload::Watch => Op::PutStamped,
    }
}

/// Prefill of a lease workload: one lease per key index (lease-storm: and
/// the key put with it).
async fn grant<C: Conn>(conn: &mut C, run: &Run, key_index: u64, key: &[u8]) -> Result<(), String> {
    let id = conn.lease_grant(run.cfg.lease_ttl).await?;
    if let Some(slot) = run.leases.borrow_mut().get_mut(key_index as usize) {
        *slot = id;
    }
    if run.cfg.workload == Workload::LeaseStorm {
        conn.put_leased(key, &run.value, id).await?;
    }
    Ok(())
}

/// etcd's `txn-put`: compare the key's mod_revision with the last one this
/// run saw, put if equal, else learn the current one and try again.
async fn cas_put<C: Conn>(
    conn: &mut C,
    run: &Run,
    key_index: u64,
    key: &[u8],
) -> Result<(), String> {
    for _ in 0..CAS_ATTEMPTS_MAX {
        let expected = run.revisions.borrow()[key_index as usize];
        match conn.txn_cas(key, expected, &run.value).await? {
            Cas::Swapped { revision } => {
                run.learn(key_index, revision);
                return Ok(());
            }
            Cas::Mismatch { mod_revision } => {
                // What the server just said wins, even if lower: a lower
                // value means the key was deleted or the data reset.
                run.revisions.borrow_mut()[key_index as usize] = mod_revision;
                run.recorder.borrow_mut().cas_retries += 1;
            }
        }
    }
    Err(format!(
        "txn-put: compare failed {CAS_ATTEMPTS_MAX} times in a row"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::args::Cli;
    use clap::Parser;
    use std::collections::HashMap;

    /// An in-memory server with etcd's revision semantics.
    #[derive(Default)]
    struct Model {
        rev: i64,
        mod_rev: HashMap<Vec<u8>, i64>,
        puts: u64,
        puts_by_key: HashMap<Vec<u8>, u64>,
        ranges: u64,
        serializable_ranges: u64,
        fail_every: Option<u64>,
        calls: u64,
        /// The send times in the values put (watch workload).
        stamps: Vec<u64>,
        /// Lease id → (keep-alives, keys attached).
        leases: HashMap<i64, (u64, Vec<Vec<u8>>)>,
        next_lease: i64,
    }

    impl Model {
        fn maybe_fail(&mut self) -> Result<(), String> {
            self.calls += 1;
            match self.fail_every {
                Some(n) if self.calls.is_multiple_of(n) => Err("injected".into()),
                _ => Ok(()),
            }
        }
    }

    struct ModelConn(Rc<RefCell<Model>>);

    impl Conn for ModelConn {
        async fn put(&mut self, key: &[u8], value: &[u8]) -> Result<i64, String> {
            let mut m = self.0.borrow_mut();
            m.maybe_fail()?;
            if let Some(b) = value.get(..8) {
                m.stamps.push(u64::from_le_bytes(b.try_into().unwrap()));
            }
            m.rev += 1;
            let rev = m.rev;
            m.mod_rev.insert(key.to_vec(), rev);
            m.puts += 1;
            *m.puts_by_key.entry(key.to_vec()).or_insert(0) += 1;
            Ok(rev)
        }
        async fn range(&mut self, _key: &[u8], serializable: bool) -> Result<(), String> {
            let mut m = self.0.borrow_mut();
            m.maybe_fail()?;
            m.ranges += 1;
            m.serializable_ranges += u64::from(serializable);
            Ok(())
        }
        async fn txn_cas(
            &mut self,
            key: &[u8],
            expected: i64,
            _value: &[u8],
        ) -> Result<Cas, String> {
            let mut m = self.0.borrow_mut();
            m.maybe_fail()?;
            let current = m.mod_rev.get(key).copied().unwrap_or(0);
            if current != expected {
                return Ok(Cas::Mismatch {
                    mod_revision: current,
                });
            }
            m.rev += 1;
            let rev = m.rev;
            m.mod_rev.insert(key.to_vec(), rev);
            Ok(Cas::Swapped { revision: rev })
        }
        async fn lease_grant(&mut self, _ttl: i64) -> Result<i64, String> {
            let mut m = self.0.borrow_mut();
            m.maybe_fail()?;
            m.next_lease += 1;
            let id = m.next_lease;
            m.leases.insert(id, (0, Vec::new()));
            Ok(id)
        }
        async fn lease_keep_alive(&mut self, id: i64) -> Result<(), String> {
            let mut m = self.0.borrow_mut();
            m.maybe_fail()?;
            let l = m.leases.get_mut(&id).ok_or("lease not found")?;
            l.0 += 1;
            Ok(())
        }
        async fn sleep_until(&mut self, _t: Instant) {}
        async fn put_leased(
            &mut self,
            key: &[u8],
            value: &[u8],
            lease: i64,
        ) -> Result<i64, String> {
            self.0
                .borrow_mut()
                .leases
                .get_mut(&lease)
                .ok_or("lease not found")?
                .1
                .push(key.to_vec());
            self.put(key, value).await
        }
    }

    fn run_model(args: &[&str], phase: Phase, model: &Rc<RefCell<Model>>) -> Rc<Run> {
        run_after(args, phase, model, None)
    }

    fn run_after(
        args: &[&str],
        phase: Phase,
        model: &Rc<RefCell<Model>>,
        prev: Option<&Run>,
    ) -> Rc<Run> {
        let mut full = vec!["cairn-bench"];
        full.extend_from_slice(args);
        let cfg = Cli::try_parse_from(full).unwrap().into_config().unwrap();
        let run = Rc::new(Run::new(&cfg, phase));
        if let Some(prev) = prev {
            prev.pass_revisions_to(&run);
        }
        run.budget.start();
        futures_lite::future::block_on(async {
            for i in 0..cfg.clients {
                client_loop(ModelConn(model.clone()), run.clone(), i).await;
            }
        });
        run
    }

    #[test]
    fn a_total_run_completes_exactly_total_requests() {
        let m = Rc::new(RefCell::new(Model::default()));
        let run = run_model(
            &["put", "--total", "100", "--clients", "4"],
            Phase::Measure,
            &m,
        );
        assert_eq!(run.completed(), 100);
        assert_eq!(m.borrow().puts, 100);
    }

    #[test]
    fn prefill_puts_every_key_once() {
        let m = Rc::new(RefCell::new(Model::default()));
        run_model(
            &["range", "--key-space", "50", "--clients", "3"],
            Phase::Prefill,
            &m,
        );
        assert_eq!(m.borrow().puts, 50);
        assert_eq!(m.borrow().mod_rev.len(), 50);
    }

    #[test]
    fn mixed_follows_read_ratio_and_consistency() {
        let m = Rc::new(RefCell::new(Model::default()));
        run_model(
            &[
                "mixed",
                "--total",
                "10000",
                "--read-ratio",
                "0.8",
                "--consistency",
                "s",
            ],
            Phase::Measure,
            &m,
        );
        let m = m.borrow();
        assert!((7_700..8_300).contains(&m.ranges), "{}", m.ranges);
        assert_eq!(m.ranges + m.puts, 10_000);
        assert_eq!(m.serializable_ranges, m.ranges);
    }

    #[test]
    fn lease_keepalive_grants_a_lease_per_key_then_renews_only_those() {
        let m = Rc::new(RefCell::new(Model::default()));
        let args = [
            "lease-keepalive",
            "--total",
            "500",
            "--key-space",
            "20",
            "--clients",
            "3",
        ];
        let prefill = run_model(&args, Phase::Prefill, &m);
        assert_eq!(m.borrow().leases.len(), 20);
        let measure = Rc::new(prefill.measure_next().unwrap());
        measure.budget.start();
        futures_lite::future::block_on(async {
            for i in 0..3 {
                client_loop(ModelConn(m.clone()), measure.clone(), i).await;
            }
        });
        let rec = measure.recorder.borrow();
        assert_eq!((rec.ok(), rec.errors()), (500, 0));
        let renewed: u64 = m.borrow().leases.values().map(|l| l.0).sum();
        assert_eq!(renewed, 500);
        assert_eq!(m.borrow().puts, 0);
    }

    #[test]
    fn lease_storm_attaches_one_key_per_lease_and_puts_elsewhere() {
        let m = Rc::new(RefCell::new(Model::default()));
        let args = ["lease-storm", "--total", "300", "--key-space", "40"];
        let prefill = run_model(&args, Phase::Prefill, &m);
        let leased: Vec<Vec<u8>> = {
            let m = m.borrow();
            assert_eq!(m.leases.len(), 40);
            assert!(m.leases.values().all(|l| l.1.len() == 1));
            m.leases.values().map(|l| l.1[0].clone()).collect()
        };
        let measure = Rc::new(prefill.measure_next().unwrap());
        measure.budget.start();
        let before: HashMap<Vec<u8>, i64> = m.borrow().mod_rev.clone();
        futures_lite::future::block_on(client_loop(ModelConn(m.clone()), measure.clone(), 0));
        assert_eq!(m.borrow().puts, 40 + 300);
        for k in &leased {
            assert_eq!(
                m.borrow().mod_rev.get(k),
                before.get(k),
                "a leased key was put again"
            );
        }
    }

    #[test]
    fn watch_puts_carry_their_send_time_and_count_the_events_they_owe() {
        let m = Rc::new(RefCell::new(Model::default()));
        let args = [
            "watch",
            "--total",
            "300",
            "--key-space",
            "7",
            "--watchers",
            "10",
            "--val-size",
            "16",
        ];
        let run = run_model(&args, Phase::Measure, &m);
        assert_eq!(m.borrow().puts, 300);
        // 10 watchers on 7 keys: keys 0..3 have 2, keys 3..7 have 1.
        let cfg = &run.cfg;
        assert_eq!((0..7).map(|k| cfg.watchers_on(k)).sum::<u64>(), 10);
        let owed = run.events_expected.get();
        assert!((300..=600).contains(&owed), "{owed}");
        let stamps = m.borrow().stamps.clone();
        assert_eq!(stamps.len(), 300);
        assert!(
            stamps.windows(2).all(|w| w[0] <= w[1]),
            "send times go forward"
        );
    }

    #[test]
    fn txn_put_learns_revisions_and_always_swaps() {
        let m = Rc::new(RefCell::new(Model::default()));
        // Keys written before the run: the first txn on each must retry.
        m.borrow_mut().mod_rev.insert(b"00000000".to_vec(), 7);
        let run = run_model(
            &["txn-put", "--total", "200", "--key-space", "10"],
            Phase::Measure,
            &m,
        );
        let rec = run.recorder.borrow();
        assert_eq!((rec.ok(), rec.errors()), (200, 0));
        assert!(rec.cas_retries >= 1);
        assert_eq!(m.borrow().rev, 200, "every request applied exactly one put");
    }

    #[test]
    fn prefill_teaches_txn_put_every_revision() {
        let m = Rc::new(RefCell::new(Model::default()));
        let args = [
            "txn-put",
            "--total",
            "100",
            "--key-space",
            "10",
            "--clients",
            "2",
        ];
        let prefill = run_model(&args, Phase::Prefill, &m);
        let run = run_after(&args, Phase::Measure, &m, Some(&prefill));
        let rec = run.recorder.borrow();
        assert_eq!((rec.ok(), rec.errors(), rec.cas_retries), (100, 0, 0));
    }

    /// The largest share of the puts that went to one key.
    fn hottest_key_share(args: &[&str]) -> f64 {
        let m = Rc::new(RefCell::new(Model::default()));
        run_model(args, Phase::Measure, &m);
        let m = m.borrow();
        let most = m.puts_by_key.values().copied().max().unwrap_or(0);
        most as f64 / m.puts as f64
    }

    #[test]
    fn zipfian_puts_concentrate_on_a_hot_key_and_uniform_ones_do_not() {
        let base = [
            "put",
            "--total",
            "4000",
            "--key-space",
            "100",
            "--seed",
            "9",
        ];
        let uniform = hottest_key_share(&base);
        let mut zipf = base.to_vec();
        zipf.extend(["--key-dist", "zipfian"]);
        // Rank 0 of 100 keys at theta 0.99: 1 / zeta(100, 0.99) = 19 %.
        let zipfian = hottest_key_share(&zipf);
        assert!(uniform < 0.03, "uniform {uniform}");
        assert!((0.16..0.23).contains(&zipfian), "zipfian {zipfian}");
        // lease-storm's puts skip the leased keys whatever the distribution.
        let m = Rc::new(RefCell::new(Model::default()));
        let args = [
            "lease-storm",
            "--total",
            "500",
            "--key-space",
            "30",
            "--key-dist",
            "zipfian",
        ];
        let prefill = run_model(&args, Phase::Prefill, &m);
        let leased = m.borrow().mod_rev.clone();
        let measure = Rc::new(prefill.measure_next().unwrap());
        measure.budget.start();
        futures_lite::future::block_on(client_loop(ModelConn(m.clone()), measure.clone(), 0));
        for (k, rev) in &leased {
            assert_eq!(m.borrow().mod_rev[k], *rev, "a leased key was put again");
        }
    }

    #[test]
    fn errors_are_counted_and_the_run_goes_on() {
        let m = Rc::new(RefCell::new(Model {
            fail_every: Some(4),
            ..Default::default()
        }));
        let run = run_model(&["put", "--total", "100"], Phase::Measure, &m);
        let rec = run.recorder.borrow();
        assert_eq!((rec.ok(), rec.errors()), (75, 25));
        assert_eq!(rec.error_kinds()["injected"], 25);
    }
}
