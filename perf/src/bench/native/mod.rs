//! The native driver: Cairn's own protocol through `cairn_net::AsyncClient`,
//! every logical client a task on ONE unpinned glommio executor, so the load
//! generator costs at most one core of the machine it shares with the
//! server. Client i uses connection i mod conns; a connection pipelines the
//! requests of all its clients.

mod requests;

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use cairn_net::{AsyncClient, ClientOptions};
use cairn_schemas::rpc;
use flatbuffers::FlatBufferBuilder;
use glommio::{LocalExecutorBuilder, Placement};

use super::args::{Config, Workload};
use super::cpu::process_cpu;
use super::keys::KeyBuf;
use super::progress::{Progress, REDRAW_INTERVAL};
use super::watchers::WatchStats;
use super::worker::{client_loop, Cas, Conn, Phase, Run};
use super::{BenchError, Outcome};

/// io_uring buffer memory of the executor. The bench does no file I/O, so
/// far below glommio's default, and below an 8 MiB RLIMIT_MEMLOCK.
const IO_MEMORY_BYTES: usize = 512 << 10;
const DIAL_TIMEOUT: Duration = Duration::from_secs(2);
/// Initial size of each client's request builder; it grows once if needed.
const BUILDER_BYTES: usize = 1024;

/// Runs `cfg` and returns what the measured phase recorded.
pub fn run(cfg: &Config) -> Result<Outcome, BenchError> {
    let addrs: Vec<SocketAddr> = cfg
        .endpoints
        .iter()
        .map(|e| {
            cairn_net::client::parse_endpoint(e).map_err(|err| BenchError::Setup(err.to_string()))
        })
        .collect::<Result<_, _>>()?;
    let cfg = cfg.clone();
    let handle = LocalExecutorBuilder::new(Placement::Unbound)
        .name("cairn-bench")
        .io_memory(IO_MEMORY_BYTES)
        .spawn(move || async move { run_on_executor(cfg, addrs).await })
        .map_err(|e| BenchError::Setup(format!("cannot start the glommio executor: {e}")))?;
    handle
        .join()
        .map_err(|e| BenchError::Setup(format!("the glommio executor failed: {e}")))?
}

async fn run_on_executor(cfg: Config, addrs: Vec<SocketAddr>) -> Result<Outcome, BenchError> {
    let opts = ClientOptions {
        dial_timeout: DIAL_TIMEOUT,
        request_timeout: cfg.request_timeout,
        ..Default::default()
    };
    let conns = connect_all(cfg.conns, &addrs, &opts).await?;
    conns[0].status().await.map_err(|e| {
        BenchError::Unreachable(format!("{}: status request failed: {e}", addrs[0]))
    })?;
    let measure = if cfg.prefill {
        let prefill = Rc::new(Run::new(&cfg, Phase::Prefill));
        phase(&cfg, &conns, prefill.clone()).await;
        prefill.measure_next()?
    } else {
        Run::new(&cfg, Phase::Measure)
    };
    let run = Rc::new(measure);
    let watches = match cfg.workload {
        Workload::Watch => Some(open_watches(&cfg, &addrs, &opts, run.epoch).await?),
        _ => None,
    };
    let wal_before = wal_counters(&conns[0]).await;
    let cpu_before = process_cpu();
    let mut elapsed = phase(&cfg, &conns, run.clone()).await;
    if let Some((stats, _)) = &watches {
        // The events the last puts owe may still be on their way.
        let waited = Instant::now();
        while !stats.drained(run.events_expected.get(), waited) {
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
        elapsed += waited.elapsed();
    }
    let cpu = process_cpu().saturating_sub(cpu_before);
    let wal_after = wal_counters(&conns[0]).await;
    let wal = match (wal_before, wal_after) {
        (Some(a), Some(b)) => Some((b.0.saturating_sub(a.0), b.1.saturating_sub(a.1))),
        _ => None,
    };
    let (recorder, writes) = match watches {
        Some((stats, _conns)) => {
            stats.settle(run.events_expected.get());
            (stats.recorder.take(), Some(run.recorder.borrow().ok()))
        }
        None => (run.recorder.take(), None),
    };
    Ok(Outcome {
        recorder,
        elapsed,
        cpu,
        wal,
        writes,
    })
}

/// `n` connections; connection j tries endpoint j mod len first, which
/// spreads the load.
async fn connect_all(
    n: u32,
    addrs: &[SocketAddr],
    opts: &ClientOptions,
) -> Result<Vec<AsyncClient>, BenchError> {
    let mut conns = Vec::with_capacity(n as usize);
    for j in 0..n as usize {
        let mut order = addrs.to_vec();
        order.rotate_left(j % addrs.len());
        let c = AsyncClient::connect(&order, opts.clone())
            .await
            .map_err(|e| BenchError::Unreachable(e.to_string()))?;
        conns.push(c);
    }
    Ok(conns)
}

/// Opens the watch workload's watches on connections of their own and
/// waits until the server created them all.
async fn open_watches(
    cfg: &Config,
    addrs: &[SocketAddr],
    opts: &ClientOptions,
    epoch: Instant,
) -> Result<(Rc<WatchStats>, Vec<AsyncClient>), BenchError> {
    let stats = Rc::new(WatchStats::new(epoch));
    let conns = connect_all(cfg.conns, addrs, opts).await?;
    let mut keys = KeyBuf::new(cfg.key_size);
    let mut b = FlatBufferBuilder::with_capacity(BUILDER_BYTES);
    for j in 0..cfg.watchers {
        let payload = requests::encode_watch(&mut b, keys.key(j % cfg.key_space));
        let st = stats.clone();
        conns[(j % conns.len() as u64) as usize]
            .open_stream_raw(payload, Box::new(move |frame| on_watch_frame(&st, frame)))
            .await
            .map_err(|e| BenchError::Setup(format!("opening a watch: {e}")))?;
    }
    let started = Instant::now();
    while !stats.all_created(cfg.watchers, started)? {
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
    Ok((stats, conns))
}

/// One frame of a watch stream; false ends the stream.
fn on_watch_frame(st: &WatchStats, frame: &[u8]) -> bool {
    let Some(w) = cairn_schemas::verify_response(frame)
        .ok()
        .and_then(|r| r.body_as_watch_response())
    else {
        st.canceled.set(st.canceled.get() + 1);
        return false;
    };
    if w.created() {
        st.created.set(st.created.get() + 1);
    }
    for e in w.events().iter().flatten() {
        if let Some(kv) = e.kv() {
            st.event(kv.value().map_or(&[][..], |v| v.bytes()));
        }
    }
    if w.canceled() {
        st.canceled.set(st.canceled.get() + 1);
        return false;
    }
    true
}

/// (WAL fsyncs, WAL entries) from the server's status, if it answers.
async fn wal_counters(conn: &AsyncClient) -> Option<(u64, u64)> {
    conn.status()
        .await
        .ok()
        .map(|s| (s.wal_fsyncs, s.wal_entries))
}

/// Runs every client of one phase to the end of the budget.
async fn phase(cfg: &Config, conns: &[AsyncClient], run: Rc<Run>) -> Duration {
    let progress = Rc::new(Progress::for_stderr(run.budget.stop()));
    if progress.enabled() {
        let (run, progress) = (run.clone(), progress.clone());
        glommio::spawn_local(async move {
            while !run.finished.get() {
                progress.draw(run.completed());
                glommio::timer::sleep(REDRAW_INTERVAL).await;
            }
        })
        .detach();
    }
    run.budget.start();
    let start = Instant::now();
    let tasks: Vec<_> = (0..cfg.clients)
        .map(|i| {
            let conn = NativeConn {
                client: conns[i as usize % conns.len()].clone(),
                builder: FlatBufferBuilder::with_capacity(BUILDER_BYTES),
            };
            glommio::spawn_local(client_loop(conn, run.clone(), i))
        })
        .collect();
    for t in tasks {
        t.await;
    }
    let elapsed = start.elapsed();
    run.finished.set(true);
    progress.finish(run.completed());
    elapsed
}

/// One logical client: a shared connection and its own request builder.
struct NativeConn {
    client: AsyncClient,
    builder: FlatBufferBuilder<'static>,
}

/// One request's round trip; errors as their messages.
async fn send(client: &AsyncClient, payload: &[u8]) -> Result<Vec<u8>, String> {
    client.call_raw(payload).await.map_err(|e| e.to_string())
}

impl Conn for NativeConn {
    async fn put(&mut self, key: &[u8], value: &[u8]) -> Result<i64, String> {
        let payload = requests::encode_put(&mut self.builder, key, value);
        let resp = send(&self.client, payload).await?;
        requests::put_revision(&resp)
    }

    async fn range(&mut self, key: &[u8], serializable: bool) -> Result<(), String> {
        let payload = requests::encode_range(&mut self.builder, key, serializable);
        let resp = send(&self.client, payload).await?;
        requests::check(&resp, rpc::ResponseBody::RangeResponse).map(drop)
    }

    async fn txn_cas(&mut self, key: &[u8], expected: i64, value: &[u8]) -> Result<Cas, String> {
        let payload = requests::encode_cas(&mut self.builder, key, expected, value);
        let resp = send(&self.client, payload).await?;
        requests::cas_outcome(&resp)
    }

    async fn lease_grant(&mut self, ttl_secs: i64) -> Result<i64, String> {
        let payload = requests::encode_lease_grant(&mut self.builder, ttl_secs);
        let resp = send(&self.client, payload).await?;
        requests::granted_id(&resp)
    }

    async fn lease_keep_alive(&mut self, id: i64) -> Result<(), String> {
        let payload = requests::encode_keep_alive(&mut self.builder, id);
        let resp = send(&self.client, payload).await?;
        requests::kept_alive(&resp)
    }

    async fn sleep_until(&mut self, t: Instant) {
        let wait = t.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            glommio::timer::sleep(wait).await;
        }
    }

    async fn put_leased(&mut self, key: &[u8], value: &[u8], lease: i64) -> Result<i64, String> {
        let payload = requests::encode_put_leased(&mut self.builder, key, value, lease);
        let resp = send(&self.client, payload).await?;
        requests::put_revision(&resp)
    }
}
