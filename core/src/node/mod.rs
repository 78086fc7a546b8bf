//! The node runtime: recovery at start, the executors, and the tasks that
//! connect the network, the WAL writer and the state machine.
//!
//! ```text
//!  clients ──► connection tasks ──► Node::handle ──reads──► NodeState (MVCC)
//!                                        │ writes                ▲
//!                                        ▼                       │ apply in order,
//!                               proposals channel                │ answer waiters
//!                                        ▼                       │
//!                       WAL executor: group commit ──durable batches──┘
//! ```
//! With two CPUs the WAL writer has its own pinned executor and glommio's
//! cross-executor channels connect it; with one, everything shares one.

mod backend;
mod channel;
mod convert;
mod error;
mod handler;
mod respond;
mod snapshot_serve;
mod state;
mod value_cache;
mod wal_task;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use cairn_net::server::{serve_connection, Handler, ServerLimits};
use cairn_storage::wal::{self, DirectIo, RecordKind, TailPosition, Wal, WalOptions};
use glommio::channels::local_channel;
use glommio::{LocalExecutorBuilder, Placement};

use crate::config::Config;

pub use error::RequestError;
pub use state::{Ids, NodeState, MAX_KEY_BYTES};

use channel::{Rx, Tx};
use glommio::channels::shared_channel::{SharedReceiver, SharedSender};
use handler::Node;
use wal_task::{Proposal, WalEvent, WalStats};

/// Until Raft lands, a single member is leader in term 1 forever.
const TERM: u64 = 1;

/// Proposals buffered between the apply executor and the WAL executor.
const PROPOSAL_CHANNEL_CAPACITY: usize = 8192;

/// Why the node could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{0}")]
    Wal(#[from] wal::WalError),
    #[error("cannot use data dir {}: {source}", path.display())]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("data dir {} is in use by another cairnd process", path.display())]
    Locked { path: PathBuf },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the io_uring executor: {0}")]
    IoUring(String),
    #[error("{0}")]
    BadEntry(#[from] state::BadEntry),
    #[error("{0}")]
    Backend(#[from] backend::BackendError),
    #[error("{0}")]
    Inconsistent(String),
}

/// The member and cluster ids, derived from the configuration as etcd
/// does (a hash of the peer URLs and the cluster token).
pub fn compute_ids(cfg: &Config) -> Ids {
    use xxhash_rust::xxh3::xxh3_64;
    let member_id_of = |urls: &[String]| {
        let mut u = urls.to_vec();
        u.sort();
        xxh3_64(format!("{}|{}", u.join(","), cfg.initial_cluster_token).as_bytes())
    };
    let mut ids: Vec<u64> = cfg
        .initial_cluster
        .iter()
        .map(|m| member_id_of(&m.peer_urls))
        .collect();
    ids.sort_unstable();
    let mut buf = Vec::new();
    for id in &ids {
        buf.extend_from_slice(&id.to_le_bytes());
    }
    buf.extend_from_slice(cfg.initial_cluster_token.as_bytes());
    Ids {
        cluster_id: xxh3_64(&buf),
        member_id: member_id_of(&cfg.initial_advertise_peer_urls),
    }
}

fn wal_options(cfg: &Config) -> WalOptions {
    let block = 4096u64;
    let need = (cfg.max_request_bytes as u64 + 64 * 1024).div_ceil(block) * block;
    let max_batch_bytes = need.max(4 << 20);
    WalOptions {
        segment_size_bytes: cfg.wal_segment_bytes.max(max_batch_bytes + block),
        max_batch_bytes,
        direct_io: DirectIo::Auto,
    }
}

/// Holds an exclusive flock on `member/lock` for the life of the process.
struct DirLock(#[allow(dead_code)] std::fs::File);

fn lock_data_dir(member_dir: &Path) -> Result<DirLock, NodeError> {
    use std::os::fd::AsRawFd;
    let path = member_dir.join("lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| NodeError::DataDir {
            path: path.clone(),
            source,
        })?;
    // SAFETY: flock on a file descriptor we own.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(NodeError::Locked {
            path: member_dir.parent().unwrap_or(member_dir).to_path_buf(),
        });
    }
    Ok(DirLock(f))
}

fn create_dirs(cfg: &Config) -> Result<(PathBuf, PathBuf), NodeError> {
    use std::os::unix::fs::DirBuilderExt;
    let member = cfg.data_dir.join("member");
    let wal_dir = member.join("wal");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&wal_dir)
        .map_err(|source| NodeError::DataDir {
            path: wal_dir.clone(),
            source,
        })?;
    Ok((member, wal_dir))
}

/// Binds every client listener now, so that a port in use is an error at
/// start. (glommio's own bind sets SO_REUSEPORT, which would let two nodes
/// share a port silently.)
///
/// A port still held for a moment by a killed predecessor is waited for:
/// after kill -9 the kernel tears down the old process's io_uring
/// asynchronously, and an accept still queued there keeps the listening
/// socket bound until that finishes.
fn bind_listeners(addrs: &[SocketAddr]) -> Result<Vec<std::net::TcpListener>, NodeError> {
    const PORT_WAIT: std::time::Duration = std::time::Duration::from_secs(3);
    let start = Instant::now();
    addrs
        .iter()
        .map(|a| loop {
            match std::net::TcpListener::bind(a) {
                Ok(l) => return Ok(l),
                Err(e)
                    if e.kind() == std::io::ErrorKind::AddrInUse && start.elapsed() < PORT_WAIT =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(source) => return Err(NodeError::Listen { addr: *a, source }),
            }
        })
        .collect()
}

/// Starts the node and serves until the process is killed.
pub fn run(mut cfg: Config) -> Result<(), NodeError> {
    // glommio opens directories relative to no descriptor, so relative
    // paths (the default `<name>.cairn`) must be made absolute first.
    cfg.data_dir = std::path::absolute(&cfg.data_dir).map_err(|source| NodeError::DataDir {
        path: cfg.data_dir.clone(),
        source,
    })?;
    let (member_dir, wal_dir) = create_dirs(&cfg)?;
    let _lock = lock_data_dir(&member_dir)?;
    let opts = wal_options(&cfg);
    let started = Instant::now();
    let db_path = member_dir.join("db");
    let snap_dir = member_dir.join("snap");
    remove_leftovers(&db_path, &snap_dir)?;
    let db_opts = cairn_storage::btree::Options {
        cache_size_bytes: cfg.backend_cache_bytes,
        ..Default::default()
    };
    let (db, loaded) = backend::open(
        &db_path,
        db_opts.clone(),
        cfg.backend_value_cache_bytes as usize,
    )?;
    let applied = loaded.applied_index;
    tracing::info!(
        records = loaded.records,
        applied_index = applied,
        revision = loaded.store.current_revision(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "loaded the page file"
    );
    // Segments the page file absorbed are not read (they are only kept
    // for --max-wals).
    let recovered = wal::recover_after(&wal_dir, &opts, Some(applied))?;
    if let Some(t) = &recovered.torn_tail {
        tracing::warn!(path = %t.path.display(), offset = t.offset, zeroed = t.zeroed_bytes, reason = %t.reason, "truncated a torn WAL tail");
    }
    check_wal_covers(&recovered, applied)?;
    let ids = compute_ids(&cfg);
    let alarms = crate::alarm::AlarmSet::from_codes(&loaded.alarms).ok_or_else(|| {
        NodeError::Inconsistent(format!(
            "{}: unknown alarm in the page file",
            db_path.display()
        ))
    })?;
    let mut store = loaded.store;
    store.record_changes(true);
    let leftovers = store.recompact();
    if leftovers > 0 {
        tracing::info!(
            records = leftovers,
            "dropping compacted history an interrupted commit left in the page file"
        );
    }
    let mut state = NodeState::restored(
        ids,
        TERM,
        cfg.max_txn_ops,
        cfg.quota_bytes,
        store,
        applied,
        alarms,
    );
    let mut replayed = 0u64;
    for r in &recovered.records {
        if r.kind == RecordKind::Entry && r.index > applied {
            state.apply(r.index, &r.data)?;
            replayed += 1;
        }
    }
    tracing::info!(
        entries = replayed,
        revision = state.store().current_revision(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "replayed the WAL after the page file"
    );
    let mut tail = recovered.tail.clone();
    if tail.last_index.is_none() && applied > 0 {
        // An empty WAL (e.g. a restored member) continues after the file.
        tail.last_index = Some(applied);
    }
    let next_index = tail.next_index().unwrap_or(1);
    drop(recovered);
    let backend = backend::spawn(
        db,
        applied,
        backend::BackendConfig {
            db_path,
            db_opts,
            wal_dir: wal_dir.clone(),
            snapshot_count: cfg.snapshot_count,
            max_wals: cfg.max_wals,
            cpu: cfg.cpus.last().copied(),
        },
    )
    .map_err(|source| NodeError::DataDir {
        path: member_dir.clone(),
        source,
    })?;

    let listeners = bind_listeners(&cfg.listen_client)?;
    let fds: Vec<i32> = listeners.into_iter().map(|l| l.into_raw_fd()).collect();
    let limits = ServerLimits::new(cfg.max_request_bytes);
    let cpus = cfg.cpus.clone();
    let stats = Arc::new(WalStats::default());
    let setup = Setup {
        state,
        fds,
        limits,
        stats: stats.clone(),
        backend,
        snap_dir,
        cfg,
    };
    let wal_start = WalStart {
        dir: wal_dir,
        opts,
        tail,
        next_index,
        stats,
    };
    if cpus.len() >= 2 {
        let (ptx, prx) = channel::shared::<Proposal>(PROPOSAL_CHANNEL_CAPACITY);
        let (etx, erx) = channel::shared::<WalEvent>(1024);
        let wal_ex = builder(cpus[1], "cairn-wal")
            .spawn(move || wal_executor(wal_start, prx, etx))
            .map_err(|e| io_uring_error(e.to_string()))?;
        let main_ex = builder(cpus[0], "cairn-main")
            .spawn(move || main_executor(setup, Some(ptx), EventsRx::Shared(erx), None))
            .map_err(|e| io_uring_error(e.to_string()))?;
        main_ex.join().map_err(executor_failed)?;
        wal_ex.join().map_err(executor_failed)?;
    } else {
        let main_ex = builder(cpus[0], "cairn-main")
            .spawn(move || async move {
                let (etx, erx) = channel::local::<WalEvent>(1024);
                main_executor(setup, None, EventsRx::Local(erx), Some((wal_start, etx))).await
            })
            .map_err(|e| io_uring_error(e.to_string()))?;
        main_ex.join().map_err(executor_failed)?;
    }
    Ok(())
}

/// An executor thread ended with an error: glommio reports ring set-up
/// failures (io_uring blocked, locked-memory limit) this way.
fn executor_failed(e: glommio::GlommioError<()>) -> NodeError {
    io_uring_error(e.to_string())
}

/// Explains a failure to set up io_uring with what to do about it.
fn io_uring_error(cause: String) -> NodeError {
    let hint = if cause.contains("MemLock") {
        "the locked-memory limit is too low for io_uring's rings: raise it (ulimit -l 65536, or \
         LimitMEMLOCK=64M in a systemd unit)"
            .to_string()
    } else {
        let disabled =
            std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled").unwrap_or_default();
        format!(
            "Cairn needs io_uring (Linux 5.8+). If this runs in a container, allow the io_uring_setup, \
             io_uring_enter and io_uring_register syscalls in its seccomp profile (e.g. docker run \
             --security-opt seccomp=unconfined); /proc/sys/kernel/io_uring_disabled must be 0 (it is {})",
            disabled.trim()
        )
    };
    NodeError::IoUring(format!("{cause}. {hint}"))
}

fn builder(cpu: usize, name: &str) -> LocalExecutorBuilder {
    // 2 MiB of io_uring buffer memory per executor keeps two executors well
    // within the default 8 MiB locked-memory limit.
    LocalExecutorBuilder::new(Placement::Fixed(cpu))
        .name(name)
        .io_memory(2 << 20)
}

struct Setup {
    state: NodeState,
    fds: Vec<i32>,
    limits: ServerLimits,
    stats: Arc<WalStats>,
    backend: backend::BackendHandle,
    snap_dir: PathBuf,
    cfg: Config,
}

/// Removes what an interrupted defragmentation or snapshot left behind.
fn remove_leftovers(db_path: &Path, snap_dir: &Path) -> Result<(), NodeError> {
    let dir_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| NodeError::DataDir { path, source }
    };
    let defrag = backend::defrag_path(db_path);
    let mut defrag_tmp = defrag.as_os_str().to_owned();
    defrag_tmp.push(".tmp");
    for p in [defrag, PathBuf::from(defrag_tmp)] {
        match std::fs::remove_file(&p) {
            Ok(()) => tracing::info!(path = %p.display(), "removed an unfinished defragmentation"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(dir_err(&p)(e)),
        }
    }
    std::fs::create_dir_all(snap_dir).map_err(dir_err(snap_dir))?;
    for entry in std::fs::read_dir(snap_dir).map_err(dir_err(snap_dir))? {
        let p = entry.map_err(dir_err(snap_dir))?.path();
        std::fs::remove_file(&p).map_err(dir_err(&p))?;
    }
    Ok(())
}

/// The WAL must hold every entry after the page file's applied index.
fn check_wal_covers(recovered: &wal::Recovered, applied: u64) -> Result<(), NodeError> {
    let first = recovered
        .records
        .iter()
        .find(|r| r.kind == RecordKind::Entry)
        .map(|r| r.index);
    if let Some(first) = first {
        if first > applied + 1 {
            return Err(NodeError::Inconsistent(format!(
                "the WAL starts at entry {first} but the page file holds entries only through \
                 {applied}: entries {}..{} are missing",
                applied + 1,
                first - 1
            )));
        }
    }
    if let Some(last) = recovered.tail.last_index {
        if last < applied {
            return Err(NodeError::Inconsistent(format!(
                "the page file holds entries through {applied} but the WAL ends at {last}"
            )));
        }
    }
    Ok(())
}

/// What the WAL writer starts from (moved to its executor).
struct WalStart {
    dir: PathBuf,
    opts: WalOptions,
    tail: TailPosition,
    next_index: u64,
    stats: Arc<WalStats>,
}

impl WalStart {
    /// Opens the WAL and runs the group-commit loop until the channel closes.
    async fn run(self, proposals: Rx<Proposal>, events: Tx<WalEvent>) {
        let wal = open_wal(&self.dir, self.opts, &self.tail).await;
        wal_task::run(self.stats, wal, self.next_index, TERM, proposals, events).await;
    }
}

async fn open_wal(wal_dir: &Path, opts: WalOptions, tail: &TailPosition) -> Wal {
    match Wal::open(wal_dir, opts, tail).await {
        Ok(w) => {
            if !w.direct_io() {
                tracing::warn!(dir = %wal_dir.display(), "O_DIRECT is not supported here (tmpfs?): WAL uses buffered writes + fdatasync");
            }
            w
        }
        Err(e) => {
            eprintln!("cairnd: cannot open the WAL: {e}");
            std::process::exit(1);
        }
    }
}

async fn wal_executor(start: WalStart, prx: SharedReceiver<Proposal>, etx: SharedSender<WalEvent>) {
    let prx = Rx::connect(prx).await;
    let etx = Tx::connect(etx).await;
    start.run(prx, etx).await;
}

type LocalWalArgs = (WalStart, Tx<WalEvent>);

/// Where durable batches come from: the WAL executor, or a task of this one.
enum EventsRx {
    Shared(SharedReceiver<WalEvent>),
    Local(Rx<WalEvent>),
}

async fn main_executor(
    setup: Setup,
    shared_ptx: Option<SharedSender<Proposal>>,
    erx: EventsRx,
    local_wal: Option<LocalWalArgs>,
) {
    let (ltx, lrx) = local_channel::new_unbounded::<Proposal>();
    let applied = setup.state.applied_index();
    let node = Rc::new(Node {
        state: RefCell::new(setup.state),
        waiters: RefCell::new(VecDeque::new()),
        proposals: ltx,
        last_index: Cell::new(applied),
        wal_stats: setup.stats,
        no_space_proposed: Cell::new(false),
        backend: setup.backend,
        flushed_index: Cell::new(0),
        flush_armed: Cell::new(false),
        batch_limit: setup.cfg.backend_batch_limit,
        batch_interval: setup.cfg.backend_batch_interval,
        snapshots: RefCell::new(snapshot_serve::Snapshots::new(setup.snap_dir)),
    });
    Node::register(&node);
    // Entries replayed from the WAL at start are not in the file yet.
    node.flush_backend();
    glommio::spawn_local(stop_on_signal(node.clone())).detach();
    match (shared_ptx, local_wal) {
        (Some(ptx), _) => {
            let ptx: Tx<Proposal> = Tx::connect(ptx).await;
            glommio::spawn_local(async move {
                while let Some(p) = lrx.recv().await {
                    if ptx.send(p).await.is_err() {
                        break;
                    }
                }
            })
            .detach();
        }
        (None, Some((start, etx))) => {
            glommio::spawn_local(start.run(Rx::Local(lrx), etx)).detach();
        }
        (None, None) => unreachable!("invariant: a WAL writer is configured"),
    }
    let erx = match erx {
        EventsRx::Shared(r) => Rx::connect(r).await,
        EventsRx::Local(r) => r,
    };
    let apply_node = node.clone();
    glommio::spawn_local(async move {
        while let Some(WalEvent::Durable {
            first_index,
            entries,
        }) = erx.recv().await
        {
            handler::apply_durable(&apply_node, first_index, entries);
        }
    })
    .detach();
    for fd in setup.fds {
        // SAFETY: fd is a bound, listening socket whose ownership moved here.
        let listener = unsafe { glommio::net::TcpListener::from_raw_fd(fd) };
        let handler: Rc<dyn Handler> = node.clone();
        let limits = setup.limits;
        glommio::spawn_local(async move {
            loop {
                match listener.accept().await {
                    Ok(stream) => {
                        glommio::spawn_local(serve_connection(stream, handler.clone(), limits))
                            .detach();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
                    }
                }
            }
        })
        .detach();
    }
    if let Some(policy) = setup.cfg.auto_compaction {
        glommio::spawn_local(auto_compact(node.clone(), policy)).detach();
    }
    let urls: Vec<String> = setup
        .cfg
        .listen_client
        .iter()
        .map(|a| format!("http://{a}"))
        .collect();
    tracing::info!(name = %setup.cfg.name, client_urls = %urls.join(","), "ready to serve client requests");
    futures_lite::future::pending::<()>().await;
}

/// SIGTERM / SIGINT: commit what is applied, let the backend finish, exit.
/// A plain thread waits for the signal (no polling: an idle node stays
/// asleep) and wakes this task through a oneshot.
async fn stop_on_signal(node: Rc<Node>) {
    let (tx, rx) = futures_channel::oneshot::channel::<i32>();
    let signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ]);
    let mut signals = match signals {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot handle SIGTERM; it will stop the node abruptly (safe: the WAL recovers)");
            return;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("cairn-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let _ = tx.send(sig);
            }
        });
    if spawned.is_err() {
        return;
    }
    let Ok(sig) = rx.await else { return };
    tracing::info!(
        signal = sig,
        "stopping: committing applied state to the page file"
    );
    node.flush_backend();
    let (tx, rx) = futures_channel::oneshot::channel();
    if node.backend.send(backend::Cmd::Stop(tx)) {
        let _ = rx.await;
    }
    tracing::info!("stopped");
    std::process::exit(0);
}

/// Runs the auto-compaction policy: its decisions go through the log like a
/// client's Compact.
async fn auto_compact(node: Rc<Node>, policy: crate::compactor::Policy) {
    let start = Instant::now();
    let mut compactor = crate::compactor::Compactor::new(policy, start.elapsed());
    let mut builder = flatbuffers::FlatBufferBuilder::new();
    loop {
        glommio::timer::sleep(policy.tick_interval()).await;
        let current = node.state.borrow().store().current_revision();
        let Some(revision) = compactor.tick(start.elapsed(), current) else {
            continue;
        };
        tracing::info!(revision, ?policy, "auto-compaction");
        builder.reset();
        let c = cairn_schemas::rpc::CompactionRequest::create(
            &mut builder,
            &cairn_schemas::rpc::CompactionRequestArgs {
                revision,
                physical: false,
            },
        );
        let req = cairn_schemas::rpc::Request::create(
            &mut builder,
            &cairn_schemas::rpc::RequestArgs {
                body_type: cairn_schemas::rpc::RequestBody::CompactionRequest,
                body: Some(c.as_union_value()),
            },
        );
        builder.finish(req, None);
        node.propose_internal(builder.finished_data().to_vec());
    }
}
