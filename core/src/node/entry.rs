//! What the data of a Raft log entry holds (the WAL stores it as is).
//!
//! ```text
//! Normal entries
//!   (empty)                                      the leader's no-op of its term
//!   1 | origin u64 | seq u64 | request           a client request (a verified
//!                                                FlatBuffers rpc::Request)
//!   2 | member                                   a member publishes its name
//!                                                and client URLs (members.rs)
//!   3 | origin u64 | seq u64 | id u64 | member   member update: new peer URLs
//! ConfChange entries
//!   change (9 bytes, raft::ConfChange::encode) | origin u64 | seq u64 | member?
//!                                                add carries the member,
//!                                                remove and promote nothing
//! ```
//!
//! `origin` is the member that proposed the entry on behalf of a client
//! and `seq` its waiter there (0: nobody waits): whichever member proposes
//! it to the leader, the member the client talks to answers it when the
//! entry applies there.

use super::members::{decode_member, encode_member, MemberInfo, Reader};

const TAG_REQUEST: u8 = 1;
const TAG_PUBLISH: u8 = 2;
const TAG_UPDATE: u8 = 3;

/// Who waits for an entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    pub member: u64,
    pub seq: u64,
}

/// A decoded normal entry.
#[derive(Debug, PartialEq, Eq)]
pub enum Normal<'a> {
    Empty,
    Request { origin: Origin, request: &'a [u8] },
    Publish(MemberInfo),
    Update { origin: Origin, member: MemberInfo },
}

/// Whether applying `e` changes whom this member dials (a membership
/// change, or a member's new peer URLs).
pub fn changes_peers(e: &crate::raft::Entry) -> bool {
    e.kind == crate::raft::EntryKind::ConfChange
        || (e.kind == crate::raft::EntryKind::Normal && e.data.first() == Some(&TAG_UPDATE))
}

pub fn request(origin: Origin, request: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(17 + request.len());
    out.push(TAG_REQUEST);
    put_origin(&mut out, origin);
    out.extend_from_slice(request);
    out
}

pub fn publish(m: &MemberInfo) -> Vec<u8> {
    let mut out = vec![TAG_PUBLISH];
    encode_member(&mut out, m);
    out
}

pub fn update(origin: Origin, m: &MemberInfo) -> Vec<u8> {
    let mut out = vec![TAG_UPDATE];
    put_origin(&mut out, origin);
    encode_member(&mut out, m);
    out
}

/// The context a membership change carries after its 9 bytes.
pub fn conf_context(origin: Origin, member: Option<&MemberInfo>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    put_origin(&mut out, origin);
    if let Some(m) = member {
        encode_member(&mut out, m);
    }
    out
}

fn put_origin(out: &mut Vec<u8>, o: Origin) {
    out.extend_from_slice(&o.member.to_le_bytes());
    out.extend_from_slice(&o.seq.to_le_bytes());
}

fn origin_from(r: &mut Reader<'_>) -> Result<Origin, String> {
    Ok(Origin {
        member: r.u64()?,
        seq: r.u64()?,
    })
}

pub fn decode_normal(data: &[u8]) -> Result<Normal<'_>, String> {
    let Some((&tag, rest)) = data.split_first() else {
        return Ok(Normal::Empty);
    };
    let mut r = Reader(rest);
    match tag {
        TAG_REQUEST => {
            let origin = origin_from(&mut r)?;
            Ok(Normal::Request {
                origin,
                request: r.rest(),
            })
        }
        TAG_PUBLISH => Ok(Normal::Publish(decode_member(r.rest())?)),
        TAG_UPDATE => {
            let origin = origin_from(&mut r)?;
            Ok(Normal::Update {
                origin,
                member: decode_member(r.rest())?,
            })
        }
        t => Err(format!("unknown entry tag {t}")),
    }
}

/// Decodes the context after a membership change's 9 bytes.
pub fn decode_conf_context(ctx: &[u8]) -> Result<(Origin, Option<MemberInfo>), String> {
    let mut r = Reader(ctx);
    let origin = origin_from(&mut r)?;
    let rest = r.rest();
    if rest.is_empty() {
        return Ok((origin, None));
    }
    Ok((origin, Some(decode_member(rest)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_kind_round_trips() {
        let o = Origin { member: 9, seq: 77 };
        let m = MemberInfo {
            id: 5,
            name: "n5".into(),
            peer_urls: vec!["http://127.0.0.1:1".into()],
            client_urls: vec![],
            is_learner: true,
        };
        assert_eq!(decode_normal(&[]).unwrap(), Normal::Empty);
        assert_eq!(
            decode_normal(&request(o, b"req")).unwrap(),
            Normal::Request {
                origin: o,
                request: b"req"
            }
        );
        assert_eq!(
            decode_normal(&publish(&m)).unwrap(),
            Normal::Publish(m.clone())
        );
        assert_eq!(
            decode_normal(&update(o, &m)).unwrap(),
            Normal::Update {
                origin: o,
                member: m.clone()
            }
        );
        assert_eq!(
            decode_conf_context(&conf_context(o, Some(&m))).unwrap(),
            (o, Some(m))
        );
        assert_eq!(
            decode_conf_context(&conf_context(o, None)).unwrap(),
            (o, None)
        );
    }

    #[test]
    fn damaged_entries_are_errors() {
        assert!(decode_normal(&[9, 1, 2]).is_err());
        assert!(decode_normal(&[TAG_REQUEST, 1, 2]).is_err());
        assert!(decode_conf_context(&[1, 2, 3]).is_err());
    }
}
