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

use super::args::Config;
use super::cpu::process_cpu;
use super::progress::{Progress, REDRAW_INTERVAL};
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
    let mut conns = Vec::with_capacity(cfg.conns as usize);
    for j in 0..cfg.conns as usize {
        // Connection j tries endpoint j mod len first: spreads the load.
        let mut order = addrs.clone();
        order.rotate_left(j % addrs.len());
        let c = AsyncClient::connect(&order, opts.clone())
            .await
            .map_err(|e| BenchError::Unreachable(e.to_string()))?;
        conns.push(c);
    }
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
    let wal_before = wal_counters(&conns[0]).await;
    let cpu_before = process_cpu();
    let elapsed = phase(&cfg, &conns, run.clone()).await;
    let cpu = process_cpu().saturating_sub(cpu_before);
    let wal_after = wal_counters(&conns[0]).await;
    let wal = match (wal_before, wal_after) {
        (Some(a), Some(b)) => Some((b.0.saturating_sub(a.0), b.1.saturating_sub(a.1))),
        _ => None,
    };
    let recorder = run.recorder.take();
    Ok(Outcome {
        recorder,
        elapsed,
        cpu,
        wal,
    })
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

impl Conn for NativeConn {
    async fn put(&mut self, key: &[u8], value: &[u8]) -> Result<i64, String> {
        let payload = requests::encode_put(&mut self.builder, key, value);
        let resp = self
            .client
            .call_raw(payload)
            .await
            .map_err(|e| e.to_string())?;
        requests::put_revision(&resp)
    }

    async fn range(&mut self, key: &[u8], serializable: bool) -> Result<(), String> {
        let payload = requests::encode_range(&mut self.builder, key, serializable);
        let resp = self
            .client
            .call_raw(payload)
            .await
            .map_err(|e| e.to_string())?;
        requests::check(&resp, rpc::ResponseBody::RangeResponse).map(drop)
    }

    async fn txn_cas(&mut self, key: &[u8], expected: i64, value: &[u8]) -> Result<Cas, String> {
        let payload = requests::encode_cas(&mut self.builder, key, expected, value);
        let resp = self
            .client
            .call_raw(payload)
            .await
            .map_err(|e| e.to_string())?;
        requests::cas_outcome(&resp)
    }

    async fn lease_grant(&mut self, ttl_secs: i64) -> Result<i64, String> {
        let payload = requests::encode_lease_grant(&mut self.builder, ttl_secs);
        let resp = self
            .client
            .call_raw(payload)
            .await
            .map_err(|e| e.to_string())?;
        requests::granted_id(&resp)
    }

    async fn lease_keep_alive(&mut self, id: i64) -> Result<(), String> {
        let payload = requests::encode_keep_alive(&mut self.builder, id);
        let resp = self
            .client
            .call_raw(payload)
            .await
            .map_err(|e| e.to_string())?;
        requests::kept_alive(&resp)
    }

    async fn put_leased(&mut self, key: &[u8], value: &[u8], lease: i64) -> Result<i64, String> {
        let payload = requests::encode_put_leased(&mut self.builder, key, value, lease);
        let resp = self
            .client
            .call_raw(payload)
            .await
            .map_err(|e| e.to_string())?;
        requests::put_revision(&resp)
    }
}
