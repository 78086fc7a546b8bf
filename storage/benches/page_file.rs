//! Cairn's page file against redb, same machine, same run.
//!
//! For each engine: load `CAIRN_BENCH_KEYS` (default 1,000,000) random
//! 32-byte keys with 256-byte values in committed batches of 1000, each
//! commit durable (Cairn: fdatasync twice; redb: `Durability::Immediate`,
//! its default), and print the load's per-commit latency; then criterion
//! measures (a) `insert_batch_1000`: one more durable batch of 1000 fresh
//! random keys into the loaded file, and (b) `point_read`: one `get` of a
//! random existing key in a read transaction held open (Cairn's
//! `ReadTxn::get_ref` and redb's `get`, both borrowing the value).
//!
//! ```text
//! CAIRN_BENCH_KEYS=1000000 cargo bench -p cairn-storage --bench page_file
//! ```
//!
//! `CAIRN_BENCH_ENGINES` picks engines (comma separated, default
//! `cairn,redb`): `cairn` (default options: O_DIRECT + io_uring, the
//! default cache size), `cairn-buffered` (`direct_io: false`),
//! `cairn-cache64m` (O_DIRECT with a 64 MiB cache), `cairn-cache1g`
//! (O_DIRECT with a 1 GiB cache, redb's default), `redb` (defaults:
//! 1 GiB cache).
//! Files live under the target directory (a real file system, never tmpfs).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use cairn_storage::btree::{Db, Options, ReadTxn};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use redb::{ReadableDatabase, TableDefinition};

const BATCH_KEYS: u64 = 1000;
const KEY_BYTES: usize = 32;
const VALUE_BYTES: usize = 256;
const KEYSPACE: &str = "kv";
const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Key `i`: 32 pseudo-random bytes (distinct for every `i` in practice).
fn key(i: u64) -> [u8; KEY_BYTES] {
    let mut k = [0u8; KEY_BYTES];
    for (j, c) in k.chunks_exact_mut(8).enumerate() {
        c.copy_from_slice(&splitmix64(i * 4 + j as u64).to_le_bytes());
    }
    k
}

fn value(i: u64) -> [u8; VALUE_BYTES] {
    let mut v = [0u8; VALUE_BYTES];
    for (j, c) in v.chunks_exact_mut(8).enumerate() {
        c.copy_from_slice(&splitmix64(!i ^ j as u64).to_le_bytes());
    }
    v
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Cairn,
    CairnBuffered,
    CairnCache64m,
    CairnCache1g,
    Redb,
}

impl Kind {
    fn parse(s: &str) -> Kind {
        match s.trim() {
            "cairn" => Kind::Cairn,
            "cairn-buffered" => Kind::CairnBuffered,
            "cairn-cache64m" => Kind::CairnCache64m,
            "cairn-cache1g" => Kind::CairnCache1g,
            "redb" => Kind::Redb,
            other => panic!("CAIRN_BENCH_ENGINES: unknown engine {other:?}"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Cairn => "cairn",
            Kind::CairnBuffered => "cairn-buffered",
            Kind::CairnCache64m => "cairn-cache64m",
            Kind::CairnCache1g => "cairn-cache1g",
            Kind::Redb => "redb",
        }
    }
}

enum Store {
    Cairn(Db),
    Redb(redb::Database),
}

enum Reader {
    Cairn(ReadTxn),
    Redb(redb::ReadOnlyTable<&'static [u8], &'static [u8]>),
}

impl Store {
    fn open(kind: Kind, dir: &Path) -> Store {
        let mut opts = Options::default();
        match kind {
            Kind::Redb => {
                let db = redb::Database::create(dir.join("redb")).expect("redb create");
                let w = db.begin_write().expect("redb begin_write");
                w.open_table(TABLE).expect("redb open_table");
                w.commit().expect("redb commit");
                return Store::Redb(db);
            }
            Kind::Cairn => {}
            Kind::CairnBuffered => opts.direct_io = false,
            Kind::CairnCache64m => opts.cache_size_bytes = 64 << 20,
            Kind::CairnCache1g => opts.cache_size_bytes = 1 << 30,
        }
        let db = Db::open_path(&dir.join("db"), opts).expect("cairn open");
        let mut w = db.begin_write().expect("cairn begin_write");
        w.create_keyspace(KEYSPACE).expect("cairn create_keyspace");
        w.commit().expect("cairn commit");
        Store::Cairn(db)
    }

    /// Puts keys `first..first + BATCH_KEYS` and commits durably.
    fn insert_batch(&self, first: u64) {
        match self {
            Store::Cairn(db) => {
                let mut w = db.begin_write().expect("cairn begin_write");
                for i in first..first + BATCH_KEYS {
                    w.put(KEYSPACE, &key(i), &value(i)).expect("cairn put");
                }
                w.commit().expect("cairn commit");
            }
            Store::Redb(db) => {
                let w = db.begin_write().expect("redb begin_write");
                {
                    let mut t = w.open_table(TABLE).expect("redb open_table");
                    for i in first..first + BATCH_KEYS {
                        t.insert(&key(i)[..], &value(i)[..]).expect("redb insert");
                    }
                }
                w.commit().expect("redb commit");
            }
        }
    }

    fn reader(&self) -> Reader {
        match self {
            Store::Cairn(db) => Reader::Cairn(db.begin_read().expect("cairn begin_read")),
            Store::Redb(db) => {
                let r = db.begin_read().expect("redb begin_read");
                Reader::Redb(r.open_table(TABLE).expect("redb open_table"))
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Store::Cairn(db) => {
                let s = db.stats();
                format!(
                    "direct_io={} file={} MiB cache hits/misses={}/{}",
                    db.uses_direct_io(),
                    s.file_len_bytes >> 20,
                    s.cache_hits,
                    s.cache_misses
                )
            }
            Store::Redb(_) => "redb defaults (1 GiB cache, Durability::Immediate)".into(),
        }
    }
}

impl Reader {
    /// Length of key `i`'s value (which must exist).
    fn get_len(&self, i: u64) -> usize {
        let k = key(i);
        let n = match self {
            // Both borrow the value from the engine's cache (redb's
            // AccessGuard, Cairn's ValueGuard): neither copies it.
            Reader::Cairn(r) => r
                .get_ref(KEYSPACE, &k)
                .expect("cairn get_ref")
                .map(|v| v.len()),
            Reader::Redb(t) => t.get(&k[..]).expect("redb get").map(|v| v.value().len()),
        };
        n.unwrap_or_else(|| panic!("key {i} is missing"))
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={s:?} is not a number")),
        Err(_) => default,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Loads keys `0..n` in durable batches; prints per-commit latencies.
fn load(store: &Store, kind: Kind, n: u64) {
    let start = Instant::now();
    let mut lat = Vec::with_capacity((n / BATCH_KEYS) as usize);
    let mut first = 0;
    while first < n {
        let t = Instant::now();
        store.insert_batch(first);
        lat.push(t.elapsed());
        first += BATCH_KEYS;
    }
    let total = start.elapsed();
    lat.sort_unstable();
    eprintln!(
        "load {:>14}: {n} keys in {:.1} s ({:.0} keys/s); per 1000-key commit median {:.2} ms, p99 {:.2} ms; {}",
        kind.name(),
        total.as_secs_f64(),
        n as f64 / total.as_secs_f64(),
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        store.describe(),
    );
}

fn page_file(c: &mut Criterion) {
    let n = env_u64("CAIRN_BENCH_KEYS", 1_000_000).max(BATCH_KEYS) / BATCH_KEYS * BATCH_KEYS;
    let engines = std::env::var("CAIRN_BENCH_ENGINES").unwrap_or_else(|_| "cairn,redb".into());
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("page_file_bench");
    std::fs::create_dir_all(&root).expect("bench dir");
    for kind in engines.split(',').map(Kind::parse) {
        let dir = tempfile::tempdir_in(&root).expect("temp dir");
        let store = Store::open(kind, dir.path());
        load(&store, kind, n);
        let mut next = n;

        let mut g = c.benchmark_group("insert_batch_1000");
        g.sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            // Short: every iteration adds 1000 keys, and the file should
            // stay near the loaded size (~5% more at 1M keys).
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
        g.bench_function(kind.name(), |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                for _ in 0..iters {
                    store.insert_batch(next);
                    next += BATCH_KEYS;
                }
                t.elapsed()
            })
        });
        g.finish();

        let reader = store.reader();
        let mut rng = 0x5eed_u64;
        let mut g = c.benchmark_group("point_read");
        g.sample_size(30)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(5));
        g.bench_function(kind.name(), |b| {
            b.iter(|| {
                rng = splitmix64(rng);
                black_box(reader.get_len(rng % next))
            })
        });
        g.finish();
        drop(reader);
        eprintln!("after {:>14}: {}", kind.name(), store.describe());
    }
}

criterion_group!(benches, page_file);
criterion_main!(benches);
