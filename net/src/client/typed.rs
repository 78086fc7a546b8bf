//! Typed wrappers: one function per RPC that checks the response kind.

use cairn_schemas::rpc;

use crate::error::ClientError;

fn unexpected(body: &rpc::ResponseBodyT, want: &str) -> ClientError {
    ClientError::Protocol(format!("expected {want}, got {:?}", body_name(body)))
}

fn body_name(body: &rpc::ResponseBodyT) -> &'static str {
    match body {
        rpc::ResponseBodyT::NONE => "nothing",
        other => other
            .response_body_type()
            .variant_name()
            .unwrap_or("an unknown response"),
    }
}

macro_rules! typed {
    ($fn_name:ident, $variant:ident, $ty:ty) => {
        /// Extracts the expected response kind.
        pub fn $fn_name(body: rpc::ResponseBodyT) -> Result<$ty, ClientError> {
            match body {
                rpc::ResponseBodyT::$variant(r) => Ok(*r),
                other => Err(unexpected(&other, stringify!($variant))),
            }
        }
    };
}

typed!(expect_range, RangeResponse, rpc::RangeResponseT);
typed!(expect_put, PutResponse, rpc::PutResponseT);
typed!(
    expect_delete_range,
    DeleteRangeResponse,
    rpc::DeleteRangeResponseT
);
typed!(expect_txn, TxnResponse, rpc::TxnResponseT);
typed!(
    expect_compaction,
    CompactionResponse,
    rpc::CompactionResponseT
);
typed!(expect_status, StatusResponse, rpc::StatusResponseT);
typed!(expect_alarm, AlarmResponse, rpc::AlarmResponseT);
typed!(
    expect_defragment,
    DefragmentResponse,
    rpc::DefragmentResponseT
);
typed!(expect_snapshot, SnapshotResponse, rpc::SnapshotResponseT);
typed!(
    expect_member_list,
    MemberListResponse,
    rpc::MemberListResponseT
);
typed!(
    expect_member_add,
    MemberAddResponse,
    rpc::MemberAddResponseT
);
typed!(
    expect_member_remove,
    MemberRemoveResponse,
    rpc::MemberRemoveResponseT
);
typed!(
    expect_member_update,
    MemberUpdateResponse,
    rpc::MemberUpdateResponseT
);
typed!(
    expect_member_promote,
    MemberPromoteResponse,
    rpc::MemberPromoteResponseT
);
typed!(expect_watch, WatchResponse, rpc::WatchResponseT);
typed!(
    expect_move_leader,
    MoveLeaderResponse,
    rpc::MoveLeaderResponseT
);

typed!(
    expect_lease_grant,
    LeaseGrantResponse,
    rpc::LeaseGrantResponseT
);
typed!(
    expect_lease_revoke,
    LeaseRevokeResponse,
    rpc::LeaseRevokeResponseT
);
typed!(
    expect_lease_keep_alive,
    LeaseKeepAliveResponse,
    rpc::LeaseKeepAliveResponseT
);
typed!(
    expect_lease_time_to_live,
    LeaseTimeToLiveResponse,
    rpc::LeaseTimeToLiveResponseT
);
typed!(
    expect_lease_leases,
    LeaseLeasesResponse,
    rpc::LeaseLeasesResponseT
);

/// `MemberList`; `linearizable` asks for the leader's view.
pub fn member_list_request(linearizable: bool) -> rpc::RequestBodyT {
    rpc::RequestBodyT::MemberListRequest(Box::new(rpc::MemberListRequestT { linearizable }))
}

/// `MemberAdd` of a member with `peer_urls`, as a learner or a voter.
pub fn member_add_request(peer_urls: Vec<String>, is_learner: bool) -> rpc::RequestBodyT {
    rpc::RequestBodyT::MemberAddRequest(Box::new(rpc::MemberAddRequestT {
        peer_urls: Some(peer_urls),
        is_learner,
    }))
}

/// `MemberRemove` of member `id`.
pub fn member_remove_request(id: u64) -> rpc::RequestBodyT {
    rpc::RequestBodyT::MemberRemoveRequest(Box::new(rpc::MemberRemoveRequestT { id }))
}

/// `MemberUpdate`: member `id` gets `peer_urls`.
pub fn member_update_request(id: u64, peer_urls: Vec<String>) -> rpc::RequestBodyT {
    rpc::RequestBodyT::MemberUpdateRequest(Box::new(rpc::MemberUpdateRequestT {
        id,
        peer_urls: Some(peer_urls),
    }))
}

/// `MemberPromote` of learner `id` to a voter.
pub fn member_promote_request(id: u64) -> rpc::RequestBodyT {
    rpc::RequestBodyT::MemberPromoteRequest(Box::new(rpc::MemberPromoteRequestT { id }))
}

/// `MoveLeader` to member `target_id` (served by the leader only).
pub fn move_leader_request(target_id: u64) -> rpc::RequestBodyT {
    rpc::RequestBodyT::MoveLeaderRequest(Box::new(rpc::MoveLeaderRequestT { target_id }))
}

/// A put of `key` = `value` with every other field default.
pub fn put_request(key: &[u8], value: &[u8]) -> rpc::PutRequestT {
    rpc::PutRequestT {
        key: Some(key.to_vec()),
        value: Some(value.to_vec()),
        ..Default::default()
    }
}

/// A range over the single key `key`.
pub fn get_request(key: &[u8]) -> rpc::RangeRequestT {
    rpc::RangeRequestT {
        key: Some(key.to_vec()),
        ..Default::default()
    }
}

/// The `range_end` that selects every key with prefix `key` (etcd's
/// `GetPrefixRangeEnd`): the prefix with its last non-0xff byte incremented,
/// or `\0` (all keys) when the prefix is all 0xff or empty.
pub fn prefix_range_end(key: &[u8]) -> Vec<u8> {
    let mut end = key.to_vec();
    while let Some(last) = end.last_mut() {
        if *last < 0xff {
            *last += 1;
            return end;
        }
        end.pop();
    }
    vec![0]
}

/// The typed calls of a synchronous client, one per RPC, over its
/// `call(&self, &RequestBodyT)`: shared by [`super::BlockingClient`] and
/// [`super::FailoverClient`] (which decides what `call` retries).
macro_rules! sync_typed_calls {
    () => {
        pub fn range(&self, r: rpc::RangeRequestT) -> Result<rpc::RangeResponseT, ClientError> {
            expect_range(self.call(&rpc::RequestBodyT::RangeRequest(Box::new(r)))?)
        }
        pub fn put(&self, r: rpc::PutRequestT) -> Result<rpc::PutResponseT, ClientError> {
            expect_put(self.call(&rpc::RequestBodyT::PutRequest(Box::new(r)))?)
        }
        pub fn delete_range(
            &self,
            r: rpc::DeleteRangeRequestT,
        ) -> Result<rpc::DeleteRangeResponseT, ClientError> {
            expect_delete_range(self.call(&rpc::RequestBodyT::DeleteRangeRequest(Box::new(r)))?)
        }
        pub fn txn(&self, r: rpc::TxnRequestT) -> Result<rpc::TxnResponseT, ClientError> {
            expect_txn(self.call(&rpc::RequestBodyT::TxnRequest(Box::new(r)))?)
        }
        pub fn compact(
            &self,
            r: rpc::CompactionRequestT,
        ) -> Result<rpc::CompactionResponseT, ClientError> {
            expect_compaction(self.call(&rpc::RequestBodyT::CompactionRequest(Box::new(r)))?)
        }
        pub fn alarm(&self, r: rpc::AlarmRequestT) -> Result<rpc::AlarmResponseT, ClientError> {
            expect_alarm(self.call(&rpc::RequestBodyT::AlarmRequest(Box::new(r)))?)
        }
        pub fn status(&self) -> Result<rpc::StatusResponseT, ClientError> {
            expect_status(self.call(&rpc::RequestBodyT::StatusRequest(Box::default()))?)
        }
        /// Defragments the member's page file (may take seconds: give the
        /// client a long `request_timeout`).
        pub fn defragment(&self) -> Result<rpc::DefragmentResponseT, ClientError> {
            expect_defragment(self.call(&rpc::RequestBodyT::DefragmentRequest(Box::default()))?)
        }
        /// One chunk of a snapshot: `snapshot_id` 0 starts a new snapshot.
        pub fn snapshot_chunk(
            &self,
            snapshot_id: u64,
            offset: u64,
        ) -> Result<rpc::SnapshotResponseT, ClientError> {
            let r = rpc::SnapshotRequestT {
                snapshot_id,
                offset,
            };
            expect_snapshot(self.call(&rpc::RequestBodyT::SnapshotRequest(Box::new(r)))?)
        }
        /// The cluster's members; `linearizable` asks for the leader's view.
        pub fn member_list(
            &self,
            linearizable: bool,
        ) -> Result<rpc::MemberListResponseT, ClientError> {
            expect_member_list(self.call(&member_list_request(linearizable))?)
        }
        /// Adds a member with `peer_urls` (a learner if `is_learner`).
        pub fn member_add(
            &self,
            peer_urls: Vec<String>,
            is_learner: bool,
        ) -> Result<rpc::MemberAddResponseT, ClientError> {
            expect_member_add(self.call(&member_add_request(peer_urls, is_learner))?)
        }
        pub fn member_remove(&self, id: u64) -> Result<rpc::MemberRemoveResponseT, ClientError> {
            expect_member_remove(self.call(&member_remove_request(id))?)
        }
        /// Replaces member `id`'s peer URLs.
        pub fn member_update(
            &self,
            id: u64,
            peer_urls: Vec<String>,
        ) -> Result<rpc::MemberUpdateResponseT, ClientError> {
            expect_member_update(self.call(&member_update_request(id, peer_urls))?)
        }
        /// Promotes learner `id` to a voting member.
        pub fn member_promote(&self, id: u64) -> Result<rpc::MemberPromoteResponseT, ClientError> {
            expect_member_promote(self.call(&member_promote_request(id))?)
        }
        /// Grants a lease of `ttl_secs` (raised to the server's minimum);
        /// `id` 0 lets the server choose the id.
        pub fn lease_grant(
            &self,
            ttl_secs: i64,
            id: i64,
        ) -> Result<rpc::LeaseGrantResponseT, ClientError> {
            let r = rpc::LeaseGrantRequestT { ttl: ttl_secs, id };
            expect_lease_grant(self.call(&rpc::RequestBodyT::LeaseGrantRequest(Box::new(r)))?)
        }
        /// Revokes lease `id`, deleting its keys (in one revision).
        pub fn lease_revoke(&self, id: i64) -> Result<rpc::LeaseRevokeResponseT, ClientError> {
            let r = rpc::LeaseRevokeRequestT { id };
            expect_lease_revoke(self.call(&rpc::RequestBodyT::LeaseRevokeRequest(Box::new(r)))?)
        }
        /// One renewal of lease `id`; the response's `ttl` is 0 if the lease
        /// is gone.
        pub fn lease_keep_alive_once(
            &self,
            id: i64,
        ) -> Result<rpc::LeaseKeepAliveResponseT, ClientError> {
            let r = rpc::LeaseKeepAliveRequestT { id };
            expect_lease_keep_alive(
                self.call(&rpc::RequestBodyT::LeaseKeepAliveRequest(Box::new(r)))?,
            )
        }
        /// The remaining TTL of lease `id` (-1 if it is gone), with its keys
        /// if `keys`.
        pub fn lease_time_to_live(
            &self,
            id: i64,
            keys: bool,
        ) -> Result<rpc::LeaseTimeToLiveResponseT, ClientError> {
            let r = rpc::LeaseTimeToLiveRequestT { id, keys };
            expect_lease_time_to_live(
                self.call(&rpc::RequestBodyT::LeaseTimeToLiveRequest(Box::new(r)))?,
            )
        }
        /// Every lease's id.
        pub fn lease_leases(&self) -> Result<rpc::LeaseLeasesResponseT, ClientError> {
            expect_lease_leases(self.call(&rpc::RequestBodyT::LeaseLeasesRequest(Box::default()))?)
        }
        /// Asks the leader (this endpoint must be it) to hand leadership to
        /// `target_id`.
        pub fn move_leader(&self, target_id: u64) -> Result<rpc::MoveLeaderResponseT, ClientError> {
            expect_move_leader(self.call(&move_leader_request(target_id))?)
        }
    };
}
pub(crate) use sync_typed_calls;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_last_byte() {
        assert_eq!(prefix_range_end(b"foo"), b"fop".to_vec());
        assert_eq!(prefix_range_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_range_end(b"\xff\xff"), vec![0]);
        assert_eq!(prefix_range_end(b""), vec![0]);
    }
}
