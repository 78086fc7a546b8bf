//! Cairn requests built straight into a reused `FlatBufferBuilder` (no
//! object-API values, no per-request allocation once the builder has grown),
//! and the checks of their responses.

use cairn_schemas::rpc;
use flatbuffers::FlatBufferBuilder;

use crate::bench::worker::Cas;

/// Encodes `put(key, value)`; the payload lives in `b` until its next reset.
pub(crate) fn encode_put<'b>(
    b: &'b mut FlatBufferBuilder<'static>,
    key: &[u8],
    value: &[u8],
) -> &'b [u8] {
    encode_put_leased(b, key, value, 0)
}

/// Encodes a range over the single key `key`.
pub(crate) fn encode_range<'b>(
    b: &'b mut FlatBufferBuilder<'static>,
    key: &[u8],
    serializable: bool,
) -> &'b [u8] {
    b.reset();
    let range = range_request(b, key, serializable);
    finish(b, rpc::RequestBody::RangeRequest, range.as_union_value())
}

/// Encodes `txn(if mod(key) == expected then put(key, value) else get(key))`.
pub(crate) fn encode_cas<'b>(
    b: &'b mut FlatBufferBuilder<'static>,
    key: &[u8],
    expected: i64,
    value: &[u8],
) -> &'b [u8] {
    b.reset();
    let cmp_key = b.create_vector(key);
    let cmp = rpc::Compare::create(
        b,
        &rpc::CompareArgs {
            result: rpc::CompareResult::Equal,
            target: rpc::CompareTarget::Mod,
            key: Some(cmp_key),
            mod_revision: expected,
            ..Default::default()
        },
    );
    let put = put_request(b, key, value);
    let then_op = rpc::RequestOp::create(
        b,
        &rpc::RequestOpArgs {
            op_type: rpc::RequestOpKind::PutRequest,
            op: Some(put.as_union_value()),
        },
    );
    let get = range_request(b, key, false);
    let else_op = rpc::RequestOp::create(
        b,
        &rpc::RequestOpArgs {
            op_type: rpc::RequestOpKind::RangeRequest,
            op: Some(get.as_union_value()),
        },
    );
    let compare = b.create_vector(&[cmp]);
    let success = b.create_vector(&[then_op]);
    let failure = b.create_vector(&[else_op]);
    let txn = rpc::TxnRequest::create(
        b,
        &rpc::TxnRequestArgs {
            compare: Some(compare),
            success: Some(success),
            failure: Some(failure),
        },
    );
    finish(b, rpc::RequestBody::TxnRequest, txn.as_union_value())
}

fn put_request<'b>(
    b: &mut FlatBufferBuilder<'b>,
    key: &[u8],
    value: &[u8],
) -> flatbuffers::WIPOffset<rpc::PutRequest<'b>> {
    leased_put_request(b, key, value, 0)
}

fn leased_put_request<'b>(
    b: &mut FlatBufferBuilder<'b>,
    key: &[u8],
    value: &[u8],
    lease: i64,
) -> flatbuffers::WIPOffset<rpc::PutRequest<'b>> {
    let k = b.create_vector(key);
    let v = b.create_vector(value);
    rpc::PutRequest::create(
        b,
        &rpc::PutRequestArgs {
            key: Some(k),
            value: Some(v),
            lease,
            ..Default::default()
        },
    )
}

/// Encodes `put(key, value)` attached to `lease`.
pub(crate) fn encode_put_leased<'b>(
    b: &'b mut FlatBufferBuilder<'static>,
    key: &[u8],
    value: &[u8],
    lease: i64,
) -> &'b [u8] {
    b.reset();
    let put = leased_put_request(b, key, value, lease);
    finish(b, rpc::RequestBody::PutRequest, put.as_union_value())
}

/// Encodes a lease grant of `ttl` seconds (the server picks the id).
pub(crate) fn encode_lease_grant<'b>(b: &'b mut FlatBufferBuilder<'static>, ttl: i64) -> &'b [u8] {
    b.reset();
    let g = rpc::LeaseGrantRequest::create(b, &rpc::LeaseGrantRequestArgs { ttl, id: 0 });
    finish(b, rpc::RequestBody::LeaseGrantRequest, g.as_union_value())
}

/// Encodes one keep-alive of lease `id`.
pub(crate) fn encode_keep_alive<'b>(b: &'b mut FlatBufferBuilder<'static>, id: i64) -> &'b [u8] {
    b.reset();
    let k = rpc::LeaseKeepAliveRequest::create(b, &rpc::LeaseKeepAliveRequestArgs { id });
    finish(
        b,
        rpc::RequestBody::LeaseKeepAliveRequest,
        k.as_union_value(),
    )
}

/// Encodes a watch of the single key `key`, from now.
pub(crate) fn encode_watch<'b>(b: &'b mut FlatBufferBuilder<'static>, key: &[u8]) -> &'b [u8] {
    b.reset();
    let k = b.create_vector(key);
    let w = rpc::WatchCreateRequest::create(
        b,
        &rpc::WatchCreateRequestArgs {
            key: Some(k),
            ..Default::default()
        },
    );
    finish(b, rpc::RequestBody::WatchCreateRequest, w.as_union_value())
}

/// The id of a granted lease.
pub(crate) fn granted_id(buf: &[u8]) -> Result<i64, String> {
    let resp = check(buf, rpc::ResponseBody::LeaseGrantResponse)?;
    resp.body_as_lease_grant_response()
        .map(|g| g.id())
        .ok_or_else(|| "grant response without a body".into())
}

/// Checks a keep-alive's answer: TTL 0 means the lease is gone.
pub(crate) fn kept_alive(buf: &[u8]) -> Result<(), String> {
    let resp = check(buf, rpc::ResponseBody::LeaseKeepAliveResponse)?;
    match resp.body_as_lease_keep_alive_response() {
        Some(k) if k.ttl() > 0 => Ok(()),
        _ => Err("lease not found".into()),
    }
}

fn range_request<'b>(
    b: &mut FlatBufferBuilder<'b>,
    key: &[u8],
    serializable: bool,
) -> flatbuffers::WIPOffset<rpc::RangeRequest<'b>> {
    let k = b.create_vector(key);
    rpc::RangeRequest::create(
        b,
        &rpc::RangeRequestArgs {
            key: Some(k),
            serializable,
            ..Default::default()
        },
    )
}

fn finish<'b>(
    b: &'b mut FlatBufferBuilder<'static>,
    body_type: rpc::RequestBody,
    body: flatbuffers::WIPOffset<flatbuffers::UnionWIPOffset>,
) -> &'b [u8] {
    let req = rpc::Request::create(
        b,
        &rpc::RequestArgs {
            body_type,
            body: Some(body),
        },
    );
    b.finish(req, None);
    b.finished_data()
}

/// Verifies a response and checks it is of kind `want`; an `Error` body
/// becomes its message.
pub(crate) fn check(buf: &[u8], want: rpc::ResponseBody) -> Result<rpc::Response<'_>, String> {
    let resp = cairn_schemas::verify_response(buf).map_err(|e| format!("invalid response: {e}"))?;
    let got = resp.body_type();
    if got == want {
        return Ok(resp);
    }
    if let Some(e) = resp.body_as_error() {
        return Err(e
            .message()
            .unwrap_or("server error without a message")
            .to_string());
    }
    Err(format!(
        "expected {:?}, got {:?}",
        want.variant_name(),
        got.variant_name()
    ))
}

/// Reads the revision of a put's response.
pub(crate) fn put_revision(buf: &[u8]) -> Result<i64, String> {
    let resp = check(buf, rpc::ResponseBody::PutResponse)?;
    let put = resp
        .body_as_put_response()
        .ok_or("put response without a body")?;
    Ok(put.header().map_or(0, |h| h.revision()))
}

/// Reads the outcome of an [`encode_cas`] txn.
pub(crate) fn cas_outcome(buf: &[u8]) -> Result<Cas, String> {
    let resp = check(buf, rpc::ResponseBody::TxnResponse)?;
    let txn = resp
        .body_as_txn_response()
        .ok_or("txn response without a body")?;
    if txn.succeeded() {
        let revision = txn
            .header()
            .map(|h| h.revision())
            .ok_or("txn response without a header")?;
        return Ok(Cas::Swapped { revision });
    }
    let range = txn
        .responses()
        .filter(|r| r.len() == 1)
        .and_then(|r| r.get(0).op_as_range_response())
        .ok_or("failed txn without exactly one range response")?;
    let mod_revision = range
        .kvs()
        .filter(|kvs| !kvs.is_empty())
        .map_or(0, |kvs| kvs.get(0).mod_revision());
    Ok(Cas::Mismatch { mod_revision })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_and_range_round_trip_through_the_verifier() {
        let mut b = FlatBufferBuilder::new();
        let put = cairn_schemas::verify_request(encode_put(&mut b, b"k1", b"v1"))
            .unwrap()
            .unpack();
        let rpc::RequestBodyT::PutRequest(p) = put.body else {
            panic!("not a put")
        };
        assert_eq!(
            (p.key.as_deref(), p.value.as_deref()),
            (Some(&b"k1"[..]), Some(&b"v1"[..]))
        );
        let range = cairn_schemas::verify_request(encode_range(&mut b, b"k2", true))
            .unwrap()
            .unpack();
        let rpc::RequestBodyT::RangeRequest(r) = range.body else {
            panic!("not a range")
        };
        assert_eq!(r.key.as_deref(), Some(&b"k2"[..]));
        assert!(r.serializable && r.range_end.is_none());
    }

    #[test]
    fn cas_compares_mod_revision_then_puts_else_gets() {
        let mut b = FlatBufferBuilder::new();
        let req = cairn_schemas::verify_request(encode_cas(&mut b, b"k", 42, b"v"))
            .unwrap()
            .unpack();
        let rpc::RequestBodyT::TxnRequest(t) = req.body else {
            panic!("not a txn")
        };
        let cmp = &t.compare.as_ref().unwrap()[0];
        assert_eq!(
            (cmp.result, cmp.target, cmp.mod_revision),
            (rpc::CompareResult::Equal, rpc::CompareTarget::Mod, 42)
        );
        assert!(matches!(
            t.success.as_ref().unwrap()[0].op,
            rpc::RequestOpKindT::PutRequest(_)
        ));
        assert!(matches!(
            t.failure.as_ref().unwrap()[0].op,
            rpc::RequestOpKindT::RangeRequest(_)
        ));
    }

    fn response(body: rpc::ResponseBodyT) -> Vec<u8> {
        let mut b = FlatBufferBuilder::new();
        let off = rpc::ResponseT { body }.pack(&mut b);
        b.finish(off, None);
        b.finished_data().to_vec()
    }

    #[test]
    fn error_bodies_and_wrong_kinds_are_errors() {
        let err = response(rpc::ResponseBodyT::Error(Box::new(rpc::ErrorT {
            code: rpc::ErrorCode::Unavailable,
            message: Some("etcdserver: no leader".into()),
            compact_revision: 0,
        })));
        assert_eq!(
            check(&err, rpc::ResponseBody::PutResponse).unwrap_err(),
            "etcdserver: no leader"
        );
        let range = response(rpc::ResponseBodyT::RangeResponse(Box::default()));
        assert!(check(&range, rpc::ResponseBody::PutResponse)
            .unwrap_err()
            .contains("expected"));
        assert!(check(&range, rpc::ResponseBody::RangeResponse).is_ok());
        assert!(put_revision(&range).is_err());
        let put = response(rpc::ResponseBodyT::PutResponse(Box::new(
            rpc::PutResponseT {
                header: Some(Box::new(rpc::ResponseHeaderT {
                    revision: 3,
                    ..Default::default()
                })),
                prev_kv: None,
            },
        )));
        assert_eq!(put_revision(&put), Ok(3));
        assert!(check(b"garbage", rpc::ResponseBody::PutResponse).is_err());
    }

    #[test]
    fn cas_outcomes_are_read_from_the_txn_response() {
        let ok = response(rpc::ResponseBodyT::TxnResponse(Box::new(
            rpc::TxnResponseT {
                header: Some(Box::new(rpc::ResponseHeaderT {
                    revision: 9,
                    ..Default::default()
                })),
                succeeded: true,
                responses: None,
            },
        )));
        assert!(matches!(cas_outcome(&ok), Ok(Cas::Swapped { revision: 9 })));
        let kv = rpc::KeyValueT {
            mod_revision: 5,
            ..Default::default()
        };
        let get = rpc::RangeResponseT {
            kvs: Some(vec![kv]),
            ..Default::default()
        };
        let op = rpc::ResponseOpT {
            op: rpc::ResponseOpKindT::RangeResponse(Box::new(get)),
        };
        let miss = response(rpc::ResponseBodyT::TxnResponse(Box::new(
            rpc::TxnResponseT {
                header: None,
                succeeded: false,
                responses: Some(vec![op]),
            },
        )));
        assert!(matches!(
            cas_outcome(&miss),
            Ok(Cas::Mismatch { mod_revision: 5 })
        ));
    }
}
