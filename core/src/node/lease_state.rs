//! Leases in the applied state: what the log does to the lessor (grant,
//! revoke, checkpoint, keys attached by puts and detached by puts without
//! a lease or deletes), what the page file keeps of it, and the responses.
//!
//! Every member applies the same entries, so every member knows every
//! lease and its keys; only the leader (the lessor's primary) knows when
//! a lease expires, and only it answers keep-alives and time-to-live
//! (`lease_leader.rs`).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cairn_schemas::rpc;

use super::error::RequestError;
use super::respond::{self, Fbb, HeaderInfo};
use crate::lease::{LeaseError, Lessor};
use crate::mvcc::{self, Change};

/// A lease as the page file keeps it: (id, granted TTL, checkpointed
/// remaining TTL), seconds.
pub type StoredLease = (i64, i64, i64);

impl From<LeaseError> for RequestError {
    fn from(e: LeaseError) -> RequestError {
        let code = match e {
            LeaseError::NotFound => rpc::ErrorCode::LeaseNotFound,
            LeaseError::Exists => rpc::ErrorCode::LeaseExists,
            LeaseError::TtlTooLarge => rpc::ErrorCode::LeaseTtlTooLarge,
            LeaseError::NotPrimary => rpc::ErrorCode::NotLeader,
        };
        RequestError::new(code, e.to_string())
    }
}

/// The lessor with what the next page-file commit must write of it.
pub struct Leases {
    pub lessor: Lessor,
    /// Leases granted, revoked or checkpointed since the last batch.
    dirty: BTreeSet<i64>,
    /// Renewed leases that carried a checkpointed remaining TTL: the leader
    /// proposes a checkpoint of 0 for them (etcd's clearRemainingTTL), so
    /// that a later leader does not restore the stale remainder.
    pub renewed_with_remainder: Vec<i64>,
    /// The origin of the lessor's clock.
    epoch: Instant,
}

impl Leases {
    /// `min_ttl`: etcd's minimum TTL (3 × election timeout... rounded up
    /// to whole seconds by the lessor).
    pub fn new(min_ttl: Duration) -> Leases {
        Leases {
            lessor: Lessor::new(min_ttl),
            dirty: BTreeSet::new(),
            renewed_with_remainder: Vec::new(),
            epoch: Instant::now(),
        }
    }

    /// The lessor's clock.
    pub fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Rebuilds the leases a page file held, and the keys attached to them
    /// from the store's live keys.
    pub fn restore(&mut self, stored: &[StoredLease], store: &mvcc::Store) {
        let now = self.now();
        for &(id, ttl, remaining) in stored {
            // Stored leases were valid grants; a duplicate cannot occur.
            if self.lessor.grant(id, ttl, now).is_ok() && remaining > 0 {
                let _ = self.lessor.checkpoint(id, remaining);
            }
        }
        for (key, lease) in store.leased_keys() {
            if self.lessor.attach(lease, key.to_vec()).is_err() {
                tracing::warn!(
                    lease = format!("{lease:x}"),
                    "a key names a lease the page file does not hold"
                );
            }
        }
    }

    /// A put naming `lease` may apply only if the lease exists.
    pub fn check_put(&self, lease: i64) -> Result<(), RequestError> {
        if lease != 0 && !self.lessor.exists(lease) {
            return Err(LeaseError::NotFound.into());
        }
        Ok(())
    }

    /// Attaches and detaches keys after a write, from the changes it made.
    pub fn follow(&mut self, changes: &[Change]) {
        for c in changes {
            match c {
                Change::Put { key, lease, .. } if *lease != 0 => {
                    // Checked before the write; a lease revoked since cannot
                    // be (one entry applies at a time).
                    let _ = self.lessor.attach(*lease, key.to_vec());
                }
                Change::Put { key, .. } | Change::Tombstone { key, .. } => self.lessor.detach(key),
                Change::Drop { .. } => {}
            }
        }
    }

    pub fn grant(&mut self, id: i64, ttl_secs: i64) -> Result<i64, RequestError> {
        let now = self.now();
        let ttl = self.lessor.grant(id, ttl_secs, now)?.ttl_secs;
        self.dirty.insert(id);
        Ok(ttl)
    }

    /// Revokes `id`; returns its keys, to be deleted in one revision.
    pub fn revoke(&mut self, id: i64) -> Result<Vec<Vec<u8>>, RequestError> {
        let keys = self.lessor.revoke(id)?;
        self.dirty.insert(id);
        Ok(keys)
    }

    /// Keep-alive on the leader: the granted TTL, 0 if the lease is gone.
    pub fn renew(&mut self, id: i64) -> i64 {
        let had_remainder = self
            .lessor
            .get(id)
            .is_some_and(|l| l.remaining_ttl_secs > 0);
        let now = self.now();
        match self.lessor.renew(id, now) {
            Ok(ttl) => {
                if had_remainder && self.renewed_with_remainder.len() < 100_000 {
                    self.renewed_with_remainder.push(id);
                }
                ttl
            }
            Err(_) => 0,
        }
    }

    pub fn checkpoint(&mut self, id: i64, remaining_secs: i64) {
        if self.lessor.checkpoint(id, remaining_secs).is_ok() {
            self.dirty.insert(id);
        }
    }

    /// What changed since the last call, for the page file: a lease's
    /// record, or `None` for a revoked one.
    pub fn take_dirty(&mut self) -> Vec<(i64, Option<(i64, i64)>)> {
        std::mem::take(&mut self.dirty)
            .into_iter()
            .map(|id| {
                let rec = self
                    .lessor
                    .get(id)
                    .map(|l| (l.ttl_secs, l.remaining_ttl_secs));
                (id, rec)
            })
            .collect()
    }
}

/// Every put a txn could make names a lease that exists.
pub fn check_txn_leases(leases: &Leases, t: &mvcc::TxnReq<'_>) -> Result<(), RequestError> {
    for op in t.success.iter().chain(&t.failure) {
        match op {
            mvcc::RequestOp::Put(p) => leases.check_put(p.lease)?,
            mvcc::RequestOp::Txn(t) => check_txn_leases(leases, t)?,
            _ => {}
        }
    }
    Ok(())
}

/// A delete of each key, all in one revision.
pub fn revoke_txn(keys: &[Vec<u8>]) -> mvcc::TxnReq<'_> {
    mvcc::TxnReq {
        compare: Vec::new(),
        success: keys
            .iter()
            .map(|k| {
                mvcc::RequestOp::DeleteRange(mvcc::DeleteRangeReq {
                    key: k,
                    range_end: b"",
                    prev_kv: false,
                })
            })
            .collect(),
        failure: Vec::new(),
    }
}

pub fn grant_response(b: &mut Fbb, h: &HeaderInfo, id: i64, ttl: i64) {
    b.reset();
    let header = respond::header(b, h);
    let t = rpc::LeaseGrantResponse::create(
        b,
        &rpc::LeaseGrantResponseArgs {
            header: Some(header),
            id,
            ttl,
        },
    );
    respond::finish(b, rpc::ResponseBody::LeaseGrantResponse, t.as_union_value());
}

pub fn revoke_response(b: &mut Fbb, h: &HeaderInfo) {
    b.reset();
    let header = respond::header(b, h);
    let t = rpc::LeaseRevokeResponse::create(
        b,
        &rpc::LeaseRevokeResponseArgs {
            header: Some(header),
        },
    );
    respond::finish(
        b,
        rpc::ResponseBody::LeaseRevokeResponse,
        t.as_union_value(),
    );
}

pub fn checkpoint_response(b: &mut Fbb, h: &HeaderInfo) {
    b.reset();
    let header = respond::header(b, h);
    let t = rpc::LeaseCheckpointResponse::create(
        b,
        &rpc::LeaseCheckpointResponseArgs {
            header: Some(header),
        },
    );
    respond::finish(
        b,
        rpc::ResponseBody::LeaseCheckpointResponse,
        t.as_union_value(),
    );
}

pub fn keep_alive_response(b: &mut Fbb, h: &HeaderInfo, id: i64, ttl: i64) {
    b.reset();
    let header = respond::header(b, h);
    let t = rpc::LeaseKeepAliveResponse::create(
        b,
        &rpc::LeaseKeepAliveResponseArgs {
            header: Some(header),
            id,
            ttl,
        },
    );
    respond::finish(
        b,
        rpc::ResponseBody::LeaseKeepAliveResponse,
        t.as_union_value(),
    );
}

/// etcd answers an unknown lease with TTL -1 (not an error).
pub fn time_to_live_response(
    b: &mut Fbb,
    h: &HeaderInfo,
    leases: &Leases,
    id: i64,
    with_keys: bool,
) {
    b.reset();
    let (ttl, granted, keys) = match leases.lessor.get(id) {
        None => (-1, 0, Vec::new()),
        Some(l) => {
            let keys: Vec<_> = if with_keys {
                l.keys
                    .iter()
                    .map(|k| {
                        let key = b.create_vector(k);
                        rpc::LeaseKey::create(b, &rpc::LeaseKeyArgs { key: Some(key) })
                    })
                    .collect()
            } else {
                Vec::new()
            };
            (l.remaining_secs(leases.now()).max(0), l.ttl_secs, keys)
        }
    };
    let keys = (!keys.is_empty()).then(|| b.create_vector(&keys));
    let header = respond::header(b, h);
    let t = rpc::LeaseTimeToLiveResponse::create(
        b,
        &rpc::LeaseTimeToLiveResponseArgs {
            header: Some(header),
            id,
            ttl,
            granted_ttl: granted,
            keys,
        },
    );
    respond::finish(
        b,
        rpc::ResponseBody::LeaseTimeToLiveResponse,
        t.as_union_value(),
    );
}

pub fn leases_response(b: &mut Fbb, h: &HeaderInfo, leases: &Leases) {
    b.reset();
    let ids: Vec<i64> = leases.lessor.ids().collect();
    let ids = b.create_vector(&ids);
    let header = respond::header(b, h);
    let t = rpc::LeaseLeasesResponse::create(
        b,
        &rpc::LeaseLeasesResponseArgs {
            header: Some(header),
            ids: Some(ids),
        },
    );
    respond::finish(
        b,
        rpc::ResponseBody::LeaseLeasesResponse,
        t.as_union_value(),
    );
}
