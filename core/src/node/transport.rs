//! What the node needs from the peer network, as a trait so that the Raft
//! loop does not depend on sockets: `peers.rs` implements it over
//! `cairn_net::peer`.

use super::error::RequestError;
use super::members::{MemberInfo, Membership};
use crate::raft::Message;

pub trait Transport {
    /// Sends a Raft message (dropped if the peer is unreachable: Raft
    /// retries what matters).
    fn send_raft(&self, m: &Message);
    /// Forwards a client request to the leader `to`.
    fn forward(&self, to: u64, origin: u64, seq: u64, request: &[u8]);
    /// Tells `origin` that the leader could not propose its request `seq`.
    fn forward_refused(&self, origin: u64, seq: u64, e: &RequestError);
    /// Answers `origin`'s forwarded request `seq` with `response` (an
    /// encoded Response) that the leader served itself.
    fn forward_reply(&self, origin: u64, seq: u64, response: &[u8]);
    /// Asks the leader `to` to publish this member's name and client URLs.
    fn publish(&self, to: u64, me: &MemberInfo);
    /// The membership changed: dial the members it lists, stop dialing
    /// the removed.
    fn set_members(&self, members: &Membership);
    /// The stream to peer `id` is up (it is dialed and answered).
    fn connected(&self, id: u64) -> bool;
    /// Peer `id` dialed in: it is up, so a stream to it that is down may
    /// reconnect at once.
    fn peer_dialed_in(&self, id: u64);
}
