//! The peer transport over real sockets on 127.0.0.1: handshake, ordered
//! one-way streams, refusals, reconnection, bounded queues, hostile input,
//! and the members query. Every wait is bounded.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use cairn_net::frame::{encode_frame, FrameReader};
use cairn_net::peer::{
    encode_hello, encode_hello_ack, encode_members_query, query_members, serve_peer_connection,
    Dialer, DialerEvents, Identity, PeerError, PeerHandler, PeerLimits, Refusal,
    QUEUE_FRAMES_MAX_DISCONNECTED,
};
use cairn_schemas::peer;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};

const CLUSTER: u64 = 7;
const WAIT: Duration = Duration::from_secs(10);

/// Runs `test` on a fresh glommio executor; fails if it takes over 30 s.
fn run<F, Fut>(test: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .spawn(move || async move {
            futures_lite::future::or(test(), async {
                glommio::timer::sleep(Duration::from_secs(30)).await;
                panic!("test did not finish within 30 s");
            })
            .await
        })
        .expect("spawn executor")
        .join()
        .expect("test executor");
}

/// Polls `cond` every few ms until it holds or [`WAIT`] passes.
async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
}

/// A `Frame { Forward }` payload numbered `seq` (any valid member frame).
fn forward(seq: u64) -> Vec<u8> {
    let mut b = flatbuffers::FlatBufferBuilder::new();
    let fwd = peer::Forward::create(
        &mut b,
        &peer::ForwardArgs {
            origin: 1,
            seq,
            request: None,
        },
    );
    let frame = peer::Frame::create(
        &mut b,
        &peer::FrameArgs {
            body_type: peer::Body::Forward,
            body: Some(fwd.as_union_value()),
        },
    );
    b.finish(frame, None);
    b.finished_data().to_vec()
}

fn members_info_frame() -> Vec<u8> {
    let mut b = flatbuffers::FlatBufferBuilder::new();
    let name = b.create_string("m2");
    let url = b.create_string("http://127.0.0.1:2380");
    let urls = b.create_vector(&[url]);
    let m = peer::PeerMember::create(
        &mut b,
        &peer::PeerMemberArgs {
            id: 2,
            name: Some(name),
            peer_urls: Some(urls),
            client_urls: None,
            is_learner: false,
        },
    );
    let members = b.create_vector(&[m]);
    let info = peer::MembersInfo::create(
        &mut b,
        &peer::MembersInfoArgs {
            cluster_id: CLUSTER,
            members: Some(members),
            removed: None,
        },
    );
    let frame = peer::Frame::create(
        &mut b,
        &peer::FrameArgs {
            body_type: peer::Body::MembersInfo,
            body: Some(info.as_union_value()),
        },
    );
    b.finish(frame, None);
    b.finished_data().to_vec()
}

/// Member `me` of [`CLUSTER`]: refuses other clusters and removed members,
/// records every frame.
struct Recorder {
    me: u64,
    removed: Vec<u64>,
    /// (from, Forward.seq) of every frame received.
    frames: RefCell<Vec<(u64, u64)>>,
}

impl Recorder {
    fn new(me: u64) -> Rc<Recorder> {
        Rc::new(Recorder {
            me,
            removed: Vec::new(),
            frames: RefCell::new(Vec::new()),
        })
    }
    fn count(&self) -> usize {
        self.frames.borrow().len()
    }
}

impl PeerHandler for Recorder {
    fn check_hello(&self, cluster_id: u64, from: u64, to: u64) -> Result<(), Refusal> {
        if cluster_id != CLUSTER {
            return Err(Refusal {
                reason: format!("cluster id mismatch: {cluster_id:x} is not {CLUSTER:x}"),
                removed: false,
            });
        }
        if self.removed.contains(&from) {
            return Err(Refusal {
                reason: format!("member {from:x} was removed"),
                removed: true,
            });
        }
        if to != self.me {
            return Err(Refusal {
                reason: format!("this is member {:x}, not {to:x}", self.me),
                removed: false,
            });
        }
        Ok(())
    }

    fn on_frame(&self, from: u64, frame: peer::Frame<'_>, _payload: &[u8]) {
        let seq = frame.body_as_forward().map_or(u64::MAX, |f| f.seq());
        self.frames.borrow_mut().push((from, seq));
    }

    fn members_info(&self) -> Vec<u8> {
        members_info_frame()
    }
}

#[derive(Default)]
struct Events {
    refused: RefCell<Vec<(u64, String, bool)>>,
    disconnected: Cell<usize>,
}

impl DialerEvents for Events {
    fn refused(&self, peer: u64, reason: &str, removed: bool) {
        self.refused
            .borrow_mut()
            .push((peer, reason.to_string(), removed));
    }
    fn disconnected(&self, _peer: u64) {
        self.disconnected.set(self.disconnected.get() + 1);
    }
}

/// Accepts connections on `listener` and serves each; cancelling the
/// returned task closes the listener and every connection it accepted.
fn listen(
    listener: TcpListener,
    handler: Rc<dyn PeerHandler>,
    limits: PeerLimits,
) -> glommio::Task<()> {
    glommio::spawn_local(async move {
        let mut conns = Vec::new();
        while let Ok(stream) = listener.accept().await {
            conns.push(glommio::spawn_local(serve_peer_connection(
                stream,
                handler.clone(),
                limits,
            )));
        }
    })
}

fn bind() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let addr = l.local_addr().expect("local addr");
    (l, addr)
}

fn dialer(cluster_id: u64, member_id: u64, limits: PeerLimits) -> (Rc<Dialer>, Rc<Events>) {
    let events = Rc::new(Events::default());
    let d = Dialer::new(
        Identity {
            cluster_id,
            member_id,
        },
        limits,
        events.clone(),
    );
    (d, events)
}

/// Reads from `stream` until the other side closes it; panics after [`WAIT`].
async fn assert_closed_by_peer(stream: &mut TcpStream, what: &str) {
    let deadline = Instant::now() + WAIT;
    let mut buf = [0u8; 4096];
    loop {
        assert!(Instant::now() < deadline, "{what}: connection not closed");
        let read = futures_lite::future::or(async { Some(stream.read(&mut buf).await) }, async {
            glommio::timer::sleep(Duration::from_millis(100)).await;
            None
        })
        .await;
        match read {
            Some(Ok(0)) | Some(Err(_)) => return,
            Some(Ok(_)) | None => continue,
        }
    }
}

#[test]
fn frames_arrive_in_order_with_the_senders_id() {
    run(|| async {
        let (listener, addr) = bind();
        let handler = Recorder::new(2);
        let _server = listen(listener, handler.clone(), PeerLimits::default());
        let (d, _events) = dialer(CLUSTER, 1, PeerLimits::default());
        d.set_peer(2, vec![addr]);
        // Queued before the connection exists: they go out once it does.
        for seq in 0..10 {
            assert!(d.send(2, forward(seq)));
        }
        wait_until("connected", || d.connected(2)).await;
        for seq in 10..2000 {
            assert!(d.send(2, forward(seq)), "send {seq}");
            if seq % 500 == 0 {
                futures_lite::future::yield_now().await;
            }
        }
        wait_until("2000 frames received", || handler.count() == 2000).await;
        let frames = handler.frames.borrow();
        assert!(frames.iter().all(|(from, _)| *from == 1));
        let seqs: Vec<u64> = frames.iter().map(|(_, s)| *s).collect();
        assert_eq!(seqs, (0..2000).collect::<Vec<u64>>());
    });
}

#[test]
fn hello_from_another_cluster_is_refused_with_the_reason() {
    run(|| async {
        let (listener, addr) = bind();
        let handler = Recorder::new(2);
        let _server = listen(listener, handler.clone(), PeerLimits::default());
        let (d, events) = dialer(CLUSTER + 1, 1, PeerLimits::default());
        d.set_peer(2, vec![addr]);
        d.send(2, forward(0));
        wait_until("refused", || !events.refused.borrow().is_empty()).await;
        let (peer, reason, removed) = events.refused.borrow()[0].clone();
        assert_eq!(peer, 2);
        assert!(reason.contains("cluster id mismatch"), "{reason}");
        assert!(!removed);
        assert!(!d.connected(2));
        assert_eq!(handler.count(), 0, "a refused dialer delivers nothing");

        // Learning the right cluster id lets the next attempt in.
        d.set_cluster_id(CLUSTER);
        wait_until("connected after set_cluster_id", || d.connected(2)).await;
        assert!(d.send(2, forward(1)));
        wait_until("frame received", || handler.count() >= 1).await;
    });
}

#[test]
fn removed_member_is_refused_as_removed() {
    run(|| async {
        let (listener, addr) = bind();
        let handler = Rc::new(Recorder {
            me: 2,
            removed: vec![1],
            frames: RefCell::new(Vec::new()),
        });
        let _server = listen(listener, handler, PeerLimits::default());
        let (d, events) = dialer(CLUSTER, 1, PeerLimits::default());
        d.set_peer(2, vec![addr]);
        wait_until("refused", || !events.refused.borrow().is_empty()).await;
        let (_, reason, removed) = events.refused.borrow()[0].clone();
        assert!(removed, "{reason}");
        assert!(reason.contains("removed"), "{reason}");
    });
}

#[test]
fn dialer_reconnects_when_the_listener_comes_back() {
    run(|| async {
        let (listener, addr) = bind();
        let first = Recorder::new(2);
        let server = listen(listener, first.clone(), PeerLimits::default());
        let (d, events) = dialer(CLUSTER, 1, PeerLimits::default());
        d.set_peer(2, vec![addr]);
        wait_until("connected", || d.connected(2)).await;
        assert!(d.send(2, forward(0)));
        wait_until("first frame", || first.count() == 1).await;

        // The listener and its connections go away.
        server.cancel().await;
        wait_until("disconnected", || !d.connected(2)).await;
        wait_until("disconnected event", || events.disconnected.get() >= 1).await;

        // A new listener on the same port: the dialer finds it again.
        let listener = TcpListener::bind(addr).expect("rebind the same port");
        let second = Recorder::new(2);
        let _server = listen(listener, second.clone(), PeerLimits::default());
        wait_until("reconnected", || d.connected(2)).await;
        for seq in 1..=100 {
            assert!(d.send(2, forward(seq)));
        }
        wait_until("later frames", || second.count() >= 100).await;
        let seqs: Vec<u64> = second.frames.borrow().iter().map(|(_, s)| *s).collect();
        assert_eq!(
            &seqs[seqs.len() - 100..],
            &(1..=100).collect::<Vec<u64>>()[..]
        );
    });
}

#[test]
fn changing_a_peers_address_reconnects_and_keeps_the_queue() {
    run(|| async {
        let (dead, dead_addr) = bind();
        drop(dead);
        let (d, _events) = dialer(CLUSTER, 1, PeerLimits::default());
        d.set_peer(2, vec![dead_addr]);
        for seq in 0..5 {
            assert!(d.send(2, forward(seq)));
        }
        glommio::timer::sleep(Duration::from_millis(100)).await;
        assert!(!d.connected(2));

        let (listener, addr) = bind();
        let handler = Recorder::new(2);
        let _server = listen(listener, handler.clone(), PeerLimits::default());
        d.set_peer(2, vec![addr]);
        wait_until("connected at the new address", || d.connected(2)).await;
        wait_until("frames queued before the change", || handler.count() == 5).await;
        let seqs: Vec<u64> = handler.frames.borrow().iter().map(|(_, s)| *s).collect();
        assert_eq!(seqs, vec![0, 1, 2, 3, 4]);
    });
}

#[test]
fn queue_refuses_when_full_while_disconnected() {
    run(|| async {
        // A port nobody listens on.
        let (listener, addr) = bind();
        drop(listener);
        let limits = PeerLimits {
            max_frame_bytes: 64 << 10,
        };
        let (d, _events) = dialer(CLUSTER, 1, limits);
        d.set_peer(2, vec![addr]);
        assert!(!d.send(3, forward(0)), "unknown peer");
        let mut accepted = 0;
        for seq in 0..10_000 {
            if d.send(2, forward(seq)) {
                accepted += 1;
            }
        }
        assert_eq!(accepted, QUEUE_FRAMES_MAX_DISCONNECTED);
        assert_eq!(d.queued(2).0, QUEUE_FRAMES_MAX_DISCONNECTED);
        // Bytes are bounded too, whatever the frame count.
        d.remove_peer(2);
        d.set_peer(2, vec![addr]);
        assert!(!d.send(2, vec![0; (64 << 10) + 1]), "over max_frame_bytes");
        assert!(d.send(2, vec![0; 40 << 10]));
        assert!(!d.send(2, vec![0; 40 << 10]), "over the byte bound");
        assert!(d.queued(2).1 <= limits.max_frame_bytes);
        // Still refusing after some reconnection attempts.
        glommio::timer::sleep(Duration::from_millis(200)).await;
        assert!(!d.connected(2));
        assert!(d.queued(2).1 <= limits.max_frame_bytes);
        d.remove_peer(2);
        assert!(!d.send(2, forward(0)), "removed peer");
    });
}

#[test]
fn queue_stays_bounded_when_the_peer_stops_reading() {
    run(|| async {
        // A listener that accepts the Hello and then never reads again.
        let (listener, addr) = bind();
        let stalled = glommio::spawn_local(async move {
            let mut stream = listener.accept().await.expect("accept");
            let mut reader = FrameReader::new(&mut stream, 1 << 16);
            reader.next().await.expect("hello");
            drop(reader);
            let mut ack = Vec::new();
            encode_frame(&mut ack, 0, &encode_hello_ack(true, "", false));
            stream.write_all(&ack).await.expect("ack");
            glommio::timer::sleep(Duration::from_secs(60)).await;
            drop(stream);
        });
        let limits = PeerLimits {
            max_frame_bytes: 4 << 20,
        };
        let (d, _events) = dialer(CLUSTER, 1, limits);
        d.set_peer(2, vec![addr]);
        wait_until("connected", || d.connected(2)).await;
        let chunk = vec![0u8; 1 << 20];
        let mut refused = false;
        for _ in 0..1000 {
            if !d.send(2, chunk.clone()) {
                refused = true;
                break;
            }
            let (frames, bytes) = d.queued(2);
            assert!(
                bytes <= limits.max_frame_bytes,
                "{frames} frames, {bytes} bytes"
            );
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        assert!(
            refused,
            "send never refused although the peer reads nothing"
        );
        drop(stalled);
    });
}

/// What a hostile connection sends: its first bytes and, if the Hello
/// was accepted, what it sends next.
type BadConnection = (&'static str, Vec<u8>, Option<Vec<u8>>);

#[test]
fn garbage_and_oversized_frames_close_only_their_connection() {
    run(|| async {
        let (listener, addr) = bind();
        let handler = Recorder::new(2);
        let limits = PeerLimits {
            max_frame_bytes: 1 << 20,
        };
        let _server = listen(listener, handler.clone(), limits);
        let (d, _events) = dialer(CLUSTER, 1, PeerLimits::default());
        d.set_peer(2, vec![addr]);
        wait_until("connected", || d.connected(2)).await;

        let mut hello = Vec::new();
        encode_frame(&mut hello, 0, &encode_hello(CLUSTER, 3, 2));
        let mut garbage = Vec::new();
        encode_frame(&mut garbage, 1, b"this is not a flatbuffer at all");
        let mut oversized = Vec::new();
        oversized.extend_from_slice(&u32::MAX.to_le_bytes());
        oversized.extend_from_slice(&[0; 8]);
        let mut first_not_hello = Vec::new();
        encode_frame(&mut first_not_hello, 1, &forward(0));
        let mut over_limit = Vec::new();
        over_limit.extend_from_slice(&(((1u32 << 20) + 9).to_le_bytes()));
        over_limit.extend_from_slice(&[0; 8]);

        let cases: Vec<BadConnection> = vec![
            ("garbage instead of Hello", garbage.clone(), None),
            ("oversized length instead of Hello", oversized.clone(), None),
            ("a Forward instead of Hello", first_not_hello, None),
            ("garbage after Hello", hello.clone(), Some(garbage)),
            (
                "frame over the limit after Hello",
                hello.clone(),
                Some(over_limit),
            ),
            (
                "length below the minimum after Hello",
                hello.clone(),
                Some(vec![1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            ),
        ];
        for (what, first, then) in cases {
            let mut s = TcpStream::connect(addr).await.expect("connect");
            s.write_all(&first).await.expect("write");
            if let Some(then) = then {
                let mut reader = FrameReader::new(&mut s, 1 << 16);
                let (_, ack) = reader.next().await.expect("HelloAck");
                let ack = cairn_schemas::verify_peer_frame(ack).expect("verify ack");
                assert!(ack.body_as_hello_ack().expect("ack").ok(), "{what}");
                drop(reader);
                s.write_all(&then).await.expect("write");
            }
            assert_closed_by_peer(&mut s, what).await;
        }

        // The dialer's connection never noticed.
        assert!(d.connected(2));
        assert!(d.send(2, forward(42)));
        wait_until("frame after the garbage", || handler.count() == 1).await;
        assert_eq!(handler.frames.borrow()[0], (1, 42));
    });
}

#[test]
fn query_members_returns_the_handlers_members_info() {
    run(|| async {
        let (listener, addr) = bind();
        let handler = Recorder::new(2);
        let _server = listen(listener, handler.clone(), PeerLimits::default());
        let info = query_members(addr, Duration::from_secs(5))
            .await
            .expect("query");
        assert_eq!(info, members_info_frame());
        let frame = cairn_schemas::verify_peer_frame(&info).expect("verify");
        let m = frame.body_as_members_info().expect("MembersInfo");
        assert_eq!(m.cluster_id(), CLUSTER);

        // A query-only connection (from 0) may not send member frames.
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let mut out = Vec::new();
        encode_frame(&mut out, 0, &encode_hello(0, 0, 0));
        encode_frame(&mut out, 1, &encode_members_query());
        encode_frame(&mut out, 2, &forward(9));
        s.write_all(&out).await.expect("write");
        assert_closed_by_peer(&mut s, "member frame on a query connection").await;
        assert_eq!(handler.count(), 0);

        // Nobody there: a connection error, not a hang.
        let (listener, dead) = bind();
        drop(listener);
        let err = query_members(dead, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, PeerError::Connect { .. }), "{err}");
    });
}
