//! Recording a client history for the [`linearizability`] checker.
//!
//! A [`Recorder`] runs client threads that each, until stopped, pick a
//! random key (of a few), a random member and a random operation: a put of
//! a value unique in the history, or a linearizable get. Each operation is
//! recorded with its invoke and complete times and its outcome:
//!
//! | what the client saw                          | outcome   |
//! |----------------------------------------------|-----------|
//! | an answer                                    | `Ok`      |
//! | no connection (never sent)                   | `Failed`  |
//! | a server refusal (no leader, invalid, ...)   | `Failed`  |
//! | "request timed out", "leader changed", an internal error, a client timeout, a broken connection | `Unknown` |
//!
//! A server refusal counts as "did not apply", which the checker holds the
//! server to: a read of a refused put's value is a violation.
//!
//! Bounds: each client waits up to `request_timeout` per operation and
//! pauses up to `pause_max` between operations; the test stops it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cairn_net::client::{get_request, put_request};
use cairn_net::{BlockingClient, ClientError, ClientOptions};
use cairn_schemas::rpc::ErrorCode;

use super::linearizability::{self, Op, OpKind, Outcome, Summary};
use super::rng::SplitMix64;

/// What the recording clients do.
#[derive(Clone, Debug)]
pub struct RecorderOptions {
    pub clients: usize,
    /// The keys (registers) they use; few, so operations overlap.
    pub keys: Vec<String>,
    pub seed: u64,
    pub request_timeout: Duration,
    pub dial_timeout: Duration,
    /// Longest pause between two operations of one client.
    pub pause_max: Duration,
}

impl Default for RecorderOptions {
    fn default() -> Self {
        RecorderOptions {
            clients: 4,
            keys: (0..4).map(|i| format!("lin/{i}")).collect(),
            seed: 1,
            request_timeout: Duration::from_secs(1),
            dial_timeout: Duration::from_millis(300),
            pause_max: Duration::from_millis(20),
        }
    }
}

/// Recording clients; [`Recorder::finish`] stops them and returns the
/// history.
pub struct Recorder {
    ops: Arc<Mutex<Vec<Op>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Recorder {
    /// Starts `opts.clients` clients over `members` (name, client address).
    pub fn start(members: &[(String, SocketAddr)], opts: RecorderOptions) -> Recorder {
        assert!(
            !members.is_empty() && !opts.keys.is_empty(),
            "a recorder needs members and keys"
        );
        let ops: Arc<Mutex<Vec<Op>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..opts.clients)
            .map(|t| {
                let c = Client {
                    id: t,
                    members: members.to_vec(),
                    opts: opts.clone(),
                    rng: SplitMix64::new(opts.seed ^ (t as u64 + 1).wrapping_mul(0x9e37_79b9)),
                    conns: (0..members.len()).map(|_| None).collect(),
                };
                let (ops, stop) = (ops.clone(), stop.clone());
                std::thread::spawn(move || c.run(&ops, &stop))
            })
            .collect();
        Recorder { ops, stop, threads }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Op>> {
        self.ops.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many recorded operations match `f` so far.
    pub fn count(&self, f: impl Fn(&Op) -> bool) -> usize {
        self.lock().iter().filter(|o| f(o)).count()
    }

    /// The history so far.
    pub fn ops(&self) -> Vec<Op> {
        self.lock().clone()
    }

    /// Stops the clients (each ends within its request timeout) and
    /// returns the history.
    pub fn finish(mut self) -> Vec<Op> {
        self.stop.store(true, Ordering::Relaxed);
        for t in std::mem::take(&mut self.threads) {
            let _ = t.join();
        }
        let ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        ops.clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Checks `ops` and panics with the violation (and a count of the
/// history) if it is not linearizable; returns what was checked.
pub fn assert_linearizable(ops: &[Op]) -> Summary {
    match linearizability::check(ops) {
        Ok(s) => s,
        Err(v) => panic!("{v}\n({} ops recorded)", ops.len()),
    }
}

struct Client {
    id: usize,
    members: Vec<(String, SocketAddr)>,
    opts: RecorderOptions,
    rng: SplitMix64,
    conns: Vec<Option<BlockingClient>>,
}

impl Client {
    fn run(mut self, ops: &Mutex<Vec<Op>>, stop: &AtomicBool) {
        let mut seq = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let m = self.rng.below(self.members.len() as u64) as usize;
            let key = self.opts.keys[self.rng.below(self.opts.keys.len() as u64) as usize].clone();
            let put = self.rng.below(2) == 0;
            let value = format!("c{}-{seq}", self.id);
            seq += 1;
            let invoke = Instant::now();
            let (kind, outcome) = if put {
                let o = self.put(m, &key, &value);
                (OpKind::Put(value), o)
            } else {
                let (read, o) = self.get(m, &key);
                (OpKind::Get(read), o)
            };
            let op = Op {
                client: self.id,
                via: self.members[m].0.clone(),
                key,
                kind,
                invoke,
                complete: Instant::now(),
                outcome,
            };
            ops.lock().unwrap_or_else(|p| p.into_inner()).push(op);
            let pause_ms = self.opts.pause_max.as_millis() as u64;
            if pause_ms > 0 {
                std::thread::sleep(Duration::from_millis(self.rng.below(pause_ms + 1)));
            }
        }
    }

    /// The connection to member `m`, made if needed.
    fn conn(&mut self, m: usize) -> Option<&BlockingClient> {
        if self.conns[m].as_ref().is_some_and(|c| c.is_closed()) {
            self.conns[m] = None;
        }
        if self.conns[m].is_none() {
            let opts = ClientOptions {
                dial_timeout: self.opts.dial_timeout,
                request_timeout: self.opts.request_timeout,
                ..ClientOptions::default()
            };
            self.conns[m] = BlockingClient::connect(&[self.members[m].1], opts).ok();
        }
        self.conns[m].as_ref()
    }

    fn put(&mut self, m: usize, key: &str, value: &str) -> Outcome {
        let Some(c) = self.conn(m) else {
            return Outcome::Failed;
        };
        let r = c.put(put_request(key.as_bytes(), value.as_bytes()));
        self.outcome(m, r.err())
    }

    fn get(&mut self, m: usize, key: &str) -> (Option<String>, Outcome) {
        let Some(c) = self.conn(m) else {
            return (None, Outcome::Failed);
        };
        match c.range(get_request(key.as_bytes())) {
            Ok(r) => {
                let kvs = r.kvs.unwrap_or_default();
                let v = kvs.first().map(|kv| {
                    String::from_utf8_lossy(kv.value.as_deref().unwrap_or_default()).into_owned()
                });
                (v, Outcome::Ok)
            }
            Err(e) => (None, self.outcome(m, Some(e))),
        }
    }

    /// Classifies an error (see the module docs); drops the connection
    /// after anything but a server's answer.
    fn outcome(&mut self, m: usize, e: Option<ClientError>) -> Outcome {
        let Some(e) = e else {
            return Outcome::Ok;
        };
        match e {
            ClientError::Server { code, .. } => {
                let unknown = matches!(
                    code,
                    ErrorCode::Timeout
                        | ErrorCode::LeaderChanged
                        | ErrorCode::Internal
                        | ErrorCode::Unknown
                );
                if unknown {
                    Outcome::Unknown
                } else {
                    Outcome::Failed
                }
            }
            ClientError::Connect { .. } | ClientError::InvalidRequest(_) => {
                self.conns[m] = None;
                Outcome::Failed
            }
            ClientError::Timeout
            | ClientError::Closed(_)
            | ClientError::Io(_)
            | ClientError::Protocol(_) => {
                self.conns[m] = None;
                Outcome::Unknown
            }
        }
    }
}
