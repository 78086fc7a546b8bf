//! The concurrency recipes (cairn_net::recipes) on a real cairnd: a mutex
//! contended by threads never has two holders, a holder that stops renewing
//! loses the lock when its lease expires, and an election hands leadership
//! on in campaign order, visible to observers.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use cairn_core::testkit::TestNode;
use cairn_net::recipes::{observe, Election, Mutex, Session};
use cairn_net::{BlockingClient, ClientOptions};

fn session(n: &TestNode, ttl: i64) -> Session {
    let addrs = [n.endpoint().parse().unwrap()];
    let c = BlockingClient::connect(&addrs, ClientOptions::default()).unwrap();
    Session::new(c, &addrs, ttl).unwrap()
}

#[test]
fn a_contended_mutex_never_has_two_holders() {
    let n = TestNode::start();
    let holders = Arc::new(AtomicUsize::new(0));
    let acquired = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (holders, acquired) = (holders.clone(), acquired.clone());
            let s = session(&n, 10);
            std::thread::spawn(move || {
                for _ in 0..5 {
                    let mut m = Mutex::new(&s, "contended");
                    m.lock(Some(Duration::from_secs(30))).unwrap();
                    assert_eq!(holders.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                    acquired.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    holders.fetch_sub(1, Ordering::SeqCst);
                    m.unlock().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(acquired.load(Ordering::SeqCst), 20);
    // Every key was released.
    let r = n
        .client()
        .range(cairn_net::client::get_request(b"contended/"))
        .unwrap();
    assert!(r.kvs.is_none_or(|k| k.is_empty()));
}

#[test]
fn a_lock_passes_on_when_the_holders_lease_expires() {
    let n = TestNode::start();
    let holder = session(&n, 2);
    let mut m = Mutex::new(&holder, "expiring");
    m.lock(None).unwrap();
    // The holder stops renewing (as a killed process would): its session
    // is dropped without releasing the lock.
    std::mem::forget(m);
    drop(holder);
    let waiter = session(&n, 10);
    let mut w = Mutex::new(&waiter, "expiring");
    let started = Instant::now();
    w.lock(Some(Duration::from_secs(15))).unwrap();
    let waited = started.elapsed();
    // Not before the holder's lease ran out (2 s TTL, renewed TTL/3 ago at
    // most), and soon after.
    assert!(
        waited >= Duration::from_millis(1000) && waited < Duration::from_secs(6),
        "waited {waited:?}"
    );
    w.unlock().unwrap();
}

#[test]
fn an_election_hands_leadership_on_in_campaign_order_and_observers_see_it() {
    let n = TestNode::start();
    let seen: Arc<StdMutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let observer = {
        let (seen, stop) = (seen.clone(), stop.clone());
        let c = n.client();
        std::thread::spawn(move || {
            observe(&c, "leader", &stop, |kv| {
                let v = String::from_utf8_lossy(kv.value.as_deref().unwrap_or_default());
                seen.lock().unwrap().push(v.into_owned());
                true
            })
            .unwrap();
        })
    };
    let a = session(&n, 10);
    let mut ea = Election::new(&a, "leader");
    ea.campaign(b"a", None).unwrap();
    assert_eq!(ea.leader().unwrap().value.as_deref(), Some(&b"a"[..]));
    let b_led = Arc::new(AtomicBool::new(false));
    let candidate = {
        let b_led = b_led.clone();
        let b = session(&n, 10);
        std::thread::spawn(move || {
            let mut eb = Election::new(&b, "leader");
            eb.campaign(b"b", Some(Duration::from_secs(20))).unwrap();
            b_led.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(300));
            eb.resign().unwrap();
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    assert!(!b_led.load(Ordering::SeqCst), "b leads while a does");
    ea.proclaim(b"a2").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    ea.resign().unwrap();
    candidate.join().unwrap();
    assert!(b_led.load(Ordering::SeqCst));
    // A resigned leader cannot proclaim.
    assert!(ea.proclaim(b"late").is_err());
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.lock().unwrap().len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::SeqCst);
    observer.join().unwrap();
    assert_eq!(*seen.lock().unwrap(), vec!["a", "a2", "b"]);
}
