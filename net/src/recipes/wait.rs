//! Waiting for predecessors: the part the mutex and the election share.

use std::time::{Duration, Instant};

use cairn_schemas::rpc;

use super::{RecipeError, Session};
use crate::client::WatchStream;
use crate::client::{get_request, prefix_range_end, put_request};
use crate::BlockingClient;

/// `if create_revision(key) == 0 { put(key, value, lease) } else { get(key) }`
/// in one txn: the key's create revision, and the key as it was if it
/// already existed (a session that asks again keeps its place).
pub(super) fn create_or_read(
    session: &Session,
    key: &[u8],
    value: &[u8],
) -> Result<(i64, Option<rpc::KeyValueT>), RecipeError> {
    let txn = rpc::TxnRequestT {
        compare: Some(vec![rpc::CompareT {
            result: rpc::CompareResult::Equal,
            target: rpc::CompareTarget::Create,
            key: Some(key.to_vec()),
            create_revision: 0,
            ..Default::default()
        }]),
        success: Some(vec![rpc::RequestOpT {
            op: rpc::RequestOpKindT::PutRequest(Box::new(rpc::PutRequestT {
                lease: session.lease(),
                ..put_request(key, value)
            })),
        }]),
        failure: Some(vec![rpc::RequestOpT {
            op: rpc::RequestOpKindT::RangeRequest(Box::new(get_request(key))),
        }]),
    };
    let r = session.client().txn(txn)?;
    if r.succeeded {
        return Ok((r.header.map_or(0, |h| h.revision), None));
    }
    let existing = r
        .responses
        .into_iter()
        .flatten()
        .find_map(|op| match op.op {
            rpc::ResponseOpKindT::RangeResponse(g) => g.kvs.and_then(|k| k.into_iter().next()),
            _ => None,
        });
    match existing {
        Some(kv) => Ok((kv.create_revision, Some(kv))),
        // Created by no one yet deleted in between: the lease is gone.
        None => Err(RecipeError::SessionExpired),
    }
}

/// The key under `prefix` created first (`first`) or last at or below
/// `max_create_revision` (`!first`), and the revision the read was at.
pub(super) fn by_create(
    c: &BlockingClient,
    prefix: &[u8],
    first: bool,
    max_create_revision: i64,
) -> Result<(Option<rpc::KeyValueT>, i64), RecipeError> {
    let r = c.range(rpc::RangeRequestT {
        key: Some(prefix.to_vec()),
        range_end: Some(prefix_range_end(prefix)),
        limit: 1,
        sort_target: rpc::SortTarget::Create,
        sort_order: if first {
            rpc::SortOrder::Ascend
        } else {
            rpc::SortOrder::Descend
        },
        max_create_revision,
        ..Default::default()
    })?;
    let revision = r.header.as_ref().map_or(0, |h| h.revision);
    Ok((r.kvs.and_then(|k| k.into_iter().next()), revision))
}

/// Waits until every key under `prefix` created at or below
/// `max_create_revision` is gone: each time, only for the newest of them
/// (the caller's direct predecessor), watched from the read's revision.
pub(super) fn wait_deletes(
    c: &BlockingClient,
    prefix: &[u8],
    max_create_revision: i64,
    deadline: Option<Instant>,
) -> Result<(), RecipeError> {
    loop {
        let (last, revision) = by_create(c, prefix, false, max_create_revision)?;
        let Some(kv) = last else { return Ok(()) };
        let key = kv.key.unwrap_or_default();
        wait_delete(c, &key, revision + 1, deadline)?;
    }
}

/// How long one wait for a watch response lasts before the deadline and
/// the connection are checked again.
const POLL: Duration = Duration::from_millis(500);

/// The events of `w`'s next response that has any, waiting in steps of
/// [`POLL`]: `None` once `stop()` says so; an error when the deadline
/// passes or the stream ends (canceled by the server, or its connection).
pub(super) fn next_events(
    w: &mut WatchStream<'_>,
    stop: &dyn Fn() -> bool,
    deadline: Option<Instant>,
) -> Result<Option<Vec<rpc::EventT>>, RecipeError> {
    loop {
        if stop() {
            return Ok(None);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(RecipeError::Timeout);
        }
        match w.recv_timeout(POLL) {
            Ok(Some(r)) => {
                let events = r.events.unwrap_or_default();
                if !events.is_empty() {
                    return Ok(Some(events));
                }
                if r.canceled {
                    return Err(RecipeError::WatchCanceled(
                        r.cancel_reason.unwrap_or_default(),
                    ));
                }
            }
            Ok(None) => return Err(RecipeError::WatchCanceled("stream ended".into())),
            Err(crate::ClientError::Timeout) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Waits for a delete of `key` at `from_revision` or later.
pub(super) fn wait_delete(
    c: &BlockingClient,
    key: &[u8],
    from_revision: i64,
    deadline: Option<Instant>,
) -> Result<(), RecipeError> {
    let mut w = c.watch(rpc::WatchCreateRequestT {
        key: Some(key.to_vec()),
        start_revision: from_revision,
        filters: Some(vec![rpc::WatchFilter::NoPut]),
        ..Default::default()
    })?;
    loop {
        let Some(events) = next_events(&mut w, &|| false, deadline)? else {
            unreachable!("never stopped")
        };
        if events.iter().any(|e| e.type_ == rpc::EventType::Delete) {
            return Ok(());
        }
    }
}
