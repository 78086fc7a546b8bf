//! A fault-injecting TCP proxy for one member's peer listener.
//!
//! A member advertises the proxy's address as its peer URL, so every peer
//! connection *to* that member goes through the proxy. Peer connections are
//! one-way (PROTOCOL.md, "Peers"): the first frame on each is the dialer's
//! `Hello {cluster_id, from, to, version}`, so the proxy learns which member
//! dialed (`from`) and can drop that member's traffic to this one:
//!
//! ```text
//!   member A ──dial──▶ proxy(B) ──▶ B's real peer listener
//!                        │ reads Hello.from = A
//!                        └ blocked(A)? close both sides
//! ```
//!
//! - [`PeerProxy::block_from`]: drop and refuse the connections of a set of
//!   members (A's messages to B are lost; B's to A still flow, through A's
//!   own proxy).
//! - [`PeerProxy::block_all`]: drop and refuse every connection (nobody
//!   reaches B; with every other proxy blocking `from == B`, B is cut off).
//! - [`PeerProxy::heal`]: forward everything again.
//!
//! Plain threads on `std::net`. Bounds: at most [`CONNECTIONS_MAX`]
//! connections (two forwarding threads each, plus one accepting thread),
//! [`BUFFER_BYTES`] per direction, the handshake read within
//! [`HELLO_TIMEOUT`] and at most [`HELLO_FRAME_BYTES_MAX`]. Bytes that are
//! not a `Hello` are forwarded as they are (the member behind decides what
//! to do with garbage); such a connection has no known `from` and only
//! [`PeerProxy::block_all`] drops it. Nothing here panics on what it reads.

use std::collections::{BTreeSet, HashMap};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Most connections forwarded at once (more are closed on accept).
pub const CONNECTIONS_MAX: usize = 64;
/// Buffer of one forwarding direction.
pub const BUFFER_BYTES: usize = 64 << 10;
/// Largest first frame parsed as a `Hello` (the peer protocol's handshake
/// limit); a longer one is forwarded unparsed.
pub const HELLO_FRAME_BYTES_MAX: usize = 64 << 10;
/// Time allowed for the dialer's first frame (the listener allows 2 s).
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(2);
/// Time allowed to connect to the member behind the proxy.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the accepting thread looks at the stop flag.
const ACCEPT_POLL: Duration = Duration::from_millis(5);
/// How long [`PeerProxy::stop`] waits for the forwarding threads.
const STOP_WAIT: Duration = Duration::from_secs(3);

/// What the proxy lets through; changed at runtime.
#[derive(Default)]
struct Rules {
    blocked_from: BTreeSet<u64>,
    block_all: bool,
}

/// A forwarded connection: both sockets, to cut them when a rule changes.
struct Link {
    from: Option<u64>,
    dialer: TcpStream,
    target: TcpStream,
}

impl Link {
    fn cut(&self) {
        let _ = self.dialer.shutdown(Shutdown::Both);
        let _ = self.target.shutdown(Shutdown::Both);
    }
}

#[derive(Default)]
struct State {
    rules: Rules,
    links: HashMap<u64, Link>,
    next_link: u64,
}

struct Shared {
    target: SocketAddr,
    state: Mutex<State>,
    stop: AtomicBool,
    /// Connection threads alive (the accepting thread not counted).
    threads: AtomicUsize,
    /// Connections refused or cut by a rule (for tests and logs).
    dropped: AtomicUsize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a forwarding thread panicked; the
        // rules and the links are still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running proxy; dropping it stops it.
pub struct PeerProxy {
    listen: SocketAddr,
    shared: Arc<Shared>,
    accepter: Option<JoinHandle<()>>,
}

impl PeerProxy {
    /// Listens on `127.0.0.1:listen_port` and forwards to
    /// `127.0.0.1:target_port`.
    pub fn start(listen_port: u16, target_port: u16) -> std::io::Result<PeerProxy> {
        let listener = TcpListener::bind(("127.0.0.1", listen_port))?;
        listener.set_nonblocking(true)?;
        let listen = listener.local_addr()?;
        let shared = Arc::new(Shared {
            target: SocketAddr::from(([127, 0, 0, 1], target_port)),
            state: Mutex::default(),
            stop: AtomicBool::new(false),
            threads: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
        });
        let s = shared.clone();
        let accepter = std::thread::Builder::new()
            .name(format!("proxy-{}", listen.port()))
            .spawn(move || accept_loop(&listener, &s))?;
        Ok(PeerProxy {
            listen,
            shared,
            accepter: Some(accepter),
        })
    }

    /// The address members dial.
    pub fn addr(&self) -> SocketAddr {
        self.listen
    }

    /// Drops the connections of the members `ids` and refuses their new
    /// ones (adds to the blocked set).
    pub fn block_from(&self, ids: &[u64]) {
        let mut st = self.shared.lock();
        st.rules.blocked_from.extend(ids.iter().copied());
        self.cut_blocked(&mut st);
    }

    /// Drops every connection and refuses new ones.
    pub fn block_all(&self) {
        let mut st = self.shared.lock();
        st.rules.block_all = true;
        self.cut_blocked(&mut st);
    }

    /// Forwards everything again (connections dropped stay dropped: the
    /// members redial).
    pub fn heal(&self) {
        let mut st = self.shared.lock();
        st.rules = Rules::default();
    }

    /// Connections refused or cut by a rule so far.
    pub fn dropped(&self) -> usize {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    fn cut_blocked(&self, st: &mut State) {
        let State { rules, links, .. } = st;
        links.retain(|_, l| {
            if blocks(rules, l.from) {
                l.cut();
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                false
            } else {
                true
            }
        });
    }

    /// Stops accepting, cuts every connection and waits (bounded) for the
    /// forwarding threads to end.
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.accepter.take() {
            let _ = t.join();
        }
        {
            let mut st = self.shared.lock();
            for (_, l) in st.links.drain() {
                l.cut();
            }
        }
        let start = Instant::now();
        while self.shared.threads.load(Ordering::Relaxed) > 0 && start.elapsed() < STOP_WAIT {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for PeerProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

fn blocks(rules: &Rules, from: Option<u64>) -> bool {
    rules.block_all || from.is_some_and(|f| rules.blocked_from.contains(&f))
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    while !shared.stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => on_accept(stream, shared),
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_POLL),
            // A connection reset before accept, or out of descriptors for a
            // moment: try again later.
            Err(_) => std::thread::sleep(ACCEPT_POLL),
        }
    }
}

fn on_accept(stream: TcpStream, shared: &Arc<Shared>) {
    let busy = shared.threads.load(Ordering::Relaxed) >= 2 * CONNECTIONS_MAX;
    if busy || shared.lock().rules.block_all {
        shared.dropped.fetch_add(1, Ordering::Relaxed);
        return; // Dropping `stream` closes it.
    }
    shared.threads.fetch_add(1, Ordering::Relaxed);
    let s = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("proxy-conn".into())
        .spawn(move || {
            serve(stream, &s);
            s.threads.fetch_sub(1, Ordering::Relaxed);
        });
    if spawned.is_err() {
        shared.threads.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Reads the first frame (if it is a small `Hello`, learns `from`),
/// connects to the member, registers the link unless a rule blocks it, and
/// forwards both ways until either side closes or the link is cut.
fn serve(mut dialer: TcpStream, shared: &Arc<Shared>) {
    let _ = dialer.set_nodelay(true);
    let _ = dialer.set_read_timeout(Some(HELLO_TIMEOUT));
    let Some((prefix, from)) = read_hello(&mut dialer) else {
        return;
    };
    let _ = dialer.set_read_timeout(None);
    let Ok(mut target) = TcpStream::connect_timeout(&shared.target, CONNECT_TIMEOUT) else {
        return;
    };
    let _ = target.set_nodelay(true);
    let (Ok(d2), Ok(t2)) = (dialer.try_clone(), target.try_clone()) else {
        return;
    };
    let id = {
        let mut st = shared.lock();
        if shared.stop.load(Ordering::Relaxed) || blocks(&st.rules, from) {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let id = st.next_link;
        st.next_link += 1;
        st.links.insert(
            id,
            Link {
                from,
                dialer: d2,
                target: t2,
            },
        );
        id
    };
    if target.write_all(&prefix).is_ok() {
        forward_both_ways(dialer, target, shared);
    }
    if let Some(l) = shared.lock().links.remove(&id) {
        l.cut();
    }
}

/// The bytes of the first frame as read, and the `from` of its `Hello`
/// (None if it is not a valid `Hello` frame within the limits). None when
/// the dialer closed or said nothing in time.
fn read_hello(dialer: &mut TcpStream) -> Option<(Vec<u8>, Option<u64>)> {
    let mut len_bytes = [0u8; 4];
    dialer.read_exact(&mut len_bytes).ok()?;
    let len = u32::from_le_bytes(len_bytes) as usize;
    if !(8..=HELLO_FRAME_BYTES_MAX + 8).contains(&len) {
        return Some((len_bytes.to_vec(), None));
    }
    let mut frame = vec![0u8; 4 + len];
    frame[..4].copy_from_slice(&len_bytes);
    dialer.read_exact(&mut frame[4..]).ok()?;
    let from = cairn_schemas::verify_peer_frame(&frame[12..])
        .ok()
        .and_then(|f| f.body_as_hello())
        .map(|h| h.from());
    Some((frame, from))
}

fn forward_both_ways(dialer: TcpStream, target: TcpStream, shared: &Arc<Shared>) {
    let (Ok(d2), Ok(t2)) = (dialer.try_clone(), target.try_clone()) else {
        return;
    };
    // The answers (HelloAck, MembersInfo) go back on a second thread.
    shared.threads.fetch_add(1, Ordering::Relaxed);
    let s = shared.clone();
    let back = std::thread::Builder::new()
        .name("proxy-back".into())
        .spawn(move || {
            pipe(t2, d2);
            s.threads.fetch_sub(1, Ordering::Relaxed);
        });
    if back.is_err() {
        shared.threads.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    pipe(dialer, target);
}

/// Copies `from` to `to` until either fails, then closes both.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; BUFFER_BYTES];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello_frame(from: u64) -> Vec<u8> {
        let payload = cairn_net::peer::encode_hello(7, from, 2);
        let mut f = Vec::new();
        f.extend_from_slice(&((payload.len() + 8) as u32).to_le_bytes());
        f.extend_from_slice(&0u64.to_le_bytes());
        f.extend_from_slice(&payload);
        f
    }

    /// An echo server standing in for a member's peer listener.
    fn echo_server() -> (u16, JoinHandle<()>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            for s in l.incoming().take(4).flatten() {
                std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut r = s.try_clone().unwrap();
                    let mut w = s;
                    let _ = std::io::copy(&mut r, &mut w);
                });
            }
        });
        (port, t)
    }

    fn dial(p: &PeerProxy) -> TcpStream {
        let s = TcpStream::connect(p.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s
    }

    /// Whether `s` echoes `msg` back (false once the proxy cut it).
    fn echoes(s: &mut TcpStream, msg: &[u8]) -> bool {
        if s.write_all(msg).is_err() {
            return false;
        }
        let mut got = vec![0u8; msg.len()];
        s.read_exact(&mut got).is_ok() && got == msg
    }

    #[test]
    fn blocked_members_are_cut_and_refused_until_healed() {
        let (port, _t) = echo_server();
        let p = PeerProxy::start(crate::testkit::free_port(), port).unwrap();
        let mut a = dial(&p);
        let mut b = dial(&p);
        let (ha, hb) = (hello_frame(1), hello_frame(2));
        assert!(echoes(&mut a, &ha));
        assert!(echoes(&mut b, &hb));
        p.block_from(&[1]);
        assert!(!echoes(&mut a, b"x"), "member 1's link survived its block");
        assert!(echoes(&mut b, b"y"), "member 2's link was cut");
        let mut a2 = dial(&p);
        assert!(!echoes(&mut a2, &ha), "member 1 reconnected while blocked");
        p.heal();
        let mut a3 = dial(&p);
        assert!(echoes(&mut a3, &ha));
        p.block_all();
        assert!(!echoes(&mut b, b"z"));
        assert!(!echoes(&mut a3, b"z"));
        assert!(p.dropped() >= 3);
    }

    #[test]
    fn garbage_first_frames_are_forwarded_unparsed() {
        let (port, _t) = echo_server();
        let p = PeerProxy::start(crate::testkit::free_port(), port).unwrap();
        // A length past the handshake limit, then a short non-Hello frame.
        let mut s = dial(&p);
        assert!(echoes(&mut s, &[0xff, 0xff, 0xff, 0x7f, 1, 2, 3]));
        let mut s = dial(&p);
        let mut junk = 12u32.to_le_bytes().to_vec();
        junk.extend_from_slice(&[0xab; 12]);
        assert!(echoes(&mut s, &junk));
        // A dialer that says nothing and leaves is no trouble either.
        drop(dial(&p));
        p.block_from(&[1]);
        assert!(echoes(&mut s, b"still"));
    }
}
