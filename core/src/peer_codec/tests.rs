//! Round trips of every Raft message shape through the wire format, and
//! malformed input that must be an error, never a panic.

use proptest::prelude::*;

use super::*;
use crate::raft::{ConfState, Entry, EntryKind, Message, MessageKind, Snapshot, SnapshotMeta};

const KINDS: [MessageKind; 12] = [
    MessageKind::Vote,
    MessageKind::VoteResp,
    MessageKind::PreVote,
    MessageKind::PreVoteResp,
    MessageKind::Append,
    MessageKind::AppendResp,
    MessageKind::Heartbeat,
    MessageKind::HeartbeatResp,
    MessageKind::Snapshot,
    MessageKind::TimeoutNow,
    MessageKind::ReadIndex,
    MessageKind::ReadIndexResp,
];

fn entry() -> impl Strategy<Value = Entry> {
    (
        any::<u64>(),
        any::<u64>(),
        prop_oneof![Just(EntryKind::Normal), Just(EntryKind::ConfChange)],
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(term, index, kind, data)| Entry {
            term,
            index,
            kind,
            data,
        })
}

fn snapshot() -> impl Strategy<Value = Snapshot> {
    (
        any::<u64>(),
        any::<u64>(),
        prop::collection::vec(any::<u64>(), 0..5),
        prop::collection::vec(any::<u64>(), 0..3),
        prop::collection::vec(any::<u8>(), 0..128),
    )
        .prop_map(|(index, term, voters, learners, data)| Snapshot {
            meta: SnapshotMeta {
                index,
                term,
                conf: ConfState { voters, learners },
            },
            data,
        })
}

fn message() -> impl Strategy<Value = Message> {
    let kind = prop::sample::select(KINDS.to_vec());
    let numbers = (
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<bool>(),
        any::<u64>(),
    );
    let parts = (
        prop::collection::vec(entry(), 0..8),
        prop::option::of(snapshot()),
        snapshot(),
        prop::collection::vec(any::<u8>(), 0..32),
    );
    (kind, numbers, parts).prop_map(
        |(kind, (from, to, term, log_term, index, commit, reject, reject_hint), parts)| {
            let (entries, maybe_snapshot, some_snapshot, context) = parts;
            // A Snapshot message always carries one; the others may (the
            // struct allows it, so the codec must keep it).
            let snapshot = if kind == MessageKind::Snapshot {
                Some(some_snapshot)
            } else {
                maybe_snapshot
            };
            Message {
                kind,
                from,
                to,
                term,
                log_term,
                index,
                entries,
                commit,
                reject,
                reject_hint,
                snapshot,
                context,
            }
        },
    )
}

fn member() -> impl Strategy<Value = MemberInfo> {
    let url = "[a-z0-9:/.]{0,24}";
    (
        1..u64::MAX,
        "[a-z0-9-]{0,12}",
        prop::collection::vec(url, 0..3),
        prop::collection::vec(url, 0..3),
        any::<bool>(),
    )
        .prop_map(
            |(id, name, peer_urls, client_urls, is_learner)| MemberInfo {
                id,
                name,
                peer_urls,
                client_urls,
                is_learner,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_raft_message_round_trips(msgs in prop::collection::vec(message(), 1..4)) {
        // One builder for all of them: reuse must not leak one message
        // into the next.
        let mut b = FlatBufferBuilder::new();
        for m in &msgs {
            let payload = encode_raft_message(&mut b, m);
            let frame = cairn_schemas::verify_peer_frame(&payload)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let decoded = decode_raft_message(frame.body_as_raft_message().unwrap());
            prop_assert_eq!(decoded.as_ref(), Ok(m));
        }
    }

    #[test]
    fn truncated_raft_frame_is_an_error_or_unchanged(m in message(), cut in 1usize..4096) {
        let mut b = FlatBufferBuilder::new();
        let payload = encode_raft_message(&mut b, &m);
        let cut = cut.min(payload.len());
        let got = decode_raft_frame(&payload[..payload.len() - cut]);
        // The last bytes of a buffer may be alignment padding (at most 7):
        // cutting only those leaves a valid buffer with the same message.
        if cut > 7 {
            prop_assert!(got.is_err(), "cut {} of {} bytes decoded: {:?}", cut, payload.len(), got);
        } else if let Ok(got) = got {
            prop_assert_eq!(got, m);
        }
    }

    #[test]
    fn random_bytes_are_an_error(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        prop_assert!(decode_raft_frame(&bytes).is_err());
    }

    #[test]
    fn members_info_round_trips(
        cluster_id in any::<u64>(),
        members in prop::collection::vec(member(), 0..6),
        removed in prop::collection::vec(any::<u64>(), 0..6),
    ) {
        let mut members = members;
        members.sort_by_key(|m| m.id);
        members.dedup_by_key(|m| m.id);
        let mut b = FlatBufferBuilder::new();
        let payload = encode_members_info(&mut b, cluster_id, &members, &removed);
        let frame = cairn_schemas::verify_peer_frame(&payload)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let got = decode_members_info(frame.body_as_members_info().unwrap());
        prop_assert_eq!(got, Ok((cluster_id, members, removed)));
    }

    #[test]
    fn publish_round_trips(m in member()) {
        let mut b = FlatBufferBuilder::new();
        let payload = encode_publish(&mut b, &m);
        let frame = cairn_schemas::verify_peer_frame(&payload)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(frame.body_as_publish().and_then(decode_publish), Some(m));
    }
}

/// A `Frame { RaftMessage }` built field by field, to say what the encoder
/// never would.
fn raw_raft_frame(
    kind: u8,
    entry_kind: Option<u8>,
    snapshot_meta: bool,
    snapshot_data: bool,
) -> Vec<u8> {
    let mut b = FlatBufferBuilder::new();
    let entries = entry_kind.map(|k| {
        let e = peer::Entry::create(
            &mut b,
            &peer::EntryArgs {
                term: 1,
                index: 9,
                kind: peer::EntryKind(k),
                data: None,
            },
        );
        b.create_vector(&[e])
    });
    let snapshot = snapshot_meta.then(|| {
        peer::SnapshotMeta::create(
            &mut b,
            &peer::SnapshotMetaArgs {
                index: 3,
                term: 2,
                voters: None,
                learners: None,
            },
        )
    });
    let snapshot_data = snapshot_data.then(|| b.create_vector(&[1u8, 2, 3]));
    let msg = peer::RaftMessage::create(
        &mut b,
        &peer::RaftMessageArgs {
            kind: peer::MessageKind(kind),
            entries,
            snapshot,
            snapshot_data,
            ..Default::default()
        },
    );
    finish_frame(&mut b, peer::Body::RaftMessage, msg.as_union_value())
}

#[test]
fn unknown_message_kind_is_an_error() {
    let payload = raw_raft_frame(200, None, false, false);
    assert_eq!(
        decode_raft_frame(&payload),
        Err(CodecError::UnknownMessageKind(200))
    );
}

#[test]
fn unknown_entry_kind_is_an_error() {
    let payload = raw_raft_frame(4, Some(7), false, false);
    assert_eq!(
        decode_raft_frame(&payload),
        Err(CodecError::UnknownEntryKind { kind: 7, index: 9 })
    );
}

#[test]
fn snapshot_message_without_meta_is_an_error() {
    let payload = raw_raft_frame(8, None, false, false);
    assert_eq!(
        decode_raft_frame(&payload),
        Err(CodecError::SnapshotWithoutMeta)
    );
    let payload = raw_raft_frame(8, None, true, false);
    assert!(decode_raft_frame(&payload).is_ok());
}

#[test]
fn snapshot_data_without_meta_is_an_error() {
    let payload = raw_raft_frame(6, None, false, true);
    assert_eq!(
        decode_raft_frame(&payload),
        Err(CodecError::SnapshotDataWithoutMeta)
    );
}

#[test]
fn another_body_is_not_a_raft_message() {
    let mut b = FlatBufferBuilder::new();
    let payload = encode_forward(&mut b, 1, 2, b"request");
    assert_eq!(
        decode_raft_frame(&payload),
        Err(CodecError::WrongBody {
            expected: "RaftMessage",
            got: "Forward"
        })
    );
}

#[test]
fn forward_and_refusal_carry_their_fields() {
    let mut b = FlatBufferBuilder::new();
    let payload = encode_forward(&mut b, 3, 77, b"req");
    let frame = cairn_schemas::verify_peer_frame(&payload).unwrap();
    let f = frame.body_as_forward().unwrap();
    assert_eq!((f.origin(), f.seq()), (3, 77));
    assert_eq!(f.request().map(|r| r.bytes()), Some(&b"req"[..]));

    let payload = encode_forward_refused(&mut b, 77, 9, "etcdserver: no leader");
    let frame = cairn_schemas::verify_peer_frame(&payload).unwrap();
    let r = frame.body_as_forward_refused().unwrap();
    assert_eq!(
        (r.seq(), r.code(), r.message()),
        (77, 9, Some("etcdserver: no leader"))
    );
}

#[test]
fn members_info_with_duplicate_or_zero_ids_is_an_error() {
    let m = |id| MemberInfo {
        id,
        ..MemberInfo::default()
    };
    let mut b = FlatBufferBuilder::new();
    for (members, want) in [
        (vec![m(1), m(1)], CodecError::DuplicateMember(1)),
        (vec![m(0)], CodecError::ZeroMemberId),
    ] {
        let payload = encode_members_info(&mut b, 5, &members, &[]);
        let frame = cairn_schemas::verify_peer_frame(&payload).unwrap();
        assert_eq!(
            decode_members_info(frame.body_as_members_info().unwrap()),
            Err(want)
        );
    }
}
