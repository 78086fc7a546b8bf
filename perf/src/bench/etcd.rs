//! The etcd driver: the same workloads over etcd's v3 gRPC API (the
//! `etcd-client` crate, tonic), to compare Cairn with etcd from the same
//! load generator. Every logical client is a task on ONE tokio
//! current-thread runtime; client i uses connection i mod conns, each
//! connection an `etcd_client::Client` (one HTTP/2 connection).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use std::collections::HashMap;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, KvClient, LeaseClient,
    LeaseKeepAliveStream, LeaseKeeper, PutOptions, Txn, TxnOp, TxnOpResponse, WatchRequestSender,
};

use super::args::{Config, Workload};
use super::cpu::process_cpu;
use super::keys::KeyBuf;
use super::progress::{Progress, REDRAW_INTERVAL};
use super::watchers::WatchStats;
use super::worker::{client_loop, Cas, Conn, Phase, Run};
use super::{BenchError, Outcome};

const DIAL_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs `cfg` and returns what the measured phase recorded.
pub fn run(cfg: &Config) -> Result<Outcome, BenchError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| BenchError::Setup(format!("cannot start the tokio runtime: {e}")))?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, run_local(cfg.clone()))
}

fn url(endpoint: &str) -> String {
    if endpoint.contains("://") {
        endpoint.to_string()
    } else {
        format!("http://{endpoint}")
    }
}

async fn run_local(cfg: Config) -> Result<Outcome, BenchError> {
    let opts = ConnectOptions::new()
        .with_connect_timeout(DIAL_TIMEOUT)
        .with_timeout(cfg.request_timeout);
    let mut conns = Vec::with_capacity(cfg.conns as usize);
    for j in 0..cfg.conns as usize {
        // One endpoint per connection, round-robin: spreads the load.
        let ep = url(&cfg.endpoints[j % cfg.endpoints.len()]);
        let c = Client::connect([ep.as_str()], Some(opts.clone()))
            .await
            .map_err(|e| BenchError::Unreachable(format!("{ep}: {e}")))?;
        conns.push(c);
    }
    for (j, c) in conns.iter_mut().enumerate().take(cfg.endpoints.len()) {
        let ep = url(&cfg.endpoints[j]);
        c.status()
            .await
            .map_err(|e| BenchError::Unreachable(format!("{ep}: status request failed: {e}")))?;
    }
    let streams: Streams = Rc::default();
    let measure = if cfg.prefill {
        let prefill = Rc::new(Run::new(&cfg, Phase::Prefill));
        phase(&cfg, &conns, prefill.clone(), &streams).await;
        prefill.measure_next()?
    } else {
        Run::new(&cfg, Phase::Measure)
    };
    let run = Rc::new(measure);
    let watches = match cfg.workload {
        Workload::Watch => Some(open_watches(&cfg, &opts, run.epoch).await?),
        _ => None,
    };
    let cpu_before = process_cpu();
    let mut elapsed = phase(&cfg, &conns, run.clone(), &streams).await;
    if let Some((stats, _)) = &watches {
        // The events the last puts owe may still be on their way.
        let waited = Instant::now();
        while !stats.drained(run.events_expected.get(), waited) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        elapsed += waited.elapsed();
    }
    let cpu = process_cpu().saturating_sub(cpu_before);
    let (recorder, writes) = match watches {
        Some((stats, _senders)) => {
            stats.settle(run.events_expected.get());
            (stats.recorder.take(), Some(run.recorder.borrow().ok()))
        }
        None => (run.recorder.take(), None),
    };
    Ok(Outcome {
        recorder,
        elapsed,
        cpu,
        wal: None,
        writes,
    })
}

/// Opens the watch workload's watches on connections of their own (each
/// connection one gRPC watch stream carrying its share of the watches, as
/// clientv3 multiplexes them) and waits until etcd created them all.
async fn open_watches(
    cfg: &Config,
    opts: &ConnectOptions,
    epoch: Instant,
) -> Result<(Rc<WatchStats>, Vec<WatchRequestSender>), BenchError> {
    let stats = Rc::new(WatchStats::new(epoch));
    let mut keys = KeyBuf::new(cfg.key_size);
    let mut senders = Vec::new();
    let conns = cfg.conns as u64;
    for j in 0..conns.min(cfg.watchers) {
        let ep = url(&cfg.endpoints[j as usize % cfg.endpoints.len()]);
        let client = Client::connect([ep.as_str()], Some(opts.clone()))
            .await
            .map_err(|e| BenchError::Unreachable(format!("{ep}: {e}")))?;
        let mut wc = client.watch_client();
        let setup = |e: etcd_client::Error| BenchError::Setup(format!("opening a watch: {e}"));
        let mut stream = wc
            .watch(keys.key(j % cfg.key_space).to_vec(), None)
            .await
            .map_err(setup)?;
        let mut w = j + conns;
        while w < cfg.watchers {
            stream
                .watch(keys.key(w % cfg.key_space).to_vec(), None)
                .await
                .map_err(setup)?;
            w += conns;
        }
        let (sender, mut responses) = stream.split();
        senders.push(sender);
        let st = stats.clone();
        tokio::task::spawn_local(async move {
            // Kept alive by the task: the stream ends with the runtime.
            let _client = client;
            while let Ok(Some(r)) = responses.message().await {
                if r.created() {
                    st.created.set(st.created.get() + 1);
                }
                for e in r.events() {
                    if let Some(kv) = e.kv() {
                        st.event(kv.value());
                    }
                }
                if r.canceled() {
                    st.canceled.set(st.canceled.get() + 1);
                }
            }
        });
    }
    let started = Instant::now();
    while !stats.all_created(cfg.watchers, started)? {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok((stats, senders))
}

async fn phase(cfg: &Config, conns: &[Client], run: Rc<Run>, streams: &Streams) -> Duration {
    let progress = Rc::new(Progress::for_stderr(run.budget.stop()));
    if progress.enabled() {
        let (run, progress) = (run.clone(), progress.clone());
        tokio::task::spawn_local(async move {
            while !run.finished.get() {
                progress.draw(run.completed());
                tokio::time::sleep(REDRAW_INTERVAL).await;
            }
        });
    }
    run.budget.start();
    let start = Instant::now();
    let tasks: Vec<_> = (0..cfg.clients)
        .map(|i| {
            let c = &conns[i as usize % conns.len()];
            let conn = EtcdConn {
                kv: c.kv_client(),
                lease: c.lease_client(),
                streams: streams.clone(),
            };
            tokio::task::spawn_local(client_loop(conn, run.clone(), i))
        })
        .collect();
    for t in tasks {
        // A client task only ends by finishing its loop; a panic in it is a
        // bug of this tool and is re-raised here.
        if let Err(e) = t.await {
            std::panic::resume_unwind(e.into_panic());
        }
    }
    let elapsed = start.elapsed();
    run.finished.set(true);
    progress.finish(run.completed());
    elapsed
}

/// Keep-alive streams by lease, shared by the clients of every phase.
/// etcd-client renews a lease over a stream of its own; the prefill opens
/// each lease's stream when it grants it (not measured), so that the
/// measured renewals are a long-lived stream's, as clientv3's keep-alive
/// loop sends them. A client takes a lease's stream out while it renews and
/// puts it back; two clients on one lease at once open a second stream.
type Streams = Rc<RefCell<HashMap<i64, (LeaseKeeper, LeaseKeepAliveStream)>>>;

struct EtcdConn {
    kv: KvClient,
    lease: LeaseClient,
    streams: Streams,
}

impl Conn for EtcdConn {
    async fn put(&mut self, key: &[u8], value: &[u8]) -> Result<i64, String> {
        let resp = self
            .kv
            .put(key, value, None)
            .await
            .map_err(|e| e.to_string())?;
        Ok(resp.header().map_or(0, |h| h.revision()))
    }

    async fn range(&mut self, key: &[u8], serializable: bool) -> Result<(), String> {
        let opts = serializable.then(|| GetOptions::new().with_serializable());
        self.kv
            .get(key, opts)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }

    async fn txn_cas(&mut self, key: &[u8], expected: i64, value: &[u8]) -> Result<Cas, String> {
        let txn = Txn::new()
            .when([Compare::mod_revision(key, CompareOp::Equal, expected)])
            .and_then([TxnOp::put(key, value, None)])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.kv.txn(txn).await.map_err(|e| e.to_string())?;
        if resp.succeeded() {
            let revision = resp
                .header()
                .map(|h| h.revision())
                .ok_or("txn response without a header")?;
            return Ok(Cas::Swapped { revision });
        }
        match resp.op_responses().as_slice() {
            [TxnOpResponse::Get(get)] => Ok(Cas::Mismatch {
                mod_revision: get.kvs().first().map_or(0, |kv| kv.mod_revision()),
            }),
            _ => Err("failed txn without exactly one range response".into()),
        }
    }

    async fn lease_grant(&mut self, ttl_secs: i64) -> Result<i64, String> {
        let r = self
            .lease
            .grant(ttl_secs, None)
            .await
            .map_err(|e| e.to_string())?;
        if ttl_secs >= 60 {
            // A lease meant to be kept alive: open its stream now (this
            // also renews it once).
            let pair = self
                .lease
                .keep_alive(r.id())
                .await
                .map_err(|e| e.to_string())?;
            self.streams.borrow_mut().insert(r.id(), pair);
        }
        Ok(r.id())
    }

    async fn lease_keep_alive(&mut self, id: i64) -> Result<(), String> {
        let taken = self.streams.borrow_mut().remove(&id);
        let (mut keeper, mut stream) = match taken {
            Some(pair) => pair,
            None => self.lease.keep_alive(id).await.map_err(|e| e.to_string())?,
        };
        keeper.keep_alive().await.map_err(|e| e.to_string())?;
        match stream.message().await.map_err(|e| e.to_string())? {
            Some(r) if r.ttl() > 0 => {
                self.streams.borrow_mut().insert(id, (keeper, stream));
                Ok(())
            }
            _ => Err("lease not found".into()),
        }
    }

    async fn sleep_until(&mut self, t: Instant) {
        tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await;
    }

    async fn put_leased(&mut self, key: &[u8], value: &[u8], lease: i64) -> Result<i64, String> {
        let opts = PutOptions::new().with_lease(lease);
        let resp = self
            .kv
            .put(key, value, Some(opts))
            .await
            .map_err(|e| e.to_string())?;
        Ok(resp.header().map_or(0, |h| h.revision()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_get_an_http_scheme() {
        assert_eq!(url("127.0.0.1:2379"), "http://127.0.0.1:2379");
        assert_eq!(url("http://127.0.0.1:2379"), "http://127.0.0.1:2379");
    }
}
