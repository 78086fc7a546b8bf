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
