//! The node's side of the peer network (`cairn_net::peer`): a
//! [`Transport`] that encodes Raft messages, forwards and publishes into
//! peer frames for the [`Dialer`], and a [`PeerHandler`] that checks who
//! dials in and steps what they send into the Raft core.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use cairn_net::peer::{Dialer, DialerEvents, PeerHandler, Refusal};
use cairn_schemas::peer;
use flatbuffers::FlatBufferBuilder;

use super::error::RequestError;
use super::handler::Node;
use super::members::{MemberInfo, Membership};
use super::transport::Transport;
use super::NodeError;
use crate::config::Config;
use crate::peer_codec;
use crate::raft::Message;

/// How long a removed member is still dialed, for what was queued to it.
const REMOVED_PEER_LINGER: Duration = Duration::from_secs(3);

/// Sends to peers through the dialer.
pub struct Peers {
    dialer: Rc<Dialer>,
    me: u64,
    builder: RefCell<FlatBufferBuilder<'static>>,
    /// The addresses each peer is dialed at.
    dialing: RefCell<BTreeMap<u64, Vec<SocketAddr>>>,
}

impl Peers {
    pub fn new(dialer: Rc<Dialer>, me: u64) -> Peers {
        Peers {
            dialer,
            me,
            builder: RefCell::new(FlatBufferBuilder::with_capacity(64 << 10)),
            dialing: RefCell::new(BTreeMap::new()),
        }
    }

    fn send(&self, to: u64, payload: Vec<u8>) {
        if to != self.me {
            self.dialer.send(to, payload);
        }
    }
}

fn addrs_of(urls: &[String]) -> Vec<SocketAddr> {
    urls.iter()
        .filter_map(|u| crate::config::parse_url(u).ok())
        .collect()
}

impl Transport for Peers {
    fn send_raft(&self, m: &Message) {
        let payload = peer_codec::encode_raft_message(&mut self.builder.borrow_mut(), m);
        self.send(m.to, payload);
    }

    fn forward(&self, to: u64, origin: u64, seq: u64, request: &[u8]) {
        let payload =
            peer_codec::encode_forward(&mut self.builder.borrow_mut(), origin, seq, request);
        self.send(to, payload);
    }

    fn forward_refused(&self, origin: u64, seq: u64, e: &RequestError) {
        let payload = peer_codec::encode_forward_refused(
            &mut self.builder.borrow_mut(),
            seq,
            e.code.0,
            &e.message,
        );
        self.send(origin, payload);
    }

    fn forward_reply(&self, origin: u64, seq: u64, response: &[u8]) {
        let payload =
            peer_codec::encode_forward_reply(&mut self.builder.borrow_mut(), seq, response);
        self.send(origin, payload);
    }

    fn publish(&self, to: u64, me: &MemberInfo) {
        let payload = peer_codec::encode_publish(&mut self.builder.borrow_mut(), me);
        self.send(to, payload);
    }

    fn connected(&self, id: u64) -> bool {
        self.dialer.connected(id)
    }

    fn peer_dialed_in(&self, id: u64) {
        self.dialer.nudge(id);
    }

    fn set_members(&self, members: &Membership) {
        let mut dialing = self.dialing.borrow_mut();
        let want: BTreeMap<u64, Vec<SocketAddr>> = members
            .iter()
            .filter(|m| m.id != self.me)
            .map(|m| (m.id, addrs_of(&m.peer_urls)))
            .collect();
        for (id, addrs) in &want {
            if dialing.get(id) != Some(addrs) {
                self.dialer.set_peer(*id, addrs.clone());
            }
        }
        for &id in dialing.keys() {
            if !want.contains_key(&id) {
                // Not at once: the messages already queued for it (the
                // commit of its own removal among them, which is how a
                // removed follower learns to stop) go out first.
                let dialer = self.dialer.clone();
                glommio::spawn_local(async move {
                    glommio::timer::sleep(REMOVED_PEER_LINGER).await;
                    dialer.remove_peer(id);
                })
                .detach();
            }
        }
        *dialing = want;
    }
}

/// Handles what peers send, for the node.
pub struct Inbound {
    pub node: Weak<Node>,
}

impl PeerHandler for Inbound {
    fn check_hello(&self, cluster_id: u64, from: u64, to: u64) -> Result<(), Refusal> {
        let Some(node) = self.node.upgrade() else {
            return Err(Refusal {
                reason: "member is stopping".into(),
                removed: false,
            });
        };
        let state = node.state.borrow();
        let ids = state.ids();
        if cluster_id != ids.cluster_id {
            return Err(Refusal {
                reason: format!(
                    "cluster ID mismatch: this member belongs to cluster {:x}, the dialer to {cluster_id:x}",
                    ids.cluster_id
                ),
                removed: false,
            });
        }
        if to != ids.member_id {
            return Err(Refusal {
                reason: format!(
                    "member ID mismatch: this is member {:x}, the dialer wants {to:x}",
                    ids.member_id
                ),
                removed: false,
            });
        }
        if state.members().is_removed(from) {
            return Err(Refusal {
                reason: format!("member {from:x} was removed from the cluster"),
                removed: true,
            });
        }
        // A restarted member dials at once: dial it back without waiting
        // out the backoff its absence built up.
        node.transport.peer_dialed_in(from);
        Ok(())
    }

    fn on_frame(&self, from: u64, frame: peer::Frame<'_>, _payload: &[u8]) {
        let Some(node) = self.node.upgrade() else {
            return;
        };
        match frame.body_type() {
            peer::Body::RaftMessage => {
                let Some(m) = frame.body_as_raft_message() else {
                    return;
                };
                match peer_codec::decode_raft_message(m) {
                    Ok(m) if m.from == from && m.to == node.member_id => {
                        let now = Instant::now();
                        node.peer_heard.borrow_mut().insert(from, now);
                        if m.kind == crate::raft::MessageKind::HeartbeatResp {
                            node.peer_rtt.borrow_mut().heartbeat_answered(from, now);
                        }
                        node.raft.borrow_mut().step(m);
                        node.wake();
                    }
                    Ok(_) => tracing::debug!(from, "dropped a Raft message with the wrong ids"),
                    Err(e) => tracing::debug!(from, error = %e, "dropped a malformed Raft message"),
                }
            }
            peer::Body::Forward => {
                if let Some(f) = frame.body_as_forward() {
                    if f.origin() == from {
                        node.on_forward(from, f.seq(), f.request().map_or(&[][..], |r| r.bytes()));
                    }
                }
            }
            peer::Body::ForwardRefused => {
                if let Some(f) = frame.body_as_forward_refused() {
                    node.on_forward_refused(f.seq(), f.code(), f.message().unwrap_or_default());
                }
            }
            peer::Body::ForwardReply => {
                if let Some(r) = frame.body_as_forward_reply() {
                    let response = r.response().map_or(&[][..], |v| v.bytes());
                    if cairn_schemas::verify_response(response).is_ok() {
                        node.on_forward_reply(from, r.seq(), response);
                    }
                }
            }
            peer::Body::Publish => {
                if let Some(m) = frame.body_as_publish().and_then(peer_codec::decode_publish) {
                    if m.id == from {
                        node.propose_publish(&m);
                    }
                }
            }
            _ => {}
        }
    }

    fn members_info(&self) -> Vec<u8> {
        let Some(node) = self.node.upgrade() else {
            return Vec::new();
        };
        let state = node.state.borrow();
        let members: Vec<peer_codec::MemberInfo> = state.members().iter().cloned().collect();
        let removed: Vec<u64> = state.members().removed().collect();
        let mut b = FlatBufferBuilder::new();
        peer_codec::encode_members_info(&mut b, state.ids().cluster_id, &members, &removed)
    }
}

/// What the dialer reports: a peer saying we were removed stops us.
pub struct Events;

impl DialerEvents for Events {
    fn refused(&self, peer: u64, reason: &str, removed: bool) {
        if removed {
            tracing::warn!(
                peer = format!("{peer:x}"),
                "peer says this member was removed from the cluster; stopping"
            );
            eprintln!("cairnd: the member has been permanently removed from the cluster");
            std::process::exit(0);
        }
        tracing::warn!(
            peer = format!("{peer:x}"),
            reason,
            "peer refused the connection"
        );
    }
}

/// Asks the peers named in `--initial-cluster` (other than this member)
/// who the cluster is; retries for a while, since they may be starting too.
pub fn query_cluster(cfg: &Config) -> Result<(u64, Membership), NodeError> {
    let mine = &cfg.initial_advertise_peer_urls;
    let addrs: Vec<SocketAddr> = cfg
        .initial_cluster
        .iter()
        .flat_map(|m| m.peer_urls.iter())
        .filter(|u| !mine.contains(u))
        .filter_map(|u| crate::config::parse_url(u).ok())
        .collect();
    if addrs.is_empty() {
        return Err(NodeError::Inconsistent(
            "--initial-cluster-state existing needs the other members' peer URLs in --initial-cluster"
                .into(),
        ));
    }
    let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("cairn-join")
        .io_memory(1 << 20)
        .spawn(move || async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut last = String::new();
            while Instant::now() < deadline {
                for a in &addrs {
                    match cairn_net::peer::query_members(*a, Duration::from_secs(2)).await {
                        Ok(payload) => match decode_info(&payload) {
                            Ok(r) => return Ok(r),
                            Err(e) => last = format!("{a}: {e}"),
                        },
                        Err(e) => last = format!("{a}: {e}"),
                    }
                }
                glommio::timer::sleep(Duration::from_millis(200)).await;
            }
            Err(last)
        })
        .map_err(|e| NodeError::IoUring(e.to_string()))?;
    let result = ex.join().map_err(|e| NodeError::IoUring(e.to_string()))?;
    result.map_err(|e| {
        NodeError::Inconsistent(format!(
            "cannot learn the cluster from its members (--initial-cluster-state existing): {e}"
        ))
    })
}

fn decode_info(payload: &[u8]) -> Result<(u64, Membership), String> {
    let frame = cairn_schemas::verify_peer_frame(payload).map_err(|e| e.to_string())?;
    let info = frame
        .body_as_members_info()
        .ok_or_else(|| "the answer is not a MembersInfo".to_string())?;
    let (cluster_id, members, removed) =
        peer_codec::decode_members_info(info).map_err(|e| e.to_string())?;
    let mut m = Membership::default();
    for x in members {
        m.add(x);
    }
    for id in removed {
        m.remove(id);
    }
    Ok((cluster_id, m))
}
