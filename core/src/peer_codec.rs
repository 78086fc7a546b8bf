//! Encoding and decoding the peer protocol's payloads (`schemas/fbs/peer.fbs`)
//! from and to the Raft core's plain structs. Pure: no I/O, no state; the
//! transport (`cairn_net::peer`) moves the bytes.
//!
//! Encoders take a `FlatBufferBuilder` the caller keeps, reset it and
//! return the finished `Frame` payload, so the hot path (one Raft message
//! after another) reuses one builder's buffer instead of growing a new one
//! per message. Decoders take tables from a frame that already passed
//! `cairn_schemas::verify_peer_frame`, and still check what the verifier
//! cannot: enum values this version does not know, fields a kind needs.
//!
//! ```
//! use cairn_core::peer_codec::{decode_raft_message, encode_raft_message};
//! use cairn_core::raft::{Message, MessageKind};
//! let mut b = flatbuffers::FlatBufferBuilder::new();
//! let mut m = Message::new(MessageKind::Heartbeat, 2);
//! m.from = 1;
//! m.term = 5;
//! let payload = encode_raft_message(&mut b, &m);
//! let frame = cairn_schemas::verify_peer_frame(&payload).unwrap();
//! assert_eq!(decode_raft_message(frame.body_as_raft_message().unwrap()).unwrap(), m);
//! ```

use std::collections::HashSet;

use cairn_schemas::peer;
use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, WIPOffset};

use crate::raft::{ConfState, Entry, EntryKind, Message, MessageKind, Snapshot, SnapshotMeta};

/// Why a verified peer payload does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// Not a valid FlatBuffer `Frame` (only from [`decode_raft_frame`]).
    #[error("malformed peer frame: {0}")]
    Malformed(String),
    /// A valid frame holding another body than the one expected.
    #[error("expected a {expected} frame, got {got}")]
    WrongBody {
        expected: &'static str,
        got: &'static str,
    },
    #[error("unknown Raft message kind {0}")]
    UnknownMessageKind(u8),
    #[error("unknown entry kind {kind} in the entry at index {index}")]
    UnknownEntryKind { kind: u8, index: u64 },
    /// A `Snapshot` message must carry the snapshot's metadata.
    #[error("Snapshot message without snapshot metadata")]
    SnapshotWithoutMeta,
    /// Snapshot data is meaningless without the metadata saying where it stands.
    #[error("snapshot data without snapshot metadata")]
    SnapshotDataWithoutMeta,
    /// Member id 0 names nobody.
    #[error("member with id 0")]
    ZeroMemberId,
    #[error("member {0} listed twice")]
    DuplicateMember(u64),
}

fn kind_to_wire(kind: MessageKind) -> peer::MessageKind {
    match kind {
        MessageKind::Vote => peer::MessageKind::Vote,
        MessageKind::VoteResp => peer::MessageKind::VoteResp,
        MessageKind::PreVote => peer::MessageKind::PreVote,
        MessageKind::PreVoteResp => peer::MessageKind::PreVoteResp,
        MessageKind::Append => peer::MessageKind::Append,
        MessageKind::AppendResp => peer::MessageKind::AppendResp,
        MessageKind::Heartbeat => peer::MessageKind::Heartbeat,
        MessageKind::HeartbeatResp => peer::MessageKind::HeartbeatResp,
        MessageKind::Snapshot => peer::MessageKind::Snapshot,
        MessageKind::TimeoutNow => peer::MessageKind::TimeoutNow,
        MessageKind::ReadIndex => peer::MessageKind::ReadIndex,
        MessageKind::ReadIndexResp => peer::MessageKind::ReadIndexResp,
    }
}

fn kind_from_wire(kind: peer::MessageKind) -> Result<MessageKind, CodecError> {
    Ok(match kind {
        peer::MessageKind::Vote => MessageKind::Vote,
        peer::MessageKind::VoteResp => MessageKind::VoteResp,
        peer::MessageKind::PreVote => MessageKind::PreVote,
        peer::MessageKind::PreVoteResp => MessageKind::PreVoteResp,
        peer::MessageKind::Append => MessageKind::Append,
        peer::MessageKind::AppendResp => MessageKind::AppendResp,
        peer::MessageKind::Heartbeat => MessageKind::Heartbeat,
        peer::MessageKind::HeartbeatResp => MessageKind::HeartbeatResp,
        peer::MessageKind::Snapshot => MessageKind::Snapshot,
        peer::MessageKind::TimeoutNow => MessageKind::TimeoutNow,
        peer::MessageKind::ReadIndex => MessageKind::ReadIndex,
        peer::MessageKind::ReadIndexResp => MessageKind::ReadIndexResp,
        other => return Err(CodecError::UnknownMessageKind(other.0)),
    })
}

fn entry_kind_to_wire(kind: EntryKind) -> peer::EntryKind {
    match kind {
        EntryKind::Normal => peer::EntryKind::Normal,
        EntryKind::ConfChange => peer::EntryKind::ConfChange,
    }
}

/// Wraps `body` in a `Frame`, finishes the buffer and copies it out.
fn finish_frame(
    b: &mut FlatBufferBuilder<'_>,
    body_type: peer::Body,
    body: WIPOffset<UnionWIPOffset>,
) -> Vec<u8> {
    let frame = peer::Frame::create(
        b,
        &peer::FrameArgs {
            body_type,
            body: Some(body),
        },
    );
    b.finish(frame, None);
    b.finished_data().to_vec()
}

/// Empty byte fields are left out of the buffer (they decode as empty).
fn bytes_field<'a>(
    b: &mut FlatBufferBuilder<'a>,
    bytes: &[u8],
) -> Option<WIPOffset<flatbuffers::Vector<'a, u8>>> {
    (!bytes.is_empty()).then(|| b.create_vector(bytes))
}

/// Builds a `RaftMessage` table (also used inside `SnapshotChunk`).
pub fn build_raft_message<'a>(
    b: &mut FlatBufferBuilder<'a>,
    m: &Message,
) -> WIPOffset<peer::RaftMessage<'a>> {
    let entries = if m.entries.is_empty() {
        None
    } else {
        let offsets: Vec<_> = m
            .entries
            .iter()
            .map(|e| {
                let data = bytes_field(b, &e.data);
                peer::Entry::create(
                    b,
                    &peer::EntryArgs {
                        term: e.term,
                        index: e.index,
                        kind: entry_kind_to_wire(e.kind),
                        data,
                    },
                )
            })
            .collect();
        Some(b.create_vector(&offsets))
    };
    let (snapshot, snapshot_data) = match &m.snapshot {
        None => (None, None),
        Some(s) => {
            let voters = b.create_vector(&s.meta.conf.voters);
            let learners = b.create_vector(&s.meta.conf.learners);
            let meta = peer::SnapshotMeta::create(
                b,
                &peer::SnapshotMetaArgs {
                    index: s.meta.index,
                    term: s.meta.term,
                    voters: Some(voters),
                    learners: Some(learners),
                },
            );
            (Some(meta), bytes_field(b, &s.data))
        }
    };
    let context = bytes_field(b, &m.context);
    peer::RaftMessage::create(
        b,
        &peer::RaftMessageArgs {
            kind: kind_to_wire(m.kind),
            from: m.from,
            to: m.to,
            term: m.term,
            log_term: m.log_term,
            index: m.index,
            entries,
            commit: m.commit,
            reject: m.reject,
            reject_hint: m.reject_hint,
            snapshot,
            snapshot_data,
            context,
        },
    )
}

/// A whole `Frame { RaftMessage }` payload for `m`. Resets `b` first.
pub fn encode_raft_message(b: &mut FlatBufferBuilder<'_>, m: &Message) -> Vec<u8> {
    b.reset();
    let msg = build_raft_message(b, m);
    finish_frame(b, peer::Body::RaftMessage, msg.as_union_value())
}

/// The Raft message a verified `RaftMessage` table holds.
pub fn decode_raft_message(m: peer::RaftMessage<'_>) -> Result<Message, CodecError> {
    let kind = kind_from_wire(m.kind())?;
    let mut entries = Vec::new();
    if let Some(v) = m.entries() {
        entries.reserve_exact(v.len());
        for e in v.iter() {
            entries.push(decode_entry(e)?);
        }
    }
    let snapshot = match (m.snapshot(), m.snapshot_data()) {
        (Some(meta), data) => Some(Snapshot {
            meta: SnapshotMeta {
                index: meta.index(),
                term: meta.term(),
                conf: ConfState {
                    voters: meta
                        .voters()
                        .map(|v| v.iter().collect())
                        .unwrap_or_default(),
                    learners: meta
                        .learners()
                        .map(|v| v.iter().collect())
                        .unwrap_or_default(),
                },
            },
            data: data.map(|d| d.bytes().to_vec()).unwrap_or_default(),
        }),
        (None, Some(_)) => return Err(CodecError::SnapshotDataWithoutMeta),
        (None, None) => None,
    };
    if kind == MessageKind::Snapshot && snapshot.is_none() {
        return Err(CodecError::SnapshotWithoutMeta);
    }
    Ok(Message {
        kind,
        from: m.from(),
        to: m.to(),
        term: m.term(),
        log_term: m.log_term(),
        index: m.index(),
        entries,
        commit: m.commit(),
        reject: m.reject(),
        reject_hint: m.reject_hint(),
        snapshot,
        context: m.context().map(|c| c.bytes().to_vec()).unwrap_or_default(),
    })
}

fn decode_entry(e: peer::Entry<'_>) -> Result<Entry, CodecError> {
    let kind = match e.kind() {
        peer::EntryKind::Normal => EntryKind::Normal,
        peer::EntryKind::ConfChange => EntryKind::ConfChange,
        other => {
            return Err(CodecError::UnknownEntryKind {
                kind: other.0,
                index: e.index(),
            })
        }
    };
    Ok(Entry {
        term: e.term(),
        index: e.index(),
        kind,
        data: e.data().map(|d| d.bytes().to_vec()).unwrap_or_default(),
    })
}

fn body_name(frame: &peer::Frame<'_>) -> &'static str {
    frame
        .body_type()
        .variant_name()
        .unwrap_or("an unknown body")
}

/// Verifies `payload` as a peer `Frame` and decodes the Raft message it
/// must hold.
pub fn decode_raft_frame(payload: &[u8]) -> Result<Message, CodecError> {
    let frame = cairn_schemas::verify_peer_frame(payload)
        .map_err(|e| CodecError::Malformed(e.to_string()))?;
    match frame.body_as_raft_message() {
        Some(m) => decode_raft_message(m),
        None => Err(CodecError::WrongBody {
            expected: "RaftMessage",
            got: body_name(&frame),
        }),
    }
}

/// A `Frame { Forward }` payload: member `origin` forwards a client's
/// `request` (an encoded `cairn.rpc.Request`) to the leader under `seq`.
pub fn encode_forward(
    b: &mut FlatBufferBuilder<'_>,
    origin: u64,
    seq: u64,
    request: &[u8],
) -> Vec<u8> {
    b.reset();
    let request = b.create_vector(request);
    let fwd = peer::Forward::create(
        b,
        &peer::ForwardArgs {
            origin,
            seq,
            request: Some(request),
        },
    );
    finish_frame(b, peer::Body::Forward, fwd.as_union_value())
}

/// A `Frame { ForwardRefused }` payload: the leader could not propose the
/// forwarded request `seq`; `code` is a `cairn.rpc.ErrorCode` value.
pub fn encode_forward_refused(
    b: &mut FlatBufferBuilder<'_>,
    seq: u64,
    code: u16,
    message: &str,
) -> Vec<u8> {
    b.reset();
    let message = b.create_string(message);
    let refused = peer::ForwardRefused::create(
        b,
        &peer::ForwardRefusedArgs {
            seq,
            code,
            message: Some(message),
        },
    );
    finish_frame(b, peer::Body::ForwardRefused, refused.as_union_value())
}

pub fn encode_forward_reply(b: &mut FlatBufferBuilder<'_>, seq: u64, response: &[u8]) -> Vec<u8> {
    b.reset();
    let response = b.create_vector(response);
    let reply = peer::ForwardReply::create(
        b,
        &peer::ForwardReplyArgs {
            seq,
            response: Some(response),
        },
    );
    finish_frame(b, peer::Body::ForwardReply, reply.as_union_value())
}

/// One member as the cluster knows it (the node's own type).
pub use crate::node::members::MemberInfo;

fn string_list<'a>(
    b: &mut FlatBufferBuilder<'a>,
    list: &[String],
) -> WIPOffset<flatbuffers::Vector<'a, flatbuffers::ForwardsUOffset<&'a str>>> {
    let offsets: Vec<_> = list.iter().map(|s| b.create_string(s)).collect();
    b.create_vector(&offsets)
}

fn member_table<'a>(
    b: &mut FlatBufferBuilder<'a>,
    m: &MemberInfo,
) -> WIPOffset<peer::PeerMember<'a>> {
    let name = b.create_string(&m.name);
    let peer_urls = string_list(b, &m.peer_urls);
    let client_urls = string_list(b, &m.client_urls);
    peer::PeerMember::create(
        b,
        &peer::PeerMemberArgs {
            id: m.id,
            name: Some(name),
            peer_urls: Some(peer_urls),
            client_urls: Some(client_urls),
            is_learner: m.is_learner,
        },
    )
}

fn decode_member(m: peer::PeerMember<'_>) -> MemberInfo {
    let strings = |v: Option<flatbuffers::Vector<'_, flatbuffers::ForwardsUOffset<&str>>>| {
        v.map(|v| v.iter().map(str::to_string).collect())
            .unwrap_or_default()
    };
    MemberInfo {
        id: m.id(),
        name: m.name().unwrap_or_default().to_string(),
        peer_urls: strings(m.peer_urls()),
        client_urls: strings(m.client_urls()),
        is_learner: m.is_learner(),
    }
}

/// A `Frame { Publish }` payload: a member's name and client URLs, for the
/// leader to propose.
pub fn encode_publish(b: &mut FlatBufferBuilder<'_>, m: &MemberInfo) -> Vec<u8> {
    b.reset();
    let member = Some(member_table(b, m));
    let p = peer::Publish::create(b, &peer::PublishArgs { member });
    finish_frame(b, peer::Body::Publish, p.as_union_value())
}

/// The member a verified `Publish` carries.
pub fn decode_publish(p: peer::Publish<'_>) -> Option<MemberInfo> {
    p.member().map(decode_member)
}

/// A `Frame { MembersInfo }` payload: the answer to a `MembersQuery`.
pub fn encode_members_info(
    b: &mut FlatBufferBuilder<'_>,
    cluster_id: u64,
    members: &[MemberInfo],
    removed: &[u64],
) -> Vec<u8> {
    b.reset();
    let offsets: Vec<_> = members.iter().map(|m| member_table(b, m)).collect();
    let members = b.create_vector(&offsets);
    let removed = b.create_vector(removed);
    let info = peer::MembersInfo::create(
        b,
        &peer::MembersInfoArgs {
            cluster_id,
            members: Some(members),
            removed: Some(removed),
        },
    );
    finish_frame(b, peer::Body::MembersInfo, info.as_union_value())
}

/// The cluster id, members and removed member ids of a verified
/// `MembersInfo`. A member id of 0 or listed twice is an error.
pub fn decode_members_info(
    info: peer::MembersInfo<'_>,
) -> Result<(u64, Vec<MemberInfo>, Vec<u64>), CodecError> {
    let mut members = Vec::new();
    let mut seen = HashSet::new();
    for m in info.members().iter().flat_map(|v| v.iter()) {
        if m.id() == 0 {
            return Err(CodecError::ZeroMemberId);
        }
        if !seen.insert(m.id()) {
            return Err(CodecError::DuplicateMember(m.id()));
        }
        members.push(decode_member(m));
    }
    let removed = info
        .removed()
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    Ok((info.cluster_id(), members, removed))
}

#[cfg(test)]
mod tests;
