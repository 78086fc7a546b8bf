//! The node runtime: start-up, the executors, and the tasks that connect
//! the network, the Raft core, the WAL writer and the state machine.
//!
//! ```text
//!  clients ──► connection tasks ──► Node::handle ──serializable──► NodeState (MVCC)
//!                                        │ writes, linearizable reads      ▲
//!                                        ▼                                 │ apply in order,
//!  peers ──► peer connections ──► Raft core (raft_loop) ──entries──► WAL   │ answer waiters
//!            (Raft messages,          │    ▲                 executor      │
//!             forwarded writes)       │    └── durable ──────────┘         │
//!                                     └── committed entries ───────────────┘
//! ```
//! - `boot`: who this member is (identity file, new cluster, join) and what
//!   Raft restarts from (page file position + WAL tail).
//! - `raft_loop`: one Ready at a time: send, persist (one fdatasync), apply.
//! - `propose` and `cluster_api`: writes and membership changes into the
//!   log from any member (followers forward to the leader); `reads`:
//!   ReadIndex reads on any member.
//! - `peers` over `transport`: the peer network (cairn_net::peer).
//!
//! With two CPUs the WAL writer has its own pinned executor and glommio's
//! cross-executor channels connect it; with one, everything shares one.
//!
//! Known limit of this version: the in-memory Raft log is not compacted, so
//! Raft never needs to send a snapshot; a member that restarted from its
//! page file holds only the log after it, and a follower that fell behind
//! that point cannot catch up (snapshot streaming is the next step).

mod backend;
mod boot;
mod channel;
mod cluster_api;
mod convert;
mod entry;
mod error;
mod handler;
mod identity;
mod lease_leader;
mod lease_state;
pub mod members;
mod peers;
mod propose;
mod raft_loop;
mod reads;
mod reconfig_check;
mod respond;
mod snapshot_install;
mod snapshot_serve;
mod state;
mod transport;
mod value_cache;
mod wal_task;
mod watch;
mod watch_respond;

use std::cell::{Cell, RefCell};
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

pub use boot::compute_ids;
use channel::{Rx, Tx};
use glommio::channels::shared_channel::{SharedReceiver, SharedSender};
use handler::Node;
use wal_task::{WalEvent, WalWrite};

/// WAL writes in flight between the Raft loop and the WAL executor (the
/// loop waits for each: one is enough, two leave slack).
const WAL_CHANNEL_CAPACITY: usize = 2;

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
    let metrics = Arc::new(crate::metrics::Metrics::new());
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
    let (entries, hard_state) = boot::effective_log(&recovered.records, applied)?;
    let commit = hard_state.map_or(0, |h| h.commit);
    tracing::info!(
        entries = entries.iter().filter(|e| e.index <= commit).count(),
        uncommitted = entries.iter().filter(|e| e.index > commit).count(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "replaying the WAL after the page file"
    );
    let mut tail = recovered.tail.clone();
    drop(recovered);
    let boot = boot::boot(
        &cfg,
        &member_dir,
        &boot::Applied {
            index: applied,
            term: loaded.applied_term,
            members: loaded.members.clone(),
        },
        entries,
        hard_state,
    )?;
    let ids = boot.ids;
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
        boot.persisted.hard_state.term,
        cfg.max_txn_ops,
        cfg.quota_bytes,
        store,
        (applied, loaded.applied_term),
        alarms,
        boot.members.clone(),
        &loaded.leases,
    );
    // etcd's minimum lease TTL: 1.5 election timeouts, so that a lease
    // survives a leader change.
    state
        .leases_mut()
        .lessor
        .set_min_ttl(cfg.heartbeat_interval * cfg.election_ticks * 3 / 2);
    if tail.last_index.is_none() && applied > 0 {
        // An empty WAL (e.g. a restored member) continues after the file.
        tail.last_index = Some(applied);
    }
    let initial_write = match boot.initial_write {
        Some(w) => Some(w),
        None => wal_resume_marker(&tail, applied, loaded.applied_term),
    };
    let persisted_hard_state = boot.persisted.hard_state;
    let raft = new_raft(&cfg, ids.member_id, applied, boot.persisted)?;
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
            metrics: metrics.clone(),
        },
    )
    .map_err(|source| NodeError::DataDir {
        path: member_dir.clone(),
        source,
    })?;

    let listeners = bind_listeners(&cfg.listen_client)?;
    if !cfg.listen_metrics.is_empty() {
        let target = crate::metrics::http::Target {
            metrics: metrics.clone(),
            client_addr: crate::metrics::http::dialable(listeners[0].local_addr().map_err(
                |source| NodeError::Listen {
                    addr: cfg.listen_client[0],
                    source,
                },
            )?),
        };
        let bound = bind_listeners(&cfg.listen_metrics)?;
        crate::metrics::http::serve(bound, target).map_err(|source| NodeError::Listen {
            addr: cfg.listen_metrics[0],
            source,
        })?;
    }
    let fds: Vec<i32> = listeners.into_iter().map(|l| l.into_raw_fd()).collect();
    let peer_listeners = bind_listeners(&cfg.listen_peer)?;
    let peer_fds: Vec<i32> = peer_listeners
        .into_iter()
        .map(|l| l.into_raw_fd())
        .collect();
    let limits = ServerLimits::new(cfg.max_request_bytes);
    let cpus = cfg.cpus.clone();
    let setup = Setup {
        state,
        raft,
        persisted_hard_state,
        seed: boot.seed,
        fds,
        peer_fds,
        limits,
        metrics: metrics.clone(),
        backend,
        snap_dir,
        cfg,
    };
    let wal_start = WalStart {
        dir: wal_dir,
        opts,
        tail,
        metrics: metrics.clone(),
        initial: initial_write,
    };
    if cpus.len() >= 2 {
        let wal_cpu = cpus[1];
        let (wtx, wrx) = channel::shared::<WalWrite>(WAL_CHANNEL_CAPACITY);
        let (etx, erx) = channel::shared::<WalEvent>(WAL_CHANNEL_CAPACITY);
        let wal_ex = builder(cpus[1], "cairn-wal")
            .spawn(move || wal_executor(wal_start, wal_cpu, wrx, etx))
            .map_err(|e| io_uring_error(e.to_string()))?;
        let main_ex = builder(cpus[0], "cairn-main")
            .spawn(move || async move {
                let wtx = Tx::connect(wtx).await;
                let erx = Rx::connect(erx).await;
                main_executor(setup, wtx, erx).await
            })
            .map_err(|e| io_uring_error(e.to_string()))?;
        main_ex.join().map_err(executor_failed)?;
        wal_ex.join().map_err(executor_failed)?;
    } else {
        let main_ex = builder(cpus[0], "cairn-main")
            .spawn(move || async move {
                let (wtx, wrx) = channel::local::<WalWrite>(WAL_CHANNEL_CAPACITY);
                let (etx, erx) = channel::local::<WalEvent>(WAL_CHANNEL_CAPACITY);
                glommio::spawn_local(wal_start.run(wrx, etx)).detach();
                main_executor(setup, wtx, erx).await
            })
            .map_err(|e| io_uring_error(e.to_string()))?;
        main_ex.join().map_err(executor_failed)?;
    }
    Ok(())
}

/// The Raft core of this member.
fn new_raft(
    cfg: &Config,
    member_id: u64,
    applied: u64,
    persisted: crate::raft::Persisted,
) -> Result<crate::raft::Raft, NodeError> {
    let mut rc = crate::raft::Config::new(member_id, Vec::new());
    rc.election_tick = cfg.election_ticks;
    rc.heartbeat_tick = 1;
    rc.applied = applied;
    // Election timeouts must differ between members and between runs.
    rc.seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id());
    crate::raft::Raft::new(rc, persisted).map_err(|e| NodeError::Inconsistent(e.to_string()))
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
    raft: crate::raft::Raft,
    persisted_hard_state: crate::raft::HardState,
    /// Whom to dial before the applied membership says (a joining member).
    seed: Option<members::Membership>,
    fds: Vec<i32>,
    peer_fds: Vec<i32>,
    limits: ServerLimits,
    metrics: Arc<crate::metrics::Metrics>,
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
    // The WAL may end before the page file: a follower that installed a
    // leader's snapshot holds state past the entries it logged (see
    // `wal_resume_marker`).
    Ok(())
}

/// A follower killed right after installing a leader's snapshot holds
/// state through `applied` while its WAL ends earlier: a snapshot marker
/// at `applied` makes the log continue after the page file (the entries
/// in between are in the file and never needed again).
fn wal_resume_marker(tail: &TailPosition, applied: u64, applied_term: u64) -> Option<WalWrite> {
    let last = tail.last_index?;
    (last < applied).then(|| {
        tracing::info!(
            wal_last_index = last,
            applied_index = applied,
            "the page file is ahead of the WAL (an installed snapshot): the log resumes after it"
        );
        WalWrite {
            snapshot: Some((applied, applied_term)),
            entries: Vec::new(),
            hard_state: None,
        }
    })
}

/// What the WAL writer starts from (moved to its executor).
struct WalStart {
    dir: PathBuf,
    opts: WalOptions,
    tail: TailPosition,
    metrics: Arc<crate::metrics::Metrics>,
    /// A new cluster's first entries, made durable before anything else.
    initial: Option<WalWrite>,
}

impl WalStart {
    /// Opens the WAL and writes each Ready until the channel closes.
    async fn run(self, writes: Rx<WalWrite>, events: Tx<WalEvent>) {
        let mut wal = open_wal(&self.dir, self.opts, &self.tail).await;
        if let Some(w) = &self.initial {
            let mut scratch = Vec::new();
            if let Err(e) = wal_task::append_write(&mut wal, w, &mut scratch, &self.metrics).await {
                eprintln!("cairnd: cannot write the new cluster's first entries: {e}");
                std::process::exit(1);
            }
        }
        wal_task::run(self.metrics, wal, writes, events).await;
    }
}

async fn open_wal(wal_dir: &Path, opts: WalOptions, tail: &TailPosition) -> Wal {
    // Start in a segment of one batch: a start zero-fills, and the next
    // start reads, a few MiB instead of a whole segment.
    let first_segment_bytes = opts.max_batch_bytes + 4096;
    match Wal::open_sized(wal_dir, opts, tail, first_segment_bytes).await {
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

async fn wal_executor(
    start: WalStart,
    cpu: usize,
    wrx: SharedReceiver<WalWrite>,
    etx: SharedSender<WalEvent>,
) {
    start
        .metrics
        .executors
        .register_current(crate::metrics::Executor::Wal, Some(cpu));
    let wrx = Rx::connect(wrx).await;
    let etx = Tx::connect(etx).await;
    start.run(wrx, etx).await;
}

async fn main_executor(setup: Setup, wal_writes: Tx<WalWrite>, wal_events: Rx<WalEvent>) {
    setup.metrics.executors.register_current(
        crate::metrics::Executor::Main,
        setup.cfg.cpus.first().copied(),
    );
    let (wake_tx, wake_rx) = local_channel::new_bounded::<()>(1);
    let applied = setup.state.applied_index();
    let ids = setup.state.ids();
    let dialer = cairn_net::peer::Dialer::new(
        cairn_net::peer::Identity {
            cluster_id: ids.cluster_id,
            member_id: ids.member_id,
        },
        cairn_net::peer::PeerLimits::default(),
        Rc::new(peers::Events),
    );
    let transport = Rc::new(peers::Peers::new(dialer, ids.member_id));
    let election_timeout = setup.cfg.heartbeat_interval * setup.cfg.election_ticks;
    let published = members::MemberInfo {
        id: ids.member_id,
        name: setup.cfg.name.clone(),
        peer_urls: setup.cfg.initial_advertise_peer_urls.clone(),
        client_urls: setup.cfg.advertise_client_urls.clone(),
        is_learner: false,
    };
    let node = Rc::new(Node {
        member_id: ids.member_id,
        raft: RefCell::new(setup.raft),
        waiters: RefCell::new(Default::default()),
        next_seq: Cell::new(0),
        pending: RefCell::new(Default::default()),
        reads: RefCell::new(Default::default()),
        wake: wake_tx,
        wal_writes,
        wal_events,
        transport: transport.clone(),
        state: RefCell::new(setup.state),
        no_space_proposed: Cell::new(false),
        backend: setup.backend,
        flushed_index: Cell::new(applied),
        flush_armed: Cell::new(false),
        batch_limit: setup.cfg.backend_batch_limit,
        batch_interval: setup.cfg.backend_batch_interval,
        snapshots: RefCell::new(snapshot_serve::Snapshots::new(setup.snap_dir.clone())),
        request_timeout: std::time::Duration::from_secs(5) + 2 * election_timeout,
        election_timeout,
        move_leader: RefCell::new(None),
        published: RefCell::new(published),
        known_leader: Cell::new(None),
        persisted_hard_state: Cell::new(setup.persisted_hard_state),
        seed_members: RefCell::new(setup.seed.clone()),
        install_dir: setup.snap_dir.clone(),
        db_path: setup.cfg.data_dir.join("member").join("db"),
        value_cache_bytes: setup.cfg.backend_value_cache_bytes as usize,
        strict_reconfig_check: setup.cfg.strict_reconfig_check,
        lease_duties: RefCell::new(Default::default()),
        lease_checkpoint_interval: setup.cfg.lease_checkpoint_interval,
        peer_heard: RefCell::new(Default::default()),
        watches: RefCell::new(watch::Watches::new(setup.cfg.max_request_bytes)),
        peer_rtt: RefCell::new(crate::metrics::PeerRtt::new(
            setup.metrics.peer_rtt_seconds.clone(),
        )),
        metrics: setup.metrics,
    });
    Node::register(&node);
    {
        use transport::Transport as _;
        match &setup.seed {
            Some(seed) => transport.set_members(seed),
            None => transport.set_members(node.state.borrow().members()),
        }
    }
    glommio::spawn_local(stop_on_signal(node.clone())).detach();
    let inbound: Rc<dyn cairn_net::peer::PeerHandler> = Rc::new(peers::Inbound {
        node: Rc::downgrade(&node),
    });
    for fd in setup.peer_fds {
        // SAFETY: fd is a bound, listening socket whose ownership moved here.
        let listener = unsafe { glommio::net::TcpListener::from_raw_fd(fd) };
        let inbound = inbound.clone();
        glommio::spawn_local(async move {
            loop {
                match listener.accept().await {
                    Ok(stream) => {
                        glommio::spawn_local(cairn_net::peer::serve_peer_connection(
                            stream,
                            inbound.clone(),
                            cairn_net::peer::PeerLimits::default(),
                        ))
                        .detach();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "peer accept failed");
                        glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
                    }
                }
            }
        })
        .detach();
    }
    glommio::spawn_local(raft_loop::run(node.clone(), wake_rx)).detach();
    glommio::spawn_local(raft_loop::tick(
        node.clone(),
        setup.cfg.heartbeat_interval,
        election_timeout,
    ))
    .detach();
    node.wake();
    glommio::spawn_local(watch::progress_ticker(
        node.clone(),
        setup.cfg.watch_progress_notify_interval,
    ))
    .detach();
    glommio::spawn_local(serve_clients(node.clone(), setup.fds, setup.limits)).detach();
    if let Some(policy) = setup.cfg.auto_compaction {
        glommio::spawn_local(auto_compact(node.clone(), policy)).detach();
    }
    let urls: Vec<String> = setup
        .cfg
        .listen_client
        .iter()
        .map(|a| format!("http://{a}"))
        .collect();
    tracing::info!(name = %setup.cfg.name, member = format!("{:x}", ids.member_id), client_urls = %urls.join(","), "started; serving clients once this member's name and client URLs are published");
    futures_lite::future::pending::<()>().await;
}

/// Accepts clients once this member's name and client URLs are in the
/// applied membership (as etcd serves only after it published them), so
/// that whoever reaches a member finds it in `member list`, and once it
/// applied what the current leader committed before it (the commit index
/// is not always durable: a restarted member learns it again first).
async fn serve_clients(node: Rc<Node>, fds: Vec<i32>, limits: ServerLimits) {
    for round in 0u64.. {
        let published = {
            let want = node.published.borrow();
            let state = node.state.borrow();
            state
                .members()
                .get(node.member_id)
                .is_some_and(|m| m.name == want.name && m.client_urls == want.client_urls)
        };
        if published && node.caught_up() {
            break;
        }
        // Ask the leader every 200 ms (an ask or its answer may be lost).
        if round.is_multiple_of(10) {
            node.maybe_publish();
        }
        glommio::timer::sleep(std::time::Duration::from_millis(20)).await;
    }
    tracing::info!("published this member's attributes; serving client requests");
    for fd in fds {
        // SAFETY: fd is a bound, listening socket whose ownership moved here.
        let listener = unsafe { glommio::net::TcpListener::from_raw_fd(fd) };
        let handler: Rc<dyn Handler> = node.clone();
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
        // Only the leader compacts (etcd's compactor runs on the leader);
        // its decision reaches every member through the log.
        if node.raft.borrow().role() != crate::raft::Role::Leader {
            continue;
        }
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
