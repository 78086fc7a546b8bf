//! CPU time of the node's executor threads and of the whole process, read
//! from `/proc` when a scrape asks (nothing is counted on the hot path).
//!
//! `cairn_executor_cpu_seconds_total{executor, cpu}` is the user + system
//! time of each pinned thread: its rate is the share of its core the
//! executor keeps busy (glommio parks an idle executor in the kernel, so
//! idle time is not CPU time).

use std::sync::atomic::{AtomicI32, Ordering::Relaxed};
use std::sync::Mutex;

use prometheus::{CounterVec, IntGauge, Opts, Registry};

/// The threads that do the node's work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Executor {
    /// Network, Raft and apply.
    Main,
    /// The WAL writer (its own executor when there are two CPUs).
    Wal,
    /// The page-file thread.
    Backend,
}

const EXECUTORS: [Executor; 3] = [Executor::Main, Executor::Wal, Executor::Backend];

impl Executor {
    fn name(self) -> &'static str {
        match self {
            Executor::Main => "main",
            Executor::Wal => "wal",
            Executor::Backend => "backend",
        }
    }
}

/// Registered thread ids (0: not started) and what a scrape last read.
pub struct ExecutorThreads {
    tids: [AtomicI32; 3],
    cpus: [AtomicI32; 3],
    cpu_seconds: CounterVec,
    process_cpu_seconds: prometheus::Counter,
    process_rss_bytes: IntGauge,
    process_start_seconds: IntGauge,
    process_threads: IntGauge,
    /// CPU seconds each counter holds already (scrapes only).
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    executors: [f64; 3],
    process: f64,
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

fn page_size_bytes() -> i64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as i64
    } else {
        4096
    }
}

/// The fields of a `/proc/.../stat` line after the command name (which may
/// hold spaces and parentheses): index 0 is field 3 (state).
fn stat_fields(line: &str) -> Option<Vec<&str>> {
    let rest = &line[line.rfind(')')? + 1..];
    Some(rest.split_ascii_whitespace().collect())
}

/// (user + system CPU seconds, RSS pages, start time in ticks after boot,
/// thread count) of a stat line.
fn parse_stat(line: &str, ticks: f64) -> Option<(f64, i64, u64, i64)> {
    let f = stat_fields(line)?;
    let num = |i: usize| f.get(i)?.parse::<u64>().ok();
    let cpu = (num(11)? + num(12)?) as f64 / ticks;
    Some((cpu, num(21)? as i64, num(19)?, num(17)? as i64))
}

fn boot_time_secs() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

impl ExecutorThreads {
    pub fn new() -> ExecutorThreads {
        let cpu_seconds = CounterVec::new(
            Opts::new(
                "cairn_executor_cpu_seconds_total",
                "User and system CPU time of each executor thread; its rate is the share of its core \
                 the executor keeps busy.",
            ),
            &["executor", "cpu"],
        )
        .expect("invariant: static counter options are valid");
        let gauge = |name: &str, help: &str| {
            IntGauge::new(name, help).expect("invariant: static gauge options are valid")
        };
        ExecutorThreads {
            tids: Default::default(),
            cpus: Default::default(),
            cpu_seconds,
            process_cpu_seconds: prometheus::Counter::new(
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
            )
            .expect("invariant: static counter options are valid"),
            process_rss_bytes: gauge(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
            ),
            process_start_seconds: gauge(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
            ),
            process_threads: gauge("process_threads", "Number of OS threads in the process."),
            seen: Mutex::new(Seen::default()),
        }
    }

    /// Registers the calling thread as `e`, pinned to `cpu` (None: not
    /// pinned).
    pub fn register_current(&self, e: Executor, cpu: Option<usize>) {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        let i = e as usize;
        self.cpus[i].store(cpu.map_or(-1, |c| c as i32), Relaxed);
        self.tids[i].store(tid, Relaxed);
    }

    pub(super) fn register_in(&self, r: &Registry) -> prometheus::Result<()> {
        r.register(Box::new(self.cpu_seconds.clone()))?;
        r.register(Box::new(self.process_cpu_seconds.clone()))?;
        r.register(Box::new(self.process_rss_bytes.clone()))?;
        r.register(Box::new(self.process_start_seconds.clone()))?;
        r.register(Box::new(self.process_threads.clone()))
    }

    /// Reads `/proc` for every registered thread and for the process.
    pub(super) fn refresh(&self) {
        let ticks = clock_ticks_per_sec();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        for e in EXECUTORS {
            let i = e as usize;
            let tid = self.tids[i].load(Relaxed);
            if tid == 0 {
                continue;
            }
            let path = format!("/proc/self/task/{tid}/stat");
            let Some((cpu_s, ..)) = std::fs::read_to_string(path)
                .ok()
                .and_then(|l| parse_stat(&l, ticks))
            else {
                continue;
            };
            let cpu = match self.cpus[i].load(Relaxed) {
                -1 => "any".to_string(),
                c => c.to_string(),
            };
            // The series exists from the first scrape on, at 0 if need be.
            let counter = self.cpu_seconds.with_label_values(&[e.name(), &cpu]);
            let delta = cpu_s - seen.executors[i];
            if delta > 0.0 {
                counter.inc_by(delta);
                seen.executors[i] = cpu_s;
            }
        }
        let Some((cpu_s, rss_pages, start_ticks, threads)) =
            std::fs::read_to_string("/proc/self/stat")
                .ok()
                .and_then(|l| parse_stat(&l, ticks))
        else {
            return;
        };
        if cpu_s > seen.process {
            self.process_cpu_seconds.inc_by(cpu_s - seen.process);
            seen.process = cpu_s;
        }
        self.process_rss_bytes.set(rss_pages * page_size_bytes());
        self.process_threads.set(threads);
        if let Some(boot) = boot_time_secs() {
            self.process_start_seconds
                .set((boot + (start_ticks as f64 / ticks) as u64) as i64);
        }
    }
}

impl Default for ExecutorThreads {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        // Field 2 may hold spaces and ')'; utime 250 + stime 50 ticks at
        // 100 Hz is 3 s; rss 1000 pages; starttime 12345; 7 threads.
        let line = "42 (cairn-main (x) y) S 1 42 42 0 -1 4194560 10 0 0 0 250 50 0 0 20 0 7 0 \
                    12345 1000000 1000 18446744073709551615";
        let (cpu, rss, start, threads) = parse_stat(line, 100.0).unwrap();
        assert_eq!(cpu, 3.0);
        assert_eq!(rss, 1000);
        assert_eq!(start, 12345);
        assert_eq!(threads, 7);
        assert!(parse_stat("garbage", 100.0).is_none());
    }

    #[test]
    fn a_registered_busy_thread_shows_cpu_time() {
        let t = ExecutorThreads::new();
        let r = Registry::new();
        t.register_in(&r).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                t.register_current(Executor::Wal, Some(1));
                let start = std::time::Instant::now();
                let mut x = 0u64;
                while start.elapsed() < std::time::Duration::from_millis(120) {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
                t.refresh();
            });
        });
        let fams = r.gather();
        let f = fams
            .iter()
            .find(|f| f.name() == "cairn_executor_cpu_seconds_total")
            .unwrap();
        let m = &f.get_metric()[0];
        assert!(m.get_counter().get_value() > 0.0);
        let labels: Vec<_> = m.get_label().iter().map(|l| l.value()).collect();
        assert_eq!(labels, ["1", "wal"]);
    }
}
