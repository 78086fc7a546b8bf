//! Keeping a lease alive from a background thread, as clientv3's
//! `KeepAlive`: a renewal every TTL/3 over a [`FailoverClient`] (so a dead
//! member or a leader change only costs a retry), retried every
//! [`RETRY`] after a failure, until the lease is gone (a renewal answered
//! with TTL 0, or no renewal succeeded for a whole TTL) or the keeper is
//! dropped.
//!
//! ```no_run
//! use cairn_net::client::{FailoverClient, LeaseKeeper};
//! use cairn_net::ClientOptions;
//! let addrs = ["127.0.0.1:2379".parse().unwrap()];
//! let c = FailoverClient::connect(&addrs, ClientOptions::default()).unwrap();
//! let lease = c.lease_grant(10, 0).unwrap();
//! let keeper = LeaseKeeper::start(&addrs, ClientOptions::default(), lease.id, lease.ttl);
//! // ... while keeper.is_alive(), the lease (and its keys) stay.
//! drop(keeper); // stops renewing; the lease expires after its TTL
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{ClientOptions, FailoverClient};

/// Pause after a failed renewal.
pub const RETRY: Duration = Duration::from_millis(500);

struct Shared {
    stop: Mutex<bool>,
    wake: Condvar,
    alive: AtomicBool,
    /// TTL of the last renewal (the granted TTL), seconds.
    ttl_secs: AtomicI64,
}

/// Renews one lease until dropped or the lease is gone.
pub struct LeaseKeeper {
    id: i64,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl LeaseKeeper {
    /// Starts renewing lease `id` (granted with `ttl_secs`) through
    /// `endpoints`.
    pub fn start(
        endpoints: &[SocketAddr],
        opts: ClientOptions,
        id: i64,
        ttl_secs: i64,
    ) -> LeaseKeeper {
        let shared = Arc::new(Shared {
            stop: Mutex::new(false),
            wake: Condvar::new(),
            alive: AtomicBool::new(true),
            ttl_secs: AtomicI64::new(ttl_secs),
        });
        let endpoints = endpoints.to_vec();
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("lease-{id:x}"))
            .spawn(move || run(&endpoints, opts, id, &s))
            .ok();
        if thread.is_none() {
            shared.alive.store(false, Ordering::Relaxed);
        }
        LeaseKeeper { id, shared, thread }
    }

    pub fn id(&self) -> i64 {
        self.id
    }

    /// False once the lease is known gone (revoked, expired, or no renewal
    /// for a whole TTL).
    pub fn is_alive(&self) -> bool {
        self.shared.alive.load(Ordering::Relaxed)
    }

    /// The TTL the last renewal reported.
    pub fn ttl_secs(&self) -> i64 {
        self.shared.ttl_secs.load(Ordering::Relaxed)
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        *self.shared.stop.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sleeps `d` unless stopped first; true if stopped.
fn pause(s: &Shared, d: Duration) -> bool {
    let stop = s.stop.lock().unwrap_or_else(|p| p.into_inner());
    let (stop, _) = s
        .wake
        .wait_timeout_while(stop, d, |stop| !*stop)
        .unwrap_or_else(|p| p.into_inner());
    *stop
}

fn run(endpoints: &[SocketAddr], opts: ClientOptions, id: i64, s: &Shared) {
    let mut client: Option<FailoverClient> = None;
    let ttl = Duration::from_secs(s.ttl_secs.load(Ordering::Relaxed).max(1) as u64);
    let mut expires = Instant::now() + ttl;
    loop {
        if client.is_none() {
            client = FailoverClient::connect(endpoints, opts.clone()).ok();
        }
        let renewed = client.as_ref().map(|c| c.lease_keep_alive_once(id));
        let next = match renewed {
            Some(Ok(r)) if r.ttl <= 0 => break,
            Some(Ok(r)) => {
                s.ttl_secs.store(r.ttl, Ordering::Relaxed);
                let ttl = Duration::from_secs(r.ttl as u64);
                expires = Instant::now() + ttl;
                (ttl / 3).max(RETRY)
            }
            Some(Err(_)) | None => {
                if Instant::now() >= expires {
                    break;
                }
                RETRY
            }
        };
        if pause(s, next) {
            return;
        }
    }
    s.alive.store(false, Ordering::Relaxed);
}
