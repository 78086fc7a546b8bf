//! etcd's Watch service against a real node: streams over the native
//! protocol, history replay, cancel, progress, compaction, fragments,
//! filters, and the guarantees under load (no gap, no duplicate, revision
//! order; slow watchers never block writes and catch up).

use std::time::{Duration, Instant};

use cairn_core::testkit::TestNode;
use cairn_net::client::{prefix_range_end, put_request};
use cairn_net::{BlockingClient, ClientError, WatchStream};
use cairn_schemas::rpc;

fn watch_req(key: &[u8], range_end: &[u8], start_revision: i64) -> rpc::WatchCreateRequestT {
    rpc::WatchCreateRequestT {
        key: Some(key.to_vec()),
        range_end: (!range_end.is_empty()).then(|| range_end.to_vec()),
        start_revision,
        ..Default::default()
    }
}

fn prefix(p: &[u8]) -> rpc::WatchCreateRequestT {
    watch_req(p, &prefix_range_end(p), 0)
}

/// (type, key, value, mod_revision) of an event.
type Ev = (rpc::EventType, Vec<u8>, Vec<u8>, i64);

fn events_of(r: &rpc::WatchResponseT) -> Vec<Ev> {
    r.events
        .iter()
        .flatten()
        .map(|e| {
            let kv = e.kv.as_deref().expect("an event has a kv");
            (
                e.type_,
                kv.key.clone().unwrap_or_default(),
                kv.value.clone().unwrap_or_default(),
                kv.mod_revision,
            )
        })
        .collect()
}

/// Reads responses until `n` events arrived (or the deadline passes).
fn take_events(s: &mut WatchStream<'_>, n: usize, limit: Duration) -> Vec<Ev> {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match s.recv_timeout(left) {
            Ok(Some(r)) => out.extend(events_of(&r)),
            Ok(None) => break,
            Err(ClientError::Timeout) => break,
            Err(e) => panic!("watch stream failed: {e}"),
        }
    }
    out
}

fn put(c: &BlockingClient, k: &str, v: &str) -> i64 {
    c.put(put_request(k.as_bytes(), v.as_bytes()))
        .unwrap()
        .header
        .unwrap()
        .revision
}

fn del(c: &BlockingClient, k: &str) -> i64 {
    c.delete_range(rpc::DeleteRangeRequestT {
        key: Some(k.as_bytes().to_vec()),
        ..Default::default()
    })
    .unwrap()
    .header
    .unwrap()
    .revision
}

const SECS5: Duration = Duration::from_secs(5);

#[test]
fn prefix_watch_sees_puts_and_deletes_in_order_then_ends_on_cancel() {
    let node = TestNode::start();
    let c = node.client();
    let mut s = c.watch(prefix(b"/cfg/")).unwrap();
    assert!(s.created().created);
    assert_eq!(
        s.watch_id(),
        0,
        "etcd numbers a connection's watches from 0"
    );
    let r1 = put(&c, "/cfg/a", "1");
    put(&c, "/other", "x");
    let r3 = put(&c, "/cfg/b", "2");
    let r4 = del(&c, "/cfg/a");
    let got = take_events(&mut s, 3, SECS5);
    assert_eq!(
        got,
        vec![
            (rpc::EventType::Put, b"/cfg/a".to_vec(), b"1".to_vec(), r1),
            (rpc::EventType::Put, b"/cfg/b".to_vec(), b"2".to_vec(), r3),
            (rpc::EventType::Delete, b"/cfg/a".to_vec(), vec![], r4),
        ]
    );
    let answer = c.watch_cancel(s.watch_id()).unwrap();
    assert!(answer.canceled);
    let last = s.recv_timeout(SECS5).unwrap().unwrap();
    assert!(last.canceled && last.watch_id == 0);
    assert!(s.recv_timeout(SECS5).unwrap().is_none());
    // Cancelling again: the watch is gone.
    let err = c.watch_cancel(0).unwrap_err();
    assert_eq!(err.to_string(), "mvcc: watcher does not exist");
}

#[test]
fn watch_from_a_past_revision_replays_history_then_goes_live_without_gap() {
    let node = TestNode::start();
    let c = node.client();
    let first = put(&c, "k", "v1");
    for i in 2..=5 {
        put(&c, "k", &format!("v{i}"));
    }
    let mut s = c.watch(watch_req(b"k", b"", first + 1)).unwrap();
    let hist = take_events(&mut s, 4, SECS5);
    let revs: Vec<i64> = hist.iter().map(|e| e.3).collect();
    assert_eq!(revs, vec![first + 1, first + 2, first + 3, first + 4]);
    let live = put(&c, "k", "v6");
    let next = take_events(&mut s, 1, SECS5);
    assert_eq!(next[0].3, live);
    assert_eq!(next[0].2, b"v6");
}

#[test]
fn compacted_start_revision_is_created_then_canceled_with_the_compact_revision() {
    let node = TestNode::start();
    let c = node.client();
    for i in 0..5 {
        put(&c, "k", &i.to_string());
    }
    c.compact(rpc::CompactionRequestT {
        revision: 4,
        physical: false,
    })
    .unwrap();
    let mut s = c.watch(watch_req(b"k", b"", 2)).unwrap();
    assert!(s.created().created && !s.created().canceled);
    let r = s.recv_timeout(SECS5).unwrap().unwrap();
    assert!(r.canceled);
    assert_eq!(r.compact_revision, 4);
    assert_eq!(
        r.cancel_reason.as_deref(),
        Some("etcdserver: mvcc: required revision has been compacted")
    );
    assert!(s.recv_timeout(SECS5).unwrap().is_none());
}

#[test]
fn bad_watches_are_created_and_canceled_in_one_response() {
    let node = TestNode::start();
    let c = node.client();
    let mut s = c.watch(watch_req(b"b", b"a", 0)).unwrap();
    let r = s.created().clone();
    assert!(r.created && r.canceled);
    assert_eq!(r.watch_id, -1);
    assert_eq!(
        r.cancel_reason.as_deref(),
        Some("mvcc: watcher range is empty")
    );
    assert!(s.recv_timeout(SECS5).unwrap().is_some_and(|r| r.canceled));
    let _a = c
        .watch(rpc::WatchCreateRequestT {
            watch_id: 7,
            ..prefix(b"x")
        })
        .unwrap();
    let dup = c
        .watch(rpc::WatchCreateRequestT {
            watch_id: 7,
            ..prefix(b"y")
        })
        .unwrap();
    assert_eq!(
        dup.created().cancel_reason.as_deref(),
        Some("mvcc: duplicate watch ID provided on the WatchStream")
    );
}

#[test]
fn prev_kv_and_filters() {
    let node = TestNode::start();
    let c = node.client();
    let mut w = c
        .watch(rpc::WatchCreateRequestT {
            prev_kv: true,
            filters: Some(vec![rpc::WatchFilter::NoPut]),
            ..watch_req(b"k", b"", 0)
        })
        .unwrap();
    put(&c, "k", "1");
    put(&c, "k", "2");
    let d = del(&c, "k");
    let r = w.recv_timeout(SECS5).unwrap().unwrap();
    let e = &r.events.as_ref().unwrap()[0];
    assert_eq!(e.type_, rpc::EventType::Delete);
    assert_eq!(e.kv.as_ref().unwrap().mod_revision, d);
    let prev = e.prev_kv.as_ref().unwrap();
    assert_eq!(prev.value.as_deref(), Some(&b"2"[..]));
    assert_eq!(prev.version, 2);
    assert_eq!(r.header.as_ref().unwrap().revision, d);
}

#[test]
fn progress_request_is_answered_with_the_current_revision() {
    let node = TestNode::start();
    let c = node.client();
    let _s = c.watch(prefix(b"p")).unwrap();
    let rev = put(&c, "q", "1");
    let p = c.watch_progress().unwrap();
    assert_eq!(p.watch_id, -1);
    assert!(!p.created && !p.canceled);
    assert_eq!(p.header.unwrap().revision, rev);
}

#[test]
fn progress_notify_reaches_quiet_watchers_at_the_configured_interval() {
    let node = TestNode::start_with(&["--experimental-watch-progress-notify-interval", "200ms"]);
    let c = node.client();
    let rev = put(&c, "x", "1");
    let mut s = c
        .watch(rpc::WatchCreateRequestT {
            progress_notify: true,
            ..prefix(b"p")
        })
        .unwrap();
    let r = s.recv_timeout(SECS5).unwrap().unwrap();
    assert!(r.events.as_ref().is_none_or(|e| e.is_empty()));
    assert!(!r.canceled);
    assert_eq!(r.header.unwrap().revision, rev);
}

#[test]
fn fragmented_watch_splits_a_large_revision_and_unfragmented_gets_it_whole() {
    let node = TestNode::start_with(&["--max-request-bytes", "65536"]);
    let c = node.client();
    // One revision whose events (deletes with their 20 KB prev_kvs) are
    // well over the limit.
    let value = vec![b'v'; 20_000];
    for i in 0..8 {
        c.put(put_request(format!("f/{i}").as_bytes(), &value))
            .unwrap();
    }
    let mut frag = c
        .watch(rpc::WatchCreateRequestT {
            fragment: true,
            prev_kv: true,
            ..prefix(b"f/")
        })
        .unwrap();
    let mut whole = c
        .watch(rpc::WatchCreateRequestT {
            prev_kv: true,
            ..prefix(b"f/")
        })
        .unwrap();
    c.delete_range(rpc::DeleteRangeRequestT {
        key: Some(b"f/".to_vec()),
        range_end: Some(prefix_range_end(b"f/")),
        ..Default::default()
    })
    .unwrap();
    let mut parts = Vec::new();
    loop {
        let r = frag.recv_timeout(SECS5).unwrap().unwrap();
        let n = r.events.as_ref().map_or(0, |e| e.len());
        parts.push((n, r.fragment));
        if !r.fragment {
            break;
        }
    }
    assert!(parts.len() > 1, "{parts:?}");
    assert_eq!(parts.iter().map(|p| p.0).sum::<usize>(), 8);
    let w = whole.recv_timeout(SECS5).unwrap().unwrap();
    assert_eq!(w.events.unwrap().len(), 8);
    assert!(!w.fragment);
}
