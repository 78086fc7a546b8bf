//! The page file (`member/db`) behind the MVCC store: loading it at start,
//! and the backend thread that commits the store's changes in batches.
//!
//! ```text
//!  apply executor ── Batch (changes + applied index) ──► backend thread
//!        │                                               WriteTxn: records, meta
//!        │                                               commit (write, sync, meta, sync)
//!        │                                               release absorbed WAL segments
//!        └─ Snapshot / Defrag requests ─────────────────► (answered on a oneshot)
//! ```
//!
//! The thread owns the [`Db`]; nothing else writes it. A batch's records
//! and the applied index they bring the file to commit atomically, so at
//! any crash the file is the state after some applied index `A` and the
//! WAL (which still holds every entry after `A`: segments are released
//! only once a commit covers them) replays the rest. A failed commit ends
//! the process (like a failed WAL fsync): restart recovers from the WAL.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use cairn_storage::btree::{BtreeError, Db, Options, ReadTxn, WriteTxn};
use cairn_storage::layout::{self, Record};
use crossbeam::channel::{Receiver, Sender};
use futures_channel::oneshot;

use crate::mvcc::{Change, Revision, Store};

/// Why the page file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("page file: {0}")]
    Btree(#[from] BtreeError),
    #[error("page file {path}: {reason}")]
    Invalid { path: String, reason: String },
}

/// The page file as the apply executor reads it: the backend thread swaps
/// the `Db` when it defragments.
pub type SharedDb = Arc<std::sync::RwLock<Arc<Db>>>;

fn current(db: &SharedDb) -> Arc<Db> {
    db.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Reads values the store evicted from memory: each is its history record
/// in the last committed version (the store evicts only values a commit
/// made durable, and compaction drops a record from the file only after
/// dropping it from the store).
/// A bounded [`ValueCache`](super::value_cache::ValueCache) sits in front
/// (`--backend-value-cache-bytes`): recently written and recently read
/// values skip the tree descent.
pub struct PageValues {
    pub db: SharedDb,
    pub cache: std::sync::Mutex<super::value_cache::ValueCache>,
}

impl PageValues {
    pub fn new(db: SharedDb, cache_bytes: usize) -> PageValues {
        PageValues {
            db,
            cache: std::sync::Mutex::new(super::value_cache::ValueCache::new(cache_bytes)),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, super::value_cache::ValueCache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read_record(&self, revision: Revision, key: &[u8]) -> Result<Vec<u8>, String> {
        let db = current(&self.db);
        let r = db.begin_read().map_err(|e| e.to_string())?;
        let rec = r
            .get(layout::KEYSPACE_KEY, &layout::history_key(revision, key))
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no history record at revision {revision}"))?;
        match layout::decode_record(&rec)? {
            Record::Put { value, .. } => Ok(value.to_vec()),
            Record::Tombstone => Err(format!("the record at revision {revision} is a tombstone")),
        }
    }
}

impl std::fmt::Debug for PageValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageValues")
    }
}

impl crate::mvcc::ValueSource for PageValues {
    fn fetch(&self, revision: Revision, key: &[u8]) -> Result<Vec<u8>, String> {
        if let Some(v) = self.cache().get(revision, key) {
            return Ok(v.to_vec());
        }
        let v = self.read_record(revision, key)?;
        self.cache().insert(revision, key, v.as_slice().into());
        Ok(v)
    }

    fn offer(&self, revision: Revision, key: &[u8], value: Box<[u8]>) {
        self.cache().insert(revision, key, value.into());
    }
}

/// What the file holds, read at start.
pub struct Loaded {
    pub store: Store,
    pub applied_index: u64,
    pub applied_term: u64,
    /// The encoded membership (None in a file written before Raft).
    pub members: Option<Vec<u8>>,
    pub alarms: Vec<(u64, u8)>,
    /// (id, granted TTL, remaining TTL) of every lease.
    pub leases: Vec<super::lease_state::StoredLease>,
    /// History records read.
    pub records: u64,
}

/// Reads the page file `db` holds back (after a snapshot install), with
/// values fetched from it through a cache of `value_cache_bytes`.
pub fn reload(
    db: &SharedDb,
    path: &Path,
    value_cache_bytes: usize,
) -> Result<Loaded, BackendError> {
    let mut loaded = load(&current(db), path)?;
    loaded
        .store
        .set_value_source(Arc::new(PageValues::new(db.clone(), value_cache_bytes)));
    Ok(loaded)
}

/// Opens `path` (creating it with the keyspaces) and reads it back.
pub fn open(
    path: &Path,
    opts: Options,
    value_cache_bytes: usize,
) -> Result<(SharedDb, Loaded), BackendError> {
    prefetch(path);
    let db = Db::open_path(path, opts)?;
    ensure_layout(&db, path)?;
    let db: SharedDb = Arc::new(std::sync::RwLock::new(Arc::new(db)));
    let mut loaded = load(&current(&db), path)?;
    // Values stay in the file; reads (and applies that need an old value)
    // fetch them.
    loaded
        .store
        .set_value_source(Arc::new(PageValues::new(db.clone(), value_cache_bytes)));
    Ok((db, loaded))
}

/// Asks the kernel to read the whole file ahead: the start-up scan then
/// finds its pages in the page cache instead of waiting on the device for
/// each leaf in turn (leaves are not in file order after copy-on-write).
fn prefetch(path: &Path) {
    use std::os::fd::AsRawFd;
    if let Ok(f) = std::fs::File::open(path) {
        // SAFETY: advice on a descriptor we own; 0/0 means the whole file.
        let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_WILLNEED) };
        if rc != 0 {
            tracing::debug!(rc, "posix_fadvise(WILLNEED) on the page file failed");
        }
    }
}

fn invalid(path: &Path, reason: impl Into<String>) -> BackendError {
    BackendError::Invalid {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

fn ensure_layout(db: &Db, path: &Path) -> Result<(), BackendError> {
    let r = db.begin_read()?;
    let names = r.keyspaces()?;
    let has = |n: &str| names.iter().any(|x| x == n);
    if has(layout::KEYSPACE_KEY) && has(layout::KEYSPACE_META) {
        if !has(layout::KEYSPACE_LEASE) {
            // A file written before leases: it gains the (empty) keyspace.
            drop(r);
            let mut w = db.begin_write()?;
            w.create_keyspace(layout::KEYSPACE_LEASE)?;
            w.commit()?;
            return ensure_layout(db, path);
        }
        let v = r.get(layout::KEYSPACE_META, layout::META_LAYOUT_VERSION)?;
        let v = v
            .as_deref()
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes);
        return match v {
            Some(layout::LAYOUT_VERSION) => Ok(()),
            other => Err(invalid(
                path,
                format!(
                    "layout version {other:?}, this cairnd reads {}",
                    layout::LAYOUT_VERSION
                ),
            )),
        };
    }
    drop(r);
    let mut w = db.begin_write()?;
    w.create_keyspace(layout::KEYSPACE_KEY)?;
    w.create_keyspace(layout::KEYSPACE_META)?;
    w.create_keyspace(layout::KEYSPACE_LEASE)?;
    w.put(
        layout::KEYSPACE_META,
        layout::META_LAYOUT_VERSION,
        &layout::LAYOUT_VERSION.to_le_bytes(),
    )?;
    w.commit()?;
    Ok(())
}

fn meta_u64(r: &ReadTxn, key: &[u8], path: &Path) -> Result<Option<u64>, BackendError> {
    match r.get(layout::KEYSPACE_META, key)? {
        None => Ok(None),
        Some(v) => layout::decode_u64(&v).map(Some).ok_or_else(|| {
            invalid(
                path,
                format!("meta {} is not 8 bytes", String::from_utf8_lossy(key)),
            )
        }),
    }
}

fn load(db: &Db, path: &Path) -> Result<Loaded, BackendError> {
    let started = Instant::now();
    let r = db.begin_read()?;
    let applied_index = meta_u64(&r, layout::META_APPLIED_INDEX, path)?.unwrap_or(0);
    let applied_term = meta_u64(&r, layout::META_APPLIED_TERM, path)?.unwrap_or(0);
    let members = r
        .get(layout::KEYSPACE_META, layout::META_MEMBERS)?
        .map(|v| v.to_vec());
    let current = meta_u64(&r, layout::META_CURRENT_REVISION, path)?.map(|v| v as i64);
    let compact = meta_u64(&r, layout::META_COMPACT_REVISION, path)?.map(|v| v as i64);
    let alarms = match r.get(layout::KEYSPACE_META, layout::META_ALARMS)? {
        None => Vec::new(),
        Some(v) => layout::decode_alarms(&v).ok_or_else(|| invalid(path, "bad alarm list"))?,
    };
    let mut leases = Vec::new();
    r.scan(layout::KEYSPACE_LEASE, |k, v| -> Result<(), BackendError> {
        let id = layout::decode_i64(k).ok_or_else(|| invalid(path, "lease id is not 8 bytes"))?;
        let (ttl, remaining) = layout::decode_lease(v)
            .ok_or_else(|| invalid(path, format!("lease {id:x}: record is not 16 bytes")))?;
        leases.push((id, ttl, remaining));
        Ok(())
    })?;
    let mut store = Store::new();
    // The history is most of a restart: every core reads a part of it.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let loaded = r.scan_parallel(
        layout::KEYSPACE_KEY,
        threads,
        Vec::new,
        |part: &mut Vec<crate::mvcc::LoadedRecord>, k, v| -> Result<(), BackendError> {
            let (revision, key) = layout::split_history_key(k)
                .ok_or_else(|| invalid(path, "a history key too short for a revision"))?;
            let bad = |why: String| {
                let key = String::from_utf8_lossy(key);
                invalid(path, format!("history record {revision} {key:?}: {why}"))
            };
            let put = match layout::decode_record(v).map_err(bad)? {
                Record::Put {
                    create_revision,
                    version,
                    lease,
                    value,
                } => Some(crate::mvcc::LoadedPut {
                    create_revision,
                    version,
                    lease,
                    value_len: value.len(),
                }),
                Record::Tombstone => None,
            };
            part.push(crate::mvcc::LoadedRecord {
                key: key.into(),
                revision,
                put,
            });
            Ok(())
        },
    )?;
    let records = loaded.iter().map(Vec::len).sum::<usize>() as u64;
    let scanned = Instant::now();
    store.restore_all(loaded).map_err(|e| invalid(path, e))?;
    tracing::debug!(
        records,
        scan_ms = (scanned - started).as_millis() as u64,
        index_ms = scanned.elapsed().as_millis() as u64,
        "rebuilt the index"
    );
    let current = current.unwrap_or(store.current_revision());
    store
        .finish_restore(current, compact.unwrap_or(-1))
        .map_err(|e| invalid(path, e))?;
    Ok(Loaded {
        store,
        applied_index,
        applied_term,
        members,
        alarms,
        leases,
        records,
    })
}

/// One commit's worth of the store's progress.
pub struct Batch {
    pub changes: Vec<Change>,
    pub applied_index: u64,
    pub current_revision: Revision,
    /// -1 before the first compaction.
    pub compact_revision: Revision,
    pub alarms: Vec<(u64, u8)>,
    pub applied_term: u64,
    pub members: Vec<u8>,
    /// Leases granted, checkpointed (`Some((ttl, remaining))`) or revoked
    /// (`None`) since the last batch.
    pub leases: Vec<(i64, Option<(i64, i64)>)>,
}

/// A snapshot file the backend wrote.
pub struct SnapshotFile {
    pub path: PathBuf,
    pub size_bytes: u64,
    pub revision: Revision,
}

/// What a defragmentation did.
pub struct DefragReport {
    pub before_bytes: u64,
    pub after_bytes: u64,
}

pub enum Cmd {
    Commit(Batch),
    /// Write a snapshot of the last commit to `path`.
    Snapshot {
        path: PathBuf,
        reply: oneshot::Sender<Result<SnapshotFile, String>>,
    },
    Defrag(oneshot::Sender<Result<DefragReport, String>>),
    /// Make the page-file image `image` (through `applied_index`) the page
    /// file: a leader's snapshot this member fell behind.
    Install {
        image: PathBuf,
        applied_index: u64,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Answered once every command queued before it is done (a physical
    /// compaction waits for its records to leave the file).
    Barrier(oneshot::Sender<()>),
    /// Finish every queued command, then stop.
    Stop(oneshot::Sender<()>),
}

/// Counters other executors read (relaxed atomics: statistics).
#[derive(Default, Debug)]
pub struct BackendStats {
    /// Applied index the file durably holds.
    pub durable_applied_index: AtomicU64,
    /// Store revision the file durably holds (values through it may leave
    /// memory).
    pub durable_revision: AtomicU64,
    pub commits: AtomicU64,
}

/// Where the backend thread keeps its files and how it releases the WAL.
pub struct BackendConfig {
    pub db_path: PathBuf,
    pub db_opts: Options,
    pub wal_dir: PathBuf,
    /// Applied entries between WAL releases.
    pub snapshot_count: u64,
    pub max_wals: usize,
    /// CPU to pin the thread to.
    pub cpu: Option<usize>,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// The apply side's end of the backend thread.
#[derive(Clone)]
pub struct BackendHandle {
    tx: Sender<Cmd>,
    pub stats: Arc<BackendStats>,
    /// The page file (swapped in place by defrag and snapshot install).
    pub db: SharedDb,
}

impl BackendHandle {
    /// Queues a command; false if the thread is gone.
    pub fn send(&self, cmd: Cmd) -> bool {
        self.tx.send(cmd).is_ok()
    }
}

/// Starts the backend thread with the opened file.
pub fn spawn(
    db: SharedDb,
    applied_index: u64,
    cfg: BackendConfig,
) -> std::io::Result<BackendHandle> {
    let (tx, rx) = crossbeam::channel::unbounded();
    let stats = Arc::new(BackendStats::default());
    stats.durable_applied_index.store(applied_index, Relaxed);
    let thread = BackendThread {
        db: db.clone(),
        cfg,
        stats: stats.clone(),
        released_at: applied_index,
    };
    thread.publish_size();
    // Segments a previous run's commits covered (each restart rolls a new
    // segment, so they accumulate without writes otherwise).
    thread.release_wal(applied_index);
    std::thread::Builder::new()
        .name("cairn-backend".into())
        .spawn(move || {
            if let Some(cpu) = thread.cfg.cpu {
                pin_to(cpu);
            }
            thread
                .cfg
                .metrics
                .executors
                .register_current(crate::metrics::Executor::Backend, thread.cfg.cpu);
            thread.run(rx)
        })?;
    Ok(BackendHandle { tx, stats, db })
}

fn pin_to(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes inside it, and
    // sched_setaffinity(0, ..) only affects the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            tracing::debug!(cpu, "could not pin the backend thread");
        }
    }
}

/// Most queued batches merged into one commit.
const MAX_MERGED_BATCHES: usize = 64;

struct BackendThread {
    db: SharedDb,
    cfg: BackendConfig,
    stats: Arc<BackendStats>,
    /// Applied index at the last WAL release.
    released_at: u64,
}

fn fatal(what: &str, e: impl std::fmt::Display) -> ! {
    tracing::error!(error = %e, "{what} failed; stopping (restart recovers from the WAL)");
    eprintln!("cairnd: fatal: {what}: {e}");
    std::process::exit(1);
}

impl BackendThread {
    fn run(mut self, rx: Receiver<Cmd>) {
        let mut next = None;
        loop {
            let cmd = match next.take() {
                Some(c) => c,
                None => match rx.recv() {
                    Ok(c) => c,
                    Err(_) => return,
                },
            };
            match cmd {
                Cmd::Commit(b) => {
                    let mut batches = vec![b];
                    while batches.len() < MAX_MERGED_BATCHES {
                        match rx.try_recv() {
                            Ok(Cmd::Commit(b)) => batches.push(b),
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    if let Err(e) = self.commit(batches) {
                        fatal("page file commit", e);
                    }
                }
                Cmd::Snapshot { path, reply } => {
                    let _ = reply.send(self.snapshot(path).map_err(|e| e.to_string()));
                }
                Cmd::Install {
                    image,
                    applied_index,
                    reply,
                } => {
                    let _ = reply.send(self.install(&image, applied_index));
                }
                Cmd::Defrag(reply) => {
                    let _ = reply.send(self.defrag());
                }
                Cmd::Barrier(reply) => {
                    let _ = reply.send(());
                }
                Cmd::Stop(reply) => {
                    let _ = reply.send(());
                    return;
                }
            }
        }
    }

    /// Commits the batches' new records with the meta entries in one
    /// transaction, then deletes the records compaction dropped in further
    /// transactions of at most [`DROPS_PER_COMMIT`] (a compaction can drop
    /// millions: one transaction would copy most of the tree at once).
    /// A crash between them leaves dropped records behind, which the
    /// restart's `recompact` drops again.
    fn commit(&mut self, batches: Vec<Batch>) -> Result<(), BtreeError> {
        let started = Instant::now();
        let db = current(&self.db);
        let mut w = db.begin_write()?;
        let mut changes = 0usize;
        let mut drops = Vec::new();
        for b in &batches {
            changes += b.changes.len();
            apply_changes(&mut w, &b.changes, &mut drops)?;
            for (id, rec) in &b.leases {
                let k = layout::encode_i64(*id);
                match rec {
                    Some((ttl, remaining)) => w.put(
                        layout::KEYSPACE_LEASE,
                        &k,
                        &layout::encode_lease(*ttl, *remaining),
                    )?,
                    None => w.delete(layout::KEYSPACE_LEASE, &k)?,
                };
            }
        }
        let last = batches.last().expect("invariant: at least one batch");
        let meta = layout::KEYSPACE_META;
        w.put(
            meta,
            layout::META_APPLIED_INDEX,
            &layout::encode_u64(last.applied_index),
        )?;
        w.put(
            meta,
            layout::META_APPLIED_TERM,
            &layout::encode_u64(last.applied_term),
        )?;
        w.put(meta, layout::META_MEMBERS, &last.members)?;
        w.put(
            meta,
            layout::META_CURRENT_REVISION,
            &layout::encode_i64(last.current_revision),
        )?;
        w.put(
            meta,
            layout::META_COMPACT_REVISION,
            &layout::encode_i64(last.compact_revision),
        )?;
        w.put(
            meta,
            layout::META_ALARMS,
            &layout::encode_alarms(&last.alarms),
        )?;
        self.timed_commit(w)?;
        // Compaction lists drops key by key; in the file they are ordered by
        // revision. Sorted, each commit's deletes share leaves instead of
        // copying a page per delete.
        drops.sort_unstable();
        for chunk in drops.chunks(DROPS_PER_COMMIT) {
            let mut w = db.begin_write()?;
            for (revision, key) in chunk {
                w.delete(layout::KEYSPACE_KEY, &layout::history_key(*revision, key))?;
            }
            self.timed_commit(w)?;
        }
        if !drops.is_empty() {
            tracing::info!(
                records = drops.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "removed compacted history from the page file"
            );
        }
        self.publish_size();
        self.stats
            .durable_applied_index
            .store(last.applied_index, Relaxed);
        self.stats
            .durable_revision
            .store(last.current_revision.max(0) as u64, Relaxed);
        self.stats.commits.fetch_add(1, Relaxed);
        tracing::trace!(
            changes,
            applied_index = last.applied_index,
            elapsed_us = started.elapsed().as_micros() as u64,
            "page file commit"
        );
        if last.applied_index >= self.released_at + self.cfg.snapshot_count {
            self.released_at = last.applied_index;
            self.release_wal(last.applied_index);
        }
        Ok(())
    }

    /// Commits `w`, recording the time in
    /// `etcd_disk_backend_commit_duration_seconds`.
    fn timed_commit(&self, w: cairn_storage::btree::WriteTxn<'_>) -> Result<(), BtreeError> {
        let started = Instant::now();
        w.commit()?;
        self.cfg
            .metrics
            .backend_commit_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(())
    }

    fn release_wal(&self, applied_index: u64) {
        if let Err(e) = cairn_storage::wal::release_segments(
            &self.cfg.wal_dir,
            applied_index,
            self.cfg.max_wals,
        ) {
            tracing::warn!(error = %e, "could not release WAL segments");
        }
    }

    fn publish_size(&self) {
        let s = current(&self.db).stats();
        // Pages freed by recent commits but still visible to an older
        // version are garbage of the current one: not in use.
        let live_pages = s
            .page_count
            .saturating_sub(s.free_pages)
            .saturating_sub(s.pending_pages);
        let in_use = live_pages * u64::from(s.page_size_bytes);
        // Pages in use (not free) times the page size; read by status and
        // /metrics.
        let sizes = &self.cfg.metrics.db_sizes;
        sizes.file_len_bytes.store(s.file_len_bytes, Relaxed);
        sizes.in_use_bytes.store(in_use, Relaxed);
    }

    /// Writes a snapshot of the last commit: a compact copy of the file,
    /// sealed with its hash. The copy runs on this thread; commits queue
    /// behind it (the WAL keeps them durable meanwhile).
    fn snapshot(&mut self, path: PathBuf) -> Result<SnapshotFile, String> {
        let started = Instant::now();
        let r = current(&self.db).begin_read().map_err(|e| e.to_string())?;
        let revision = meta_u64(&r, layout::META_CURRENT_REVISION, &self.cfg.db_path)
            .map_err(|e| e.to_string())?
            .unwrap_or(1) as i64;
        r.compact_to(&path, self.cfg.db_opts.clone())
            .map_err(|e| e.to_string())?;
        let info = cairn_storage::snapshot::seal(&path).map_err(|e| e.to_string())?;
        tracing::info!(
            path = %path.display(),
            bytes = info.file_len_bytes,
            revision,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "snapshot written"
        );
        Ok(SnapshotFile {
            path,
            size_bytes: info.file_len_bytes,
            revision,
        })
    }

    /// Rewrites the file compactly and swaps it in. Reads never stop (they
    /// are served from memory) and writes keep going into the WAL; their
    /// commits wait here.
    /// Makes the page-file image at `image` (a leader's snapshot, through
    /// `applied_index`) this member's page file.
    fn install(&mut self, image: &Path, applied_index: u64) -> Result<(), String> {
        std::fs::rename(image, &self.cfg.db_path)
            .map_err(|e| format!("renaming {}: {e}", image.display()))?;
        sync_parent(&self.cfg.db_path)?;
        match Db::open_path(&self.cfg.db_path, self.cfg.db_opts.clone()) {
            Ok(db) => *self.db.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(db),
            Err(e) => fatal("opening the installed snapshot", e),
        }
        self.stats
            .durable_applied_index
            .store(applied_index, Relaxed);
        self.released_at = applied_index;
        self.publish_size();
        Ok(())
    }

    fn defrag(&mut self) -> Result<DefragReport, String> {
        let started = Instant::now();
        let before_bytes = current(&self.db).stats().file_len_bytes;
        let tmp = defrag_path(&self.cfg.db_path);
        current(&self.db)
            .compact_to(&tmp, self.cfg.db_opts.clone())
            .map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, &self.cfg.db_path)
            .map_err(|e| format!("renaming {}: {e}", tmp.display()))?;
        sync_parent(&self.cfg.db_path)?;
        // From here the new file is the page file; reopening it cannot
        // fail short of I/O errors, which end the process.
        match Db::open_path(&self.cfg.db_path, self.cfg.db_opts.clone()) {
            Ok(db) => *self.db.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(db),
            Err(e) => fatal("reopening the defragmented page file", e),
        }
        self.publish_size();
        let after_bytes = current(&self.db).stats().file_len_bytes;
        tracing::info!(
            before_bytes,
            after_bytes,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "defragmented the page file"
        );
        Ok(DefragReport {
            before_bytes,
            after_bytes,
        })
    }
}

/// Deletes of compacted history records per page-file commit.
pub const DROPS_PER_COMMIT: usize = 10_000;

/// Writes the puts and tombstones; collects the drops for later commits.
fn apply_changes<'c>(
    w: &mut WriteTxn<'_>,
    changes: &'c [Change],
    drops: &mut Vec<(Revision, &'c [u8])>,
) -> Result<(), BtreeError> {
    let ks = layout::KEYSPACE_KEY;
    for c in changes {
        match c {
            Change::Put {
                revision,
                key,
                create_revision,
                version,
                lease,
                value,
            } => {
                let rec = Record::Put {
                    create_revision: *create_revision,
                    version: *version,
                    lease: *lease,
                    value,
                };
                w.put(ks, &layout::history_key(*revision, key), &rec.encode())?;
            }
            Change::Tombstone { revision, key } => {
                let k = layout::history_key(*revision, key);
                w.put(ks, &k, &Record::Tombstone.encode())?;
            }
            Change::Drop { revision, key } => drops.push((*revision, key)),
        }
    }
    Ok(())
}

/// Where a defragmentation writes the new file before swapping it in.
pub fn defrag_path(db_path: &Path) -> PathBuf {
    let mut p = db_path.as_os_str().to_owned();
    p.push(".defrag");
    PathBuf::from(p)
}

fn sync_parent(path: &Path) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("syncing {}: {e}", dir.display()))
}
