//! The lessor: leases by id, their attached keys, and (on the leader)
//! their expiry times.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// etcd's MaxLeaseTTL: 9,000,000,000 seconds.
pub const MAX_LEASE_TTL_SECS: i64 = 9_000_000_000;

/// Errors with etcd's texts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    #[error("etcdserver: requested lease not found")]
    NotFound,
    #[error("etcdserver: lease already exists")]
    Exists,
    #[error("etcdserver: too large lease TTL")]
    TtlTooLarge,
    #[error("etcdserver: not leader")]
    NotPrimary,
}

/// One lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub id: i64,
    /// Granted TTL in seconds (raised to the minimum TTL).
    pub ttl_secs: i64,
    /// Remaining TTL carried by the last checkpoint (0: none), used as the
    /// TTL when this member becomes leader.
    pub remaining_ttl_secs: i64,
    /// When it expires; known on the leader only.
    pub expiry: Option<Duration>,
    pub keys: BTreeSet<Vec<u8>>,
}

impl Lease {
    fn refresh(&mut self, now: Duration, extend: Duration) {
        let ttl = if self.remaining_ttl_secs > 0 {
            self.remaining_ttl_secs
        } else {
            self.ttl_secs
        };
        self.expiry = Some(now + extend + Duration::from_secs(ttl as u64));
    }

    /// Seconds left (rounded up as etcd's `Remaining`), -1 if unknown here.
    pub fn remaining_secs(&self, now: Duration) -> i64 {
        match self.expiry {
            Some(e) => e.saturating_sub(now).as_secs_f64().ceil() as i64,
            None => -1,
        }
    }
}

/// All leases of a member.
#[derive(Clone, Debug)]
pub struct Lessor {
    leases: BTreeMap<i64, Lease>,
    /// Key → lease it is attached to.
    key_lease: BTreeMap<Vec<u8>, i64>,
    /// On the leader: (expiry, id) of every lease, so that finding what
    /// expired costs O(log n + expired), not a scan.
    by_expiry: BTreeSet<(Duration, i64)>,
    /// Minimum TTL (etcd: 3 × election timeout, rounded up to seconds).
    min_ttl_secs: i64,
    primary: bool,
}

impl Lessor {
    /// `min_ttl`: leases shorter than this are granted this TTL.
    pub fn new(min_ttl: Duration) -> Lessor {
        Lessor {
            leases: BTreeMap::new(),
            key_lease: BTreeMap::new(),
            by_expiry: BTreeSet::new(),
            min_ttl_secs: min_ttl.as_secs_f64().ceil() as i64,
            primary: false,
        }
    }

    /// An empty lessor with this one's minimum TTL.
    pub fn emptied(&self) -> Lessor {
        Lessor {
            leases: BTreeMap::new(),
            key_lease: BTreeMap::new(),
            by_expiry: BTreeSet::new(),
            min_ttl_secs: self.min_ttl_secs,
            primary: false,
        }
    }

    /// Changes the minimum TTL (for grants from now on).
    pub fn set_min_ttl(&mut self, min_ttl: Duration) {
        self.min_ttl_secs = min_ttl.as_secs_f64().ceil() as i64;
    }

    pub fn is_primary(&self) -> bool {
        self.primary
    }

    /// Applies a grant from the log. `id` was chosen by the proposer (etcd's
    /// leader picks a random id when the client gives 0).
    pub fn grant(&mut self, id: i64, ttl_secs: i64, now: Duration) -> Result<&Lease, LeaseError> {
        if id == 0 {
            return Err(LeaseError::NotFound);
        }
        if ttl_secs > MAX_LEASE_TTL_SECS {
            return Err(LeaseError::TtlTooLarge);
        }
        if self.leases.contains_key(&id) {
            return Err(LeaseError::Exists);
        }
        let mut l = Lease {
            id,
            ttl_secs: ttl_secs.max(self.min_ttl_secs),
            remaining_ttl_secs: 0,
            expiry: None,
            keys: BTreeSet::new(),
        };
        if self.primary {
            l.refresh(now, Duration::ZERO);
            if let Some(e) = l.expiry {
                self.by_expiry.insert((e, id));
            }
        }
        Ok(self.leases.entry(id).or_insert(l))
    }

    /// Applies a revocation (client revoke or expiry) from the log: returns
    /// the attached keys, which the caller deletes in one revision.
    pub fn revoke(&mut self, id: i64) -> Result<Vec<Vec<u8>>, LeaseError> {
        let l = self.leases.remove(&id).ok_or(LeaseError::NotFound)?;
        if let Some(e) = l.expiry {
            self.by_expiry.remove(&(e, id));
        }
        for k in &l.keys {
            self.key_lease.remove(k);
        }
        Ok(l.keys.into_iter().collect())
    }

    /// Attaches `key` to lease `id` (a put with that lease), detaching it
    /// from any lease it had.
    pub fn attach(&mut self, id: i64, key: Vec<u8>) -> Result<(), LeaseError> {
        if !self.leases.contains_key(&id) {
            return Err(LeaseError::NotFound);
        }
        self.detach(&key);
        self.key_lease.insert(key.clone(), id);
        if let Some(l) = self.leases.get_mut(&id) {
            l.keys.insert(key);
        }
        Ok(())
    }

    /// Detaches `key` from its lease (a put without lease, or a delete).
    pub fn detach(&mut self, key: &[u8]) {
        if let Some(id) = self.key_lease.remove(key) {
            if let Some(l) = self.leases.get_mut(&id) {
                l.keys.remove(key);
            }
        }
    }

    /// True if a lease with this id exists (a put naming it may apply).
    pub fn exists(&self, id: i64) -> bool {
        self.leases.contains_key(&id)
    }

    /// Keep-alive, on the leader: restarts the TTL; returns it.
    pub fn renew(&mut self, id: i64, now: Duration) -> Result<i64, LeaseError> {
        if !self.primary {
            return Err(LeaseError::NotPrimary);
        }
        let l = self.leases.get_mut(&id).ok_or(LeaseError::NotFound)?;
        if let Some(e) = l.expiry {
            self.by_expiry.remove(&(e, id));
        }
        // A renewed lease no longer carries a checkpointed remainder.
        l.remaining_ttl_secs = 0;
        l.refresh(now, Duration::ZERO);
        if let Some(e) = l.expiry {
            self.by_expiry.insert((e, id));
        }
        Ok(l.ttl_secs)
    }

    /// Applies a checkpoint from the log: the remaining TTL the leader saw,
    /// so that a future leader (or this member after a restart) does not
    /// give the lease its whole TTL again.
    pub fn checkpoint(&mut self, id: i64, remaining_ttl_secs: i64) -> Result<(), LeaseError> {
        let l = self.leases.get_mut(&id).ok_or(LeaseError::NotFound)?;
        l.remaining_ttl_secs = remaining_ttl_secs;
        Ok(())
    }

    /// Checkpoints the leader should propose now: (id, remaining secs) of
    /// leases whose remaining TTL is long enough to matter, at most `max`.
    pub fn due_checkpoints(
        &self,
        now: Duration,
        min_remaining_secs: i64,
        max: usize,
    ) -> Vec<(i64, i64)> {
        if !self.primary {
            return Vec::new();
        }
        self.leases
            .values()
            .map(|l| (l.id, l.remaining_secs(now)))
            .filter(|(_, r)| *r >= min_remaining_secs)
            .take(max)
            .collect()
    }

    /// Becomes the leader: every lease gets a fresh expiry of its
    /// (checkpointed or granted) TTL plus `extend` from `now`.
    pub fn promote(&mut self, now: Duration, extend: Duration) {
        self.primary = true;
        self.by_expiry.clear();
        for l in self.leases.values_mut() {
            l.refresh(now, extend);
            if let Some(e) = l.expiry {
                self.by_expiry.insert((e, l.id));
            }
        }
    }

    /// Stops being the leader: expiries are forgotten.
    pub fn demote(&mut self) {
        self.primary = false;
        self.by_expiry.clear();
        for l in self.leases.values_mut() {
            l.expiry = None;
        }
    }

    /// On the leader: leases past their expiry, oldest first, at most
    /// `max_revokes` (the rest wait for the next call).
    pub fn expired(&self, now: Duration, max_revokes: usize) -> Vec<i64> {
        if !self.primary {
            return Vec::new();
        }
        self.by_expiry
            .range(..=(now, i64::MAX))
            .take(max_revokes)
            .map(|&(_, id)| id)
            .collect()
    }

    pub fn get(&self, id: i64) -> Option<&Lease> {
        self.leases.get(&id)
    }

    /// Every lease id, ascending.
    pub fn ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.leases.keys().copied()
    }

    /// The lease a key is attached to.
    pub fn lease_of(&self, key: &[u8]) -> Option<i64> {
        self.key_lease.get(key).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn leader() -> Lessor {
        let mut l = Lessor::new(s(3));
        l.promote(Duration::ZERO, Duration::ZERO);
        l
    }

    #[test]
    fn grant_raises_short_ttls_to_the_minimum_and_refuses_duplicates() {
        let mut l = leader();
        assert_eq!(l.grant(1, 1, Duration::ZERO).unwrap().ttl_secs, 3);
        assert_eq!(
            l.grant(1, 10, Duration::ZERO).unwrap_err(),
            LeaseError::Exists
        );
        assert_eq!(
            l.grant(2, MAX_LEASE_TTL_SECS + 1, Duration::ZERO)
                .unwrap_err(),
            LeaseError::TtlTooLarge
        );
    }

    #[test]
    fn expiry_returns_leases_in_expiry_order_bounded() {
        let mut l = leader();
        for (id, ttl) in [(1, 30), (2, 10), (3, 20)] {
            l.grant(id, ttl, Duration::ZERO).unwrap();
        }
        assert!(l.expired(s(9), 10).is_empty());
        assert_eq!(l.expired(s(25), 10), vec![2, 3]);
        assert_eq!(l.expired(s(40), 2), vec![2, 3], "bounded: the third waits");
    }

    #[test]
    fn keep_alive_pushes_expiry_out() {
        let mut l = leader();
        l.grant(1, 10, Duration::ZERO).unwrap();
        assert_eq!(l.renew(1, s(8)).unwrap(), 10);
        assert!(l.expired(s(15), 10).is_empty());
        assert_eq!(l.expired(s(18), 10), vec![1]);
        assert_eq!(l.renew(9, s(1)).unwrap_err(), LeaseError::NotFound);
    }

    #[test]
    fn followers_never_expire_or_renew() {
        let mut l = Lessor::new(s(3));
        l.grant(1, 5, Duration::ZERO).unwrap();
        assert!(l.expired(s(100), 10).is_empty());
        assert_eq!(l.renew(1, s(1)).unwrap_err(), LeaseError::NotPrimary);
    }

    #[test]
    fn promotion_refreshes_ttls_so_a_leader_change_does_not_cut_them_short() {
        let mut l = Lessor::new(s(3));
        l.grant(1, 10, Duration::ZERO).unwrap();
        // Became leader at t=50: the lease lives until 50 + 10 + extension.
        l.promote(s(50), s(2));
        assert!(l.expired(s(61), 10).is_empty());
        assert_eq!(l.expired(s(62), 10), vec![1]);
    }

    #[test]
    fn checkpointed_remaining_ttl_is_used_after_promotion() {
        let mut l = Lessor::new(s(3));
        l.grant(1, 3600, Duration::ZERO).unwrap();
        l.checkpoint(1, 100).unwrap();
        l.promote(s(10), Duration::ZERO);
        assert_eq!(l.expired(s(111), 10), vec![1]);
    }

    #[test]
    fn revoke_returns_attached_keys_and_reattach_moves_a_key() {
        let mut l = leader();
        l.grant(1, 10, Duration::ZERO).unwrap();
        l.grant(2, 10, Duration::ZERO).unwrap();
        l.attach(1, b"a".to_vec()).unwrap();
        l.attach(1, b"b".to_vec()).unwrap();
        l.attach(2, b"b".to_vec()).unwrap();
        assert_eq!(l.lease_of(b"b"), Some(2));
        l.detach(b"a");
        assert_eq!(l.revoke(1).unwrap(), Vec::<Vec<u8>>::new());
        assert_eq!(l.revoke(2).unwrap(), vec![b"b".to_vec()]);
        assert_eq!(l.lease_of(b"b"), None);
        assert_eq!(
            l.attach(9, b"x".to_vec()).unwrap_err(),
            LeaseError::NotFound
        );
    }

    mod model {
        use super::*;
        use proptest::prelude::*;

        #[derive(Clone, Debug)]
        enum Op {
            Grant(i64, i64),
            Renew(i64),
            Revoke(i64),
            Promote,
            Demote,
            Advance(u64),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                (1..20i64, 1..30i64).prop_map(|(id, ttl)| Op::Grant(id, ttl)),
                (1..20i64).prop_map(Op::Renew),
                (1..20i64).prop_map(Op::Revoke),
                Just(Op::Promote),
                Just(Op::Demote),
                (0..20u64).prop_map(Op::Advance),
            ]
        }

        proptest! {
            /// The expiry index answers `expired` as a scan of every
            /// lease's expiry would: the leases past it, oldest first.
            #[test]
            fn expired_matches_a_scan(ops in proptest::collection::vec(op(), 1..200)) {
                let mut l = Lessor::new(s(1));
                let mut now = Duration::ZERO;
                for op in ops {
                    match op {
                        Op::Grant(id, ttl) => { let _ = l.grant(id, ttl, now); }
                        Op::Renew(id) => { let _ = l.renew(id, now); }
                        Op::Revoke(id) => { let _ = l.revoke(id); }
                        Op::Promote => l.promote(now, s(1)),
                        Op::Demote => l.demote(),
                        Op::Advance(secs) => now += s(secs),
                    }
                    let mut scan: Vec<(Duration, i64)> = l
                        .ids()
                        .filter_map(|id| l.get(id).unwrap().expiry.map(|e| (e, id)))
                        .filter(|(e, _)| *e <= now)
                        .collect();
                    scan.sort_unstable();
                    let want: Vec<i64> = scan.into_iter().map(|(_, id)| id).collect();
                    prop_assert_eq!(l.expired(now, usize::MAX), want);
                }
            }
        }
    }

    #[test]
    fn due_checkpoints_skip_short_leases() {
        let mut l = leader();
        l.grant(1, 10, Duration::ZERO).unwrap();
        l.grant(2, 3600, Duration::ZERO).unwrap();
        assert_eq!(l.due_checkpoints(s(100), 300, 10), vec![(2, 3500)]);
    }
}
