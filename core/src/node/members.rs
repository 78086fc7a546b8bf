//! The cluster's membership as the state machine knows it: every member's
//! id, name, peer and client URLs and whether it is a learner, plus the ids
//! of removed members (never reused, and refused when they dial in).
//!
//! It changes only by applying log entries (a membership change, or a
//! member publishing its name and client URLs), so every member holds the
//! same view at the same applied index. It is committed to the page file
//! with the applied index (meta `members`), so a restart knows it without
//! the log entries that built it.
//!
//! # Encoding (page file and entry contexts), little-endian
//!
//! ```text
//! member  := id u64 | is_learner u8 | name str | n u32 | peer_url str * n
//!            | m u32 | client_url str * m
//! str     := len u32 | utf-8 bytes
//! members := version u8 (1) | count u32 | member * count | removed u32 | id u64 * removed
//! ```

use std::collections::{BTreeMap, BTreeSet};

use crate::raft::ConfState;

/// One member.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberInfo {
    pub id: u64,
    /// Empty until the member started and published it.
    pub name: String,
    pub peer_urls: Vec<String>,
    /// Empty until the member started and published them.
    pub client_urls: Vec<String>,
    pub is_learner: bool,
}

/// Most members, URLs per member and bytes per string a decoder accepts:
/// bounds on what a damaged file or entry can make us allocate.
const MAX_MEMBERS: u32 = 1024;
const MAX_URLS: u32 = 64;
const MAX_STR_BYTES: u32 = 4096;
const MAX_REMOVED: u32 = 1 << 20;

/// The membership.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    members: BTreeMap<u64, MemberInfo>,
    removed: BTreeSet<u64>,
}

impl Membership {
    pub fn get(&self, id: u64) -> Option<&MemberInfo> {
        self.members.get(&id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &MemberInfo> {
        self.members.values()
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn is_removed(&self, id: u64) -> bool {
        self.removed.contains(&id)
    }

    pub fn removed(&self) -> impl Iterator<Item = u64> + '_ {
        self.removed.iter().copied()
    }

    /// The member whose peer URLs are exactly `urls` (order aside).
    pub fn find_by_peer_urls(&self, urls: &[String]) -> Option<&MemberInfo> {
        let want = sorted(urls);
        self.members.values().find(|m| sorted(&m.peer_urls) == want)
    }

    /// A member (other than `except`) already using one of `urls`.
    pub fn peer_url_in_use(&self, urls: &[String], except: u64) -> bool {
        self.members
            .values()
            .filter(|m| m.id != except)
            .any(|m| m.peer_urls.iter().any(|u| urls.contains(u)))
    }

    /// Raft's view: voters and learners.
    pub fn conf_state(&self) -> ConfState {
        ConfState {
            voters: self
                .members
                .values()
                .filter(|m| !m.is_learner)
                .map(|m| m.id)
                .collect(),
            learners: self
                .members
                .values()
                .filter(|m| m.is_learner)
                .map(|m| m.id)
                .collect(),
        }
    }

    /// Adds `m` (or, for an existing learner added as a voter, promotes it).
    pub fn add(&mut self, m: MemberInfo) {
        if self.removed.contains(&m.id) {
            return;
        }
        match self.members.get_mut(&m.id) {
            Some(existing) => {
                if !m.is_learner {
                    existing.is_learner = false;
                }
            }
            None => {
                self.members.insert(m.id, m);
            }
        }
    }

    pub fn promote(&mut self, id: u64) {
        if let Some(m) = self.members.get_mut(&id) {
            m.is_learner = false;
        }
    }

    pub fn remove(&mut self, id: u64) {
        self.members.remove(&id);
        self.removed.insert(id);
    }

    pub fn update_peer_urls(&mut self, id: u64, urls: Vec<String>) {
        if let Some(m) = self.members.get_mut(&id) {
            m.peer_urls = urls;
        }
    }

    /// A member published its name and client URLs.
    pub fn publish(&mut self, id: u64, name: String, client_urls: Vec<String>) {
        if let Some(m) = self.members.get_mut(&id) {
            m.name = name;
            m.client_urls = client_urls;
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![1u8];
        out.extend_from_slice(&(self.members.len() as u32).to_le_bytes());
        for m in self.members.values() {
            encode_member(&mut out, m);
        }
        out.extend_from_slice(&(self.removed.len() as u32).to_le_bytes());
        for id in &self.removed {
            out.extend_from_slice(&id.to_le_bytes());
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Membership, String> {
        let mut r = Reader(bytes);
        let version = r.u8()?;
        if version != 1 {
            return Err(format!("unknown membership encoding version {version}"));
        }
        let n = r.count(MAX_MEMBERS)?;
        let mut members = BTreeMap::new();
        for _ in 0..n {
            let m = decode_member_from(&mut r)?;
            members.insert(m.id, m);
        }
        let n = r.count(MAX_REMOVED)?;
        let mut removed = BTreeSet::new();
        for _ in 0..n {
            removed.insert(r.u64()?);
        }
        r.end()?;
        Ok(Membership { members, removed })
    }
}

fn sorted(urls: &[String]) -> Vec<&str> {
    let mut v: Vec<&str> = urls.iter().map(String::as_str).collect();
    v.sort_unstable();
    v
}

pub fn encode_member(out: &mut Vec<u8>, m: &MemberInfo) {
    out.extend_from_slice(&m.id.to_le_bytes());
    out.push(u8::from(m.is_learner));
    put_str(out, &m.name);
    for list in [&m.peer_urls, &m.client_urls] {
        out.extend_from_slice(&(list.len() as u32).to_le_bytes());
        for u in list {
            put_str(out, u);
        }
    }
}

/// Decodes one member that fills `bytes` exactly.
pub fn decode_member(bytes: &[u8]) -> Result<MemberInfo, String> {
    let mut r = Reader(bytes);
    let m = decode_member_from(&mut r)?;
    r.end()?;
    Ok(m)
}

fn decode_member_from(r: &mut Reader<'_>) -> Result<MemberInfo, String> {
    let id = r.u64()?;
    let is_learner = r.u8()? != 0;
    let name = r.str()?;
    let mut lists = [Vec::new(), Vec::new()];
    for list in lists.iter_mut() {
        let n = r.count(MAX_URLS)?;
        for _ in 0..n {
            list.push(r.str()?);
        }
    }
    let [peer_urls, client_urls] = lists;
    Ok(MemberInfo {
        id,
        name,
        peer_urls,
        client_urls,
        is_learner,
    })
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A bounds-checked little-endian reader.
pub(super) struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!("truncated: need {n} bytes, have {}", self.0.len()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    pub fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    pub fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn u64(&mut self) -> Result<u64, String> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn count(&mut self, max: u32) -> Result<u32, String> {
        let n = self.u32()?;
        if n > max {
            return Err(format!("count {n} over the limit {max}"));
        }
        Ok(n)
    }
    fn str(&mut self) -> Result<String, String> {
        let n = self.count(MAX_STR_BYTES)?;
        let b = self.take(n as usize)?;
        String::from_utf8(b.to_vec()).map_err(|_| "string is not UTF-8".to_string())
    }
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }
    pub fn end(&self) -> Result<(), String> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(format!("{} trailing bytes", self.0.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64, learner: bool) -> MemberInfo {
        MemberInfo {
            id,
            name: format!("n{id}"),
            peer_urls: vec![format!("http://127.0.0.1:{}", 2380 + id)],
            client_urls: vec![format!("http://127.0.0.1:{}", 2379 + id)],
            is_learner: learner,
        }
    }

    #[test]
    fn membership_round_trips_through_its_encoding() {
        let mut m = Membership::default();
        m.add(member(1, false));
        m.add(member(2, true));
        m.add(member(3, false));
        m.remove(3);
        let back = Membership::decode(&m.encode()).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.conf_state().voters, vec![1]);
        assert_eq!(back.conf_state().learners, vec![2]);
        assert!(back.is_removed(3));
    }

    #[test]
    fn damaged_encodings_are_errors_not_panics() {
        let mut m = Membership::default();
        m.add(member(1, false));
        let bytes = m.encode();
        for cut in 0..bytes.len() {
            assert!(Membership::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut huge = vec![1u8];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(Membership::decode(&huge).is_err());
    }

    #[test]
    fn removed_ids_are_never_added_back() {
        let mut m = Membership::default();
        m.add(member(7, false));
        m.remove(7);
        m.add(member(7, false));
        assert!(m.get(7).is_none());
    }

    #[test]
    fn adding_a_known_learner_as_voter_promotes_it() {
        let mut m = Membership::default();
        m.add(member(4, true));
        m.add(member(4, false));
        assert!(!m.get(4).unwrap().is_learner);
    }
}
