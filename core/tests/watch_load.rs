//! Watches under load against a real node: many watchers of keys, ranges
//! and prefixes, some from past revisions, while writers run concurrently:
//! each watcher gets exactly the acknowledged writes of its range from its
//! start revision, in revision order, once each. A watcher whose client
//! does not read never holds up writes, the server's memory stays
//! bounded, and once it reads it gets every event without a gap.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_core::testkit::TestNode;
use cairn_net::client::{prefix_range_end, put_request};
use cairn_net::{BlockingClient, ClientError, WatchStream};
use cairn_schemas::rpc;

/// (revision, key, is a put) of a write or an event.
type Write = (i64, Vec<u8>, bool);

fn events_of(r: &rpc::WatchResponseT) -> impl Iterator<Item = Write> + '_ {
    r.events.iter().flatten().map(|e| {
        let kv = e.kv.as_deref().expect("an event has a kv");
        (
            kv.mod_revision,
            kv.key.clone().unwrap_or_default(),
            e.type_ == rpc::EventType::Put,
        )
    })
}

/// A watch the test checks: what it asked for and from which revision on
/// it must see every write.
struct Spec {
    key: Vec<u8>,
    range_end: Vec<u8>,
    start: i64,
}

impl Spec {
    fn contains(&self, k: &[u8]) -> bool {
        if self.range_end.is_empty() {
            k == self.key
        } else if self.range_end == [0] {
            k >= &self.key[..]
        } else {
            k >= &self.key[..] && k < &self.range_end[..]
        }
    }

    fn request(&self) -> rpc::WatchCreateRequestT {
        rpc::WatchCreateRequestT {
            key: Some(self.key.clone()),
            range_end: (!self.range_end.is_empty()).then(|| self.range_end.clone()),
            start_revision: self.start,
            ..Default::default()
        }
    }
}

fn prefix(p: &str, start: i64) -> Spec {
    Spec {
        key: p.as_bytes().to_vec(),
        range_end: prefix_range_end(p.as_bytes()),
        start,
    }
}

/// Reads `s` until `target` (once known) events arrived, then a little
/// more to catch extras; gives up at `deadline`.
fn collect(mut s: WatchStream<'_>, target: &AtomicUsize, deadline: Instant) -> Vec<Write> {
    let mut got = Vec::new();
    let mut done_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if now > deadline || done_at.is_some_and(|d| now > d) {
            return got;
        }
        if done_at.is_none() && got.len() >= target.load(Ordering::Acquire) {
            // Anything that still comes is a duplicate or a stray.
            done_at = Some(now + Duration::from_millis(300));
        }
        match s.recv_timeout(Duration::from_millis(100)) {
            Ok(Some(r)) => {
                assert!(!r.canceled, "watch canceled: {:?}", r.cancel_reason);
                got.extend(events_of(&r));
            }
            Ok(None) => return got,
            Err(ClientError::Timeout) => {}
            Err(e) => panic!("watch stream failed: {e}"),
        }
    }
}

fn write_ops(c: &BlockingClient, t: usize, ops: usize, log: &Mutex<Vec<Write>>) {
    for i in 0..ops {
        let w = if i % 7 == 6 {
            let key = format!("/w/{t}/{}", (i * 3) % 13).into_bytes();
            let r = c
                .delete_range(rpc::DeleteRangeRequestT {
                    key: Some(key.clone()),
                    ..Default::default()
                })
                .unwrap();
            if r.deleted == 0 {
                continue;
            }
            (r.header.unwrap().revision, key, false)
        } else {
            let key = format!("/w/{t}/{}", i % 13).into_bytes();
            let r = c
                .put(put_request(&key, format!("v{i}").as_bytes()))
                .unwrap();
            (r.header.unwrap().revision, key, true)
        };
        log.lock().unwrap().push(w);
    }
}

#[test]
fn concurrent_writers_and_many_watchers_see_every_write_once_in_revision_order() {
    const WRITERS: usize = 4;
    const OPS: usize = 500;
    let node = TestNode::start();
    let log: Mutex<Vec<Write>> = Mutex::new(Vec::new());
    let setup = node.client();
    for t in 0..WRITERS {
        write_ops(&setup, t, 20, &log);
    }
    let r0 = log.lock().unwrap().last().unwrap().0;
    let specs = |r0: i64| {
        vec![
            prefix("/w/", 0),
            prefix("/w/1/", r0 - 30),
            Spec {
                key: b"/w/2/".to_vec(),
                range_end: b"/w/4/".to_vec(),
                start: 1,
            },
            Spec {
                key: b"/w/3/7".to_vec(),
                range_end: Vec::new(),
                start: 0,
            },
            prefix("/w/0/", r0 + 200),
            Spec {
                key: b"/w/".to_vec(),
                range_end: vec![0],
                start: r0 - 5,
            },
        ]
    };
    // Two connections read as events come; a third only after the writes.
    let clients: Vec<BlockingClient> = (0..3).map(|_| node.client()).collect();
    let mut watches: Vec<(usize, Spec, i64)> = Vec::new();
    let mut streams: Vec<WatchStream<'_>> = Vec::new();
    for (ci, c) in clients.iter().enumerate() {
        for spec in specs(r0) {
            let s = c.watch(spec.request()).unwrap();
            let created_at = s.created().header.as_ref().unwrap().revision;
            let from = if spec.start == 0 {
                created_at + 1
            } else {
                spec.start
            };
            watches.push((ci, spec, from));
            streams.push(s);
        }
    }
    let targets: Vec<AtomicUsize> = watches
        .iter()
        .map(|_| AtomicUsize::new(usize::MAX))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    let writes_done = AtomicBool::new(false);
    let results: Vec<(usize, Vec<Write>)> = std::thread::scope(|scope| {
        let mut readers = Vec::new();
        for (i, s) in streams.into_iter().enumerate() {
            let (target, done) = (&targets[i], &writes_done);
            let lazy = watches[i].0 == 2;
            readers.push(scope.spawn(move || {
                while lazy && !done.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                (i, collect(s, target, deadline))
            }));
        }
        let writers: Vec<_> = (0..WRITERS)
            .map(|t| {
                let log = &log;
                let node = &node;
                scope.spawn(move || write_ops(&node.client(), t, OPS, log))
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let log = log.lock().unwrap().clone();
        for (i, (_, spec, from)) in watches.iter().enumerate() {
            let n = log
                .iter()
                .filter(|w| w.0 >= *from && spec.contains(&w.1))
                .count();
            targets[i].store(n, Ordering::Release);
        }
        writes_done.store(true, Ordering::Release);
        readers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let mut log = log.into_inner().unwrap();
    log.sort();
    for (i, got) in results {
        let (ci, spec, from) = &watches[i];
        let want: Vec<Write> = log
            .iter()
            .filter(|w| w.0 >= *from && spec.contains(&w.1))
            .cloned()
            .collect();
        assert!(
            got.windows(2).all(|w| w[0].0 < w[1].0),
            "connection {ci} watch {:?}: not in revision order or duplicated",
            String::from_utf8_lossy(&spec.key)
        );
        assert_eq!(
            got.len(),
            want.len(),
            "connection {ci} watch {:?} from {from}",
            String::from_utf8_lossy(&spec.key)
        );
        assert_eq!(got, want, "connection {ci}");
    }
}

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

#[test]
fn a_watcher_that_does_not_read_blocks_no_writes_and_later_gets_every_event() {
    const WRITERS: usize = 8;
    const PUTS: usize = 1500;
    const VALUE_BYTES: usize = 8192;
    // Small caches, so that what the server holds for the watcher shows.
    let node = TestNode::start_with(&[
        "--backend-value-cache-bytes",
        "1048576",
        "--backend-cache-bytes",
        "1048576",
    ]);
    let pid = node.pid().unwrap();
    let slow = node.client();
    let spec = prefix("/f/", 0);
    let mut s = slow.watch(spec.request()).unwrap();
    let from = s.created().header.as_ref().unwrap().revision + 1;
    // Another watcher of the same keys that reads all along: it is not
    // held up by the slow one.
    let fast = node.client();
    let fast_stream = fast.watch(spec.request()).unwrap();
    let rss_before = rss_bytes(pid);
    let fast_seen = AtomicUsize::new(0);
    let started = Instant::now();
    let mut rss_max = rss_before;
    std::thread::scope(|scope| {
        let fast_seen = &fast_seen;
        let reader = scope.spawn(move || {
            let target = AtomicUsize::new(WRITERS * PUTS);
            let got = collect(
                fast_stream,
                &target,
                Instant::now() + Duration::from_secs(120),
            );
            fast_seen.store(got.len(), Ordering::Release);
        });
        let writers: Vec<_> = (0..WRITERS)
            .map(|t| {
                let node = &node;
                scope.spawn(move || {
                    let c = node.client();
                    let value = vec![b'x'; VALUE_BYTES];
                    for i in 0..PUTS {
                        let key = format!("/f/{t}/{}", i % 50);
                        c.put(put_request(key.as_bytes(), &value)).unwrap();
                    }
                })
            })
            .collect();
        while writers.iter().any(|w| !w.is_finished()) {
            rss_max = rss_max.max(rss_bytes(pid));
            std::thread::sleep(Duration::from_millis(50));
        }
        for w in writers {
            w.join().unwrap();
        }
        reader.join().unwrap();
    });
    let flood = started.elapsed();
    let total = WRITERS * PUTS;
    assert_eq!(
        fast_seen.load(Ordering::Acquire),
        total,
        "the reading watcher missed events"
    );
    // Everything the slow watcher was owed: ~96 MiB of events (twice what a server
    // that held it all would need beyond its baseline of about 30 MiB). The server
    // held a bounded part of it (its queue, then history reads).
    let grown = rss_max.saturating_sub(rss_before);
    eprintln!(
        "{total} puts of {VALUE_BYTES} B in {flood:?}; server RSS {} MiB -> max {} MiB",
        rss_before >> 20,
        rss_max >> 20
    );
    assert!(
        grown < (total * VALUE_BYTES) as u64 * 3 / 4,
        "server RSS grew by {} MiB while a watcher did not read",
        grown >> 20
    );
    // Now it reads: every revision of the flood, in order, once.
    let mut revs = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while revs.len() < total && Instant::now() < deadline {
        match s.recv_timeout(Duration::from_secs(5)) {
            Ok(Some(r)) => revs.extend(events_of(&r).map(|e| e.0)),
            Ok(None) => panic!("slow watcher's stream ended"),
            Err(e) => panic!("slow watcher: {e} after {} events", revs.len()),
        }
    }
    let want: Vec<i64> = (from..from + total as i64).collect();
    assert_eq!(revs.len(), want.len());
    assert!(revs == want, "slow watcher saw a gap or a duplicate");
}
